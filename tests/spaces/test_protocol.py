"""docs/protocol.md and spaces/protocol.py describe the same protocol."""

from pathlib import Path

from config.roles import CLOSE_MISDIRECTED
from spaces.errors import (
    CLOSE_BANNED,
    CLOSE_CAPACITY,
    CLOSE_ENDED,
    CLOSE_FORBIDDEN,
    CLOSE_LEFT,
    CLOSE_NOT_FOUND,
    CLOSE_REMOVED,
    CLOSE_UNAUTHENTICATED,
)
from spaces.protocol import COMMANDS, EVENTS, validate_event

DOC = (Path(__file__).resolve().parents[2] / "docs" / "protocol.md").read_text()


def test_every_event_and_command_is_documented():
    """Each event and client message type in spaces/protocol.py has its place in the doc."""
    for kind in EVENTS:
        assert f"`{kind}`" in DOC, kind
    for kind in COMMANDS:
        assert f"`{kind}`" in DOC, kind


def test_every_close_code_is_documented():
    """Each close code the consumer uses is in the doc's table."""
    for code in (
        CLOSE_LEFT, CLOSE_REMOVED, CLOSE_BANNED, CLOSE_UNAUTHENTICATED, CLOSE_FORBIDDEN,
        CLOSE_NOT_FOUND, CLOSE_CAPACITY, CLOSE_ENDED, CLOSE_MISDIRECTED,
    ):  # fmt: skip
        assert f"| {code} |" in DOC, code


def test_validator_catches_missing_keys():
    """validate_event reports unknown types and missing keys."""
    assert validate_event({"type": "nope"}) == ["unknown event type 'nope'"]
    assert validate_event({"type": "speak.declined"}) == ["speak.declined: missing 'user_id'"]
    assert validate_event({"type": "speak.declined", "user_id": 1}) == []
