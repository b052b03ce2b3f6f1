"""An asyncio client for a live space: what tests, bots and load tests use to talk and listen.

It speaks the same two protocols as the browser: the JSON control channel of
``/ws/spaces/<id>/`` (docs/protocol.md) and the binary Opus frames (docs/audio.md).

::

    client = await SpaceClient.login("http://127.0.0.1:8000", "alice", "secret")
    snapshot = await client.connect(space_id)         # ClientClosed(4403, ...) if refused
    await client.send_command("hand.raise")
    await client.next_event("role.changed", user_id=client.user_id)
    await client.send_command("mute.set", muted=False)
    await client.stream_wav("tone.wav", seconds=10)   # real time, paced on 20 ms deadlines
    client.record_to("heard.wav")                     # what the room mix sounded like here
    await client.close()

Design points:

* **Receiving.** Room-mix frames (kind 2) go to a :class:`MixReceiver`, which orders them by
  sequence number, waits ``reorder_frames`` for a missing one, then conceals it with Opus PLC.
  The server sends nothing while nobody in the room talks (room-level DTX,
  ``spaces/live/media.py``), so a gap longer than ``conceal_limit`` frames is a pause and is
  filled with silence rather than concealed: the recording keeps the room's timeline.
* **Sending.** :meth:`SpaceClient.stream_wav` decodes any audio file PyAV reads, resamples it to
  48 kHz mono s16, cuts 960-sample frames and sends one every 20 ms on absolute deadlines
  (frame *n* is due at ``start + n × 20 ms``), so sleep overshoot never accumulates. When the
  sender falls behind (the loop was blocked), it sends at most ``max_catch_up`` frames back to
  back, then re-anchors the schedule instead of bursting the backlog at the server (whose
  per-socket frame rate limit closes a flooding speaker with 1008).
* **Closing.** Every way the server ends the socket for good surfaces as :class:`ClientClosed`
  with the close code and reason (4000 left, 4001 removed, 4403 forbidden, 4410 ended, ...).
* **Reconnecting.** A socket that ends without anyone meaning it to (a network drop, a server
  restart: ``RECONNECT_CLOSE_CODES``, docs/protocol.md "Reconnecting") is opened again after a
  random back-off, as the browser does; the member rejoins (the snapshot says in which role),
  resumes speaking if it was unmuted on stage, and audio frames due meanwhile are dropped, as
  a microphone's would be. The server starts a new stream epoch for the new socket, so the
  first frame after the reconnect is mixed at once.
* **Audio mode.** The uplink encodes with the space's audio mode's settings
  (``spaces.audio.codec.AUDIO_MODES``): the snapshot says which, ``audio_mode.changed``
  switches it from the next frame. ``opus_settings`` overrides both (benches, tests).
* **Loss.** When the server reports loss on this member's uplink (``uplink.quality``), the
  encoder is re-created with in-band FEC on, expecting that loss (at least 1 %), so the
  server can rebuild a lost frame from the next packet; at 0 % it goes off again.

No Django import: the module runs in processes that have no settings (the load bench).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import re
import secrets
import time
import urllib.error
import urllib.parse
import urllib.request
import wave
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import av
import numpy as np
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as websocket_connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from spaces.audio import wire
from spaces.audio.codec import (
    FRAME_SAMPLES,
    FRAME_SECONDS,
    SAMPLE_RATE,
    CodecError,
    OpusDecoder,
    OpusEncoder,
    OpusSettings,
    opus_settings_for,
)
from spaces.audio.levels import frame_level_dbfs
from spaces.protocol import COMMANDS

logger = logging.getLogger(__name__)

STAGE_ROLES = ("host", "cohost", "speaker")
# The same threshold the mixer's talk detector uses; our flag is advisory anyway.
VOICE_ACTIVITY_DBFS = -45.0
# Close codes that end a socket without anything having gone wrong for the client.
NORMAL_CLOSE_CODES = (1000, 4000)
# Close codes after which the client reconnects (docs/protocol.md, "Reconnecting"): the
# network or the server failed, or the server lost track of the member. Every other close
# was meant (left, removed, banned, forbidden, ended, flooding) and ends the session.
RECONNECT_CLOSE_CODES = frozenset({1001, 1006, 1011, 1012, 1013, 1014, 4408, 4411})
RECONNECT_FIRST = 0.5  # seconds; doubles per failed attempt
RECONNECT_MAX = 15.0
_UINT32 = wire.UINT32_MODULO
_HALF_UINT32 = _UINT32 // 2


class ClientError(Exception):
    """The client could not do what it was asked (network, refused handshake, bad input)."""


class LoginFailed(ClientError):
    """The token endpoint refused the credentials (``status`` 400/403) or was unreachable."""

    def __init__(self, status: int | None, detail: str) -> None:
        super().__init__(f"login failed ({status}): {detail}" if status else detail)
        self.status = status
        self.detail = detail


class ClientClosed(ClientError):
    """The websocket is closed; ``code`` and ``reason`` are the server's (docs/protocol.md)."""

    def __init__(self, code: int | None, reason: str = "") -> None:
        self.code = code if code is not None else 1006
        self.reason = reason
        super().__init__(f"socket closed with {self.code}" + (f": {reason}" if reason else ""))

    @property
    def normal(self) -> bool:
        """A close the client asked for (its own close, or leaving the space)."""
        return self.code in NORMAL_CLOSE_CODES


# --- logging in ----------------------------------------------------------------------------------


def fetch_token(base_url: str, login: str, password: str, *, timeout: float = 10.0) -> str:
    """Exchange a username (or email) and password for the member's API token (blocking)."""
    url = _http_url(base_url) + "/api/v1/auth/token/"
    body = json.dumps({"login": login, "password": password}).encode()
    request = urllib.request.Request(  # noqa: S310 - the scheme is checked in _http_url
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "Accept": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return json.loads(response.read())["token"]
    except urllib.error.HTTPError as error:
        raise LoginFailed(error.code, _error_detail(error)) from None
    except (urllib.error.URLError, OSError) as error:
        raise LoginFailed(None, f"cannot reach {url}: {error}") from None


def fetch_join_ticket(base_url: str, token: str, space_id: int, *, timeout: float = 10.0) -> str:
    """A join ticket for the space (docs/protocol.md, "Join tickets"), blocking: the socket
    then joins without a database query on the server."""
    url = _http_url(base_url) + f"/api/v1/spaces/{int(space_id)}/ticket/"
    request = urllib.request.Request(  # noqa: S310 - the scheme is checked in _http_url
        url,
        data=b"",
        method="POST",
        headers={"Authorization": f"Token {token}", "Accept": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return json.loads(response.read())["ticket"]
    except urllib.error.HTTPError as error:
        raise LoginFailed(error.code, _error_detail(error)) from None
    except (urllib.error.URLError, OSError, ValueError, KeyError) as error:
        raise LoginFailed(None, f"cannot get a join ticket from {url}: {error}") from None


_RETRY_AFTER = re.compile(r"retry after (\d+) s")


def retry_after_seconds(code: int | None, reason: str) -> float | None:
    """The wait a 1013 close asks for ("retry after N s": the server's join line is full)."""
    match = _RETRY_AFTER.search(reason or "") if code == 1013 else None
    return float(match.group(1)) if match else None


def _error_detail(error: urllib.error.HTTPError) -> str:
    try:
        data = json.loads(error.read())
    except ValueError:
        return error.reason or "refused"
    if isinstance(data, dict):
        return str(data.get("detail") or data)
    return str(data)


def _http_url(base_url: str) -> str:
    parts = urllib.parse.urlsplit(base_url)
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"the server URL must be http:// or https://, got {base_url!r}")
    return base_url.rstrip("/")


def space_socket_url(base_url: str, space_id: int) -> str:
    """``http://host:port`` → ``ws://host:port/ws/spaces/<id>/`` (https → wss)."""
    parts = urllib.parse.urlsplit(base_url)
    scheme = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}.get(parts.scheme)
    if scheme is None:
        raise ValueError(f"the server URL must be http(s):// or ws(s)://, got {base_url!r}")
    path = parts.path.rstrip("/") + f"/ws/spaces/{int(space_id)}/"
    return urllib.parse.urlunsplit((scheme, parts.netloc, path, "", ""))


# --- reading audio files -------------------------------------------------------------------------


def audio_frames(path: str | Path, *, loop: bool = False) -> Iterator[np.ndarray]:
    """960-sample int16 frames of any file PyAV decodes, resampled to 48 kHz mono.

    The file is decoded as it is consumed (an hour-long file is never held in memory). With
    ``loop`` it starts over at the end, seamlessly: the remainder of one pass continues into
    the next. The very last frame is padded with silence.
    """
    pending = np.empty(0, dtype=np.int16)
    while True:
        produced = False
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise ClientError(f"{path}: no audio stream")
            stream = container.streams.audio[0]
            resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
            for decoded in container.decode(stream):
                for chunk in resampler.resample(decoded):
                    pending = np.concatenate((pending, chunk.to_ndarray().reshape(-1)))
                    while len(pending) >= FRAME_SAMPLES:
                        produced = True
                        yield pending[:FRAME_SAMPLES]
                        pending = pending[FRAME_SAMPLES:]
            for chunk in resampler.resample(None):
                pending = np.concatenate((pending, chunk.to_ndarray().reshape(-1)))
            while len(pending) >= FRAME_SAMPLES:
                produced = True
                yield pending[:FRAME_SAMPLES]
                pending = pending[FRAME_SAMPLES:]
        # A file shorter than one frame would otherwise loop forever without yielding.
        if not loop or not (produced or len(pending)):
            break
    if len(pending):
        yield np.concatenate((pending, np.zeros(FRAME_SAMPLES - len(pending), dtype=np.int16)))


def write_wav(path: str | Path, pcm: np.ndarray) -> None:
    """Write 48 kHz mono int16 samples as a WAV file."""
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(np.ascontiguousarray(pcm, dtype="<i2").tobytes())


# --- receiving the room mix ----------------------------------------------------------------------


@dataclass
class ReceiverStats:
    frames: int = 0  # room-mix frames received, including late ones and duplicates
    bytes: int = 0  # their size on the wire (header included)
    played: int = 0  # frames that took their place in the timeline
    concealed: int = 0  # missing frames replaced by the decoder's PLC (a short gap)
    paused: int = 0  # missing frames replaced by silence (a long gap: nobody was talking)
    pauses: int = 0  # how many such long gaps
    late: int = 0  # arrived after their slot was concealed (dropped)
    duplicates: int = 0  # received twice (dropped)
    corrupt: int = 0  # undecodable payloads (concealed in place)
    invalid: int = 0  # binary messages that are not room-mix frames
    restarts: int = 0  # the numbering started over (another server process took the room)


class MixReceiver:
    """Puts room-mix frames back in sequence order and turns them into a PCM timeline.

    * A missing frame is waited for until a frame ``reorder_frames`` later has arrived, then
      given up: up to ``conceal_limit`` consecutive missing frames are concealed with Opus PLC,
      a longer gap is a pause (the server sends nothing while the room is silent) and becomes
      silence. Gaps longer than ``max_pause_frames`` are not filled; the stream restarts there.
    * A frame older than the playout point is late (its slot was concealed) or a duplicate
      (it was played); both are dropped and counted.
    * A backward jump of more than ``restart_frames`` is a new numbering (the room moved to
      another server process): what is buffered is played out and playout restarts.
    * ``decode=False`` only counts (no Opus work, no PCM): for cheap listeners.
    """

    def __init__(
        self,
        *,
        decode: bool = True,
        reorder_frames: int = 3,
        conceal_limit: int = 5,
        max_pause_frames: int = 60 * 50,
        restart_frames: int = 500,
    ) -> None:
        self.decode = decode
        self.reorder_frames = reorder_frames
        self.conceal_limit = conceal_limit
        self.max_pause_frames = max_pause_frames
        self.restart_frames = restart_frames
        self.stats = ReceiverStats()
        self._decoder = OpusDecoder() if decode else None
        self._chunks: list[np.ndarray] = []
        self._samples = 0
        # Unwrapped sequence numbers: the next one to play, and the highest seen.
        self._next: int | None = None
        self._highest = 0
        self._pending: dict[int, bytes] = {}
        # Playout starts once the first frame has had ``reorder_frames`` to be overtaken.
        self._started = False
        self._recently_played: deque[int] = deque(maxlen=128)

    def push(self, frame: wire.AudioFrame) -> None:
        """One room-mix frame as it arrived; plays out whatever is now in order."""
        if frame.kind != wire.FrameKind.ROOM_MIX:
            self.stats.invalid += 1
            return
        self.stats.frames += 1
        self.stats.bytes += wire.HEADER_BYTES + len(frame.payload)
        if self._next is None:
            self._next = self._highest = frame.sequence
        sequence = self._unwrap(frame.sequence)
        if sequence < self._next - self.restart_frames or (
            sequence - self._next > self.max_pause_frames
        ):
            self.flush()
            self._started = False
            self.stats.restarts += 1
            if self._decoder is not None:
                self._decoder.reset()
            self._next = self._highest = sequence
        elif sequence < self._next and not self._started:
            self._next = sequence  # the stream's first frames arrived out of order
        elif sequence < self._next:
            if sequence in self._recently_played:
                self.stats.duplicates += 1
            else:
                self.stats.late += 1
            return
        elif sequence in self._pending:
            self.stats.duplicates += 1
            return
        self._pending[sequence] = frame.payload
        self._highest = max(self._highest, sequence)
        self._play_ready(flushing=False)

    def flush(self) -> None:
        """Play out everything buffered, filling the holes (the stream ended)."""
        self._play_ready(flushing=True)

    def pcm(self) -> np.ndarray:
        """The timeline so far: 48 kHz mono int16 (empty when not decoding)."""
        if len(self._chunks) > 1:
            self._chunks = [np.concatenate(self._chunks)]
        return self._chunks[0] if self._chunks else np.zeros(0, dtype=np.int16)

    @property
    def seconds(self) -> float:
        return self._samples / SAMPLE_RATE

    def _unwrap(self, sequence: int) -> int:
        # The nearest unwrapped value to the highest seen, so the uint32 wrap is invisible.
        delta = (sequence - self._highest + _HALF_UINT32) % _UINT32 - _HALF_UINT32
        return self._highest + delta

    def _play_ready(self, *, flushing: bool) -> None:
        pending = self._pending
        if not self._started:
            if not flushing and self._highest - self._next < self.reorder_frames:
                return
            self._started = bool(pending)
        while pending:
            if self._next in pending:
                self._play(pending.pop(self._next))
                self._recently_played.append(self._next)
                self._next += 1
                continue
            if not flushing and self._highest - self._next < self.reorder_frames:
                return  # give the missing frame a little longer
            first = min(pending)
            self._fill(first - self._next)
            self._next = first

    def _play(self, payload: bytes) -> None:
        self.stats.played += 1
        if self._decoder is None:
            return
        try:
            pcm = self._decoder.decode(payload)
        except CodecError:
            self.stats.corrupt += 1
            pcm = self._decoder.conceal()
        self._append(pcm)

    def _fill(self, missing: int) -> None:
        if missing <= self.conceal_limit:
            self.stats.concealed += missing
            if self._decoder is not None:
                for _ in range(missing):
                    self._append(self._decoder.conceal())
            return
        self.stats.paused += missing
        self.stats.pauses += 1
        if self._decoder is not None:
            self._append(np.zeros(missing * FRAME_SAMPLES, dtype=np.int16))

    def _append(self, pcm: np.ndarray) -> None:
        # The decoder hands out views on its frames' buffers: keep a copy of our own.
        self._chunks.append(np.array(pcm, dtype=np.int16))
        self._samples += len(pcm)


# --- sending audio -------------------------------------------------------------------------------


class PacingClock(Protocol):
    def now(self) -> float:
        """Monotonic seconds."""
        ...

    async def sleep_until(self, deadline: float) -> None: ...


class MonotonicPacingClock:
    def now(self) -> float:
        return time.monotonic()

    async def sleep_until(self, deadline: float) -> None:
        delay = deadline - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)


class Pacer:
    """Releases one frame per ``interval`` on absolute deadlines (no drift).

    Frame *n* is due at ``start + n × interval``. A sender up to ``max_catch_up`` intervals
    late sends at once (a short burst evens out a hiccup); further behind, the backlog is not
    sent in a burst: the schedule re-anchors on now and the stall is counted.
    """

    def __init__(
        self,
        clock: PacingClock | None = None,
        *,
        interval: float = FRAME_SECONDS,
        max_catch_up: int = 2,
    ) -> None:
        self.clock = clock or MonotonicPacingClock()
        self.interval = interval
        self.max_catch_up = max_catch_up
        self.start: float | None = None
        self.index = 0  # frames released since start (or since the last re-anchor)
        self.stalls = 0
        self.max_lateness = 0.0

    async def wait(self) -> float:
        """Wait until the next frame is due; returns how late it is released (seconds)."""
        now = self.clock.now()
        if self.start is None:
            self.start = now
        deadline = self.start + self.index * self.interval
        lateness = 0.0
        if now < deadline:
            await self.clock.sleep_until(deadline)
        else:
            lateness = now - deadline
            self.max_lateness = max(self.max_lateness, lateness)
            if lateness > self.max_catch_up * self.interval:
                self.stalls += 1
                self.start = now
                self.index = 0
        self.index += 1
        return lateness


@dataclass
class StreamStats:
    frames: int = 0  # speaker frames sent
    bytes: int = 0  # their size on the wire
    voiced: int = 0  # frames flagged as voice activity
    stalls: int = 0  # times the sender fell too far behind and re-anchored its schedule
    offline: int = 0  # frames that fell due while the client was reconnecting (not sent)
    max_lateness: float = 0.0  # the latest a frame left after its deadline (seconds)


class AudioStreamer:
    """Encodes frames and sends them as speaker frames, paced in real time.

    One per client: the Opus encoder and the sequence numbers continue from one stream to the
    next, so the server's jitter buffer sees a speaker who paused, not one who restarted.
    """

    def __init__(
        self,
        *,
        clock: PacingClock | None = None,
        settings: OpusSettings | None = None,
        max_catch_up: int = 2,
    ) -> None:
        self.clock = clock or MonotonicPacingClock()
        self.settings = settings or OpusSettings()
        self.max_catch_up = max_catch_up
        self.sequence = 0
        self.stats = StreamStats()
        self._encoder: OpusEncoder | None = None
        self.expected_loss_percent = 0  # what the server last reported (uplink.quality)

    async def stream(
        self,
        frames: Iterator[np.ndarray],
        send: Callable[[bytes], Awaitable[None]],
        *,
        seconds: float | None = None,
    ) -> StreamStats:
        """Send ``frames`` (960 int16 samples each) through ``send``, one per 20 ms."""
        if seconds is not None:
            frames = itertools.islice(frames, round(seconds / FRAME_SECONDS))
        pacer = Pacer(self.clock, max_catch_up=self.max_catch_up)
        for pcm in frames:
            if self._encoder is None:  # the first frame, a new connection, a loss report
                self._encoder = OpusEncoder(self._encoder_settings())
            # Encode before waiting, so the frame leaves right on its deadline.
            voiced = frame_level_dbfs(pcm) >= VOICE_ACTIVITY_DBFS
            message = wire.pack(
                wire.FrameKind.SPEAKER_AUDIO,
                self.sequence,
                self.sequence * FRAME_SAMPLES,
                self._encoder.encode(pcm),
                voice_activity=voiced,
            )
            await pacer.wait()
            sent = await send(message)
            self.sequence += 1
            if sent is False:
                self.stats.offline += 1
                continue
            self.stats.frames += 1
            self.stats.bytes += len(message)
            self.stats.voiced += voiced
        self.stats.stalls += pacer.stalls
        self.stats.max_lateness = max(self.stats.max_lateness, pacer.max_lateness)
        return self.stats

    def set_settings(self, settings: OpusSettings) -> None:
        """Encode with ``settings`` from the next frame on (the space's audio mode changed).
        The stream goes on: Opus packets say how they were coded, the server decoder follows."""
        if settings != self.settings:
            self.settings = settings
            self._encoder = None

    def new_connection(self) -> None:
        """The socket was replaced: the server decodes the next frames as a new stream, with
        a fresh decoder, so they come from a fresh encoder too. The new stream's loss is
        unknown yet: FEC waits for the server's next report."""
        self._encoder = None
        self.expected_loss_percent = 0

    def expect_loss(self, loss_percent: int) -> None:
        """The server measured ``loss_percent`` on the uplink: from the next frame, encode with
        in-band FEC for that loss (off at 0). PyAV cannot reconfigure an open encoder, so it is
        re-created; the server's decoder takes the new encoder's packets in its stride."""
        loss_percent = max(0, min(100, loss_percent))
        if (loss_percent > 0) != (self.expected_loss_percent > 0) or (
            loss_percent and loss_percent != self.expected_loss_percent
        ):
            self._encoder = None
        self.expected_loss_percent = loss_percent

    def _encoder_settings(self) -> OpusSettings:
        return (self.settings or OpusSettings()).expecting_loss(self.expected_loss_percent)


# --- the client ----------------------------------------------------------------------------------

_CLOSED = object()  # wakes up whoever waits on the event queue when the socket closes


class SpaceClient:
    """One member's socket in one space: events in, commands and audio out, the mix recorded.

    ``events`` is an ``asyncio.Queue`` of every JSON event after the snapshot (bounded: the
    oldest are dropped, and counted, when nobody reads them). :meth:`next_event` reads it.
    ``keep_audio=False`` counts mix frames without decoding them (no recording).
    ``reconnect``: open the socket again after a drop (see the module docstring);
    ``use_tickets``: join with a join ticket asked for with the token (docs/protocol.md);
    ``on_connection_change`` is called with a line for humans when it drops and comes back.
    """

    def __init__(
        self,
        base_url: str,
        *,
        token: str,
        keep_audio: bool = True,
        clock: PacingClock | None = None,
        opus_settings: OpusSettings | None = None,
        max_events: int = 1000,
        reconnect: bool = True,
        on_connection_change: Callable[[str], None] | None = None,
        use_tickets: bool = True,
    ) -> None:
        self.base_url = base_url
        self.token = token
        # Each socket joins with a fresh join ticket (the server's fast path), else the token.
        self.use_tickets = use_tickets
        self.receiver = MixReceiver(decode=keep_audio)
        self.streamer = AudioStreamer(clock=clock, settings=opus_settings)
        # Set: the uplink keeps these settings whatever the space's audio mode.
        self._fixed_opus = opus_settings is not None
        self.audio_mode: str | None = None
        self.events: asyncio.Queue[Any] = asyncio.Queue(maxsize=max_events)
        self.events_received = 0
        self.events_dropped = 0
        self.space_id: int | None = None
        self.snapshot: dict | None = None
        self.user_id: int | None = None
        # This member's state as the server last told it (snapshot, then their own events).
        self.role: str | None = None
        self.is_muted = True
        self.closed: ClientClosed | None = None
        self.reconnect = reconnect
        self.reconnects = 0
        self.on_connection_change = on_connection_change or (lambda line: None)
        # After stream.superseded: a newer connection of this member speaks for it, this one
        # only listens (docs/protocol.md, "One member, two connections").
        self.superseded = False
        self._closing = False
        self._connected = asyncio.Event()
        self._socket: ClientConnection | None = None
        self._reader: asyncio.Task | None = None
        self._snapshots = 0
        self._publishing = asyncio.Event()
        self._on_stage = asyncio.Event()
        self._closed_event = asyncio.Event()

    @classmethod
    async def login(cls, base_url: str, username: str, password: str, **kwargs) -> SpaceClient:
        """A client holding the member's API token (``POST /api/v1/auth/token/``)."""
        token = await asyncio.to_thread(fetch_token, base_url, username, password)
        return cls(base_url, token=token, **kwargs)

    async def __aenter__(self) -> SpaceClient:
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.close()

    # --- connection ----------------------------------------------------------------------------

    async def connect(self, space_id: int, *, timeout: float = 10.0) -> dict:
        """Open the space's socket and wait for the snapshot, which is returned.

        Raises ``ClientClosed`` when the server refuses the member (it accepts the handshake,
        then closes with a code: 4401, 4403, 4404, 4409, 4410) and ``ClientError`` when the
        server cannot be reached or refuses the handshake itself.
        """
        if self._socket is not None:
            raise ClientError("already connected; use one client per socket")
        self.space_id = space_id
        try:
            self._socket = await self._open(timeout)
        except ClientClosed as closed:
            self._mark_closed(closed)
            raise
        self._connected.set()
        self._reader = asyncio.create_task(self._run(), name=f"space-{space_id}-reader")
        return self.snapshot

    async def _open(self, timeout: float) -> ClientConnection:
        """A new socket to the space, once its snapshot has been routed."""
        url = space_socket_url(self.base_url, self.space_id)
        headers = {"Authorization": f"Token {self.token}"}
        if self.use_tickets:
            try:
                ticket = await asyncio.to_thread(
                    fetch_join_ticket, self.base_url, self.token, self.space_id, timeout=timeout
                )
            except LoginFailed as error:
                # The token still joins (the slow path); the socket says why if it cannot.
                logger.info("no join ticket (%s); joining with the token", error)
            else:
                url += "?" + urllib.parse.urlencode({"ticket": ticket})
        try:
            socket = await websocket_connect(
                url,
                additional_headers=headers,
                open_timeout=timeout,
                # Frames are ~100 bytes: compression would cost CPU on both ends for nothing.
                compression=None,
                max_size=1 << 20,
                # A dead network shows as pings left unanswered: reconnect within ~10 s.
                ping_interval=5.0,
                ping_timeout=5.0,
            )
        except (OSError, InvalidHandshake, TimeoutError) as error:
            raise ClientError(f"cannot open {url}: {error}") from error
        snapshots = self._snapshots
        try:
            async with asyncio.timeout(timeout):
                while self._snapshots == snapshots:
                    self._route(await socket.recv())
        except ConnectionClosed:
            raise ClientClosed(socket.close_code, socket.close_reason or "") from None
        except TimeoutError:
            await socket.close()
            raise ClientError(f"no snapshot from {url} within {timeout} s") from None
        return socket

    async def _run(self) -> None:
        """Read the socket; when it drops, open another (if reconnecting) and read that."""
        while True:
            socket = self._socket
            await self._read(socket)
            self._connected.clear()
            code = socket.close_code if socket.close_code is not None else 1006
            if self._closing or not self.reconnect or code not in RECONNECT_CLOSE_CODES:
                self._mark_closed()
                return
            speaking = self.publishing
            self._publishing.clear()
            reason = f": {socket.close_reason}" if socket.close_reason else ""
            self.on_connection_change(f"connection lost ({code}{reason}); reconnecting")
            if not await self._reopen():
                return
            self.streamer.new_connection()
            self._connected.set()
            self.on_connection_change(f"reconnected as {self.role}")
            you = self.snapshot["you"]
            if speaking and self.on_stage and self.is_muted and not you.get("muted_by_moderator"):
                # The outage outlasted the participant (the sweep removed it): speak again.
                with contextlib.suppress(ClientError):  # dropped again: the loop goes on
                    await self.send_command("mute.set", muted=False)

    async def _reopen(self) -> bool:
        """Open a new socket after a random, growing delay until one joins; False when the
        server refused the member for good (the client is then closed) or close() was called."""
        delay = RECONNECT_FIRST
        while not self._closing:
            # Random: every member of a restarted server would otherwise come back at once.
            await asyncio.sleep(delay * (0.5 + secrets.randbelow(501) / 1000))
            delay = min(delay * 2, RECONNECT_MAX)
            try:
                self._socket = await self._open(timeout=10.0)
            except ClientClosed as closed:
                asked = retry_after_seconds(closed.code, closed.reason)
                if asked is not None:
                    # The join line was full: at least that long, spread over as long again.
                    await asyncio.sleep(asked * (1 + secrets.randbelow(1001) / 1000))
                    continue
                if closed.code in RECONNECT_CLOSE_CODES:
                    continue
                self._mark_closed(closed)
                return False
            except ClientError as error:
                self.on_connection_change(f"reconnecting: {error}")
                continue
            self.reconnects += 1
            return True
        self._mark_closed()
        return False

    async def close(self) -> None:
        """Close the socket (1000) and play out what is still buffered."""
        self._closing = True
        if self._reader is not None and not self._connected.is_set():
            self._reader.cancel()  # between sockets: stop waiting to reconnect
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
            self._mark_closed()
        if self._socket is not None:
            await self._socket.close()
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        elif self._socket is not None:
            self._mark_closed()

    async def wait_closed(self, timeout: float | None = None) -> ClientClosed:
        """Wait until the server closes the socket; returns how it closed."""
        async with asyncio.timeout(timeout):
            await self._closed_event.wait()
        return self._close_error()

    async def _read(self, socket: ClientConnection) -> None:
        try:
            async for message in socket:
                self._route(message)
        except ConnectionClosed:
            pass  # the close code is read by the caller, however the socket ended
        except Exception:  # a bug in routing must not leave waiters hanging: close instead
            logger.exception("space %s: receive loop failed", self.space_id)
            self._closing = True
            await socket.close(1011, "client error")

    def _close_error(self) -> ClientClosed:
        self._mark_closed()
        return self.closed  # type: ignore[return-value] - set by _mark_closed

    def _mark_closed(self, closed: ClientClosed | None = None) -> None:
        if self.closed is not None:
            return
        if closed is None:
            socket = self._socket
            code = socket.close_code if socket is not None else None
            reason = (socket.close_reason or "") if socket is not None else ""
            closed = ClientClosed(code, reason)
        self.closed = closed
        self.receiver.flush()
        self._publishing.clear()
        self._closed_event.set()
        self._put_event(_CLOSED)

    # --- control channel -----------------------------------------------------------------------

    def _route(self, message: str | bytes) -> None:
        if isinstance(message, bytes):
            try:
                frames = wire.mix_frames(message)  # one frame, or a big room's bundle
            except wire.WireError:
                self.receiver.stats.invalid += 1
                return
            for frame in frames:
                self.receiver.push(frame)
            return
        event = json.loads(message)
        if not isinstance(event, dict):
            return
        if event.get("type") == "snapshot":  # the first join, or a rejoin after a reconnect
            self.snapshot = event
            self._snapshots += 1
            self.superseded = False
            you = event["you"]
            self.user_id = you["user_id"]
            self._set_state(you["role"], you["is_muted"])
            self._set_audio_mode(event["space"].get("audio_mode", "speech"))
            return
        if event.get("type") == "audio_mode.changed":
            self._set_audio_mode(event["audio_mode"])
        if event.get("type") == "stream.superseded":
            # A newer connection of this member speaks for it now; this one only listens.
            self.superseded = True
            self._publishing.clear()
        if event.get("type") == "uplink.quality" and isinstance(event.get("loss_percent"), int):
            self.streamer.expect_loss(event["loss_percent"])
        self.events_received += 1
        self._track_own_state(event)
        self._put_event(event)

    def _track_own_state(self, event: dict) -> None:
        if event.get("user_id") != self.user_id:
            return
        kind = event.get("type")
        if kind == "role.changed":
            self._set_state(event["role"], event["participant"]["is_muted"])
        elif kind == "mute.changed":
            self._set_state(self.role, event["is_muted"])

    def _set_audio_mode(self, audio_mode: str) -> None:
        self.audio_mode = audio_mode
        if not self._fixed_opus:
            try:
                self.streamer.set_settings(opus_settings_for(audio_mode))
            except ValueError:  # a mode newer than this client: keep the current settings
                logger.warning("space %s: unknown audio mode %r", self.space_id, audio_mode)

    def _set_state(self, role: str | None, is_muted: bool) -> None:
        self.role, self.is_muted = role, is_muted
        on_stage = role in STAGE_ROLES
        for flag, value in (
            (self._on_stage, on_stage),
            (self._publishing, on_stage and not is_muted and not self.superseded),
        ):
            if value:
                flag.set()
            else:
                flag.clear()

    def _put_event(self, event: Any) -> None:
        if self.events.full():
            self.events.get_nowait()
            self.events_dropped += 1
        self.events.put_nowait(event)

    async def next_event(self, kind: str | None = None, *, timeout: float = 10.0, **match) -> dict:
        """The next event (of ``kind``, with the ``match`` fields); others are skipped.

        Raises ``TimeoutError``, or ``ClientClosed`` once the socket is closed and every event
        it delivered has been read.
        """
        async with asyncio.timeout(timeout):
            while True:
                if self.closed is not None and self.events.empty():
                    raise self.closed
                event = await self.events.get()
                if event is _CLOSED:
                    raise self._close_error()
                if kind is not None and event.get("type") != kind:
                    continue
                if all(event.get(key) == value for key, value in match.items()):
                    return event

    async def send_command(self, kind: str, **fields) -> None:
        """Send a control message (docs/protocol.md), e.g. ``send_command("hand.raise")``.

        Unknown types and missing required fields are refused here, before they go out;
        the server answers refused commands with an ``error`` event.
        """
        if kind not in COMMANDS:
            raise ValueError(f"unknown command {kind!r}")
        missing = COMMANDS[kind] - fields.keys()
        if missing:
            raise ValueError(f"{kind} needs {', '.join(sorted(missing))}")
        await self._send(json.dumps({"type": kind, **fields}))

    async def leave(self, *, timeout: float = 10.0) -> None:
        """Leave the space (every socket of this member closes with 4000)."""
        await self.send_command("leave")
        closed = await self.wait_closed(timeout)
        if not closed.normal:
            raise closed

    async def wait_on_stage(self, timeout: float | None = None) -> None:
        """Until this member is host, co-host or speaker (``ClientClosed`` if it closes)."""
        await self._wait_flag(self._on_stage, timeout)

    async def wait_publishing(self, timeout: float | None = None) -> None:
        """Until this member is on stage and unmuted: the server mixes their audio."""
        await self._wait_flag(self._publishing, timeout)

    async def _wait_flag(self, flag: asyncio.Event, timeout: float | None) -> None:
        async with asyncio.timeout(timeout):
            flag_wait = asyncio.ensure_future(flag.wait())
            closed_wait = asyncio.ensure_future(self._closed_event.wait())
            try:
                await asyncio.wait((flag_wait, closed_wait), return_when=asyncio.FIRST_COMPLETED)
            finally:
                flag_wait.cancel()
                closed_wait.cancel()
        if not flag.is_set():
            raise self._close_error()

    @property
    def on_stage(self) -> bool:
        return self._on_stage.is_set()

    @property
    def publishing(self) -> bool:
        return self._publishing.is_set()

    # --- audio ---------------------------------------------------------------------------------

    async def stream_wav(
        self, path: str | Path, *, loop: bool = False, seconds: float | None = None
    ) -> StreamStats:
        """Stream an audio file (any format PyAV reads) as speaker frames, in real time.

        Returns when the file ends (never with ``loop`` unless ``seconds`` is given). The
        server drops the frames of members who are not on stage or are muted: see
        :meth:`wait_publishing`.
        """
        return await self.streamer.stream(
            audio_frames(path, loop=loop), self._send, seconds=seconds
        )

    def recorded_pcm(self) -> np.ndarray:
        """What this member heard so far: 48 kHz mono int16 (empty with ``keep_audio=False``)."""
        return self.receiver.pcm()

    def record_to(self, path: str | Path) -> float:
        """Write what this member heard so far to a 48 kHz mono WAV; returns its seconds."""
        pcm = self.recorded_pcm()
        write_wav(path, pcm)
        return len(pcm) / SAMPLE_RATE

    def stats(self) -> dict:
        return {
            "received": asdict(self.receiver.stats),
            "sent": asdict(self.streamer.stats),
            "heard_seconds": round(self.receiver.seconds, 3),
            "events": self.events_received,
            "events_dropped": self.events_dropped,
        }

    async def _send(self, message: str | bytes) -> bool:
        """Send now; False for an audio frame dropped because the client is reconnecting
        (a command waits for the new socket instead, up to 10 s)."""
        if self._socket is None:
            raise ClientError("not connected")
        if self.closed is not None:
            raise self.closed
        if not self._connected.is_set():
            if isinstance(message, bytes):
                return False
            await self._wait_flag(self._connected, 10.0)
        socket = self._socket
        try:
            await socket.send(message)
            return True
        except ConnectionClosed:
            if self.reconnect and socket.close_code in RECONNECT_CLOSE_CODES | {None}:
                if isinstance(message, bytes):
                    return False  # the reader reconnects; the stream goes on meanwhile
                raise ClientError("the connection dropped; reconnecting, try again") from None
            # The reader routes what arrived before the close, then records the close code.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    await self._closed_event.wait()
            raise self._close_error() from None
