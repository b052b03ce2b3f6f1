"""Speaking levels: per-frame loudness, talk detection with hangover, and the ~5 Hz level event."""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping
from dataclasses import dataclass

import numpy as np

SILENCE_DBFS = -100.0  # what digital silence reports, instead of -inf
# The 0..1 meter maps this range linearly; quieter is 0 (room tone), 0 dBFS is 1.
METER_FLOOR_DBFS = -60.0
_FULL_SCALE_SQUARED = 32768.0 * 32768.0


def frame_level_dbfs(pcm: np.ndarray, scratch: np.ndarray | None = None) -> float:
    """RMS level of an int16 frame in dBFS (a full-scale square wave is 0 dBFS), over all its
    samples: a stereo frame (960, 2) is as loud as the mean power of its two channels.

    ``scratch`` (float32, same shape) avoids an allocation on the mixer's hot path.
    """
    if scratch is None:
        scratch = pcm.astype(np.float32)
    else:
        np.copyto(scratch, pcm)
    # vdot flattens (a stereo frame is one vector of samples) at no cost for a mono one.
    mean_square = float(np.vdot(scratch, scratch)) / scratch.size
    if mean_square <= 0.0:
        return SILENCE_DBFS
    return max(SILENCE_DBFS, 10.0 * math.log10(mean_square / _FULL_SCALE_SQUARED))


def meter_from_dbfs(dbfs: float) -> float:
    """0..1 for a UI meter: linear in dB between ``METER_FLOOR_DBFS`` and 0 dBFS."""
    return min(1.0, max(0.0, (dbfs - METER_FLOOR_DBFS) / -METER_FLOOR_DBFS))


@dataclass(slots=True)
class TalkDetector:
    """Talking = level above the threshold, held for ``hangover_ticks`` after it drops.

    The hangover bridges the short pauses between words, so neither the speaking indicator
    nor the mixer's gate flickers; onset is immediate so the first syllable is not clipped.
    """

    # -45 dBFS sits well above a quiet room through a laptop mic with noise suppression
    # (around -60) and below soft speech (around -35).
    threshold_dbfs: float = -45.0
    hangover_ticks: int = 15  # 300 ms
    _remaining: int = 0

    def update(self, level_dbfs: float) -> bool:
        if level_dbfs >= self.threshold_dbfs:
            self._remaining = self.hangover_ticks
            return True
        if self._remaining > 0:
            self._remaining -= 1
            return True
        return False

    def reset(self) -> None:
        self._remaining = 0


@dataclass(frozen=True, slots=True)
class SpeakerLevel:
    # Loudest frame of the window, so a short word still moves the meter.
    dbfs: float
    meter: float  # 0..1
    talking: bool


@dataclass(frozen=True, slots=True)
class LevelsEvent:
    """Published every ``levels_every_ticks`` ticks (10 = 200 ms = 5 Hz) for speaking indicators."""

    tick: int
    levels: Mapping[Hashable, SpeakerLevel]
    talking: frozenset[Hashable]
