"""The one runner for bounded children (voicetweets/children.py), which voice-tweet processing
and replay joining both use: every child runs under memory and CPU limits and a deadline, and
what went wrong comes back as the child's traceback."""

import json

import pytest

from voicetweets import children

MIB = 1024 * 1024


def test_a_child_runs_under_the_memory_and_cpu_limits_it_was_given():
    result = children.run_child("tests.child_probe", [], timeout=30, memory_bytes=900 * MIB)
    assert result.returncode == 0, result.stderr_tail()
    # The CPU limit follows the deadline, so the deadline acts first.
    assert json.loads(result.stdout) == {"memory": 900 * MIB, "cpu": 35}


def test_a_child_past_its_memory_limit_fails_with_its_traceback():
    result = children.run_child(
        "tests.child_probe", ["--allocate", str(1200 * MIB)], timeout=30, memory_bytes=900 * MIB
    )
    assert result.returncode != 0
    assert "MemoryError" in result.stderr_tail()


def test_a_child_past_its_deadline_is_killed():
    with pytest.raises(children.ChildTimedOut):
        children.run_child("tests.child_probe", ["--spin"], timeout=1, memory_bytes=900 * MIB)
