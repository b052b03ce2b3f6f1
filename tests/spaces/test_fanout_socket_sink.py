"""SocketSink (spaces/live/fanout.py): the one writer of a daphne socket, used by the reactor thread
and the media thread at once, on a real Twisted TCP transport over a socketpair.

The test's own event loop plays the reactor's loop (the thread Twisted writes from); a
MediaLoop is the media thread. The far end of the pair is the listener.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
import time

import pytest
from twisted.internet import tcp
from twisted.internet.protocol import Protocol
from twisted.internet.testing import MemoryReactor
from twisted.python import failure

from spaces.live.fanout import SOCKET_OUTBOX_BYTES, Outgoing, SocketSink, websocket_frame
from spaces.live.media import MediaLoop

FRAME_PAYLOAD = 1000


class _Protocol:
    """What the sink reads of autobahn's protocol."""

    STATE_OPEN = 1
    state = 1

    def __init__(self, transport) -> None:
        self.transport = transport


@pytest.fixture
def media():
    media_loop = MediaLoop()
    yield media_loop
    media_loop.stop()


@pytest.fixture
def pair():
    server, client = socket.socketpair()
    # Small kernel buffers, so the test fills them quickly.
    server.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    server.setblocking(False)
    transport = tcp.Connection(server, Protocol(), MemoryReactor())
    transport.connected = True
    yield transport, client
    server.close()
    client.close()


def _sink(transport, media: MediaLoop) -> SocketSink:
    return SocketSink(
        _Protocol(transport), media_loop=media.loop, reactor_loop=asyncio.get_running_loop()
    )


def _audio(index: int) -> Outgoing:
    return Outgoing.binary(struct.pack(">I", index) + bytes([index % 251]) * FRAME_PAYLOAD)


def _control(index: int) -> bytes:
    """A text frame as autobahn writes it through ``transport.write``."""
    return websocket_frame(f'{{"n":{index},"pad":"{"x" * 200}"}}'.encode(), opcode=0x81)


def _parse(data: bytes) -> list[tuple[int, bytes]]:
    """The frames in ``data``, which must end on a frame boundary (nothing torn)."""
    frames, offset = [], 0
    while offset < len(data):
        opcode, length = data[offset], data[offset + 1]
        offset += 2
        if length == 126:
            (length,) = struct.unpack_from(">H", data, offset)
            offset += 2
        assert offset + length <= len(data), "a frame was cut short"
        frames.append((opcode, data[offset : offset + length]))
        offset += length
    return frames


class _Reader:
    """The listener reading on its own thread, as fast as it can."""

    def __init__(self, client: socket.socket) -> None:
        self.client = client
        self.received = bytearray()
        self._stop = threading.Event()
        client.settimeout(0.05)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                chunk = self.client.recv(1 << 16)
            except TimeoutError:
                continue
            except OSError:
                return
            if not chunk:
                return
            self.received += chunk

    def stop(self) -> bytes:
        self._stop.set()
        self._thread.join(5)
        return bytes(self.received)


async def _until(condition, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.005)


async def _on_media(media: MediaLoop, callback, *args):
    async def run():
        return callback(*args)

    return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(run(), media.loop))


async def test_frames_from_both_threads_arrive_whole_and_each_in_its_order(pair, media):
    """The reactor writes control frames while the media thread sends audio: on the wire every
    frame is whole, no control frame is lost, and each thread's frames keep their order."""
    transport, client = pair
    sink = _sink(transport, media)
    reader = _Reader(client)

    def send_audio() -> None:
        for index in range(400):
            sink.send(_audio(index))
            if index % 8 == 0:
                time.sleep(0.0005)  # let the other thread in between, as real ticks would

    audio = asyncio.ensure_future(_on_media(media, send_audio))
    controls = [_control(index) for index in range(400)]
    for index, frame in enumerate(controls):
        transport.write(frame)
        if index % 8 == 0:
            await asyncio.sleep(0.0005)
    await audio
    expected = sum(len(c) for c in controls) + sink.stats.sent * len(_audio(0).frame)
    await _until(lambda: len(reader.received) >= expected)
    frames = _parse(reader.stop())

    assert [payload for opcode, payload in frames if opcode == 0x81] == [c[4:] for c in controls]
    heard = [struct.unpack_from(">I", p)[0] for opcode, p in frames if opcode == 0x82]
    assert heard == sorted(heard) and len(heard) == sink.stats.sent
    assert sink.stats.sent + sink.stats.dropped == 400


async def test_what_the_kernel_did_not_take_is_sent_by_the_media_loop_in_order(pair, media):
    """A listener that is behind: the rest of a frame waits in the outbox, and once the
    listener reads, the media loop sends it, then the frames after it, in order."""
    transport, client = pair
    sink = _sink(transport, media)
    sent = []
    for index in range(30):  # 30 kB: more than the kernel holds for this pair
        sink.send(_audio(index))
        sent.append(index)
    assert sink.queued > 0 and sink.writer_armed
    assert sink.stats.dropped == 0

    reader = _Reader(client)
    expected = len(sent) * len(_audio(0).frame)
    await _until(lambda: len(reader.received) >= expected and not sink.outbox)
    frames = _parse(reader.stop())
    assert [struct.unpack_from(">I", p)[0] for _, p in frames] == sent
    assert not sink.writer_armed


async def test_a_listener_that_stops_reading_costs_bounded_memory_and_keeps_control_frames(
    pair, media
):
    """Audio past the outbox bound is dropped (counted); the reactor's frames never are; once
    the listener reads again, what was kept arrives whole and in order."""
    transport, client = pair
    sink = _sink(transport, media)
    for index in range(1000):  # 1 MB
        sink.send(_audio(index))
    assert sink.stats.dropped > 0
    assert sink.stats.sent + sink.stats.dropped == 1000
    assert sink.queued <= SOCKET_OUTBOX_BYTES + len(_audio(0).frame)
    controls = [_control(index) for index in range(3)]
    for frame in controls:
        transport.write(frame)
    sink.send(_audio(1000))  # still over the bound: dropped
    assert sink.stats.dropped == 1000 - sink.stats.sent + 1

    reader = _Reader(client)
    expected = sink.stats.sent * len(_audio(0).frame) + sum(len(c) for c in controls)
    await _until(lambda: len(reader.received) >= expected and not sink.outbox)
    frames = _parse(reader.stop())
    audio = [struct.unpack_from(">I", p)[0] for opcode, p in frames if opcode == 0x82]
    assert audio == list(range(sink.stats.sent))
    assert [p for _, p in frames[len(audio) :]] == [c[4:] for c in controls]


async def test_what_twisted_buffered_before_the_takeover_goes_out_first(pair, media):
    """The upgrade's response and the snapshot, still in Twisted's buffer when the socket's
    audio is attached, reach the listener before any audio."""
    transport, client = pair
    before = _control(0)
    transport.write(before)  # no reactor runs: Twisted keeps it
    assert transport._tempDataLen == len(before)
    sink = _sink(transport, media)
    sink.send(_audio(1))
    reader = _Reader(client)
    await _until(lambda: len(reader.received) >= len(before) + len(_audio(1).frame))
    assert reader.stop() == before + _audio(1).frame
    assert transport._tempDataLen == 0


async def test_closing_waits_for_the_outbox_to_be_flushed(pair, media):
    """Twisted's ``loseConnection`` (after the close frame) waits until everything queued is
    out, so the listener gets the close frame; then Twisted closes on its own loop."""
    transport, client = pair
    sink = _sink(transport, media)
    for index in range(30):
        sink.send(_audio(index))
    close_frame = websocket_frame(b"\x03\xe8", opcode=0x88)
    transport.write(close_frame)
    transport.loseConnection()
    assert sink.close_pending and not transport.disconnecting
    sink.send(_audio(99))  # nothing new after a close

    reader = _Reader(client)
    await _until(lambda: transport.disconnecting)
    data = reader.stop()
    assert data.endswith(close_frame)
    assert len(_parse(data)) == 31


async def test_after_the_connection_is_lost_nothing_more_is_written(pair, media):
    """Once Twisted has lost the connection (and closed the socket), the media thread's sends
    are no-ops: the descriptor may belong to a new connection by then."""
    transport, _client = pair
    sink = _sink(transport, media)
    for index in range(30):
        sink.send(_audio(index))
    assert sink.outbox
    transport.connectionLost(failure.Failure(ConnectionResetError()))
    sent = sink.stats.sent
    await _on_media(media, sink.send, _audio(100))
    assert sink.dead and not sink.outbox and sink.queued == 0
    assert sink.stats.sent == sent
