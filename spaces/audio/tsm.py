"""Time-scale modification for the jitter buffer: WSOLA-style, pitch-synchronous (NetEq).

A playout buffer that must shed or gain delay inside sound cannot drop or repeat a whole
20 ms frame: 20 ms is not a whole number of pitch periods, so the waveform jumps in phase (a
440 Hz tone has 8.8 periods in a frame), which is a click and, over a stream, decorrelates
it from its source. Instead, as WebRTC NetEq's ``Accelerate`` and ``PreemptiveExpand`` do
(``time_stretch.cc``), the buffer removes or repeats **whole pitch periods** found by
normalized cross-correlation, and overlap-adds the seam with a short crossfade, so the
signal stays phase-continuous and only its duration changes.

* :func:`accelerate`: remove ``k`` periods (as many as ``max_remove`` allows): the output is
  ``x[:s]``, a crossfade from ``x[s:s+n]`` to ``x[s+D:s+D+n]``, then ``x[s+D+n:]``, with ``D``
  a multiple of the period. Both ends of the seam continue their neighbours sample for sample.
* :func:`preemptive_expand`: repeat one period: ``x[:s+P]``, a crossfade from ``x[s+P:s+2P]``
  to ``x[s:s+P]``, then ``x[s+P:]``.
* Both act only where it is inaudible: the correlation at the chosen lag is at least
  ``min_correlation`` (voiced, periodic sound), or the segment is quiet (below ``quiet_rms``:
  anything goes there). Otherwise they return the input unchanged and the caller tries again
  on a later tick, as NetEq falls back to "normal".
* :func:`merge_offset`: after a concealment the next real frame is spliced into the
  concealed signal where their waveforms line up (NetEq ``Merge``), so a late frame does not
  jump in phase either.

All functions take and return int16 numpy arrays, mono (samples,) or stereo (samples, 2). A
stereo signal's correlation at a lag is the lower of its two channels' (a channel quieter
than ``QUIET_RMS`` is left out): a cut must be inaudible on both sides, so a steady tone on
one side cannot license a cut through a chord on the other, while a silent side is no
obstacle. Every edit is applied to both channels at the same sample. They do the correlation
search in numpy (one FFT-free sliding dot product over a few hundred lags); they run only on
ticks whose buffer needs adapting.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .codec import SAMPLE_RATE

MIN_LAG = SAMPLE_RATE // 500  # 2 ms: 500 Hz, above any voice's fundamental
MAX_LAG = SAMPLE_RATE * 15 // 1000  # 15 ms: 67 Hz, below a low male voice
CORRELATION_WINDOW = SAMPLE_RATE * 5 // 1000  # 5 ms compared at each lag
MIN_CROSSFADE = SAMPLE_RATE // 1000  # 1 ms: a seam shorter than that clicks
MIN_CORRELATION = 0.9  # NetEq's accelerate threshold (kCorrelationThreshold, Q14 14746)
STEADY_CORRELATION = 0.99  # above it the sound is a steady pitch (a tone, a held note)
QUIET_RMS = 100.0  # about -50 dBFS: below the talk threshold, a seam cannot be heard


@dataclass(frozen=True, slots=True)
class Stretch:
    """What a stretch did: the new signal and how many samples it added (<0: removed)."""

    samples: np.ndarray
    change: int
    correlation: float


def _sliding_terms(
    span: np.ndarray, reference: np.ndarray, window: int
) -> tuple[np.ndarray, np.ndarray, float]:
    """For each offset of ``reference`` into ``span``: their dot product and the energy of
    that window of ``span``; and the reference's energy. Stereo: summed over the channels."""
    if span.ndim == 2:
        terms = [_sliding_terms(span[:, c], reference[:, c], window) for c in range(2)]
        return terms[0][0] + terms[1][0], terms[0][1] + terms[1][1], terms[0][2] + terms[1][2]
    dots = np.correlate(span, reference, mode="valid")
    squares = np.concatenate(([0.0], np.cumsum(span * span)))
    return dots, squares[window:] - squares[:-window], float(reference @ reference)


def _normalized_correlation(x: np.ndarray, start: int, lags: np.ndarray, window: int) -> np.ndarray:
    """corr(x[start:start+window], x[start+lag:start+lag+window]) for each lag (float64).
    Stereo: the lower of the channels' correlations, among those not quiet."""
    if x.ndim == 2:
        reference = x[start : start + window]
        loud = [c for c in range(2) if _rms(reference[:, c]) >= QUIET_RMS] or [0, 1]
        return np.minimum.reduce(
            [_normalized_correlation(x[:, c], start, lags, window) for c in loud]
        )
    reference = x[start : start + window]
    span = x[start + int(lags[0]) : start + int(lags[-1]) + window]
    dots, energies, ref_energy = _sliding_terms(span, reference, window)
    denominator = np.sqrt(np.maximum(energies * ref_energy, 1e-9))
    return dots / denominator


def find_period(
    x: np.ndarray, start: int = 0, *, max_lag: int = MAX_LAG, fractional: bool = False
) -> tuple[float, float]:
    """The pitch period (samples) of ``x`` at ``start`` and its normalized correlation.

    The shortest lag whose correlation is within 2 % of the best one: a tone correlates as well
    at two periods as at one, and the fundamental is what the multiples are built from.
    Returns (0, 0.0) when ``x`` is too short to compare one lag. ``fractional``: refine the
    lag between samples (a parabola through the peak), for multiples of it to stay in phase.
    """
    window = CORRELATION_WINDOW
    max_lag = min(max_lag, len(x) - start - window)
    if max_lag < MIN_LAG:
        return 0, 0.0
    signal = x.astype(np.float64)
    lags = np.arange(MIN_LAG, max_lag + 1)
    correlation = _normalized_correlation(signal, start, lags, window)
    best = float(correlation.max())
    index = int(np.argmax(correlation >= best - 0.02))
    while index + 1 < len(correlation) and correlation[index + 1] >= correlation[index]:
        index += 1  # up to that peak's top, not its flank
    period: float = int(lags[index])
    if fractional and 0 < index < len(correlation) - 1:
        before, peak, after = correlation[index - 1 : index + 2]
        curvature = before - 2 * peak + after
        if curvature < 0:
            period += 0.5 * (before - after) / curvature
    return period, float(correlation[index])


def _rms(x: np.ndarray) -> float:
    if len(x) == 0:
        return 0.0
    values = x.astype(np.float64).ravel()
    return float(np.sqrt(values @ values / len(values)))


def _crossfade(fading_out: np.ndarray, fading_in: np.ndarray) -> np.ndarray:
    n = len(fading_out)
    ramp = (np.arange(n, dtype=np.float64) + 0.5) / n
    if fading_out.ndim == 2:
        ramp = ramp[:, None]  # the same ramp on both channels
    mixed = fading_out * (1.0 - ramp) + fading_in * ramp
    return np.clip(np.rint(mixed), -32768, 32767).astype(np.int16)


def accelerate(
    x: np.ndarray,
    max_remove: int,
    *,
    start: int = 0,
    min_correlation: float = MIN_CORRELATION,
    quiet_rms: float = QUIET_RMS,
) -> Stretch:
    """Remove whole pitch periods from ``x`` after ``start``, at most ``max_remove`` samples.

    Needs ``x`` to hold at least the removed span plus a crossfade after ``start``.
    """
    unchanged = Stretch(x, 0, 0.0)
    room = len(x) - start
    if max_remove < MIN_LAG or room < MIN_LAG + CORRELATION_WINDOW:
        return unchanged
    if _rms(x[start : start + min(room, max_remove + CORRELATION_WINDOW)]) < quiet_rms:
        # Quiet: no pitch to keep. Cut what is owed, with a crossfade against a stray click.
        removed = min(max_remove, room - MIN_CROSSFADE)
        return _cut(x, start, removed, MIN_CROSSFADE, 1.0)
    period, correlation = find_period(x, start, fractional=True)
    if period == 0 or correlation < min_correlation:
        return unchanged
    # As many periods as are owed and fit, each multiple checked on the signal itself: a
    # voice's period drifts, so the lag is refined (by a sample or two) around every multiple.
    signal = x.astype(np.float64)
    fade = max(round(period), MIN_CROSSFADE)
    best: tuple[int, float] | None = None
    most = max(1, int(max_remove // period))
    if correlation < STEADY_CORRELATION:
        # A voice changes from period to period: cutting many at once smears a syllable.
        # Like NetEq's accelerate, take a couple a tick; a steady tone can lose them all.
        most = min(most, 2)
    for periods in range(most, 0, -1):
        centre = round(periods * period)
        spread = 2
        low = max(MIN_LAG, centre - spread)
        high = min(centre + spread, max_remove, room - max(fade, CORRELATION_WINDOW))
        if high < low:
            continue
        lags = np.arange(low, high + 1)
        refined = _normalized_correlation(signal, start, lags, max(fade, CORRELATION_WINDOW))
        index = int(np.argmax(refined))
        if refined[index] >= min_correlation:
            best = (int(lags[index]), float(refined[index]))
            break
    if best is None:
        return unchanged
    return _cut(x, start, best[0], fade, best[1])


def _cut(x: np.ndarray, start: int, removed: int, fade: int, correlation: float) -> Stretch:
    fade = min(fade, len(x) - start - removed)
    if removed <= 0 or fade <= 0:
        return Stretch(x, 0, 0.0)
    seam = _crossfade(
        x[start : start + fade].astype(np.float64),
        x[start + removed : start + removed + fade].astype(np.float64),
    )
    out = np.concatenate((x[:start], seam, x[start + removed + fade :]))
    return Stretch(out, -removed, correlation)


def preemptive_expand(
    x: np.ndarray,
    *,
    start: int = 0,
    min_correlation: float = MIN_CORRELATION,
    quiet_rms: float = QUIET_RMS,
) -> Stretch:
    """Repeat one pitch period of ``x`` after ``start`` (lengthen it by that period)."""
    unchanged = Stretch(x, 0, 0.0)
    if len(x) - start < 2 * MIN_LAG + CORRELATION_WINDOW:
        return unchanged
    span = min(len(x) - start, 2 * MAX_LAG)
    if _rms(x[start : start + span]) < quiet_rms:
        # Quiet: a repeated stretch of near-silence is inaudible; no search needed (a
        # silent speaker is the common case, and the search is the cost).
        period, correlation = min(MAX_LAG, (len(x) - start) // 2), 1.0
    else:
        found, correlation = find_period(x, start, max_lag=(len(x) - start) // 2)
        period = int(found)
        if period == 0 or correlation < min_correlation:
            return unchanged
    s, p = start, period
    seam = _crossfade(x[s + p : s + 2 * p].astype(np.float64), x[s : s + p].astype(np.float64))
    out = np.concatenate((x[: s + p], seam, x[s + p :]))
    return Stretch(out, p, correlation)


def period_before_end(history: np.ndarray) -> tuple[float, float]:
    """The pitch period (fractional) of the end of ``history``, compared backwards from its
    last sample, and its correlation."""
    return find_period(history[::-1].copy(), fractional=True)


def extend(history: np.ndarray, period: float, start: int, count: int) -> np.ndarray:
    """Samples ``start`` .. ``start + count`` after the end of ``history``, continuing it by
    repeating its last ``period`` samples (NetEq's expand for a periodic signal). Sample
    ``period × k`` of the extension is the one after the end of the history again, so a real
    frame that continues the history joins it without a phase jump there."""
    # A fractional period is followed exactly by reading between samples (linear
    # interpolation: at voice frequencies, far below Nyquist, its error is inaudible).
    where = len(history) - period + np.mod(np.arange(start, start + count), period)
    grid = np.arange(len(history))
    if history.ndim == 1:
        samples = np.interp(where, grid, history.astype(np.float64))
    else:
        samples = np.stack([np.interp(where, grid, channel) for channel in history.T], axis=1)
    return np.clip(np.rint(samples), -32768, 32767).astype(np.int16)


def merge_offset(continuation: np.ndarray, following: np.ndarray, *, window: int) -> int:
    """Where ``following`` (a real frame after a concealment) lines up with ``continuation``
    (what the concealment would have played next): the offset into ``continuation`` at which
    ``following[:window]`` matches best, searched over one longest pitch period."""
    span = min(MAX_LAG, len(continuation) - window)
    if span <= 0 or len(following) < window:
        return 0
    signal = continuation.astype(np.float64)
    reference = following[:window].astype(np.float64)
    dots, energies, ref_energy = _sliding_terms(signal[: span + window], reference, window)
    if ref_energy < (QUIET_RMS**2) * reference.size:
        return 0
    correlation = dots / np.sqrt(np.maximum(energies * ref_energy, 1e-9))
    return int(np.argmax(correlation))
