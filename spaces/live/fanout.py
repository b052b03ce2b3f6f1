"""Deliver a room's mixed audio to this process's sockets: one call per tick, not per listener.

Sending through the channel layer costs one message per listener (a process saturates around
2,000 messages/s), and even Channels' own ``send`` costs a coroutine and a round of ASGI checks
per socket. Server-to-client websocket frames are not masked, so the bytes of one frame are the
same for every listener: this module frames each packet once and writes those bytes straight
to each listener's transport.

Threads. The fan-out runs on the media thread's event loop (``MediaLoop`` in
``spaces/live/media.py``), not on daphne's, so a tick never waits behind a handshake, a snapshot, a
database answer or an upload that daphne's loop is busy with. Sinks are made on the socket's
own loop (the consumer's ``attach``) and used from the media loop:

* Under daphne each socket's ``send`` callable is ``partial(Server.handle_reply, protocol)``,
  which is how the sink finds the autobahn protocol and its Twisted transport. On a plain TCP
  transport a :class:`SocketSink` becomes the socket's one writer (see below).
* Anything else, a TLS transport, a :class:`DirectSink` or an :class:`AsyncSink` (tests with
  ``WebsocketCommunicator``, another ASGI server), sits behind a :class:`LoopSink`: each frame
  crosses to the socket's loop with ``call_soon_threadsafe`` and is written there, as before.
  Without a media thread (unit tests of the plane) sinks are used on their own loop directly.

Why one writer per socket, and not a lock around the media thread's writes only: daphne's loop
writes to the same socket (autobahn's control frames: a consumer's JSON, pings, the close
handshake) through ``transport.write``, which buffers in Twisted and writes later from the
reactor. Two writers with two buffers could put the tail of one frame after the head of
another, or reorder a socket's bytes. So the sink takes over that transport instance:
Twisted's ``write``/``writeSequence`` become the sink's, whichever thread calls them, under one
lock and behind one outbox. A write when the outbox is empty is one ``send()`` system call
(as asyncio's transports do; Twisted's own path costs two ``epoll_ctl`` calls and a loop
callback per frame, which made a daphne socket cost about twice a bare
``websockets.broadcast()``, ``bench/bench_fanout.py``). What the kernel did not take waits in
the outbox, whole frames behind it, and the media loop sends it when the socket is writable
(``add_writer``). ``loseConnection`` waits for the outbox, then Twisted closes on its loop;
the socket's close holds the same lock, so the media thread never writes to a descriptor the
kernel may already have given to a new connection. A separate process per room (the other
way to isolate) would add a hop and a copy per listener-frame; a thread shares the sockets.

Slow listeners never grow memory or slow the room. A socket sink keeps at most
``SOCKET_OUTBOX_BYTES`` (64 KiB, Twisted's high-water mark) beyond what the kernel took; past
that it drops audio frames (counted) until the listener catches up, never a control frame
(the reactor's writes) and never part of a frame. A direct sink (TLS) registers as the
transport's push producer and drops while Twisted pauses it; an async sink keeps at most
``ASYNC_QUEUE_FRAMES`` frames and drops the oldest.

Big rooms bundle. Once a room has ``bundle_from`` sockets in this process, its listeners get
``bundle_frames`` (2) consecutive mix frames in one message (kind 3, ``spaces/audio/wire.py``)
every other tick, which halves the sends, the system calls and the client's wake-ups. It costs
latency: the first frame of each pair waits one tick, so 10 ms on average and 20 ms at most.
Members on stage still get every tick at once (they converse).

A tick goes out in chunks of ``chunk`` (128) sockets, one chunk per iteration of the media
loop. The loop takes other work between chunks, so a speaker's next frame, which reaches the
mixer through this same loop, waits for one chunk (about a millisecond) instead of the whole
room: at 500 listeners a tick in one piece kept the loop 10-15 ms, and the speaker's jitter
buffer had to keep that much more delay. A room has at most one tick in flight: a tick (or a
text event) that comes before the last one is out first sends the rest of it at once, so each
socket still gets everything in order.

Room events for lite sockets (listeners without a channel of their own, spaces/live/relay.py)
come through here too, framed once for the room (``deliver_relayed_text``). Unlike audio and
digests they are never dropped for a congested socket (``Outgoing.control``): a lost role
change or removal would leave a client wrong for good, and they are rare.

Everything in :class:`Fanout` runs on one loop (the media loop); the mixer thread hands ticks
over with ``loop.call_soon_threadsafe``, presence's digests and the relay's events cross the
same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
import threading
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial

from ..audio.wire import HEADER as WIRE_HEADER
from ..audio.wire import pack_bundle

logger = logging.getLogger(__name__)

ASYNC_QUEUE_FRAMES = 10
# Sockets written per event loop iteration (see the module docstring).
FANOUT_CHUNK = 128
# How long a lone frame waits for the next one to share a bundle: the bundle's whole span
# (one more tick) plus slack for a late tick. After that the room fell silent, and it goes alone.
BUNDLE_WAIT_SECONDS = 0.030


_TEXT, _BINARY = 0x81, 0x82  # FIN + opcode


def websocket_frame(payload: bytes, *, opcode: int = _BINARY) -> bytes:
    """One unfragmented, unmasked frame (RFC 6455 §5.2), as a server sends it."""
    length = len(payload)
    if length < 126:
        header = struct.pack("!BB", opcode, length)
    elif length < 1 << 16:
        header = struct.pack("!BBH", opcode, 126, length)
    else:
        header = struct.pack("!BBQ", opcode, 127, length)
    return header + payload


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message to many sockets, prepared once: framed for direct sinks, and as the ASGI
    message for the others."""

    frame: bytes
    message: dict
    # A room event relayed to lite sockets (spaces/live/relay.py): never dropped for
    # congestion, as a lost role change or removal would leave the client wrong for good.
    control: bool = False

    @classmethod
    def binary(cls, payload: bytes) -> Outgoing:
        return cls(websocket_frame(payload), {"type": "websocket.send", "bytes": payload})

    @classmethod
    def text(cls, text: str, *, control: bool = False) -> Outgoing:
        frame = websocket_frame(text.encode(), opcode=_TEXT)
        return cls(frame, {"type": "websocket.send", "text": text}, control)


@dataclass
class SinkStats:
    sent: int = 0
    dropped: int = 0


def _plain_tcp_socket(transport):
    """The socket under a plain Twisted TCP transport, or None (TLS, another transport)."""
    try:
        from twisted.internet import tcp
    except ImportError:  # pragma: no cover - daphne always brings Twisted
        return None
    if isinstance(transport, tcp.Connection) and not getattr(transport, "TLS", False):
        return getattr(transport, "socket", None)
    return None


class DirectSink:
    """Writes ready-made frames to a daphne (autobahn over Twisted) socket's transport."""

    def __init__(self, protocol) -> None:
        self.protocol = protocol
        self.transport = protocol.transport
        self.socket = _plain_tcp_socket(self.transport)
        self.stats = SinkStats()
        self.paused = False
        try:
            # Streaming producer: Twisted calls pauseProducing/resumeProducing as the socket's
            # write buffer fills and drains.
            self.transport.registerProducer(self, True)
            self._registered = True
        except RuntimeError:  # another producer holds the transport: fall back to polling
            self._registered = False

    # IPushProducer
    def pauseProducing(self) -> None:
        self.paused = True

    def resumeProducing(self) -> None:
        self.paused = False

    def stopProducing(self) -> None:
        self.paused = True

    def _congested(self) -> bool:
        if self._registered:
            return self.paused
        buffered = len(getattr(self.transport, "dataBuffer", b"")) + getattr(
            self.transport, "_tempDataLen", 0
        )
        return buffered > 64 * 1024

    def send(self, outgoing: Outgoing) -> None:
        if self.protocol.state != self.protocol.STATE_OPEN or self.transport.disconnecting:
            return
        if self._congested() and not outgoing.control:
            self.stats.dropped += 1
            return
        self._write(outgoing.frame)
        self.stats.sent += 1

    def _write(self, frame: bytes) -> None:
        transport = self.transport
        if (
            self.socket is None
            or transport._tempDataLen
            or len(transport.dataBuffer) > transport.offset
            or not transport.connected
        ):
            transport.write(frame)  # Twisted keeps the order behind what it already holds
            return
        try:
            sent = self.socket.send(frame)
        except OSError:
            # Full (BlockingIOError) or broken: Twisted writes it later, or meets the error on
            # its own write and closes the connection its way.
            sent = 0
        if sent < len(frame):
            transport.write(frame[sent:])

    def close(self) -> None:
        if self._registered and getattr(self.transport, "producer", None) is self:
            self.transport.unregisterProducer()
        self._registered = False


# Bytes a socket sink keeps for a listener beyond what the kernel took; past this, audio frames
# are dropped (counted) until it drains. Twisted's own high-water mark is the same.
SOCKET_OUTBOX_BYTES = 64 * 1024


class SocketSink:
    """The one writer of a daphne socket once its audio is attached: the media thread writes
    audio frames, the reactor thread writes everything else (autobahn's control frames, pings,
    the close handshake), and both go through here, so frames never interleave mid-frame and
    each socket gets its bytes in the order they were written.

    Built on the reactor thread (the consumer's attach), it takes over that transport
    instance: its ``write``, ``writeSequence``, ``loseConnection`` and ``connectionLost`` are
    replaced by this sink's, and what Twisted still had buffered moves into the sink's outbox.
    A write when the outbox is empty is one ``send()`` on the socket, from whichever thread;
    what the kernel did not take waits in the outbox, which the media loop flushes when the
    socket is writable again (``add_writer``). ``loseConnection`` waits until the outbox is
    flushed, then Twisted closes the socket its way on the reactor thread. Audio frames are
    dropped (counted) while more than ``SOCKET_OUTBOX_BYTES`` wait; the reactor's writes never
    are (a lost control frame would corrupt the stream).

    Every send and the socket's close hold ``lock``: the media thread can never write to a
    descriptor the reactor closed (and the kernel may have given to a new connection).
    """

    def __init__(self, protocol, *, media_loop: asyncio.AbstractEventLoop, reactor_loop) -> None:
        self.protocol = protocol
        self.transport = transport = protocol.transport
        self.socket = transport.socket
        self.fileno = self.socket.fileno()
        self.media_loop = media_loop
        self.reactor_loop = reactor_loop
        self.stats = SinkStats()
        self.lock = threading.Lock()
        # Bytes waiting for the kernel, oldest first; ``head_sent`` of the first are out.
        self.outbox: deque[bytes] = deque()
        self.head_sent = 0
        self.queued = 0
        # The media loop watches the socket for writability (or is about to).
        self.writer_armed = False
        # The reactor asked to close once the outbox is flushed.
        self.close_pending = False
        # The socket is closed or broken: nothing is written any more.
        self.dead = False
        # The fan-out let go of the sink (detach): no more audio, the reactor's writes go on.
        self.detached = False
        self._twisted_lose = transport.loseConnection
        self._twisted_lost = transport.connectionLost
        # Take over what Twisted buffered (the upgrade's response, the snapshot) so it goes
        # out first, then be the transport's writer.
        pending = transport.dataBuffer[transport.offset :] + b"".join(transport._tempDataBuffer)
        transport.dataBuffer, transport.offset = b"", 0
        transport._tempDataBuffer, transport._tempDataLen = [], 0
        transport.stopWriting()
        transport.write = self.write
        transport.writeSequence = self.write_sequence
        transport.loseConnection = self.lose_connection
        transport.connectionLost = self.connection_lost
        transport.salon_sink = self
        if pending:
            self.write(pending)

    # --- the reactor's side (Twisted calls these on the transport) ---------------------------

    def write(self, data: bytes) -> None:
        if data and self.transport.connected:
            self._write(bytes(data), audio=False)

    def write_sequence(self, chunks) -> None:
        self.write(b"".join(chunks))

    def lose_connection(self, *args) -> None:
        with self.lock:
            if self.outbox and not self.dead:
                self.close_pending = True
                return
        self._twisted_lose(*args)

    def connection_lost(self, reason) -> None:
        with self.lock:
            self.dead = True
            self.outbox.clear()
            self.queued = 0
        self._on_media(self._disarm)
        self._twisted_lost(reason)

    # --- the media thread's side --------------------------------------------------------------

    def send(self, outgoing: Outgoing) -> None:
        if self.detached or self.protocol.state != self.protocol.STATE_OPEN:
            return
        if self._write(outgoing.frame, audio=not outgoing.control):
            self.stats.sent += 1
        else:
            self.stats.dropped += 1

    def close(self) -> None:
        """The fan-out is done with this socket; the reactor's writes still go through here."""
        self.detached = True

    # --- both ---------------------------------------------------------------------------------

    def _write(self, data: bytes, *, audio: bool) -> bool:
        """Send ``data`` or queue it behind what waits; False if an audio frame was dropped."""
        with self.lock:
            if self.dead or (audio and self.close_pending):
                return not audio
            if self.outbox:
                if audio and self.queued > SOCKET_OUTBOX_BYTES:
                    return False
                self.outbox.append(data)
                self.queued += len(data)
                return True
            try:
                sent = self.socket.send(data)
            except BlockingIOError:
                sent = 0
            except OSError:
                # Broken: the reactor meets the error when it reads, and closes its way.
                self.dead = True
                return not audio
            if sent == len(data):
                return True
            self.outbox.append(data)
            self.head_sent = sent
            self.queued = len(data) - sent
            arm = not self.writer_armed
            self.writer_armed = True
        if arm:
            self._on_media(self._arm)
        return True

    def _on_media(self, callback) -> None:
        try:
            if _running_loop() is self.media_loop:
                callback()
            else:
                self.media_loop.call_soon_threadsafe(callback)
        except RuntimeError:  # the media loop is gone (the process is stopping)
            self.dead = True

    def _arm(self) -> None:
        # Under the lock: the reactor cannot close the descriptor meanwhile.
        with self.lock:
            if self.dead or not self.outbox:
                self.writer_armed = False
                return
            self.media_loop.add_writer(self.fileno, self._flush)

    def _disarm(self) -> None:
        # Queued behind any _arm of this sink and before any sink of a new connection that
        # reuses the descriptor, since both come through the media loop's queue in order.
        self.media_loop.remove_writer(self.fileno)

    def _flush(self) -> None:
        """Media loop, the socket is writable: send what waits, oldest first."""
        close = False
        with self.lock:
            while self.outbox and not self.dead:
                head = self.outbox[0]
                try:
                    sent = self.socket.send(memoryview(head)[self.head_sent :])
                except BlockingIOError:
                    return
                except OSError:
                    self.dead = True
                    break
                self.queued -= sent
                self.head_sent += sent
                if self.head_sent < len(head):
                    return
                self.outbox.popleft()
                self.head_sent = 0
            if self.dead:
                self.outbox.clear()
                self.queued = 0
            self.writer_armed = False
            close, self.close_pending = self.close_pending and not self.dead, False
            self.media_loop.remove_writer(self.fileno)
        if close:
            with contextlib.suppress(RuntimeError):
                self.reactor_loop.call_soon_threadsafe(self._twisted_lose)


class LoopSink:
    """A sink that must be used on its socket's own loop (an ASGI ``send``, a TLS transport),
    used from the media thread: each send crosses to that loop."""

    def __init__(self, inner: DirectSink | AsyncSink, loop: asyncio.AbstractEventLoop) -> None:
        self.inner = inner
        self.loop = loop

    @property
    def stats(self) -> SinkStats:
        return self.inner.stats

    def send(self, outgoing: Outgoing) -> None:
        self._call(self.inner.send, outgoing)

    def close(self) -> None:
        self._call(self.inner.close)

    def _call(self, callback, *args) -> None:
        if _running_loop() is self.loop:
            callback(*args)
            return
        with contextlib.suppress(RuntimeError):  # that loop has closed: the socket is gone
            self.loop.call_soon_threadsafe(callback, *args)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


class AsyncSink:
    """Sends through the ASGI ``send`` callable, keeping only the newest few frames."""

    def __init__(self, send: Callable[[dict], Awaitable[None]]) -> None:
        self._asgi_send = send
        self.stats = SinkStats()
        # ASGI messages waiting to go out, oldest first.
        # (control, message), so relayed events are never the ones dropped.
        self.queue: deque[tuple[bool, dict]] = deque()
        self._wakeup = asyncio.Event()
        # Set while nothing waits or is being sent (``drained``).
        self._idle = asyncio.Event()
        self._idle.set()
        self._task = asyncio.get_running_loop().create_task(self._drain())

    def send(self, outgoing: Outgoing) -> None:
        if len(self.queue) >= ASYNC_QUEUE_FRAMES:
            for index, (control, _message) in enumerate(self.queue):
                if not control:
                    del self.queue[index]
                    self.stats.dropped += 1
                    break
        self.queue.append((outgoing.control, outgoing.message))
        self._idle.clear()
        self._wakeup.set()

    async def drained(self) -> None:
        """Return once everything sent so far has gone through the ASGI ``send``."""
        if not self._task.done():
            await self._idle.wait()

    async def _drain(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self.queue:
                await self._asgi_send(self.queue.popleft()[1])
                self.stats.sent += 1
            self._idle.set()

    def close(self) -> None:
        self._task.cancel()


Sink = DirectSink | AsyncSink | SocketSink | LoopSink


def sink_for(send, *, media_loop: asyncio.AbstractEventLoop | None = None) -> Sink:
    """The fastest sink this server allows for a socket, given its ASGI ``send``.

    Call it on the socket's own loop (the reactor's). With ``media_loop`` (the media thread's
    loop, if it is another one) the sink is made for use from there: a plain TCP daphne
    socket gets a :class:`SocketSink`, anything else its usual sink behind a
    :class:`LoopSink`.
    """
    own_loop = _running_loop()
    cross = media_loop is not None and media_loop is not own_loop
    protocol = _daphne_protocol(send)
    transport = getattr(protocol, "transport", None) if protocol is not None else None
    if transport is not None:
        existing = getattr(transport, "salon_sink", None)
        if existing is not None:  # attached again: the socket keeps its one writer
            existing.detached = False
            return existing
        if cross and _plain_tcp_socket(transport) is not None and transport.connected:
            return SocketSink(protocol, media_loop=media_loop, reactor_loop=own_loop)
        sink = DirectSink(protocol)
    else:
        sink = AsyncSink(send)
    return LoopSink(sink, own_loop) if cross else sink


def _daphne_protocol(send):
    # Middleware may wrap ``send`` in further partials; unwrap to daphne's handle_reply.
    while isinstance(send, partial):
        if getattr(send.func, "__name__", "") == "handle_reply" and send.args:
            candidate = send.args[0]
            if hasattr(candidate, "sendMessage") and hasattr(candidate, "STATE_OPEN"):
                return candidate
        send = send.func
    return None


@dataclass
class _Member:
    sink: Sink
    # The member's user id when they are on stage: they hear the mix without their own voice.
    speaker_id: int | None = None
    # A lite socket (spaces/live/relay.py): room events reach it through here.
    relayed: bool = False


@dataclass
class RoomFanout:
    members: dict[str, _Member] = field(default_factory=dict)
    ticks: int = 0
    # Big rooms: shared mix frames waiting to go to the listeners as one bundle.
    pending: list[bytes] = field(default_factory=list)
    pending_sequence: int = 0  # the sequence number the next pending frame should have
    # Sends a lone pending frame if no next frame comes (the room fell silent).
    flush_timer: asyncio.TimerHandle | None = None
    # The message going out in chunks: who gets it, where the next chunk starts, and what
    # each member gets (None: nothing); the call that sends the next chunk.
    rest: tuple[list[_Member], int, Callable[[_Member], Outgoing | None]] | None = None
    rest_call: asyncio.Handle | None = None


def _send_each(members: list[_Member], pick: Callable[[_Member], Outgoing | None]) -> None:
    for member in members:
        outgoing = pick(member)
        if outgoing is not None:
            member.sink.send(outgoing)


def _sequence(message: bytes) -> int:
    return WIRE_HEADER.unpack_from(message)[2]


class Fanout:
    """This process's registry: room id → its local sockets."""

    def __init__(
        self, *, bundle_from: int = 0, bundle_frames: int = 2, chunk: int = FANOUT_CHUNK
    ) -> None:
        self.rooms: dict[int, RoomFanout] = {}
        # Sockets in a room (in this process) from which listeners get bundles; 0: never.
        self.bundle_from = bundle_from
        self.bundle_frames = bundle_frames
        self.chunk = chunk

    def add(self, room_id: int, key: str, send, *, speaker_id: int | None = None) -> None:
        self.add_sink(room_id, key, sink_for(send), speaker_id=speaker_id)

    def add_sink(
        self,
        room_id: int,
        key: str,
        sink: Sink,
        *,
        speaker_id: int | None = None,
        relayed: bool = False,
    ):
        """Add a socket whose sink was made on its own loop (``sink_for``); ``relayed``: a
        lite socket, which gets the room's events from ``deliver_relayed_text``."""
        room = self.rooms.setdefault(room_id, RoomFanout())
        previous = room.members.get(key)
        if previous is not None and previous.sink is not sink:
            previous.sink.close()
        room.members[key] = _Member(sink=sink, speaker_id=speaker_id, relayed=relayed)

    def set_speaker(self, room_id: int, key: str, speaker_id: int | None) -> None:
        member = self.rooms.get(room_id, RoomFanout()).members.get(key)
        if member is not None:
            member.speaker_id = speaker_id

    def remove(self, room_id: int, key: str) -> None:
        room = self.rooms.get(room_id)
        if room is None:
            return
        member = room.members.pop(key, None)
        if member is not None:
            member.sink.close()
        if not room.members:
            if room.flush_timer is not None:
                room.flush_timer.cancel()
            if room.rest_call is not None:
                room.rest_call.cancel()
            del self.rooms[room_id]

    def has_room(self, room_id: int) -> bool:
        return room_id in self.rooms

    def deliver(self, room_id: int, shared: bytes, mix_minus: dict[int, bytes]) -> None:
        """Send one tick: ``shared`` to everyone, except talking speakers get their mix-minus.

        ``shared`` and the mix-minus packets are complete wire messages (header + Opus).
        """
        room = self.rooms.get(room_id)
        if room is None:
            return
        room.ticks += 1
        everyone = Outgoing.binary(shared)
        minus = {speaker_id: Outgoing.binary(p) for speaker_id, p in mix_minus.items()}
        if self.bundle_from <= 0 or len(room.members) < self.bundle_from:
            if room.pending:
                self._flush(room)  # the room shrank below the threshold
            self._broadcast(room, lambda member: minus.get(member.speaker_id, everyone))
            return
        sequence = _sequence(shared)
        if room.pending and sequence != room.pending_sequence:
            self._flush(room)  # a gap (the room fell silent): never bundle across it
        room.pending.append(shared)
        room.pending_sequence = (sequence + 1) & 0xFFFFFFFF
        bundle = None
        if len(room.pending) >= self.bundle_frames:
            bundle = self._take_pending(room)
        elif room.flush_timer is None:
            with contextlib.suppress(RuntimeError):  # outside the event loop (tests): no timer
                loop = asyncio.get_running_loop()
                room.flush_timer = loop.call_later(BUNDLE_WAIT_SECONDS, self._flush, room)

        def pick(member: _Member) -> Outgoing | None:
            if member.speaker_id is None:
                return bundle
            return minus.get(member.speaker_id, everyone)

        self._broadcast(room, pick)

    def _take_pending(self, room: RoomFanout) -> Outgoing | None:
        """The pending frames as one message for the listeners: a bundle, or a lone frame."""
        if room.flush_timer is not None:
            room.flush_timer.cancel()
            room.flush_timer = None
        pending, room.pending = room.pending, []
        if not pending:
            return None
        if len(pending) == 1:
            return Outgoing.binary(pending[0])
        return Outgoing.binary(pack_bundle(pending))

    def _flush(self, room: RoomFanout) -> None:
        """Send the pending frames to the room's listeners now (a gap, or the timer)."""
        outgoing = self._take_pending(room)
        if outgoing is not None:
            self._broadcast(room, lambda member: outgoing if member.speaker_id is None else None)

    def deliver_text(self, room_id: int, text: str) -> None:
        """Send one text message (e.g. a levels event) to every local socket of the room."""
        room = self.rooms.get(room_id)
        if room is None:
            return
        outgoing = Outgoing.text(text)
        self._broadcast(room, lambda member: outgoing)

    def deliver_relayed_text(self, room_id: int, text: str) -> None:
        """Send a room event to the room's lite sockets (the others have channels of their own
        and got it there); never dropped for congestion (``Outgoing.control``)."""
        room = self.rooms.get(room_id)
        if room is None:
            return
        outgoing = Outgoing.text(text, control=True)
        self._broadcast(room, lambda member: outgoing if member.relayed else None)

    def flush_room(self, room_id: int, key: str) -> Sink | None:
        """Send what the room still has in flight now; the sink of socket ``key``, if any."""
        room = self.rooms.get(room_id)
        if room is None:
            return None
        self._finish(room)
        member = room.members.get(key)
        return member.sink if member is not None else None

    def deliver_text_to_speaker(self, room_id: int, speaker_id: int, text: str) -> None:
        """Send one text message to the local sockets publishing as ``speaker_id``."""
        room = self.rooms.get(room_id)
        if room is None:
            return
        outgoing = Outgoing.text(text)
        for member in room.members.values():
            if member.speaker_id == speaker_id:
                member.sink.send(outgoing)

    # --- sending in chunks ------------------------------------------------------------------

    def _broadcast(self, room: RoomFanout, pick: Callable[[_Member], Outgoing | None]) -> None:
        """Send ``pick(member)`` to every member: the first chunk now, the others on the next
        loop iterations. Whatever the room still had in flight goes out first."""
        self._finish(room)
        self._send_from(room, list(room.members.values()), 0, pick)

    def _send_from(self, room: RoomFanout, members: list[_Member], start: int, pick) -> None:
        end = start + self.chunk
        _send_each(members[start:end], pick)
        if end >= len(members):
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # outside the event loop (tests, tools): all at once
            _send_each(members[end:], pick)
            return
        room.rest = (members, end, pick)
        room.rest_call = loop.call_soon(self._continue, room)

    def _continue(self, room: RoomFanout) -> None:
        rest, room.rest, room.rest_call = room.rest, None, None
        if rest is not None:
            self._send_from(room, *rest)

    def _finish(self, room: RoomFanout) -> None:
        """Send what is left of the message in flight at once (a new one must follow it)."""
        rest, room.rest = room.rest, None
        if rest is None:
            return
        if room.rest_call is not None:
            room.rest_call.cancel()
            room.rest_call = None
        members, start, pick = rest
        _send_each(members[start:], pick)

    def stats(self, room_id: int) -> dict[str, int]:
        room = self.rooms.get(room_id)
        if room is None:
            return {"members": 0, "sent": 0, "dropped": 0}
        # list() first: healthz reads this on the reactor thread while the media thread adds.
        sinks = [m.sink.stats for m in list(room.members.values())]
        return {
            "members": len(sinks),
            "sent": sum(s.sent for s in sinks),
            "dropped": sum(s.dropped for s in sinks),
        }


# One per process: consumers register here, the mixer host delivers here.
fanout = Fanout()
