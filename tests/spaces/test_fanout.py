"""A daphne socket's sink (spaces/live/fanout.py) on a real Twisted TCP transport over a socketpair.

No reactor runs: the test plays the reactor's part by calling ``doWrite`` when it has read from
the other end, as epoll would after the socket became writable again.
"""

from __future__ import annotations

import asyncio
import socket

import pytest
from twisted.internet import tcp
from twisted.internet.testing import MemoryReactor

from spaces.audio.wire import FrameKind, pack, pack_bundle, unpack_bundle
from spaces.live.fanout import AsyncSink, DirectSink, Fanout, Outgoing, SinkStats

FRAME_PAYLOAD = 1000


class _Protocol:
    """What DirectSink reads of autobahn's protocol."""

    STATE_OPEN = 1
    state = 1

    def __init__(self, transport) -> None:
        self.transport = transport


@pytest.fixture
def pair():
    server, client = socket.socketpair()
    # Small kernel buffers, so the test fills them quickly.
    server.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    reactor = MemoryReactor()
    transport = tcp.Connection(server, None, reactor)
    transport.connected = True
    yield transport, client, reactor
    server.close()
    client.close()


def _frames(count: int) -> list[Outgoing]:
    return [Outgoing.binary(bytes([i % 251]) * FRAME_PAYLOAD) for i in range(count)]


def _read_all(client: socket.socket) -> bytes:
    client.setblocking(False)
    chunks = []
    while True:
        try:
            chunk = client.recv(1 << 16)
        except BlockingIOError:
            return b"".join(chunks)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def test_a_listener_that_reads_gets_every_frame_without_the_reactor(pair):
    transport, client, reactor = pair
    sink = DirectSink(_Protocol(transport))
    frames = _frames(3)
    for outgoing in frames:
        sink.send(outgoing)
    # Written straight to the socket: Twisted buffered nothing and watches nothing.
    assert transport._tempDataLen == 0 and not transport.dataBuffer
    assert transport not in reactor.writers
    assert _read_all(client) == b"".join(o.frame for o in frames)
    assert (sink.stats.sent, sink.stats.dropped) == (3, 0)


def test_a_listener_that_stops_reading_costs_bounded_memory_and_gets_frames_in_order(pair):
    transport, client, _ = pair
    sink = DirectSink(_Protocol(transport))
    frames = _frames(1000)  # 1 MB: far more than the kernel and Twisted buffers together
    for outgoing in frames:
        sink.send(outgoing)
    # Twisted paused the sink at its high-water mark; everything after that was dropped.
    assert sink.paused
    assert sink.stats.dropped > 0
    assert sink.stats.sent + sink.stats.dropped == 1000
    buffered = transport._tempDataLen + len(transport.dataBuffer) - transport.offset
    assert buffered <= transport.bufferSize + len(frames[0].frame)
    # The listener reads again: what was sent arrives whole and in order, then drops stop.
    received = bytearray()
    while transport._tempDataLen or len(transport.dataBuffer) > transport.offset:
        received += _read_all(client)
        transport.doWrite()
    received += _read_all(client)
    assert not sink.paused
    sent_frames = [o.frame for o in frames[: sink.stats.sent]]
    assert bytes(received) == b"".join(sent_frames)
    later = _frames(2)
    for outgoing in later:
        sink.send(outgoing)
    assert _read_all(client) == b"".join(o.frame for o in later)
    assert sink.stats.dropped == 1000 - len(sent_frames)


# --- big rooms: listeners get bundles --------------------------------------------------------


class _Inbox:
    """An ASGI ``send`` that keeps what it was given (a non-daphne socket: an AsyncSink)."""

    def __init__(self) -> None:
        self.messages: list[bytes] = []
        self.arrived = asyncio.Event()

    async def __call__(self, message: dict) -> None:
        self.messages.append(message["bytes"])
        self.arrived.set()

    async def settle(self) -> None:
        for _ in range(5):  # let the sinks' drain tasks run
            await asyncio.sleep(0)


def _tick(sequence: int) -> bytes:
    return pack(FrameKind.ROOM_MIX, sequence, sequence * 960, bytes([sequence % 256]) * 40)


async def test_listeners_of_a_big_room_get_two_frames_per_message_and_the_stage_every_tick():
    fanout = Fanout(bundle_from=3)
    speaker, listeners = _Inbox(), [_Inbox(), _Inbox()]
    fanout.add(1, "speaker", speaker, speaker_id=7)
    for index, inbox in enumerate(listeners):
        fanout.add(1, f"listener-{index}", inbox)
    for sequence in range(1, 5):
        fanout.deliver(1, _tick(sequence), {})
    await speaker.settle()

    assert speaker.messages == [_tick(n) for n in range(1, 5)]
    for inbox in listeners:
        assert [unpack_bundle(m) for m in inbox.messages] == [
            [_tick(1), _tick(2)],
            [_tick(3), _tick(4)],
        ]


async def test_a_big_room_never_bundles_across_a_gap_and_a_lone_frame_is_not_held():
    fanout = Fanout(bundle_from=2)
    listener = _Inbox()
    fanout.add(1, "a", listener)
    fanout.add(1, "b", _Inbox())
    fanout.deliver(1, _tick(10), {})
    fanout.deliver(1, _tick(20), {})  # the room was silent between them (room DTX)
    await listener.settle()
    assert listener.messages == [_tick(10)]
    # Nothing follows 20: it goes alone once the next tick is overdue, without a later tick.
    listener.arrived.clear()
    await asyncio.wait_for(listener.arrived.wait(), timeout=5)
    assert listener.messages == [_tick(10), _tick(20)]


async def test_a_small_room_sends_every_frame_on_its_own():
    fanout = Fanout(bundle_from=3)
    listener = _Inbox()
    fanout.add(1, "a", listener)
    fanout.add(1, "b", _Inbox())
    for sequence in range(1, 4):
        fanout.deliver(1, _tick(sequence), {})
    await listener.settle()
    assert listener.messages == [_tick(n) for n in range(1, 4)]


# --- a tick goes out in chunks ------------------------------------------------------------------


class _Recorder:
    """A sink that keeps what it is handed, at once (no drain task in between)."""

    def __init__(self) -> None:
        self.got: list[bytes] = []
        self.stats = SinkStats()

    def send(self, outgoing: Outgoing) -> None:
        self.got.append(outgoing.frame)

    def close(self) -> None:
        pass


def _room(fanout: Fanout, room_id: int, keys: list[str], speakers=()) -> dict[str, _Recorder]:
    recorders = {}
    for key in keys:
        fanout.add(room_id, key, _Inbox(), speaker_id=7 if key in speakers else None)
        member = fanout.rooms[room_id].members[key]
        member.sink.close()
        member.sink = recorders[key] = _Recorder()
    return recorders


def _binary(message: bytes) -> bytes:
    return Outgoing.binary(message).frame


async def test_a_tick_goes_out_one_chunk_per_loop_iteration():
    """The event loop gets control back between chunks, so a speaker's frame waiting on it is
    not held up by a whole room's sends."""
    fanout = Fanout(chunk=2)
    sinks = _room(fanout, 1, [f"listener-{n}" for n in range(5)])
    fanout.deliver(1, _tick(1), {})
    assert [len(s.got) for s in sinks.values()] == [1, 1, 0, 0, 0]
    await asyncio.sleep(0)
    assert [len(s.got) for s in sinks.values()] == [1, 1, 1, 1, 0]
    await asyncio.sleep(0)
    assert [s.got for s in sinks.values()] == [[_binary(_tick(1))]] * 5


async def test_a_tick_before_the_last_one_is_out_keeps_every_socket_in_order():
    """Ticks and events that come faster than the chunks go out never overtake each other on a
    socket, even when a member leaves in between and everyone after them moves up a place."""
    fanout = Fanout(chunk=2)
    sinks = _room(fanout, 1, [f"listener-{n}" for n in range(6)])
    fanout.deliver(1, _tick(1), {})
    fanout.remove(1, "listener-0")
    fanout.deliver(1, _tick(2), {})
    fanout.deliver_text(1, '{"type":"levels"}')
    fanout.deliver(1, _tick(3), {})
    for _ in range(5):
        await asyncio.sleep(0)
    event = Outgoing.text('{"type":"levels"}').frame
    assert sinks.pop("listener-0").got == [_binary(_tick(1))]
    for key, sink in sinks.items():
        assert sink.got == [_binary(_tick(1)), _binary(_tick(2)), event, _binary(_tick(3))], key


async def test_the_stage_and_the_listeners_of_a_big_room_both_get_every_chunk():
    """Bundling and chunking together: the speaker gets each tick, listeners each pair."""
    fanout = Fanout(bundle_from=3, chunk=2)
    keys = ["listener-0", "listener-1", "speaker", "listener-2", "listener-3"]
    sinks = _room(fanout, 1, keys, speakers={"speaker"})
    for sequence in range(1, 5):
        fanout.deliver(1, _tick(sequence), {7: _tick(100 + sequence)})
        await asyncio.sleep(0)
    for _ in range(5):
        await asyncio.sleep(0)
    assert sinks.pop("speaker").got == [_binary(_tick(100 + n)) for n in range(1, 5)]
    for sink in sinks.values():
        assert sink.got == [
            _binary(pack_bundle([_tick(1), _tick(2)])),
            _binary(pack_bundle([_tick(3), _tick(4)])),
        ]


# --- room events for lite sockets (spaces/live/relay.py) -------------------------------------


class _TextInbox:
    """An ASGI ``send`` that keeps text and binary messages apart, reading slowly: each send
    waits for the test to let it go (``release``), so the sink's queue fills."""

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.binaries = 0
        self.gate = asyncio.Event()

    async def __call__(self, message: dict) -> None:
        await self.gate.wait()
        if message.get("text") is not None:
            self.texts.append(message["text"])
        else:
            self.binaries += 1

    async def release(self) -> None:
        self.gate.set()
        for _ in range(50):  # let the sink's drain task run
            await asyncio.sleep(0)


async def test_relayed_events_reach_only_lite_sockets_and_are_never_dropped():
    """deliver_relayed_text writes to the relayed (lite) members only, and a congested socket
    that sheds audio still gets every relayed event, in order."""
    fanout = Fanout()
    lite, channelled = _TextInbox(), _TextInbox()
    fanout.add_sink(1, "lite", AsyncSink(lite), relayed=True)
    fanout.add_sink(1, "own-channel", AsyncSink(channelled))
    fanout.deliver_relayed_text(1, '{"type": "first"}')
    for sequence in range(1, 40):  # far more than the sink keeps
        fanout.deliver(1, _tick(sequence), {})
    fanout.deliver_relayed_text(1, '{"type": "second"}')
    await lite.release()
    await channelled.release()

    assert lite.texts == ['{"type": "first"}', '{"type": "second"}']
    assert channelled.texts == []
    assert lite.binaries < 39  # audio was shed, the events were not
