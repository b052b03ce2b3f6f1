"""A daphne socket's sink (spaces/fanout.py) on a real Twisted TCP transport over a socketpair.

No reactor runs: the test plays the reactor's part by calling ``doWrite`` when it has read from
the other end, as epoll would after the socket became writable again.
"""

from __future__ import annotations

import socket

import pytest
from twisted.internet import tcp
from twisted.internet.testing import MemoryReactor

from spaces.fanout import DirectSink, Outgoing

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
