"""Records a room: the mixer's shared full-mix Opus packets, muxed into Ogg Opus as they are.

Nothing is re-encoded: each tick's shared packet (``RoomMixer.mix_observers``) becomes one Ogg
packet, so recording costs no codec work. The mixer thread only appends to a bounded queue
(``on_mix``, ``on_levels``); a writer thread owns the PyAV container and the disk.

How PyAV muxes pre-encoded Opus (PyAV 18, FFmpeg 8):

* The Ogg muxer refuses to write a header without the stream's extradata (the ``OpusHead``:
  channels, pre-skip, input rate). ``add_mux_stream`` creates a stream without a codec context
  but offers no way to set extradata, so instead the stream is made with
  ``add_stream("libopus")``: ``start_encoding`` opens that (never fed) encoder, libopus writes
  its ``OpusHead`` into the extradata (mono, 48 kHz, pre-skip 312 = the encoder's lookahead,
  the same as the mixer's encoders), and it is copied to the stream before the header is
  written. We check the header is exactly the one our packets need, then mux ``av.Packet``
  objects built from the raw bytes with pts/dts in 1/48000 and duration 960. The Ogg granule
  position is pts + duration, so the file's duration is packets × 20 ms − pre-skip.
* Crash safety: the Ogg muxer only writes a page when it is complete, and the AVIO layer keeps
  32 KiB in memory, so by default nothing reaches the disk for minutes. ``flush_packets=1``
  makes the AVIO layer write after each packet, and ``page_duration`` (µs) closes a page every
  ``page_seconds``. The muxer holds back the page in progress, so a killed process loses at most
  about two pages plus what was still queued; every page on disk is complete and checksummed,
  and a demuxer reads such a truncated file up to its last page. PyAV cannot ask the muxer to
  write the page in progress early (no ``av_write_frame(NULL)``), so while recording is paused
  the last page before the pause reaches the disk at resume or close.
* Gaps are cut: while paused, packets are not queued, and the pts of the next packet follows
  the last one written. The speaker timeline counts in the same file time.
"""

from __future__ import annotations

import json
import logging
import os
import struct
import threading
import time
from collections import deque
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av

from .codec import FRAME_SAMPLES, SAMPLE_RATE
from .levels import LevelsEvent
from .mixer import MixPacket

logger = logging.getLogger(__name__)

# What libopus delays the signal by (its lookahead); the mixer's encoders use the same.
OPUS_PRE_SKIP = 312


# RFC 7845 §5.1: magic, version 1, 1 channel, pre-skip, input rate, gain 0, mapping family 0.
def opus_head(channels: int = 1) -> bytes:
    """The ``OpusHead`` (RFC 7845 §5.1) of a file of the mixer's packets: mapping family 0,
    whose one stream is mono or stereo, so a player's decoder has that many channels (and
    decodes the file's mono packets, if any, to both)."""
    return b"OpusHead" + struct.pack("<BBHIhB", 1, channels, OPUS_PRE_SKIP, SAMPLE_RATE, 0, 0)


OPUS_HEAD = opus_head(1)
_TIME_BASE = Fraction(1, SAMPLE_RATE)

# Queue item tags.
_PACKET = 0
_LEVELS = 1


class RecorderError(RuntimeError):
    """The recording could not be started (the Ogg header is not what the packets need)."""


@dataclass(frozen=True, slots=True)
class RecorderStats:
    packets_written: int
    # Queue full: the writer fell behind (slow disk). Counted, never waited for.
    packets_dropped: int
    levels_dropped: int
    # Ticks that happened while recording was off (cut from the file, not written as silence).
    packets_paused: int
    bytes_written: int  # Opus payload bytes muxed
    seconds: float  # file time written so far (packets × 20 ms)
    write_errors: int


@dataclass(slots=True)
class SpeakerSegment:
    speaker_id: Hashable
    start: float  # file seconds
    end: float

    def as_dict(self) -> dict:
        return {"speaker_id": self.speaker_id, "start": self.start, "end": self.end}


class SpeakerTimeline:
    """Who talked when, in file seconds, from the mixer's level windows.

    A window where a speaker talked extends their open segment if it starts at most
    ``merge_gap`` seconds after the segment's end, else it opens a new one. Level events
    already hold "talking" for a 300 ms hangover, so the tolerated silence between words is
    ``merge_gap`` plus that hangover.
    """

    def __init__(self, merge_gap: float = 0.5) -> None:
        self.merge_gap = merge_gap
        self._closed: list[SpeakerSegment] = []
        self._open: dict[Hashable, SpeakerSegment] = {}

    def add_window(self, start: float, end: float, talking: frozenset[Hashable]) -> None:
        if end <= start:
            return  # recording was off for the whole window
        for speaker_id, segment in list(self._open.items()):
            if speaker_id not in talking and start - segment.end > self.merge_gap:
                self._closed.append(self._open.pop(speaker_id))
        for speaker_id in talking:
            segment = self._open.get(speaker_id)
            if segment is not None and start - segment.end <= self.merge_gap:
                segment.end = end
                continue
            if segment is not None:
                self._closed.append(segment)
            self._open[speaker_id] = SpeakerSegment(speaker_id, start, end)

    def segments(self) -> list[dict]:
        """All segments, open ones included, ordered by start (then speaker order of arrival)."""
        segments = [*self._closed, *self._open.values()]
        segments.sort(key=lambda segment: segment.start)
        return [segment.as_dict() for segment in segments]


def next_speaker_start(segments: Sequence[dict], position: float) -> float | None:
    """Where "skip to the next speaker" jumps from ``position`` (file seconds), or None.

    The next segment starting after ``position`` whose speaker differs from whoever is
    talking at ``position``; the next segment of anyone if no one is.
    """
    current = {s["speaker_id"] for s in segments if s["start"] <= position < s["end"]}
    for segment in segments:
        if segment["start"] > position and segment["speaker_id"] not in current:
            return segment["start"]
    return None


def open_ogg_opus(
    path: str | os.PathLike[str],
    *,
    page_seconds: float = 0.5,
    flush_packets: bool = True,
    channels: int = 1,
) -> tuple[av.container.OutputContainer, av.audio.stream.AudioStream]:
    """An Ogg Opus file with its headers written, ready to mux the mixer's packets into.

    ``flush_packets`` makes each packet reach the disk at once (crash safety); the header is
    checked to be exactly the one the mixer's packets need (``opus_head(channels)``).
    """
    options = {"page_duration": str(round(page_seconds * 1_000_000))}
    if flush_packets:
        options["flush_packets"] = "1"
    container = av.open(str(path), "w", format="ogg", container_options=options)
    try:
        stream = container.add_stream("libopus", rate=SAMPLE_RATE, options={"application": "voip"})
        stream.codec_context.layout = "stereo" if channels == 2 else "mono"
        stream.time_base = _TIME_BASE
        container.start_encoding()  # opens the idle encoder, writes the header pages
        extradata = stream.codec_context.extradata
        if extradata != opus_head(channels):
            raise RecorderError(f"unexpected OpusHead {extradata!r}, want {opus_head(channels)!r}")
    except BaseException:
        container.close()
        raise
    return container, stream


def mux_packet(container, stream, payload: bytes, index: int) -> None:
    """Mux one 20 ms Opus packet as the ``index``-th of the file (pts = index × 960)."""
    packet = av.Packet(payload)
    packet.pts = packet.dts = index * FRAME_SAMPLES
    packet.duration = FRAME_SAMPLES
    packet.time_base = _TIME_BASE
    packet.stream = stream
    container.mux_one(packet)


class MixRecorder:
    """Writes one room's shared mix to an Ogg Opus file, plus ``<path>.timeline.json``.

    Attach on any thread before or while the mixer runs::

        recorder = MixRecorder(path)
        mixer.mix_observers.append(recorder.on_mix)
        mixer.levels_observers.append(recorder.on_levels)
        ...
        recorder.pause(); recorder.resume()    # recording off / on, any thread
        recorder.close()                       # after detaching; finalizes the file

    ``on_mix`` and ``on_levels`` must be called from one thread (the mixer thread); they never
    block and never touch the disk. ``channels``: the room's (``mixer.opus.channels`` when the
    segment opens), for the file's header; a room that changes mode mid-segment still records
    every packet as coded, and the replay's header follows its packets (``replay.join``).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        queue_limit: int = 500,  # 10 s of ticks: rides out a slow disk without dropping
        page_seconds: float = 0.5,
        flush_every_seconds: float = 1.0,
        fsync_every_seconds: float = 5.0,
        merge_gap: float = 0.5,
        paused: bool = False,
        autostart: bool = True,
        channels: int = 1,
    ) -> None:
        self.path = Path(path)
        self.timeline_path = self.path.with_name(self.path.name + ".timeline.json")
        self.queue_limit = queue_limit
        self.flush_every_seconds = flush_every_seconds
        self.fsync_every_seconds = fsync_every_seconds

        # Mixer thread only (besides the flag, which any thread may flip).
        self._recording = not paused
        self._queue: deque[tuple] = deque()
        self._enqueued_samples = 0  # file time of everything queued so far
        self._levels_from = 0  # file time where the current level window started
        self._dropped = 0
        self._levels_dropped = 0
        self._paused_packets = 0

        # Writer thread only, except under ``_lock`` for readers on other threads.
        self._lock = threading.Lock()
        self._timeline = SpeakerTimeline(merge_gap)
        self._timeline_dirty = False
        self._written = 0
        self._bytes = 0
        self._write_errors = 0
        self._failed = False

        self._requests: deque[threading.Event] = deque()
        self._stop = threading.Event()
        self._closed = False
        self._container, self._stream = open_ogg_opus(
            self.path, page_seconds=page_seconds, channels=channels
        )
        self._fd = os.open(self.path, os.O_RDONLY)  # for fsync only
        self._thread = threading.Thread(
            target=self._run, name=f"salon-recorder-{self.path.name}", daemon=True
        )
        if autostart:
            self.start()

    # -- Any thread -----------------------------------------------------------------------------

    def start(self) -> None:
        """Start the writer thread (done by the constructor unless ``autostart=False``)."""
        self._thread.start()

    @property
    def recording(self) -> bool:
        return self._recording

    def pause(self) -> None:
        """Recording off from the next tick: ticks are cut from the file, not kept as silence."""
        self._recording = False

    def resume(self) -> None:
        self._recording = True

    def flush(self, timeout: float | None = 10.0) -> bool:
        """Write out everything queued so far, save the timeline and fsync; False on timeout.

        Complete Ogg pages reach the disk; the page in progress stays in the muxer.
        """
        done = threading.Event()
        self._requests.append(done)
        if not self._thread.is_alive():
            return False
        return done.wait(timeout)

    def close(self, timeout: float | None = 10.0) -> None:
        """Write what is queued, finalize the Ogg stream and the timeline. Safe to call twice.

        Detach ``on_mix``/``on_levels`` from the mixer first: later packets are ignored.
        """
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
            if self._thread.is_alive():
                raise RuntimeError("recorder writer did not finish in time")
        else:
            self._drain()  # never started: write what was queued on this thread
        try:
            self._container.close()
        except (av.FFmpegError, OSError):
            self._write_errors += 1
            logger.exception("closing recording %s failed", self.path)
        self._save_timeline(closed=True)
        self._fsync()
        os.close(self._fd)

    def timeline(self) -> list[dict]:
        """``[{speaker_id, start, end}]`` in file seconds, ordered by start."""
        with self._lock:
            return self._timeline.segments()

    def stats(self) -> RecorderStats:
        with self._lock:
            written, written_bytes, errors = self._written, self._bytes, self._write_errors
        return RecorderStats(
            packets_written=written,
            packets_dropped=self._dropped,
            levels_dropped=self._levels_dropped,
            packets_paused=self._paused_packets,
            bytes_written=written_bytes,
            seconds=written * FRAME_SAMPLES / SAMPLE_RATE,
            write_errors=errors,
        )

    # -- Mixer thread ---------------------------------------------------------------------------

    def on_mix(self, packet: MixPacket) -> None:
        if self._closed:
            return
        if not self._recording:
            self._paused_packets += 1
            return
        if len(self._queue) >= self.queue_limit:
            self._dropped += 1
            return
        self._queue.append((_PACKET, packet.packet))
        self._enqueued_samples += FRAME_SAMPLES

    def on_levels(self, event: LevelsEvent) -> None:
        # The window ends with this tick's packet (``on_mix`` runs first in the same tick), so
        # it covers the file time queued since the previous event: nothing if paused throughout.
        start, end = self._levels_from, self._enqueued_samples
        self._levels_from = end
        if self._closed or end == start:
            return
        if len(self._queue) >= self.queue_limit:
            self._levels_dropped += 1
            return
        self._queue.append((_LEVELS, start / SAMPLE_RATE, end / SAMPLE_RATE, event.talking))

    # -- Writer thread --------------------------------------------------------------------------

    def _run(self) -> None:
        last_flush = last_fsync = time.monotonic()
        while True:
            stopping = self._stop.is_set()
            # Requests taken before draining: everything queued before them gets written.
            requests = []
            while self._requests:
                requests.append(self._requests.popleft())
            self._drain()
            now = time.monotonic()
            if requests or stopping or now - last_flush >= self.flush_every_seconds:
                last_flush = now
                if self._timeline_dirty:
                    self._save_timeline()
            if requests or now - last_fsync >= self.fsync_every_seconds:
                last_fsync = now
                self._fsync()
            for done in requests:
                done.set()
            if stopping:
                return
            # Polling keeps the mixer thread free of locks and wake-ups; 5 packets a batch.
            self._stop.wait(0.1)

    def _drain(self) -> None:
        queue = self._queue
        while queue:
            item = queue.popleft()
            if item[0] == _PACKET:
                self._write_packet(item[1])
            else:
                _, start, end, talking = item
                with self._lock:
                    self._timeline.add_window(start, end, talking)
                self._timeline_dirty = True

    def _write_packet(self, payload: bytes) -> None:
        if self._failed:
            return
        try:
            mux_packet(self._container, self._stream, payload, self._written)
        except (av.FFmpegError, OSError):
            # Disk full or gone: keep what is on disk (playable), stop writing.
            with self._lock:
                self._write_errors += 1
            self._failed = True
            logger.exception("recording %s: write failed, recording stopped", self.path)
            return
        with self._lock:
            self._written += 1
            self._bytes += len(payload)

    def _save_timeline(self, *, closed: bool = False) -> None:
        with self._lock:
            document = {
                "duration": self._written * FRAME_SAMPLES / SAMPLE_RATE,
                "segments": self._timeline.segments(),
                # True once close() finalized the file: nothing more will be written to it.
                "closed": closed,
            }
        self._timeline_dirty = False
        temporary = self.timeline_path.with_name(self.timeline_path.name + ".tmp")
        try:
            # Replaced atomically: a crash leaves the previous complete version.
            temporary.write_text(json.dumps(document, default=str))
            os.replace(temporary, self.timeline_path)
        except OSError:
            logger.exception("recording %s: could not save the timeline", self.path)

    def _fsync(self) -> None:
        try:
            os.fsync(self._fd)
        except OSError:
            logger.exception("recording %s: fsync failed", self.path)
