import pytest

from tests.wer import word_error_rate


@pytest.mark.parametrize(
    ("hypothesis", "expected"),
    [
        ("Welcome to the salon, where everyone speaks.", 0.0),
        ("welcome to a salon where everyone speaks", 1 / 7),  # one substitution
        ("welcome to the salon where speaks", 1 / 7),  # one deletion
        ("welcome to the the salon where everyone speaks", 1 / 7),  # one insertion
        ("", 1.0),
    ],
)
def test_word_error_rate_counts_edits_per_reference_word(hypothesis, expected):
    """Edits are counted over words, case and punctuation aside, per word of the reference."""
    assert word_error_rate(
        "Welcome to the salon where everyone speaks", hypothesis
    ) == pytest.approx(expected)
