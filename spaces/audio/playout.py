"""One speaker's playout: jitter buffer → decoder → sample buffer → exactly 960 samples a tick.

The structure of WebRTC NetEq. The jitter buffer (``jitter.py``) orders packets, finds losses
and decides, in whole frames, how much delay the arrivals need. Between it and the mix sits a
*sync buffer* of decoded samples, so the delay can change by less than a frame. Each tick:

* **normal**: when fewer than 960 samples are buffered, the next packet is decoded into it;
* **expand** (a packet is missing): a *lost* frame (later ones are buffered) is decoded from
  the next packet's in-band FEC copy, which libopus turns into Opus PLC when the packet has
  none; a *late* frame (nothing buffered, the stream is behind) is concealed with Opus PLC and
  the delay grows by that frame, which is how the buffer absorbs a jitter spike;
* **merge**: the first real frame after a late one is spliced into a further stretch of PLC
  where their waveforms line up (``tsm.merge_offset``) instead of right after the concealed
  frame, so the delay grows by a frame plus up to one pitch period, never by a phase jump;
* **accelerate**: when the jitter buffer owes delay back (``frames_to_give_back``), the next
  frame is decoded early and the surplus is removed by whole pitch periods (``tsm.accelerate``)
  over the following ticks, where the signal is periodic or quiet; noise-like sound waits;
* **preemptive expand**: when the jitter buffer runs dry right after a pop (its target wants
  more frames than it holds), one pitch period is repeated (``tsm.preemptive_expand``); once a
  frame's worth has built up, a tick plays from the sync buffer without taking a packet, so
  the delay grows before the stream starves rather than after.

Nothing here drops or repeats a whole frame inside sound. ``time_stretch=False`` keeps the
adaptation this replaced (whole frames: a late frame's PLC stays in the stream, owed delay
given back by skipping a quiet frame or a lost frame's slot), for the bench's baseline.

Stereo (a decoder with two channels): every buffer holds (samples, 2) frames and each edit
(cut, repeat, crossfade, extension) is done to both channels at the same sample, so the
channels stay aligned; ``tsm`` looks for the pitch period in their mean.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from . import tsm
from .codec import FRAME_SAMPLES, SAMPLE_RATE, CodecError, OpusDecoder
from .jitter import JitterBuffer, Playout
from .levels import frame_level_dbfs

# Merge: the extension crossfades into the real frame over this long.
_MERGE_FADE = 48  # 1 ms
_SETTLE_TICKS = 3
# A lost frame is continued by pitch repetition above this correlation, else Opus PLC plays.
# 0.995: a tone or a held note; a voice at 0.98-0.99 (espeak-ng's vowels) changes its period
# within a frame, and a repeated period then misses the next frame by more than PLC does
# (bench_impairment: speech 0.894 of its no-loss score at 0.98, 0.91 at 0.995, tone unchanged).
_PERIODIC = 0.995
_HISTORY = 2 * 720 + 240  # played samples kept: two longest pitch periods and a window
_EMPTY64 = np.zeros(0, dtype=np.int64)


@dataclass(slots=True)
class PlayoutStats:
    decodes: int = 0
    concealed: int = 0  # frames made up: Opus PLC (late or lost without FEC) or FEC
    recovered_fec: int = 0  # lost frames decoded from the next packet's in-band FEC
    invalid: int = 0  # packets the decoder refused (concealed)
    accelerated: int = 0  # samples removed by accelerate
    expanded: int = 0  # samples added by preemptive expand
    merged: int = 0  # real frames spliced in after a late frame's concealment
    held: int = 0  # ticks played from the sync buffer without taking a packet


class SpeakerPlayout:
    """Not thread-safe: the mixer thread owns it, like the jitter buffer and decoder."""

    def __init__(
        self,
        jitter: JitterBuffer,
        decoder: OpusDecoder,
        *,
        time_stretch: bool = True,
        quiet_dbfs: float = -45.0,
        margin: float = 0.010,
        hysteresis: float = 0.005,
    ) -> None:
        self.jitter = jitter
        self.decoder = decoder
        self.time_stretch = time_stretch
        self.quiet_dbfs = quiet_dbfs
        # Target delay: the jitter buffer's percentile of arrival delays plus ``margin`` (a
        # frame is taken at a tick, up to 20 ms before its first sample plays); no change
        # within ``hysteresis`` of it, so the buffer does not stretch back and forth.
        self.margin = margin
        self.hysteresis = hysteresis
        self.stats = PlayoutStats()
        # The shape of one sample: () mono, (2,) stereo (the decoder's channels).
        self._channels: tuple[int, ...] = (2,) if decoder.channels == 2 else ()
        self._sync = self._zeros(0)
        # Media position of each buffered sample (extended sequence × 960 + offset), so the
        # delay at any tick can be told from the tick's time (benches, tests).
        self._positions = _EMPTY64
        self._owed = 0  # buffered samples of delay the jitter buffer gave back, to remove
        # While the signal is being extended by repeating its pitch: (the history extended,
        # its period, samples extended so far, how many of them stand in for lost frames'
        # slots; the others were played while the stream was late, and added delay).
        self._late: tuple[np.ndarray, float, int, int] | None = None
        self._settle = 0  # ticks left without time-stretching after a concealment
        # After a lost frame's extension: (its history, period, its index at the buffer's end).
        self._source: tuple[np.ndarray, float, int] | None = None
        self._history = self._zeros(_HISTORY)  # the last samples played
        self._quiet = True  # whole-frame mode: the last frame was below the talk threshold
        self._scratch = np.zeros((FRAME_SAMPLES, *self._channels), dtype=np.float32)
        # The media position (samples) of the first sample of the last frame returned.
        self.position: int | None = None

    @property
    def buffered_samples(self) -> int:
        return len(self._sync)

    def reset(self) -> None:
        """Forget the buffered samples (a new stream, a mute, a demotion)."""
        self._sync = self._zeros(0)
        self._positions = _EMPTY64
        self._owed = 0
        self._late = None
        self._settle = 0
        self._source = None
        self._history = self._zeros(_HISTORY)
        self._quiet = True
        self.position = None

    def _zeros(self, count: int) -> np.ndarray:
        return np.zeros((count, *self._channels), dtype=np.int16)

    def next_frame(self, now: float | None = None) -> np.ndarray | None:
        """The speaker's 960 samples for this tick ((960, 2) in stereo), or None when they
        contribute nothing."""
        if not self.time_stretch:
            return self._next_whole_frame(now)
        jitter = self.jitter
        if len(self._sync) < FRAME_SAMPLES:
            item = jitter.pop(now)
            if item is Playout.NOTHING:
                if not len(self._sync):
                    self._late = None
                    self.position = None
                    return None
                # The stream stopped mid-frame (a TSM remainder): play it out, then silence.
                missing = FRAME_SAMPLES - len(self._sync)
                self._append(self._zeros(missing), self._next_positions(missing))
                self._late = None
            else:
                self._take(item)
        else:
            self.stats.held += 1
        self._adapt(now)
        out = self._sync[:FRAME_SAMPLES]
        self.position = int(self._positions[0])
        self._sync = self._sync[FRAME_SAMPLES:]
        self._positions = self._positions[FRAME_SAMPLES:]
        self._owed = min(self._owed, len(self._sync))
        self._history = np.concatenate((self._history[FRAME_SAMPLES:], out))
        return out

    # -- time-stretching path ----------------------------------------------------------------

    def _take(self, item: bytes | Playout) -> None:
        """Decode the popped item into the sync buffer (normal, expand or merge)."""
        jitter = self.jitter
        slot = jitter.last_slot * FRAME_SAMPLES
        if item is Playout.CONCEAL:
            if jitter.last_was_lost:
                self._conceal_lost(jitter.peek_next(), slot)
            else:
                self._expand_late()
            return
        pcm = self._decode(item)
        if pcm is not None:
            if self._late is not None:
                pcm = self._merge(pcm)
            elif self._source is not None:
                history, period, index = self._source
                self._source = (history, period, index + FRAME_SAMPLES)
            self._append(pcm, np.arange(slot, slot + FRAME_SAMPLES, dtype=np.int64))

    def _extension_source(self) -> tuple[np.ndarray, float, float]:
        """What a new extension repeats: (history, period, its correlation). Within a few
        ticks of a lost frame the decoder is still recovering, and its output is no model of
        the signal (quiet, off in period): the last extension goes on from where the stream
        is now instead."""
        if self._source is not None and self._settle:
            history, period, index = self._source
            return tsm.extend(history, period, index - _HISTORY, _HISTORY), period, 1.0
        history = np.concatenate((self._history, self._sync))[-_HISTORY:]
        period, correlation = tsm.period_before_end(history)
        return history, period, correlation

    def _decode(self, payload: bytes) -> np.ndarray | None:
        try:
            pcm = self.decoder.decode(payload)
        except CodecError:
            self.stats.invalid += 1
            self.stats.concealed += 1
            slot = self.jitter.last_slot * FRAME_SAMPLES
            pcm = self.decoder.conceal()
            self._append(pcm, np.arange(slot, slot + FRAME_SAMPLES, dtype=np.int64))
            return None
        self.stats.decodes += 1
        return pcm

    def _conceal_lost(self, following: bytes | None, slot: int) -> None:
        """A lost frame (playout moved past its slot): decode its in-band FEC copy if the next
        packet is here and has one. Otherwise Opus PLC runs (so the decoder knows of the
        loss), but a strongly periodic signal is continued by repeating its last pitch period
        instead, as NetEq's expand does: on a steady pitch SILK's PLC drifts (an error of
        45-80 % of a 440 Hz tone's energy in voip mode), the repetition stays in phase."""
        decoder = self.decoder
        self.stats.concealed += 1
        self._settle = _SETTLE_TICKS
        positions = np.arange(slot, slot + FRAME_SAMPLES, dtype=np.int64)
        if following is not None and decoder.has_fec(following):
            before = decoder.recovered_with_fec
            pcm = decoder.decode_fec(following)
            self.stats.recovered_fec += decoder.recovered_with_fec - before
        else:
            pcm = decoder.conceal()
            if self._late is None:
                history, period, correlation = self._extension_source()
                if period and correlation >= _PERIODIC:
                    self._late = (history, period, 0, 0)
            if self._late is not None:
                # In place of the lost frame, which keeps its slot in media time.
                history, period, done, covered = self._late
                pcm = tsm.extend(history, period, done, FRAME_SAMPLES) if period else pcm
                self._late = (history, period, done + FRAME_SAMPLES, covered + FRAME_SAMPLES)
                self._append(pcm, positions)
                return
        if self._late is not None:
            pcm = self._merge(pcm)
        self._append(pcm, positions)

    def _expand_late(self) -> None:
        """The stream is late (nothing buffered): play on by repeating the last pitch period
        of what was played (NetEq's expand), and keep the frame's slot, so the delay grows by
        a frame. Nothing was lost, so the decoder is not told: the late frame decodes as the
        continuation of the last one and joins the extension where their phases agree."""
        if self._late is None:
            history, period, correlation = self._extension_source()
            if period == 0 or correlation < tsm.MIN_CORRELATION:
                period = min(tsm.MAX_LAG, len(history))  # unvoiced: repeat the longest span
            self._late = (history, period, 0, 0)
        history, period, done, covered = self._late
        self.stats.concealed += 1
        if period == 0:
            pcm = self._zeros(FRAME_SAMPLES)
        else:
            pcm = tsm.extend(history, period, done, FRAME_SAMPLES)
            frames_done = done // FRAME_SAMPLES
            if frames_done >= 2:  # a longer stall: fade out rather than buzz
                pcm = (pcm * (0.5 ** (frames_done - 1))).astype(np.int16)
        self._late = (history, period, done + FRAME_SAMPLES, covered)
        self._append(pcm, self._held_positions(FRAME_SAMPLES))

    def _merge(self, pcm: np.ndarray) -> np.ndarray:
        """Before ``pcm``, the real frame after a late one's extension: extend on to the next
        whole period (so the delay grew by whole periods) and crossfade into ``pcm``."""
        history, period, done, covered = self._late
        self._late = None
        if period == 0:
            return pcm
        # The extension stood in for ``covered`` samples of media (lost frames' slots) and
        # played ``done``: extend on until the delay it added is a whole number of periods.
        added = done - covered
        extra = round(math.ceil(added / period - 1e-9) * period) - added if added > 0 else 0
        extra = max(0, extra)
        # After a lost frame the decoder takes a frame to recover (SILK's state was
        # concealed: the first frame comes out quiet and off in phase), so a periodic
        # extension hands over across that whole frame; after a late one it is continuous.
        fade = FRAME_SAMPLES if covered and period < tsm.MAX_LAG else _MERGE_FADE
        tail = tsm.extend(history, period, done, extra + fade)
        seam = tsm._crossfade(tail[extra:].astype(np.float64), pcm[:fade].astype(np.float64))
        pcm = np.concatenate((seam, pcm[fade:]))
        self._append(tail[:extra], self._held_positions(extra))
        # Where the extension would be at the end of the buffer, for one that starts before
        # the decoder has recovered (``_extension_source``).
        self._source = (history, period, done + extra + len(pcm)) if covered else None
        self.stats.merged += done > covered
        self._settle = _SETTLE_TICKS
        return pcm

    def _adapt(self, now: float | None) -> None:
        """Accelerate or preemptive expand when the delay is off its target."""
        jitter = self.jitter
        if not jitter.playing or not len(self._sync):
            return
        if now is None:
            # No clock: the jitter buffer's frame counts say when a frame of delay is owed.
            if jitter.frames_to_give_back and self._owed < tsm.MAX_LAG and self._pull(now):
                self._owed += FRAME_SAMPLES
            if self._owed >= tsm.MIN_LAG:
                self._owed -= self._accelerate(self._owed)
            return
        if self._settle:
            # A concealment or merge is in the buffer, and the decoder takes a frame or two to
            # settle after a loss: a period measured there would be wrong (NetEq, too, does
            # not accelerate right after an expand).
            self._settle -= 1
            if not self._settle:
                self._source = None
            return
        lag = jitter.lag(now, self._positions[0] / SAMPLE_RATE)
        if lag is None:
            return
        excess = lag - (jitter.jitter_seconds + self.margin)
        if excess > self.hysteresis:
            wanted = int(excess * SAMPLE_RATE)
            if len(self._sync) - FRAME_SAMPLES < min(wanted, FRAME_SAMPLES):
                self._pull(now)
            self._accelerate(wanted)
        elif excess < -self.hysteresis and len(self._sync) < 2 * FRAME_SAMPLES:
            self._expand()

    def _pull(self, now: float | None) -> bool:
        """Decode the next frame ahead of its tick, to have samples to accelerate over."""
        payload = self.jitter.pull(now)
        if payload is None:
            return False
        slot = self.jitter.last_slot * FRAME_SAMPLES
        pcm = self._decode(payload)
        if pcm is not None:
            self._append(pcm, np.arange(slot, slot + FRAME_SAMPLES, dtype=np.int64))
        return True

    def _accelerate(self, wanted: int) -> int:
        """Remove up to ``wanted`` samples by whole pitch periods; returns how many."""
        surplus = len(self._sync) - FRAME_SAMPLES
        if surplus < tsm.MIN_LAG or wanted < tsm.MIN_LAG:
            return 0
        stretch = tsm.accelerate(self._sync, min(wanted, surplus))
        if not stretch.change:
            return 0
        removed = -stretch.change
        self._sync = stretch.samples
        # The seam plays the later segment's samples: the earlier positions go.
        self._positions = self._positions[removed:]
        self.stats.accelerated += removed
        return removed

    def _expand(self) -> None:
        stretch = tsm.preemptive_expand(self._sync)
        if stretch.change:
            period = stretch.change
            self._sync = stretch.samples
            self._positions = np.insert(self._positions, period, self._positions[:period])
            self.stats.expanded += period

    def _append(self, pcm: np.ndarray, positions: np.ndarray) -> None:
        self._sync = np.concatenate((self._sync, pcm)) if len(self._sync) else pcm
        self._positions = (
            np.concatenate((self._positions, positions)) if len(self._positions) else positions
        )

    def _held_positions(self, count: int) -> np.ndarray:
        """Positions for samples that add delay (a late frame's extension): media time stands
        still at the last sample's while they play."""
        return np.full(count, self._last_position(), dtype=np.int64)

    def _next_positions(self, count: int) -> np.ndarray:
        """Positions for made-up samples: they continue the last buffered (or played) one."""
        last = self._last_position()
        return np.arange(last + 1, last + 1 + count, dtype=np.int64)

    def _last_position(self) -> int:
        """The media position of the last sample buffered, else played, else before the
        jitter buffer's current slot."""
        if len(self._positions):
            return int(self._positions[-1])
        if self.position is not None:
            return self.position + FRAME_SAMPLES - 1
        return self.jitter.last_slot * FRAME_SAMPLES - 1

    # -- whole-frame path (the bench's baseline) ---------------------------------------------

    def _next_whole_frame(self, now: float | None) -> np.ndarray | None:
        jitter = self.jitter
        item = jitter.pop(now)
        if item is Playout.NOTHING:
            self.position = None
            return None
        pcm = self._whole(item)
        level = frame_level_dbfs(pcm, self._scratch)
        if level < self.quiet_dbfs and self._quiet and jitter.frames_to_give_back:
            following = jitter.give_back(now)
            if following is not None:
                pcm = self._whole(following)
                level = frame_level_dbfs(pcm, self._scratch)
        self._quiet = level < self.quiet_dbfs
        return pcm

    def _whole(self, item: bytes | Playout) -> np.ndarray:
        slot = self.jitter.last_slot * FRAME_SAMPLES
        self.position = slot if self.position is None else max(slot, self.position)
        if item is Playout.CONCEAL:
            self.stats.concealed += 1
            return self.decoder.conceal()
        try:
            pcm = self.decoder.decode(item)
        except CodecError:
            self.stats.invalid += 1
            self.stats.concealed += 1
            return self.decoder.conceal()
        self.stats.decodes += 1
        return pcm
