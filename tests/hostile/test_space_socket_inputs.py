"""Whatever one member sends on the space socket, the room goes on for everyone else.

Property-based: each example is one hostile message from one member of a live room in which
the host is talking. After it, the hostile socket either still answers (a probe gets its
``error`` back) or was closed with a documented close code, and the listener keeps hearing
the host. Examples found failing are pinned with ``@example``.

Covered elsewhere, not repeated here: the fixed malformed cases of
``tests/spaces/test_consumers.py::test_malformed_and_unknown_messages_get_errors`` and
``tests/spaces/test_audio_transport.py`` (truncated headers, wrong kinds, empty payloads,
oversized frames and audio floods, each once).
"""

from __future__ import annotations

import json

import pytest
from asgiref.sync import sync_to_async
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from spaces.audio import wire
from spaces.audio.codec import MAX_PACKET_BYTES
from spaces.models import Participant
from spaces.protocol import COMMANDS
from tests.spaces.factories import make_member, put_on_stage

from .helpers import DOCUMENTED_CLOSE_CODES, probe

pytestmark = pytest.mark.django_db(transaction=True)

# The room and its sockets are set up once per test and shared by its examples: that is the
# point (the room must survive all of them), so the function-scoped fixtures are intended.
ROOM_EXAMPLES = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
FIELDS = ["user_id", "muted", "emoji", "voice_tweet_id", "is_recording", "ban", "request_id"]
messages = st.builds(
    lambda kind, fields: {"type": kind, **fields},
    st.sampled_from(sorted(COMMANDS)) | st.text(max_size=30),
    st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=4),
)
text_frames = st.one_of(
    st.text(max_size=200),  # mostly not JSON at all
    json_values.map(json.dumps),  # JSON, but not a message
    messages.map(json.dumps),  # shaped like a command, with any values
    st.integers(1, 20_000).map(lambda depth: "[" * depth + "]" * depth),
    st.integers(1, 200_000).map(lambda size: json.dumps({"type": "x" * size})),
)

# Deeply nested JSON made the decoder raise RecursionError, which killed the consumer: no
# error for the sender, and no disconnect, so its participant and heartbeat lived on.
DEEP_JSON = "[" * 5000 + "]" * 5000


class Hostile:
    """The misbehaving member's socket, reopened whenever the server closed it."""

    def __init__(self, sockets, space, member):
        self.sockets, self.space, self.member = sockets, space, member
        self.socket = None
        self.probes = 0
        self.closes: list[int] = []

    async def current(self):
        if self.socket is None:
            self.socket = await self.sockets.open(self.space.pk, self.member)
        return self.socket

    async def check_still_answers(self) -> None:
        """The socket answers a probe, or was closed with a documented code (then reopened)."""
        self.probes += 1
        outcome = await probe(self.socket, f"probe-{self.probes}")
        if "closed" in outcome:
            assert outcome["closed"] in DOCUMENTED_CLOSE_CODES, outcome
            self.closes.append(outcome["closed"])
            await self.socket.disconnect()
            self.socket = None


def _connection_count(space, member) -> int | None:
    participant = Participant.objects.filter(space=space, user=member).first()
    return None if participant is None else participant.connection_count


@ROOM_EXAMPLES
@given(frame=text_frames)
@example(frame=DEEP_JSON)
@example(frame='{"type": "hand.approve", "user_id": 1180591620717411303424}')  # 2**70
@example(frame='{"type": "pin.set", "voice_tweet_id": -9223372036854775809}')  # below bigint
@example(frame='{"type": "reaction.send", "emoji": {"a": [1]}}')
@example(frame='{"type": "participant.remove", "user_id": NaN, "ban": "yes"}')
@example(frame="null")
async def test_any_text_message_leaves_the_room_working(live_room, sockets, frame):
    """A listener sending any text frame: the socket answers or closes properly, the room
    plays on, and the member is counted out when their socket goes."""
    if not hasattr(live_room, "hostile"):
        member = await sync_to_async(make_member)("mallory")
        live_room.hostile = Hostile(sockets, live_room.space, member)
    hostile = live_room.hostile
    socket = await hostile.current()

    await socket.communicator.send_input({"type": "websocket.receive", "text": frame})
    await hostile.check_still_answers()
    await live_room.still_works()

    if hostile.socket is None:
        # Every socket it had is closed: none is left counted in the room (no ghost).
        count = await sync_to_async(_connection_count)(live_room.space, hostile.member)
        assert not count, f"{count} connection(s) still counted after the socket closed"


frame_headers = st.tuples(
    st.integers(0, 255),  # kind
    st.integers(0, 255),  # flags
    st.integers(0, wire.UINT32_MODULO - 1),  # sequence
    st.integers(0, wire.UINT32_MODULO - 1),  # timestamp
).map(lambda fields: wire.HEADER.pack(*fields))
binary_frames = st.one_of(
    st.binary(max_size=24),  # noise and truncated headers
    st.tuples(frame_headers, st.binary(max_size=1400)).map(b"".join),  # any header
    # A well-formed header on a payload that is not Opus (or Opus the mixer does not expect):
    # this reaches the room's mixer and its decoder.
    st.tuples(
        st.integers(0, wire.UINT32_MODULO - 1),
        st.binary(min_size=1, max_size=MAX_PACKET_BYTES),
    ).map(lambda f: wire.pack(wire.FrameKind.SPEAKER_AUDIO, f[0], f[0] * 960, f[1])),
    st.integers(1286, 70_000).map(lambda size: b"\x01" + bytes(size - 1)),  # too large
)


@ROOM_EXAMPLES
@given(frame=binary_frames)
@example(frame=b"")
@example(frame=wire.pack(wire.FrameKind.SPEAKER_AUDIO, 7, 7 * 960, b"\xfc" + b"\xff" * 200))
@example(frame=b"\x01\x00" + b"\xff" * 8 + b"\x0b")  # a one-byte DTX packet (TOC only)
async def test_any_binary_frame_from_a_speaker_leaves_the_room_working(live_room, sockets, frame):
    """A speaker on stage sending any binary frame: refused with an error or a documented close
    code, or mixed as the noise it is; the listener keeps hearing the room."""
    if not hasattr(live_room, "hostile"):
        member = await sync_to_async(make_member)("mallory")
        hostile = Hostile(sockets, live_room.space, member)
        socket = await hostile.current()
        await sync_to_async(put_on_stage)(live_room.space, live_room.host, member, "speaker")
        await socket.receive_type("role.changed", user_id=member.pk, role="speaker")
        await socket.send({"type": "mute.set", "muted": False})
        await socket.receive_type("mute.changed", user_id=member.pk)
        live_room.hostile = hostile
    hostile = live_room.hostile
    socket = await hostile.current()

    await socket.communicator.send_input({"type": "websocket.receive", "bytes": frame})
    await hostile.check_still_answers()
    await live_room.still_works()
