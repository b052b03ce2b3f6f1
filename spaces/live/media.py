"""The media plane of one process: speakers' frames in, each room's mix out to local sockets.

Who does what:

* A space consumer validates a speaker's binary frame (docs/audio.md) and, if the server says
  this member may publish, hands it to :meth:`MediaPlane.speaker_frame`. It tells the plane
  when the member's right to publish changes (:meth:`set_publishing`), so a demotion or a mute
  reaches the mixer before that speaker's next frame: audio stops within one tick.
* Exactly one process mixes a room: the one holding the room's lease on the bus. Every process
  with members of the room tries to take it; the holder renews it every ``LEASE_RENEW`` seconds
  and another process takes over within ``LEASE_TTL_MS`` if the holder dies.
* The owner's mixer thread ticks every 20 ms; each tick is published once on the bus as one
  bundle (shared mix + mix-minus packets); every process with members of the room receives it
  once and writes it to its own sockets through :mod:`spaces.live.fanout`.

Threads. Three per process, so audio never waits behind anything else:

* daphne's event loop (the reactor) reads every socket, runs the consumers, the handshakes,
  the snapshots, HTTP and uploads, the channel layer, presence and the heartbeats;
* the media thread (:class:`MediaLoop`, its own asyncio loop) runs this plane: the rooms, the
  bus (for Redis its own connections and subscription, so bundles never cross daphne's loop),
  the leases, the ``in:`` handler that feeds the mixer, and the fan-out's writes to sockets;
* the mixer thread (:class:`MixerRunner`) ticks every 20 ms and hands each result to the media
  loop with ``call_soon_threadsafe``.

The consumers call the plane's public methods on daphne's loop; each crosses to the media loop
(``run_coroutine_threadsafe``; no database call on the way). A speaker's frame is the one
thing daphne must read itself: :meth:`MediaPlane.speaker_frame` is one thread-safe enqueue,
never an await. Presence and its digests stay on daphne's loop (they use the channel layer);
digests cross to the fan-out like any other text. The plane's own database calls (a new
owner's publishers and audio mode, recording segments) run on Channels' database thread and
are awaited from the media loop, which takes ticks meanwhile. How a socket is written from
both threads without frames interleaving: :class:`spaces.live.fanout.SocketSink`.

Speaking indicators ride the same path: about 5 times a second the owner publishes a ``levels``
event (docs/protocol.md), and only when it differs from the last one, so a quiet room sends
nothing. Sent through the channel layer it would cost one message per listener.

Stream epochs: each time a socket starts publishing (it joins while its member may speak, or
the member is unmuted or brought on stage) the plane gives it a new stream epoch, a random
uint32, announced to the mixer with the ``P`` message and carried by each of its frames. The
mixer plays a new epoch as a new stream from its first frame and drops frames of an epoch it
has left behind (docs/audio.md). A socket that gives its member's stream up to a newer
connection of the same member ends its epoch with an ``E`` message (docs/protocol.md).

Bundle layout (``out`` channel), big-endian: ``B`` version (1), ``I`` sequence, ``I`` timestamp,
``H`` shared length, shared Opus packet, ``H`` count, then per talking speaker ``I`` user id,
``H`` length, mix-minus packet. A levels message is ``B`` 2 then the event's JSON; an uplink
report is ``B`` 3, ``I`` user id, then its ``uplink.quality`` JSON, for that speaker's sockets.
``in`` channel: ``b"F"`` + ``I`` user id + ``I`` epoch + a speaker's wire frame; ``b"P"`` +
``I`` user id + ``B`` publishing (0/1) + ``I`` epoch of the new stream (0 when not publishing);
``b"E"`` + ``I`` user id + ``I`` epoch (that stream ended); ``b"R"`` + ``I`` 0 + ``B``
recording (0/1); or ``b"A"`` + ``I`` 0 + ``B`` audio mode (index in ``AUDIO_MODE_CODES``).

Audio mode (speech or music, docs/audio.md): every process with members relays
``audio_mode.changed`` to the owner as an ``A`` message, and the owner's mixer encodes with
the mode's settings from its next tick; the database is not asked on the way. A process that
becomes owner reads the mode once (off the media path), unless an ``A`` message beat it.

Recording: while a space is recorded, its owner attaches a :class:`MixRecorder` to the room's
mixer, writing a segment file the ``segment_start`` service names. Every process with members
relays ``recording.changed`` to the owner as an ``R`` message, which pauses or resumes the
recorder; an owner that stops owning the room closes its segment (``segment_closed``), and a
new owner asks for a new one, so a move or a crash loses only what was not on disk yet.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import socket
import struct
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..audio import wire
from ..audio.codec import opus_settings_for
from ..audio.mixer import RoomMixer, TickResult
from ..audio.recorder import MixRecorder
from ..audio.runner import MixerRunner
from ..audio.uplink import UplinkReports
from .bus import LocalBus, RedisBus
from .fanout import AsyncSink, Fanout, fanout, sink_for
from .presence import AudiencePresence, Heartbeats

logger = logging.getLogger(__name__)

# Room-level DTX: once nobody has talked for this many ticks, send nothing until someone does.
# The mixer only sums talking speakers, so those packets would be silence; the tail lets
# listeners' decoders fade out instead of stopping mid-word. Clients play gaps as silence.
SILENT_TAIL_TICKS = 10

# Unchanged levels are sent again this often while someone talks (for members who just joined).
LEVELS_REFRESH_SECONDS = 1.0

LEASE_TTL_MS = 3000
LEASE_RENEW = 1.0
# A room with no local member keeps its subscriptions this long (a reconnecting client).
IDLE_ROOM_SECONDS = 5.0

_AUDIO_BUNDLE, _LEVELS, _UPLINK = 1, 2, 3
_BUNDLE_HEAD = struct.Struct(">BIIH")
_COUNT = struct.Struct(">H")
_MINUS_HEAD = struct.Struct(">IH")
_IN_HEAD = struct.Struct(">cI")
_EPOCH = struct.Struct(">I")
# The ``A`` message's byte: the index of the mode here.
AUDIO_MODE_CODES = ("speech", "music", "music_stereo")  # append only: processes may differ


def pack_bundle(result: TickResult) -> bytes:
    """One tick's output as one bus message (see the module docstring)."""
    parts = [
        _BUNDLE_HEAD.pack(_AUDIO_BUNDLE, result.tick % wire.UINT32_MODULO, result.timestamp,
                          len(result.shared_packet)),
        result.shared_packet,
        _COUNT.pack(len(result.mix_minus)),
    ]  # fmt: skip
    for user_id, packet in result.mix_minus.items():
        parts.append(_MINUS_HEAD.pack(int(user_id), len(packet)))
        parts.append(packet)
    return b"".join(parts)


def unpack_bundle(data: bytes) -> tuple[bytes, dict[int, bytes]]:
    """A bundle as ready-to-send wire messages: the shared one and one per talking speaker."""
    version, sequence, timestamp, shared_length = _BUNDLE_HEAD.unpack_from(data)
    if version != _AUDIO_BUNDLE:
        raise ValueError(f"unknown media bundle version {version}")
    offset = _BUNDLE_HEAD.size
    shared = data[offset : offset + shared_length]
    offset += shared_length
    (count,) = _COUNT.unpack_from(data, offset)
    offset += _COUNT.size
    minus: dict[int, bytes] = {}
    for _ in range(count):
        user_id, length = _MINUS_HEAD.unpack_from(data, offset)
        offset += _MINUS_HEAD.size
        minus[user_id] = wire.pack(
            wire.FrameKind.ROOM_MIX, sequence, timestamp, data[offset : offset + length]
        )
        offset += length
    return wire.pack(wire.FrameKind.ROOM_MIX, sequence, timestamp, shared), minus


@dataclass
class _Room:
    space_id: int
    local_members: int = 0
    owner: bool = False
    mixer: RoomMixer | None = None
    lease_task: asyncio.Task | None = None
    idle_since: float | None = None
    # Publishers this process has seen, so a new owner can be told who may speak.
    local_publishers: set[int] = field(default_factory=set)
    # Socket key -> (user id, epoch) of the stream that socket publishes (or last published).
    streams: dict[str, tuple[int, int]] = field(default_factory=dict)
    # Ticks since someone last talked (mixer thread only); starts silent: nothing to send.
    silent_ticks: int = SILENT_TAIL_TICKS
    # The last levels event sent and when (event loop only): unchanged ones are not sent
    # again, except once a second while someone talks, so members who join see the rings.
    last_levels: dict | None = None
    last_levels_at: float = 0.0
    # What each speaker was last told about their uplink (event loop only, owner).
    uplink_reports: UplinkReports = field(default_factory=UplinkReports)
    # Recording (event loop only). The owner's recorder, attached to ``mixer``; what the last
    # ``R`` message said (None: not told since this process became owner, so ask the
    # database); whether opening a segment failed and must be retried; and what this process
    # last told the owner, so each change is relayed once per process.
    recorder: MixRecorder | None = None
    recording_wanted: bool | None = None
    recording_retry: bool = False
    recording_announced: bool | None = None
    recording_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    # Audio mode (event loop only): what this process last relayed to the owner, and, on the
    # owner, whether an ``A`` message came since it took the room (then it is the newest).
    audio_mode_announced: str | None = None
    audio_mode_told: bool = False


class MediaLoop:
    """The media thread: an asyncio event loop of its own, on which the media plane runs."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="salon-media", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
            # Stopping: let every task (lease rounds, the bus's reader) end as asyncio.run does.
            tasks = asyncio.all_tasks(self.loop)
            for task in tasks:
                task.cancel()
            self.loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        finally:
            self.loop.close()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the loop and its thread; safe to call twice."""
        with contextlib.suppress(RuntimeError):  # already closed
            self.loop.call_soon_threadsafe(self.loop.stop)
        if self._thread is not threading.current_thread():
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()


class MediaPlane:
    """One per process. With a :class:`MediaLoop` it runs on the media thread, and its public
    methods may be called from the sockets' loop (they cross over); without one, everything
    runs on the loop that starts it (unit tests)."""

    def __init__(
        self,
        *,
        bus: LocalBus | RedisBus,
        runner: MixerRunner | None = None,
        fanout_registry: Fanout = fanout,
        publishers_loader: Callable[[int], set[int]] | None = None,
        presence: bool = False,
        heartbeat_seconds: float = 10.0,
        segment_start: Callable[..., Path | None] | None = None,
        segment_closed: Callable[..., None] | None = None,
        audio_mode_loader: Callable[[int], str] | None = None,
        media_loop: MediaLoop | None = None,
    ) -> None:
        self.bus = bus
        self.media_loop = media_loop
        self.fanout = fanout_registry
        self.runner = runner or MixerRunner(on_result=self._on_tick_result)
        # A runner passed in (tests, with a fake clock) is driven by its owner, not started here.
        self.start_runner = runner is None
        if runner is not None:
            runner.on_result = self._on_tick_result
        self.owner_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.publishers_loader = publishers_loader
        # Listener comings and goings, as digests to this process's sockets
        # (spaces/live/presence.py).
        self.presence = AudiencePresence(deliver_text=self._deliver_text) if presence else None
        self.heartbeats = Heartbeats(interval=heartbeat_seconds)
        # Recording, called with ``space_id=`` on a database thread: the file for a new segment
        # (None: the space is not recorded now), and "this process closed its segment".
        self.segment_start = segment_start
        self.segment_closed = segment_closed
        # Called with a space id on a database thread by a new owner: the space's audio mode.
        self.audio_mode_loader = audio_mode_loader
        self.rooms: dict[int, _Room] = {}
        self._tasks: set[asyncio.Task] = set()
        # The loop the rooms, the bus and the fan-out live on (the media thread's), and the
        # one the sockets, presence and heartbeats live on (daphne's). One loop without a
        # MediaLoop.
        self.loop: asyncio.AbstractEventLoop | None = media_loop.loop if media_loop else None
        self.main_loop: asyncio.AbstractEventLoop | None = None
        self.frames_in = 0
        # Counted by the consumers: frames refused (not on stage, muted) and malformed ones.
        self.frames_dropped = 0
        self.frames_invalid = 0
        self.ticks_published = 0
        self.ticks_silent = 0

    def stats(self) -> dict:
        """This process's audio counters (``/healthz`` shows them). Any thread: it only reads."""
        rooms = list(self.rooms.values())  # the media thread may add or remove one meanwhile
        sinks = [self.fanout.stats(room.space_id) for room in rooms]
        return {
            "rooms": len(rooms),
            "rooms_mixed_here": sum(1 for room in rooms if room.owner),
            "sockets": sum(s["members"] for s in sinks),
            "frames_in": self.frames_in,
            "frames_dropped": self.frames_dropped,
            "frames_invalid": self.frames_invalid,
            "ticks_published": self.ticks_published,
            "ticks_silent": self.ticks_silent,
            "frames_sent": sum(s["sent"] for s in sinks),
            "frames_shed": sum(s["dropped"] for s in sinks),
        }

    async def start(self) -> None:
        """Start on the sockets' loop (the media thread, if any, is already running)."""
        self.main_loop = asyncio.get_running_loop()
        if self.loop is None:
            self.loop = self.main_loop
        # The bus starts on the media loop: its Redis connections and subscriptions are its own.
        await self._on_media(self.bus.start())
        if self.presence is not None:
            await self.presence.start()

    async def stop(self) -> None:
        await self._on_media(self._stop_media())
        if self.presence is not None:
            await self.presence.stop()
        self.heartbeats.stop()
        if self.media_loop is not None:
            self.media_loop.stop()

    async def _stop_media(self) -> None:
        for room in list(self.rooms.values()):
            await self._close_room(room)
        # Recorders closing: their files must be finalized before the process goes.
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.runner.stop()
        await self.bus.stop()

    # --- crossing between the sockets' loop and the media loop --------------------------------

    async def _on_media(self, coroutine):
        """Run ``coroutine`` on the media loop and wait for it from the caller's loop."""
        if asyncio.get_running_loop() is self.loop:
            return await coroutine
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coroutine, self.loop))

    def _call_media(self, callback, *args) -> None:
        """Call ``callback`` on the media loop soon, without waiting (any thread)."""
        if self.media_loop is None:
            callback(*args)
            return
        with contextlib.suppress(RuntimeError):  # the media loop has stopped (shutting down)
            self.loop.call_soon_threadsafe(callback, *args)

    async def _on_main(self, coroutine) -> None:
        """From the media loop: run ``coroutine`` (presence, on the channel layer) on the
        sockets' loop. Not awaited across threads: calls made this way run in order."""
        if self.main_loop is None or self.main_loop is self.loop:
            await coroutine
            return
        try:
            future = asyncio.run_coroutine_threadsafe(coroutine, self.main_loop)
        except RuntimeError:  # that loop has closed
            coroutine.close()
            return
        future.add_done_callback(_log_failure)

    def _deliver_text(self, space_id: int, text: str) -> None:
        """Presence's digests (sockets' loop) to the room's sockets (media loop)."""
        self._call_media(self.fanout.deliver_text, space_id, text)

    # --- consumers (the sockets' loop) --------------------------------------------------------

    async def attach(
        self,
        space_id: int,
        key: str,
        send,
        *,
        user_id: int,
        publishing: bool,
        relayed: bool = False,
    ) -> int | None:
        """A socket joins the room's audio: it hears the mix from now on (and, ``relayed``,
        the room's events: spaces/live/relay.py). Returns the epoch of its stream if it
        publishes."""
        # The sink is made here, on the socket's loop: it takes the transport over there.
        sink = sink_for(send, media_loop=self.loop)
        return await self._on_media(
            self._attach(
                space_id, key, sink, user_id=user_id, publishing=publishing, relayed=relayed
            )
        )

    def deliver_relayed_text(self, space_id: int, text: str) -> None:
        """A room event (the relay, on the sockets' loop) to the room's lite sockets (media
        loop). Calls made this way are written in the order they were made."""
        self._call_media(self.fanout.deliver_relayed_text, space_id, text)

    async def flush_socket(self, space_id: int, key: str) -> None:
        """Return once every relayed event handed over so far is written to socket ``key``
        (or queued in its one writer): what the consumer writes or closes next comes after."""
        sink = await self._on_media(self._flush_room(space_id, key))
        inner = getattr(sink, "inner", sink)
        if isinstance(inner, AsyncSink):
            # Its sends crossed to this loop before this call returned: wait for them to go.
            await inner.drained()

    async def detach(self, space_id: int, key: str) -> None:
        await self._on_media(self._detach(space_id, key))

    def speaker_frame(self, space_id: int, key: str, frame: bytes) -> None:
        """A frame from socket ``key``, which the consumer has checked may publish (wire
        format, kind 1). It goes to the mixer stamped with the socket's stream epoch. Never
        waits: one thread-safe hand-off to the media loop."""
        self._call_media(self._speaker_frame, space_id, key, frame)

    async def set_publishing(
        self, space_id: int, key: str, *, user_id: int, publishing: bool
    ) -> int | None:
        """The member behind socket ``key`` may (no longer) publish: tell the room's mixer.
        Publishing starts a new stream from this socket: returns its epoch."""
        return await self._on_media(
            self._set_publishing(space_id, key, user_id=user_id, publishing=publishing)
        )

    async def end_stream(self, space_id: int, key: str) -> None:
        """Socket ``key`` gives its member's stream up (a newer connection of the member took
        it over): its frames stop here, and the mixer forgets its epoch. Unlike a mute, the
        member still may publish, from the other connection."""
        await self._on_media(self._end_stream(space_id, key))

    async def set_recording(self, space_id: int, recording: bool) -> None:
        """The space's recording was switched on or off: tell the room's owner (once per
        process and change: every member's socket here calls this)."""
        await self._on_media(self._set_recording(space_id, recording))

    async def set_audio_mode(self, space_id: int, audio_mode: str) -> None:
        """The space's audio mode changed: tell the room's owner (once per process and
        change: every member's socket here calls this)."""
        await self._on_media(self._set_audio_mode(space_id, audio_mode))

    async def end_room(self, space_id: int) -> None:
        """The space ended: stop mixing it here at once (its sockets, closing, detach)."""
        await self._on_media(self._end_room(space_id))

    # --- the same, on the media loop ----------------------------------------------------------

    async def _flush_room(self, space_id: int, key: str):
        return self.fanout.flush_room(space_id, key)

    async def _attach(
        self, space_id: int, key: str, sink, *, user_id: int, publishing: bool, relayed: bool
    ):
        room = self.rooms.get(space_id)
        if room is None:
            room = self.rooms[space_id] = _Room(space_id)
            await self.bus.subscribe(f"out:{space_id}", self._out_handler(space_id))
            room.lease_task = asyncio.get_running_loop().create_task(self._hold_lease(room))
            if self.presence is not None:
                await self._on_main(self.presence.watch(space_id))
        room.local_members += 1
        room.idle_since = None
        self.fanout.add_sink(
            space_id, key, sink, speaker_id=user_id if publishing else None, relayed=relayed
        )
        if publishing:
            return await self._set_publishing(space_id, key, user_id=user_id, publishing=True)
        return None

    async def _detach(self, space_id: int, key: str) -> None:
        room = self.rooms.get(space_id)
        self.fanout.remove(space_id, key)
        if room is None:
            return
        room.streams.pop(key, None)
        room.local_members -= 1
        if room.local_members <= 0:
            room.idle_since = time.monotonic()

    def _speaker_frame(self, space_id: int, key: str, frame: bytes) -> None:
        room = self.rooms.get(space_id)
        stream = room.streams.get(key) if room is not None else None
        if stream is None:
            return  # the socket stopped publishing meanwhile (e.g. it is closing)
        self.frames_in += 1
        user_id, epoch = stream
        self.bus.publish_nowait(
            f"in:{space_id}", _IN_HEAD.pack(b"F", user_id) + _EPOCH.pack(epoch) + frame
        )

    async def _set_publishing(
        self, space_id: int, key: str, *, user_id: int, publishing: bool
    ) -> int | None:
        room = self.rooms.get(space_id)
        epoch = None
        if room is not None:
            (room.local_publishers.add if publishing else room.local_publishers.discard)(user_id)
            # Not publishing, the socket keeps its last epoch: should a frame still come, the
            # mixer refuses it as from a speaker who may not publish.
            previous = room.streams.get(key)
            if publishing:
                epoch = new_stream_epoch(previous[1] if previous else None)
                room.streams[key] = (user_id, epoch)
        self.fanout.set_speaker(space_id, key, user_id if publishing else None)
        message = _IN_HEAD.pack(b"P", user_id) + bytes([1 if publishing else 0])
        await self.bus.publish(f"in:{space_id}", message + _EPOCH.pack(epoch or 0))
        return epoch

    async def _end_stream(self, space_id: int, key: str) -> None:
        room = self.rooms.get(space_id)
        stream = room.streams.pop(key, None) if room is not None else None
        if stream is None:
            return
        user_id, epoch = stream
        await self.bus.publish(f"in:{space_id}", _IN_HEAD.pack(b"E", user_id) + _EPOCH.pack(epoch))

    async def _set_recording(self, space_id: int, recording: bool) -> None:
        room = self.rooms.get(space_id)
        if room is None or room.recording_announced == recording:
            return
        room.recording_announced = recording
        message = _IN_HEAD.pack(b"R", 0) + bytes([1 if recording else 0])
        await self.bus.publish(f"in:{space_id}", message)

    async def _set_audio_mode(self, space_id: int, audio_mode: str) -> None:
        room = self.rooms.get(space_id)
        if room is None or room.audio_mode_announced == audio_mode:
            return
        room.audio_mode_announced = audio_mode
        message = _IN_HEAD.pack(b"A", 0) + bytes([AUDIO_MODE_CODES.index(audio_mode)])
        await self.bus.publish(f"in:{space_id}", message)

    async def _end_room(self, space_id: int) -> None:
        room = self.rooms.get(space_id)
        if room is not None:
            await self._close_room(room)

    # --- ownership ------------------------------------------------------------------------------

    async def _hold_lease(self, room: _Room) -> None:
        key = f"lease:{room.space_id}"
        while True:
            if room.idle_since is not None and (
                time.monotonic() - room.idle_since > IDLE_ROOM_SECONDS
            ):
                await self._close_room(room, from_lease_task=True)
                return
            try:
                holding = await self.bus.hold_lease(key, self.owner_id, LEASE_TTL_MS)
                if holding and not room.owner:
                    await self._become_owner(room)
                elif not holding and room.owner:
                    await self._stop_owning(room)
                elif room.owner and room.recording_retry:
                    self._spawn(self._sync_recording(room))
            except asyncio.CancelledError:
                raise
            except Exception:
                # E.g. the database was out of reach while taking over: try again next round.
                logger.exception("media: lease round of space %s failed", room.space_id)
            await asyncio.sleep(LEASE_RENEW)

    async def _become_owner(self, room: _Room) -> None:
        mixer = RoomMixer()
        publishers: set[int] = set()
        if self.publishers_loader is not None:
            from channels.db import database_sync_to_async

            publishers = await database_sync_to_async(self.publishers_loader)(room.space_id)
        for user_id in publishers | room.local_publishers:
            mixer.add_speaker(user_id, allowed=True)
        mixer.levels_observers.append(
            lambda event: self._hand_over(self._publish_levels, room, event)
        )
        room.mixer = mixer
        room.owner = True
        room.audio_mode_told = False
        await self.bus.subscribe(f"in:{room.space_id}", self._in_handler(room))
        # Read after subscribing: a change committed later arrives as an ``A`` message.
        self._spawn(self._load_audio_mode(room, mixer))
        self.runner.add_room(room.space_id, mixer)
        if self.start_runner and not self.runner.running:
            self.runner.start()
        logger.info("media: this process now mixes space %s", room.space_id)
        room.recording_wanted = None  # ask the database: it may have changed meanwhile
        self._spawn(self._sync_recording(room))

    async def _load_audio_mode(self, room: _Room, mixer: RoomMixer) -> None:
        if self.audio_mode_loader is None:
            return
        from channels.db import database_sync_to_async

        try:
            audio_mode = await database_sync_to_async(self.audio_mode_loader)(room.space_id)
        except Exception:
            # The room plays on in speech mode; the next change reaches it as an A message.
            logger.exception("media: could not read the audio mode of space %s", room.space_id)
            return
        if room.mixer is mixer and not room.audio_mode_told:
            mixer.set_opus(opus_settings_for(audio_mode))

    async def _stop_owning(self, room: _Room) -> None:
        self.runner.remove_room(room.space_id)
        await self.bus.unsubscribe(f"in:{room.space_id}")
        room.owner = False
        mixer, room.mixer = room.mixer, None
        recorder, room.recorder = room.recorder, None
        room.recording_wanted, room.recording_retry = None, False
        if recorder is not None:
            if mixer is not None:
                mixer.mix_observers.remove(recorder.on_mix)
                mixer.levels_observers.remove(recorder.on_levels)
            self._spawn(self._close_recorder(room.space_id, recorder))
        logger.info("media: this process no longer mixes space %s", room.space_id)

    # --- recording (owner) ----------------------------------------------------------------------

    def _spawn(self, coroutine) -> None:
        task = self.loop.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _sync_recording(self, room: _Room) -> None:
        """Make the owner's recorder follow the recording state: pause or resume it, or open a
        segment when the database says the space is recorded now."""
        if self.segment_start is None:
            return
        async with room.recording_lock:
            mixer = room.mixer
            if not room.owner or mixer is None:
                return
            if room.recorder is not None:
                self._apply_recording(room)
                return
            if room.recording_wanted is False:
                return
            from channels.db import database_sync_to_async

            room.recording_retry = False
            try:
                path = await database_sync_to_async(self.segment_start)(space_id=room.space_id)
                if path is None:
                    return
                # Opening writes the Ogg headers: off the event loop.
                recorder = await asyncio.to_thread(MixRecorder, path, channels=mixer.opus.channels)
            except Exception:
                room.recording_retry = True  # the next lease round tries again
                logger.exception("media: could not start recording space %s", room.space_id)
                return
            if room.mixer is not mixer:  # this process stopped owning the room meanwhile
                await self._close_recorder(room.space_id, recorder)
                return
            room.recorder = recorder
            self._apply_recording(room)
            mixer.mix_observers.append(recorder.on_mix)
            mixer.levels_observers.append(recorder.on_levels)
            logger.info("media: recording space %s to %s", room.space_id, path)

    @staticmethod
    def _apply_recording(room: _Room) -> None:
        if room.recording_wanted is True:
            room.recorder.resume()
        elif room.recording_wanted is False:
            room.recorder.pause()

    async def _close_recorder(self, space_id: int, recorder: MixRecorder) -> None:
        """Finalize a segment (off the event loop), then say so: if the space has ended, its
        replay is processed now."""
        try:
            await asyncio.to_thread(recorder.close)
        except Exception:
            logger.exception("media: closing the recording of space %s failed", space_id)
        if self.segment_closed is None:
            return
        from channels.db import database_sync_to_async

        try:
            await database_sync_to_async(self.segment_closed)(space_id=space_id)
        except Exception:
            logger.exception("media: could not report the recording of space %s", space_id)

    async def _close_room(self, room: _Room, *, from_lease_task: bool = False) -> None:
        self.rooms.pop(room.space_id, None)
        if room.lease_task is not None and not from_lease_task:
            room.lease_task.cancel()
        if room.owner:
            await self._stop_owning(room)
            await self.bus.release_lease(f"lease:{room.space_id}", self.owner_id)
        await self.bus.unsubscribe(f"out:{room.space_id}")
        if self.presence is not None:
            await self._on_main(self.presence.unwatch(room.space_id))

    # --- bus handlers (event loop) -----------------------------------------------------------

    def _in_handler(self, room: _Room) -> Callable[[bytes], None]:
        clock = self.runner.tick_clock.clock

        def handle(data: bytes) -> None:
            mixer = room.mixer
            if mixer is None or len(data) < _IN_HEAD.size + 1:
                return
            kind, user_id = _IN_HEAD.unpack_from(data)
            body = data[_IN_HEAD.size :]
            if kind == b"F":
                (epoch,) = _EPOCH.unpack_from(body)
                try:
                    frame = wire.unpack(body[_EPOCH.size :])
                except wire.WireError:
                    return  # consumers validate; a bad frame here is a bug, not an attack
                mixer.push(user_id, frame.sequence, frame.payload, clock.now(), epoch)
            elif kind == b"P":
                if body[0]:
                    mixer.add_speaker(user_id, allowed=True)
                    mixer.start_stream(user_id, _EPOCH.unpack_from(body, 1)[0])
                else:
                    mixer.set_allowed(user_id, False)
            elif kind == b"E":
                mixer.end_stream(user_id, _EPOCH.unpack_from(body)[0])
            elif kind == b"A":
                if body[0] < len(AUDIO_MODE_CODES):
                    room.audio_mode_told = True
                    mixer.set_opus(opus_settings_for(AUDIO_MODE_CODES[body[0]]))
            elif kind == b"R":
                room.recording_wanted = bool(body[0])
                if room.recorder is not None:
                    self._apply_recording(room)  # at once: from the next tick
                else:
                    self._spawn(self._sync_recording(room))

        return handle

    def _out_handler(self, space_id: int) -> Callable[[bytes], None]:
        def handle(data: bytes) -> None:
            if data[:1] == bytes([_LEVELS]):
                self.fanout.deliver_text(space_id, data[1:].decode())
                return
            if data[:1] == bytes([_UPLINK]):
                (user_id,) = _EPOCH.unpack_from(data, 1)
                text = data[1 + _EPOCH.size :].decode()
                self.fanout.deliver_text_to_speaker(space_id, user_id, text)
                return
            shared, minus = unpack_bundle(data)
            self.fanout.deliver(space_id, shared, minus)

        return handle

    def _publish_levels(self, room: _Room, event) -> None:
        """Event loop, owner only: send a levels event if it says something new."""
        levels = levels_event_json(event)
        now = time.monotonic()
        if levels == room.last_levels:
            anyone_talking = any(s["talking"] for s in levels["speakers"].values())
            if not anyone_talking or now - room.last_levels_at < LEVELS_REFRESH_SECONDS:
                return
        room.last_levels, room.last_levels_at = levels, now
        message = bytes([_LEVELS]) + json.dumps(levels, separators=(",", ":")).encode()
        self.bus.publish_nowait(f"out:{room.space_id}", message)

    def _publish_uplink(self, room: _Room, uplink: dict) -> None:
        """Event loop, owner only: tell speakers whose uplink loss changed bucket."""
        now = time.monotonic()
        for user_id, quality in uplink.items():
            event = room.uplink_reports.update(
                user_id,
                epoch=quality.epoch,
                loss_percent=quality.loss_percent,
                jitter_ms=quality.jitter_ms,
                now=now,
            )
            if event is not None:
                body = json.dumps(event, separators=(",", ":")).encode()
                message = bytes([_UPLINK]) + _EPOCH.pack(int(user_id)) + body
                self.bus.publish_nowait(f"out:{room.space_id}", message)

    def _hand_over(self, callback, *args) -> None:
        """Mixer thread: run ``callback`` on the media loop. Once that loop has closed (the
        process or the test is ending) the mixer is about to stop: the tick goes nowhere."""
        loop = self.loop
        if loop is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # closed between the check and the call
            loop.call_soon_threadsafe(callback, *args)

    def _on_tick_result(self, space_id, result: TickResult) -> None:
        """Mixer thread: hand the tick to the media loop at once; no I/O here."""
        room = self.rooms.get(space_id)
        if room is not None and result.uplink:
            self._hand_over(self._publish_uplink, room, result.uplink)
        if room is not None:
            room.silent_ticks = 0 if result.talking else room.silent_ticks + 1
            if room.silent_ticks > SILENT_TAIL_TICKS:
                self.ticks_silent += 1
                return
        bundle = pack_bundle(result)
        self._hand_over(self.bus.publish_nowait, f"out:{space_id}", bundle)
        self.ticks_published += 1


def new_stream_epoch(previous: int | None = None) -> int:
    """A stream epoch: random, so processes need not agree on a counter, and never the
    socket's previous one (the mixer would take the new stream for the old)."""
    while True:
        epoch = secrets.randbits(32)
        if epoch != previous:
            return epoch


def _log_failure(future) -> None:
    if not future.cancelled() and future.exception() is not None:
        logger.error("media: a call on the sockets' loop failed", exc_info=future.exception())


def make_bus(redis_url: str | None) -> LocalBus | RedisBus:
    return RedisBus(redis_url) if redis_url else LocalBus()


def levels_event_json(event) -> dict:
    """A mixer's levels event as the ``levels`` control event (docs/protocol.md).

    Levels are rounded to 0.05 so that a steady voice does not make every event "new".
    """
    return {
        "type": "levels",
        "speakers": {
            str(user_id): {"level": round(level.meter * 20) / 20, "talking": level.talking}
            for user_id, level in event.levels.items()
        },
    }


_plane: MediaPlane | None = None
_plane_started: asyncio.Future | None = None


async def get_media_plane() -> MediaPlane:
    """This process's media plane, started on first use on the serving event loop."""
    global _plane, _plane_started
    if _plane is not None and _plane.main_loop is not asyncio.get_running_loop():
        # Its loop is gone (tests run each on a new loop): stop its thread, start afresh.
        discard_media_plane()
    if _plane is None:
        from django.conf import settings

        from ..selectors import space_audio_mode, space_publisher_ids
        from ..services import replay_segment_closed, replay_segment_start

        fanout.bundle_from = settings.SALON_AUDIO_BUNDLE_FROM
        _plane = MediaPlane(
            bus=make_bus(settings.REDIS_URL or None),
            publishers_loader=space_publisher_ids,
            presence=True,
            heartbeat_seconds=settings.SALON_SPACE_HEARTBEAT_SECONDS,
            segment_start=replay_segment_start,
            segment_closed=replay_segment_closed,
            audio_mode_loader=space_audio_mode,
            media_loop=MediaLoop(),
        )
        _plane.main_loop = asyncio.get_running_loop()
        # Sockets that connect while it starts wait for the same start, not a second plane.
        _plane_started = asyncio.ensure_future(_plane.start())
    await asyncio.shield(_plane_started)
    return _plane


def current_media_plane() -> MediaPlane | None:
    """This process's media plane if a socket started one, without starting it."""
    return _plane


def discard_media_plane() -> None:
    """Forget this process's plane and stop its media and mixer threads (its sockets' event
    loop has ended, or the process is stopping)."""
    global _plane
    plane, _plane = _plane, None
    if plane is not None:
        # The media loop first: it may be taking a room (and starting the runner) right now.
        if plane.media_loop is not None:
            plane.media_loop.stop()
        plane.runner.stop()
        plane.heartbeats.stop()
        for room in list(plane.rooms.values()):
            if room.recorder is not None:
                room.recorder.close()  # the file stays playable; no replay is processed
