"""A lossy, jittery uplink through the engine (issue #16, item 3). Run:
.venv/bin/python bench/bench_impairment.py [--seeds 5] [--seconds 8]

Setup: one speaker sends 20 ms Opus frames; each frame is lost with 5 % probability, leaves
the sender 0–40 ms late (uniform), and 2 % of frames arrive just after the next one (on top of
the reordering the jitter causes). The room's real ``RoomMixer`` (jitter buffer, decoder,
playout, mix, encode) ticks every 20 ms, a tick phase after the sender's clock, and a listener
decodes the shared mix packets with PyAV. Each seed runs twice in the same process: with the
time-stretching playout and with the whole-frame adaptation it replaced
(``RoomMixer(time_stretch=False)``), the baseline.

Figures (all measured on the listener's decoded audio, except the delay and the counts):

* **tone corr**: an 8 s 440 Hz tone; the normalized correlation of everything the listener
  heard (from 0.5 s after the first sound to the end) with the source, at the single best lag.
  A phase jump (a frame inserted or skipped: 20 ms is 8.8 periods of 440 Hz) decorrelates
  everything after it.
* **glitchy**: % of 10 ms windows of that span whose residual against the source, best
  aligned within 40 ms of that lag and after a least-squares gain, exceeds 10 % of the
  window's energy (SNR below 10 dB): a click, a smeared seam, a concealment that drifts.
* **delay p50/p95**: each tick, the time from when the frame whose sample starts the tick was
  sent (without its jitter) to the tick: network jitter plus buffering (the codecs' and
  the sender's 20 ms of framing are not in it). From ``RoomMixer.playout_position``.
* **late / merged / skips**: ticks the stream was late (nothing to play), late episodes whose
  frame was spliced back in at whole pitch periods (time-stretching only), and slots skipped
  to give delay back (whole-frame only). Whole-frame inserts + skips in the summary: the
  baseline's late ticks (each keeps a frame of PLC in the stream) plus its skips; with
  time-stretching a late tick is a pitch extension, so only skips would count (none).
* **lost / fec**: frames lost on the uplink, and how many were rebuilt from in-band FEC (the
  sender turns it on at the server's first ``uplink.quality``; libopus codes it only where
  it affords it, so few are).
* **speech ratio**: speech (espeak-ng if installed, else ``speech_like`` from bench_mixer)
  through the impaired uplink against the same speech through a clean one, both measured as
  the mean best-lag correlation of 200 ms segments (a delay change is no error for speech,
  a garbled syllable is).

Targets: tone corr ≥ 0.95, glitchy ≤ 2 %, delay p95 ≤ 80 ms, speech ratio ≥ 0.9.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


from spaces.audio import FRAME_SAMPLES, FRAME_SECONDS, SAMPLE_RATE
from spaces.audio.codec import OpusDecoder, OpusEncoder, OpusSettings
from spaces.audio.mixer import RoomMixer
from tests.spaces.audio.signals import espeak_installed, speech_like
from tests.spaces.audio.signals import espeak_speech as spoken

LOSS = 0.05
JITTER = 0.040
SWAP = 0.02
TICK_PHASE = 0.007  # the room's ticks fall this long after the sender's frame boundaries
WARMUP_SECONDS = 0.5


@dataclass
class Run:
    heard: np.ndarray
    delays: list[float]
    inserts: int
    merged: int
    skips: int
    fec: int
    lost: int
    fec_on_at: float | None


def impaired_arrivals(frames: int, seed: int, *, impaired: bool) -> list[tuple[float, int]]:
    """(arrival time, sequence) in arrival order; frame n leaves the sender at (n + 1) × 20 ms."""
    rng = np.random.default_rng(seed)
    sent = (np.arange(frames) + 1) * FRAME_SECONDS
    if not impaired:
        return [(float(t), n) for n, t in enumerate(sent)]
    arrival = sent + rng.uniform(0, JITTER, frames)
    for n in range(frames - 1):
        if rng.random() < SWAP:
            # Frame n comes just after frame n + 1 (never before it was sent).
            arrival[n] = max(arrival[n], arrival[n + 1]) + 0.001
    kept = [n for n in range(frames) if rng.random() >= LOSS]
    return sorted((float(arrival[n]), n) for n in kept)


def run(signal: np.ndarray, seed: int, *, impaired: bool, time_stretch: bool) -> Run:
    frames = len(signal) // FRAME_SAMPLES
    arrivals = impaired_arrivals(frames, seed, impaired=impaired)
    # The sender encodes each frame as it leaves, with in-band FEC once the server reported
    # loss (what space_client and the browser do on ``uplink.quality``).
    encoder, fec_percent = OpusEncoder(), 0
    fec_on_at = None
    packets: list[bytes] = []
    mixer = RoomMixer(time_stretch=time_stretch)
    mixer.add_speaker("a")
    listener = OpusDecoder(use_libopus=False)
    heard, delays = [], []
    index = 0
    ticks = frames + int(0.5 / FRAME_SECONDS)
    for tick in range(ticks):
        now = tick * FRAME_SECONDS + TICK_PHASE
        while len(packets) < frames and (len(packets) + 1) * FRAME_SECONDS <= now:
            n = len(packets)
            packets.append(encoder.encode(signal[n * FRAME_SAMPLES : (n + 1) * FRAME_SAMPLES]))
        while index < len(arrivals) and arrivals[index][0] <= now:
            arrival, n = arrivals[index]
            mixer.push("a", n, packets[n], arrival)
            index += 1
        result = mixer.tick(now)
        heard.append(listener.decode(result.shared_packet))
        if result.uplink and "a" in result.uplink:
            reported = result.uplink["a"].loss_percent
            if (reported > 0) != (fec_percent > 0):
                fec_percent = reported
                fec_on_at = now if fec_on_at is None and reported else fec_on_at
                encoder = OpusEncoder(OpusSettings().expecting_loss(reported))
        position = mixer.playout_position("a")
        if position is not None and result.talking:
            sent = (position / FRAME_SAMPLES + 1) * FRAME_SECONDS
            delays.append(now - sent)
    jitter, stats = mixer.speaker_stats("a")
    late = jitter.starved
    return Run(
        heard=np.concatenate(heard),
        delays=delays,
        inserts=late,
        merged=stats.merged,
        skips=jitter.trimmed if not time_stretch else 0,
        fec=stats.recovered_fec,
        lost=jitter.lost,
        fec_on_at=fec_on_at,
    )


def _span(heard: np.ndarray, length: int) -> np.ndarray:
    loud = np.flatnonzero(np.abs(heard) > 1000)
    start = (loud[0] if len(loud) else 0) + int(WARMUP_SECONDS * SAMPLE_RATE)
    return heard[start : start + length].astype(np.float64)


def best_lag(part: np.ndarray, source: np.ndarray, max_lag: int) -> tuple[int, float]:
    """The lag into ``source`` where ``part`` correlates best (normalized), via FFT."""
    n = len(part)
    size = 1 << int(np.ceil(np.log2(n + max_lag + n)))
    segment = source[: n + max_lag]
    dots = np.fft.irfft(np.fft.rfft(segment, size) * np.conj(np.fft.rfft(part, size)), size)
    dots = dots[: max_lag + 1]
    squares = np.concatenate(([0.0], np.cumsum(segment * segment)))
    energies = squares[n : n + max_lag + 1] - squares[: max_lag + 1]
    correlation = dots / np.sqrt(np.maximum(energies * float(part @ part), 1e-9))
    lag = int(np.argmax(correlation))
    return lag, float(correlation[lag])


def tone_figures(heard: np.ndarray, source: np.ndarray) -> tuple[float, float]:
    source = source.astype(np.float64)
    length = len(source) - int(1.5 * SAMPLE_RATE)
    part = _span(heard, length)
    lag, correlation = best_lag(part, source, int(1.0 * SAMPLE_RATE))
    window = SAMPLE_RATE // 100
    glitchy = 0
    windows = len(part) // window
    search = 2 * FRAME_SAMPLES
    for w in range(windows):
        h = part[w * window : (w + 1) * window]
        # The source best aligned with this window, within 20 ms of the global lag.
        low = max(0, lag + w * window - search)
        local, _ = best_lag(h, source[low:], 2 * search)
        s = source[low + local : low + local + window]
        gain = float(h @ s) / max(float(s @ s), 1e-9)
        residual = h - gain * s
        if float(residual @ residual) > 0.1 * max(float(h @ h), float(s @ s) * gain * gain):
            glitchy += 1
    return correlation, 100.0 * glitchy / max(windows, 1)


def speech_score(heard: np.ndarray, source: np.ndarray) -> float:
    source = source.astype(np.float64)
    part = _span(heard, len(source) - int(1.5 * SAMPLE_RATE))
    segment = SAMPLE_RATE // 5
    scores = []
    for start in range(0, len(part) - segment, segment):
        piece = part[start : start + segment]
        if float(piece @ piece) < segment * 300.0**2:
            continue  # a pause: nothing to compare
        # The source around where this piece should be (delay ≤ 1 s).
        _, correlation = best_lag(piece, source[start : start + segment + SAMPLE_RATE], SAMPLE_RATE)
        scores.append(correlation)
    return float(np.mean(scores)) if scores else 0.0


def espeak_speech(seconds: float) -> np.ndarray | None:
    """Synthesized English speech at 48 kHz, or None without espeak-ng."""
    if not espeak_installed():
        return None
    text = (
        "Welcome to the space. Tonight we talk about building live audio that holds up on real "
        "networks, with loss and jitter, and about how a jitter buffer stretches time. "
    ) * 3
    samples = spoken(text)[: int(seconds * SAMPLE_RATE)].astype(np.float64)
    scale = 8000.0 / max(1.0, float(np.percentile(np.abs(samples), 99)))
    return np.clip(samples * scale, -32768, 32767).astype(np.int16)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--quick", action="store_true", help="one seed, 2 s (a smoke run)")
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.seconds = 1, 2.0
    frames = int(args.seconds / FRAME_SECONDS)
    t = np.arange(frames * FRAME_SAMPLES) / SAMPLE_RATE
    tone = np.round(8000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)
    speech = espeak_speech(args.seconds)
    speech_name = "espeak-ng"
    if speech is None or len(speech) < frames * FRAME_SAMPLES:
        speech, speech_name = speech_like(frames, pitch=140, seed=1), "speech_like"
    speech = speech[: frames * FRAME_SAMPLES]

    print(
        f"impairment: {LOSS:.0%} loss, 0-{JITTER * 1000:.0f} ms uniform jitter, {SWAP:.0%} "
        f"of frames arrive just after the next one; {args.seconds:.0f} s; speech: {speech_name}"
    )
    header = (
        f"{'mode':<13}{'seed':>5}{'tone corr':>10}{'glitchy %':>10}{'delay p50':>10}"
        f"{'p95 ms':>8}{'late':>8}{'merged':>7}{'skips':>6}{'lost':>5}{'fec':>5}{'speech':>8}"
    )
    print(header)
    totals: dict[bool, dict[str, list[float]]] = {
        mode: {"corr": [], "glitchy": [], "delays": [], "ratio": [], "ops": []}
        for mode in (True, False)
    }
    for seed in range(args.seeds):
        for time_stretch in (True, False):
            name = "time-stretch" if time_stretch else "whole-frame"
            tone_run = run(tone, seed, impaired=True, time_stretch=time_stretch)
            correlation, glitchy = tone_figures(tone_run.heard, tone)
            clean = run(speech, seed, impaired=False, time_stretch=time_stretch)
            lossy = run(speech, seed, impaired=True, time_stretch=time_stretch)
            ratio = speech_score(lossy.heard, speech) / speech_score(clean.heard, speech)
            p50, p95 = np.percentile(np.array(tone_run.delays) * 1000, [50, 95])
            # Whole frames inserted or skipped: the baseline keeps a late frame's PLC in the
            # stream (a frame inserted) and skips slots; the time-stretching playout extends
            # by pitch periods while late and splices the frame in at whole periods.
            whole_frame_ops = tone_run.skips + (0 if time_stretch else tone_run.inserts)
            print(
                f"{name:<13}{seed:>5}{correlation:>10.3f}{glitchy:>10.1f}{p50:>10.0f}{p95:>8.0f}"
                f"{tone_run.inserts:>8}{tone_run.merged:>7}{tone_run.skips:>6}"
                f"{tone_run.lost:>5}{tone_run.fec:>5}{ratio:>8.3f}"
            )
            bucket = totals[time_stretch]
            bucket["corr"].append(correlation)
            bucket["glitchy"].append(glitchy)
            bucket["delays"].extend(tone_run.delays)
            bucket["ratio"].append(ratio)
            bucket["ops"].append(whole_frame_ops)

    print()
    for time_stretch in (True, False):
        bucket = totals[time_stretch]
        p95 = float(np.percentile(np.array(bucket["delays"]) * 1000, 95))
        name = "time-stretch" if time_stretch else "whole-frame (baseline)"
        print(
            f"{name}: tone corr min {min(bucket['corr']):.3f}, glitchy max "
            f"{max(bucket['glitchy']):.1f} %, delay p95 {p95:.0f} ms, speech ratio min "
            f"{min(bucket['ratio']):.3f}, whole-frame inserts + skips per run "
            f"{np.mean(bucket['ops']):.1f}"
        )
    ours, base = totals[True], totals[False]
    p95 = float(np.percentile(np.array(ours["delays"]) * 1000, 95))
    print()
    print(
        f"tone correlation >= 0.95 (worst seed {min(ours['corr']):.3f}): "
        f"{verdict(min(ours['corr']) >= 0.95)}"
    )
    print(
        f"glitchy windows <= 2 % (worst seed {max(ours['glitchy']):.1f} %): "
        f"{verdict(max(ours['glitchy']) <= 2.0)}"
    )
    print(f"delay p95 <= 80 ms ({p95:.0f} ms): {verdict(p95 <= 80)}")
    print(
        f"speech >= 0.9 x no-loss (worst seed {min(ours['ratio']):.3f}): "
        f"{verdict(min(ours['ratio']) >= 0.9)}"
    )
    print(
        f"against the baseline: tone corr {np.mean(ours['corr']):.3f} vs "
        f"{np.mean(base['corr']):.3f} (mean), glitchy {np.mean(ours['glitchy']):.1f} vs "
        f"{np.mean(base['glitchy']):.1f} %"
    )  # fmt: skip


if __name__ == "__main__":
    main()
