"""One mixer per room: every 20 ms, one frame per speaker in, one shared mix + mix-minus out.

Threading: ``push`` and the speaker-control methods may be called from any thread (the
websocket transport); they only append to an inbox, which ``tick`` drains on the mixer thread,
in call order. So a demotion pushed before a frame drops that frame, and everything takes
effect at the next tick. All other state belongs to the thread calling ``tick``.

Mixing rules:

* Only speakers who are allowed to publish and not muted are considered; frames pushed for
  anyone else (a listener, a muted or demoted speaker) are dropped and counted.
* A speaker is *talking* when their frame is above the talk threshold, held for a hangover.
  Only talking speakers are summed into the mix. That makes "silent speaker's mix-minus ==
  full mix" exactly true, so silent speakers get the shared packet and the encodes per tick
  are ``1 + len(talking)`` whatever the number of participants.
* The sum is done in int32 and saturated to int16 (Janus AudioBridge casts without
  saturating, which wraps loud peaks into full-scale clicks of the opposite sign).
* Each speaker's frames go jitter buffer → decoder → sample buffer (``playout.py``), which
  adapts the delay by time-scale modification (whole pitch periods, ``tsm.py``) and conceals
  with Opus PLC or in-band FEC: no whole frame is dropped or repeated inside sound.
* Every ``quality_every_ticks`` the tick reports each publishing speaker's uplink loss and
  jitter, measured by their jitter buffer (``TickResult.uplink``), for the transport to tell
  the speaker's client, which turns its encoder's in-band FEC on or off.
* Stream epochs (RFC 3550's SSRC): a frame may carry the epoch of the stream it belongs to,
  which the transport assigns per connection and per unmute. A new epoch is a new stream,
  heard from its first frame (fresh jitter buffer numbering, fresh decoder); frames of an
  epoch the speaker already left behind are dropped, never played as "old frames".
* Encoder settings (the space's audio mode) can change while the room plays: from the next
  tick the shared mix and every mix-minus come from fresh encoders with the new settings.
  Opus packets describe themselves (TOC byte), so listeners' decoders simply follow.
* Stereo (settings with ``channels=2``, the "music_stereo" mode): each speaker is decoded to
  two channels (a mono uplink, its TOC's s bit clear, comes out the same on both), frames are
  (960, 2) arrays from decoder to encoder, and mix, mix-minus, levels and talk detection work
  on them as on mono ones. Switching between mono and stereo gives every speaker a decoder and
  playout of the new width (their buffered samples are lost: one frame of silence at most).
  A mono room never touches a second channel, so it costs what it did.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field, replace

import numpy as np

from .codec import FRAME_SAMPLES, OpusDecoder, OpusEncoder, OpusSettings
from .jitter import JitterBuffer, JitterSettings, JitterStats
from .levels import (
    SILENCE_DBFS,
    LevelsEvent,
    SpeakerLevel,
    TalkDetector,
    frame_level_dbfs,
    meter_from_dbfs,
)
from .playout import PlayoutStats, SpeakerPlayout
from .wire import UINT32_MODULO

logger = logging.getLogger(__name__)

SpeakerId = Hashable
_INT16_MIN = -32768
_INT16_MAX = 32767

# Inbox message tags (tuples beat objects on the hot path: ~10 frames per tick per room).
_FRAME = 0
_ADD = 1
_REMOVE = 2
_SET_ALLOWED = 3
_SET_MUTED = 4
_START_STREAM = 5
_END_STREAM = 6
_SET_OPUS = 7
# Epochs a speaker left behind that are remembered, to drop their frames still in flight.
RETIRED_EPOCHS = 8


def _saturate(samples: np.ndarray, out: np.ndarray) -> None:
    """Clamp to the int16 range (two bare ufuncs: np.clip's Python wrapper costs more)."""
    np.minimum(samples, _INT16_MAX, out=out)
    np.maximum(out, _INT16_MIN, out=out)


@dataclass(frozen=True, slots=True)
class MixPacket:
    """The shared full-mix packet of one tick, as handed to mix observers (e.g. a recorder)."""

    tick: int
    timestamp: int  # 48 kHz samples, uint32, wraps; = tick * 960
    packet: bytes


@dataclass(frozen=True, slots=True)
class UplinkQuality:
    """A speaker's uplink as their jitter buffer measures it (docs/protocol.md,
    ``uplink.quality``)."""

    loss_percent: int  # frames lost among the last 5 s of the stream, 0..100
    jitter_ms: int  # 95th percentile of arrival delay above the fastest frame
    epoch: int | None  # the stream measured (a new one starts from no loss)


@dataclass(frozen=True, slots=True)
class TickResult:
    tick: int
    timestamp: int
    # Opus packet of the full mix: every listener, and every speaker not talking, gets this.
    shared_packet: bytes
    # Talking speakers only: the mix without their own voice.
    mix_minus: dict[SpeakerId, bytes]
    # This tick's level (dBFS) of every publishing speaker, talking or not.
    levels: dict[SpeakerId, float]
    talking: frozenset[SpeakerId]
    decodes: int
    concealed: int
    encodes: int
    # Frames dropped while draining this tick's inbox (late, duplicate, overflow, not allowed).
    dropped: int
    levels_event: LevelsEvent | None = None
    # Every quality_every_ticks: each publishing, playing speaker's uplink quality.
    uplink: dict[SpeakerId, UplinkQuality] | None = None


@dataclass(slots=True)
class MixerStats:
    """Cumulative counters; ``RoomMixer.stats()`` returns a snapshot."""

    ticks: int = 0
    decodes: int = 0
    encodes: int = 0
    concealed: int = 0
    invalid_packets: int = 0  # counted by the speakers' playouts (concealed)
    dropped_late: int = 0
    dropped_duplicate: int = 0
    dropped_overflow: int = 0
    trimmed: int = 0  # frames of owed delay given back (by time-stretching; not dropped)
    recovered_fec: int = 0  # lost frames decoded from the next packet's in-band FEC
    accelerated_samples: int = 0  # samples removed by time-stretching (whole pitch periods)
    expanded_samples: int = 0  # samples added by preemptive expand
    dropped_not_publishing: int = 0
    dropped_unknown_speaker: int = 0
    # Frames of a stream epoch the speaker left behind (an older connection, before an unmute).
    dropped_old_stream: int = 0
    streams_started: int = 0
    observer_errors: int = 0
    settings_changes: int = 0  # set_opus calls that changed the encoder settings

    @property
    def dropped(self) -> int:
        return (
            self.dropped_late
            + self.dropped_duplicate
            + self.dropped_overflow
            + self.dropped_not_publishing
            + self.dropped_unknown_speaker
            + self.dropped_old_stream
        )


@dataclass(slots=True)
class _Speaker:
    speaker_id: SpeakerId
    jitter: JitterBuffer
    decoder: OpusDecoder
    playout: SpeakerPlayout
    talk: TalkDetector
    allowed: bool = True
    muted: bool = False
    # Created the first time the speaker talks, then kept: Opus streams are stateful.
    mix_minus_encoder: OpusEncoder | None = None
    window_peak_dbfs: float = SILENCE_DBFS
    window_talked: bool = False
    # The stream being played (None: none announced yet) and the ones it replaced.
    epoch: int | None = None
    retired_epochs: deque[int] = field(default_factory=lambda: deque(maxlen=RETIRED_EPOCHS))

    @property
    def publishing(self) -> bool:
        return self.allowed and not self.muted


@dataclass(slots=True)
class _RetiredJitterStats:
    """Jitter counters of removed speakers, so cumulative stats never go backwards."""

    totals: JitterStats = field(default_factory=JitterStats)
    playout: PlayoutStats = field(default_factory=PlayoutStats)

    def add(self, stats: JitterStats, playout: PlayoutStats) -> None:
        for name in JitterStats.__slots__:
            setattr(self.totals, name, getattr(self.totals, name) + getattr(stats, name))
        for name in PlayoutStats.__slots__:
            setattr(self.playout, name, getattr(self.playout, name) + getattr(playout, name))


class RoomMixer:
    def __init__(
        self,
        *,
        opus: OpusSettings | None = None,
        jitter: JitterSettings | None = None,
        talk_threshold_dbfs: float = -45.0,
        talk_hangover_ticks: int = 15,
        levels_every_ticks: int = 10,
        quality_every_ticks: int = 50,
        time_stretch: bool = True,
    ) -> None:
        """``time_stretch=False``: the whole-frame adaptation it replaced (benches only)."""
        self.opus = opus or OpusSettings()
        self.jitter_settings = jitter or JitterSettings()
        if not time_stretch:
            self.jitter_settings = replace(self.jitter_settings, skip_lost_slots=True)
        self.talk_threshold_dbfs = talk_threshold_dbfs
        self.talk_hangover_ticks = talk_hangover_ticks
        self.levels_every_ticks = levels_every_ticks
        self.quality_every_ticks = quality_every_ticks
        self.time_stretch = time_stretch
        # Called on the mixer thread with each tick's shared packet; keep them quick.
        self.mix_observers: list[Callable[[MixPacket], None]] = []
        self.levels_observers: list[Callable[[LevelsEvent], None]] = []

        self._inbox: deque[tuple] = deque()
        self._speakers: dict[SpeakerId, _Speaker] = {}
        self._shared_encoder = OpusEncoder(self.opus)
        self._tick = 0
        self._decodes = self._concealed = 0  # this tick's, counted by _decode
        self._stats = MixerStats()
        self._retired = _RetiredJitterStats()
        self._allocate_scratch()

    def _allocate_scratch(self) -> None:
        # Reused every tick: no per-tick numpy allocation.
        shape = (FRAME_SAMPLES, 2) if self.opus.channels == 2 else (FRAME_SAMPLES,)
        self._sum = np.zeros(shape, dtype=np.int32)
        self._scratch32 = np.zeros(shape, dtype=np.int32)
        self._level_scratch = np.zeros(shape, dtype=np.float32)

    # -- Any thread -------------------------------------------------------------------------

    def push(
        self,
        speaker_id: SpeakerId,
        sequence: int,
        payload: bytes,
        arrival_time: float,
        epoch: int | None = None,
    ) -> None:
        """Queue one Opus frame from a speaker (``arrival_time`` on the mixer clock, seconds).

        ``epoch``: the stream the frame belongs to (see ``start_stream``). A frame of an epoch
        never seen starts that stream; one of an epoch the speaker left behind is dropped.
        None: no stream identity, only the jitter buffer's own sequence rules apply.
        """
        self._inbox.append((_FRAME, speaker_id, sequence, payload, arrival_time, epoch))

    def add_speaker(self, speaker_id: SpeakerId, *, allowed: bool = True) -> None:
        self._inbox.append((_ADD, speaker_id, allowed))

    def remove_speaker(self, speaker_id: SpeakerId) -> None:
        self._inbox.append((_REMOVE, speaker_id))

    def set_allowed(self, speaker_id: SpeakerId, allowed: bool) -> None:
        """Promote/demote: a speaker who is not allowed contributes nothing from the next tick."""
        self._inbox.append((_SET_ALLOWED, speaker_id, allowed))

    def set_muted(self, speaker_id: SpeakerId, muted: bool) -> None:
        self._inbox.append((_SET_MUTED, speaker_id, muted))

    def start_stream(self, speaker_id: SpeakerId, epoch: int) -> None:
        """From now on the speaker's frames are those of stream ``epoch`` (a new connection or
        an unmute): it is heard from its first frame, and frames of earlier epochs are dropped."""
        self._inbox.append((_START_STREAM, speaker_id, epoch))

    def set_opus(self, settings: OpusSettings) -> None:
        """Encode the mix with ``settings`` from the next tick on (the space's audio mode
        changed). Speakers' decoders are untouched unless the channel count changes: each
        packet says how it was coded."""
        self._inbox.append((_SET_OPUS, None, settings))

    def end_stream(self, speaker_id: SpeakerId, epoch: int) -> None:
        """Stream ``epoch`` is over (its connection gave the speaker's stream up). If it is
        the one being played, the speaker's next frames of any other epoch start a stream."""
        self._inbox.append((_END_STREAM, speaker_id, epoch))

    # -- Mixer thread -----------------------------------------------------------------------

    @property
    def speaker_ids(self) -> tuple[SpeakerId, ...]:
        """Speakers as of the last drained inbox (i.e. the last tick)."""
        return tuple(self._speakers)

    @property
    def tick_count(self) -> int:
        return self._tick

    def playout_position(self, speaker_id: SpeakerId) -> int | None:
        """The media position (unwrapped sequence × 960 + offset) of the first sample of the
        speaker's frame in the last tick, or None: for measuring the playout delay."""
        speaker = self._speakers.get(speaker_id)
        return speaker.playout.position if speaker is not None else None

    def speaker_stats(self, speaker_id: SpeakerId) -> tuple[JitterStats, PlayoutStats] | None:
        """One speaker's jitter buffer and playout counters (live objects: read, don't keep)."""
        speaker = self._speakers.get(speaker_id)
        return (speaker.jitter.stats, speaker.playout.stats) if speaker is not None else None

    def stats(self) -> MixerStats:
        totals = JitterStats()
        for name in JitterStats.__slots__:
            setattr(totals, name, getattr(self._retired.totals, name))
        retired = self._retired.playout
        playout = PlayoutStats(**{name: getattr(retired, name) for name in PlayoutStats.__slots__})
        # list(): a monitoring thread may ask while the mixer thread adds or removes speakers.
        for speaker in list(self._speakers.values()):
            for name in ("late", "duplicate", "overflow", "trimmed"):
                setattr(totals, name, getattr(totals, name) + getattr(speaker.jitter.stats, name))
            own = speaker.playout.stats
            for name in ("recovered_fec", "accelerated", "expanded", "invalid"):
                setattr(playout, name, getattr(playout, name) + getattr(own, name))
        stats = self._stats
        return MixerStats(
            ticks=stats.ticks,
            decodes=stats.decodes,
            encodes=stats.encodes,
            concealed=stats.concealed,
            invalid_packets=playout.invalid,
            dropped_late=totals.late,
            dropped_duplicate=totals.duplicate,
            dropped_overflow=totals.overflow,
            trimmed=totals.trimmed,
            recovered_fec=playout.recovered_fec,
            accelerated_samples=playout.accelerated,
            expanded_samples=playout.expanded,
            dropped_not_publishing=stats.dropped_not_publishing,
            dropped_unknown_speaker=stats.dropped_unknown_speaker,
            dropped_old_stream=stats.dropped_old_stream,
            streams_started=stats.streams_started,
            observer_errors=stats.observer_errors,
            settings_changes=stats.settings_changes,
        )

    def tick(self, now: float | None = None) -> TickResult:
        """Mix one 20 ms frame. Call exactly once per clock tick, from one thread.

        ``now``: the tick's time on the clock of the frames' arrival times. With it the jitter
        buffers see how long frames waited and give back a frame of delay nobody needs.
        """
        dropped = self._drain_inbox()
        total = self._sum
        total.fill(0)
        level_scratch = self._level_scratch
        self._decodes = self._concealed = 0
        levels: dict[SpeakerId, float] = {}
        talking: list[tuple[_Speaker, np.ndarray]] = []

        for speaker in self._speakers.values():
            if not speaker.publishing:
                continue
            playout = speaker.playout
            stats = playout.stats
            decodes, concealed = stats.decodes, stats.concealed
            pcm = playout.next_frame(now)
            self._decodes += stats.decodes - decodes
            self._concealed += stats.concealed - concealed
            level = SILENCE_DBFS if pcm is None else frame_level_dbfs(pcm, level_scratch)
            levels[speaker.speaker_id] = level
            is_talking = speaker.talk.update(level)
            if level > speaker.window_peak_dbfs:
                speaker.window_peak_dbfs = level
            if is_talking:
                speaker.window_talked = True
                if pcm is not None:
                    np.add(total, pcm, out=total)
                    talking.append((speaker, pcm))

        scratch = self._scratch32
        _saturate(total, scratch)
        shared_packet = self._shared_encoder.encode(scratch)
        mix_minus: dict[SpeakerId, bytes] = {}
        for speaker, pcm in talking:
            # Saturate (sum - own), not (saturated sum) - own: the latter would leave a
            # residue of the speaker's own voice wherever the full mix clipped.
            np.subtract(total, pcm, out=scratch)
            _saturate(scratch, scratch)
            encoder = speaker.mix_minus_encoder
            if encoder is None:
                encoder = speaker.mix_minus_encoder = OpusEncoder(self.opus)
            mix_minus[speaker.speaker_id] = encoder.encode(scratch)
        encodes = 1 + len(mix_minus)
        decodes, concealed = self._decodes, self._concealed

        tick = self._tick
        timestamp = (tick * FRAME_SAMPLES) % UINT32_MODULO
        self._tick = tick + 1
        stats = self._stats
        stats.ticks += 1
        stats.decodes += decodes
        stats.concealed += concealed
        stats.encodes += encodes

        if self.mix_observers:
            self._notify(self.mix_observers, MixPacket(tick, timestamp, shared_packet))
        levels_event = None
        if self._tick % self.levels_every_ticks == 0:
            levels_event = self._levels_event(tick)
            if self.levels_observers:
                self._notify(self.levels_observers, levels_event)
        uplink = None
        if self._tick % self.quality_every_ticks == 0:
            uplink = {
                speaker.speaker_id: UplinkQuality(
                    speaker.jitter.loss_percent, speaker.jitter.jitter_ms, speaker.epoch
                )
                for speaker in self._speakers.values()
                if speaker.publishing and speaker.jitter.playing
            }

        return TickResult(
            tick=tick,
            timestamp=timestamp,
            shared_packet=shared_packet,
            mix_minus=mix_minus,
            levels=levels,
            talking=frozenset(speaker.speaker_id for speaker, _ in talking),
            decodes=decodes,
            concealed=concealed,
            encodes=encodes,
            dropped=dropped,
            levels_event=levels_event,
            uplink=uplink,
        )

    def _drain_inbox(self) -> int:
        """Apply queued frames and commands in order; returns how many frames were dropped."""
        inbox = self._inbox
        speakers = self._speakers
        stats = self._stats
        dropped = 0
        while inbox:
            message = inbox.popleft()
            if message[0] == _FRAME:
                _, speaker_id, sequence, payload, arrival_time, epoch = message
                speaker = speakers.get(speaker_id)
                if speaker is None:
                    stats.dropped_unknown_speaker += 1
                    dropped += 1
                elif not speaker.publishing:
                    stats.dropped_not_publishing += 1
                    dropped += 1
                elif (
                    epoch != speaker.epoch and epoch is not None and not self._adopt(speaker, epoch)
                ):
                    stats.dropped_old_stream += 1
                    dropped += 1
                else:
                    jitter_stats = speaker.jitter.stats
                    before = jitter_stats.dropped
                    speaker.jitter.push(sequence, payload, arrival_time)
                    dropped += jitter_stats.dropped - before
            else:
                self._apply_command(message)
        return dropped

    def _apply_command(self, message: tuple) -> None:
        tag, speaker_id = message[0], message[1]
        speakers = self._speakers
        if tag == _SET_OPUS:
            if message[2] != self.opus:
                self._set_opus(message[2])
            return
        if tag == _ADD:
            if speaker_id not in speakers:
                jitter = JitterBuffer(self.jitter_settings)
                decoder, playout = self._decoding(jitter)
                speakers[speaker_id] = _Speaker(
                    speaker_id=speaker_id,
                    jitter=jitter,
                    decoder=decoder,
                    playout=playout,
                    talk=TalkDetector(self.talk_threshold_dbfs, self.talk_hangover_ticks),
                    allowed=message[2],
                )
            else:
                self._set_publishing(speakers[speaker_id], allowed=message[2])
            return
        speaker = speakers.get(speaker_id)
        if speaker is None:
            return
        if tag == _REMOVE:
            self._retired.add(speaker.jitter.stats, speaker.playout.stats)
            del speakers[speaker_id]
        elif tag == _SET_ALLOWED:
            self._set_publishing(speaker, allowed=message[2])
        elif tag == _SET_MUTED:
            self._set_publishing(speaker, muted=message[2])
        elif tag == _START_STREAM:
            if message[2] != speaker.epoch:
                self._start_stream(speaker, message[2])
        elif tag == _END_STREAM and message[2] == speaker.epoch:
            speaker.retired_epochs.append(speaker.epoch)
            speaker.epoch = None
            speaker.jitter.clear()
            speaker.playout.reset()

    def _decoding(self, jitter: JitterBuffer) -> tuple[OpusDecoder, SpeakerPlayout]:
        """A speaker's decoder and playout, as wide as the mix (``opus.channels``)."""
        decoder = OpusDecoder(channels=self.opus.channels)
        playout = SpeakerPlayout(
            jitter, decoder, time_stretch=self.time_stretch, quiet_dbfs=self.talk_threshold_dbfs
        )
        return decoder, playout

    def _set_opus(self, settings: OpusSettings) -> None:
        # An Opus encoder's bitrate and application are fixed once PyAV opens it: new ones.
        # Mix-minus encoders are made again the next time their speaker talks.
        widened = settings.channels != self.opus.channels
        self.opus = settings
        self._shared_encoder = OpusEncoder(settings)
        if widened:
            self._allocate_scratch()
        for speaker in self._speakers.values():
            speaker.mix_minus_encoder = None
            if widened:
                # Packets still buffered decode as well with the new width: keep the jitter
                # buffer, replace what holds samples (its counters go on in the totals).
                self._retired.add(JitterStats(), speaker.playout.stats)
                speaker.decoder, speaker.playout = self._decoding(speaker.jitter)
        self._stats.settings_changes += 1

    def _adopt(self, speaker: _Speaker, epoch: int) -> bool:
        """A frame of another epoch than the one playing: start its stream, unless the speaker
        left it behind. With no stream playing (none announced to this mixer, e.g. it took the
        room over, or the last one ended) any epoch starts one."""
        if speaker.epoch is not None and epoch in speaker.retired_epochs:
            return False
        self._start_stream(speaker, epoch)
        return True

    def _start_stream(self, speaker: _Speaker, epoch: int) -> None:
        if speaker.epoch is not None:
            speaker.retired_epochs.append(speaker.epoch)
        speaker.epoch = epoch
        # The new stream comes from a new encoder: nothing of the old one may shape it.
        speaker.jitter.new_stream()
        speaker.decoder.reset()
        speaker.playout.reset()
        self._stats.streams_started += 1

    @staticmethod
    def _set_publishing(
        speaker: _Speaker, *, allowed: bool | None = None, muted: bool | None = None
    ) -> None:
        was_publishing = speaker.publishing
        if allowed is not None:
            speaker.allowed = allowed
        if muted is not None:
            speaker.muted = muted
        if was_publishing and not speaker.publishing:
            # Nothing buffered may leak out after the mute/demotion, and a later unmute
            # starts a fresh talk spurt rather than concealing across the silence.
            speaker.jitter.clear()
            speaker.playout.reset()
            speaker.talk.reset()
        elif speaker.publishing and not was_publishing:
            speaker.decoder.reset()

    def _levels_event(self, tick: int) -> LevelsEvent:
        levels: dict[SpeakerId, SpeakerLevel] = {}
        talking = []
        for speaker in self._speakers.values():
            if not speaker.publishing:
                continue
            dbfs = speaker.window_peak_dbfs
            levels[speaker.speaker_id] = SpeakerLevel(
                dbfs=round(dbfs, 1),
                meter=round(meter_from_dbfs(dbfs), 3),
                talking=speaker.window_talked,
            )
            if speaker.window_talked:
                talking.append(speaker.speaker_id)
            speaker.window_peak_dbfs = SILENCE_DBFS
            speaker.window_talked = False
        return LevelsEvent(tick=tick, levels=levels, talking=frozenset(talking))

    def _notify(self, observers: list, event: object) -> None:
        for observer in observers:
            try:
                observer(event)
            except Exception:
                # A broken recorder or event sink must not silence the room.
                self._stats.observer_errors += 1
                logger.exception("audio mixer observer %r failed", observer)
