"""Does recording slow the mixer's clock? Run: .venv/bin/python bench/bench_recorder.py

The real clock + mixer thread with 10 speakers (3 talking), as in bench_mixer.py section 3,
alternately without a recorder, with a ``MixRecorder`` attached (writing Ogg Opus to a
temporary directory), and with one whose recording is switched off and on every half second
(what the host's ``recording.set`` does through the media plane), in rounds of a few seconds
so machine noise hits all alike. Prints tick lateness and tick duration percentiles for each,
the ratios against "without", and the recorders' counters. The recorder only appends to a
queue on the mixer thread, so the ratios should stay near 1.

--seconds N: seconds of clock per condition (default 30); --quick: 4 s per condition.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
import threading
import time
from pathlib import Path

import av
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# Imported after the path fix, so the benchmark runs without installing the project.
from bench_mixer import CHOSEN, SPEAKERS, TALKING, percentile, speaker_packets, start_feeder

from spaces.audio import FRAME_SECONDS, MixerRunner, MonotonicClock, RoomMixer
from spaces.audio.recorder import MixRecorder, RecorderStats


def toggle_recording(recorder: MixRecorder, stop: threading.Event, every: float = 0.5) -> None:
    """Recording off and on, as the media plane does on ``R`` messages (another thread)."""
    while not stop.wait(every):
        if recorder.recording:
            recorder.pause()
        else:
            recorder.resume()


def run_round(
    seconds: float, streams: list[list[bytes]], record_to: Path | None, *, toggle: bool = False
) -> tuple[list[float], list[float], RecorderStats | None]:
    """One stretch of real-clock mixing; returns lateness (ms), tick durations (ms), stats."""
    lateness: list[float] = []
    durations: list[float] = []
    runner = MixerRunner(
        MonotonicClock(), on_timing=lambda timing: lateness.append(timing.lateness * 1000)
    )
    mixer = RoomMixer(opus=CHOSEN)
    for index in range(SPEAKERS):
        mixer.add_speaker(index)
    untimed_tick = mixer.tick

    def timed_tick(now=None):
        start = time.perf_counter()
        result = untimed_tick(now)
        durations.append((time.perf_counter() - start) * 1000)
        return result

    mixer.tick = timed_tick  # the runner calls it; the recorder's observers run inside
    recorder = None
    if record_to is not None:
        recorder = MixRecorder(record_to)
        mixer.mix_observers.append(recorder.on_mix)
        mixer.levels_observers.append(recorder.on_levels)
    runner.add_room("bench", mixer)

    stop = threading.Event()
    feeder = start_feeder([mixer], streams, stop)
    toggler = None
    if recorder is not None and toggle:
        toggler = threading.Thread(target=toggle_recording, args=(recorder, stop), daemon=True)
        toggler.start()
    runner.start()
    stop.wait(seconds)
    runner.stop()
    stop.set()
    feeder.join()
    if toggler is not None:
        toggler.join()
    stats = None
    if recorder is not None:
        recorder.close()
        stats = recorder.stats()
    return lateness, durations, stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="clock time per condition")
    parser.add_argument("--quick", action="store_true", help="4 s per condition")
    args = parser.parse_args()
    seconds = 4.0 if args.quick else args.seconds
    round_seconds = 2.0 if args.quick else 5.0
    rounds = max(1, round(seconds / round_seconds))

    command = shlex.join([".venv/bin/python", "bench/bench_recorder.py", *sys.argv[1:]])
    print(f"Recorder vs mixer clock — PyAV {av.__version__}, numpy {np.__version__}")
    print(f"command: {command}")
    print(
        f"{SPEAKERS} speakers ({TALKING} talking), real clock, {rounds} x {round_seconds:g} s "
        f"per condition, alternating\n"
    )
    streams = speaker_packets(frames=500, settings=CHOSEN)
    conditions = ("without", "with", "toggled")
    results: dict[str, tuple[list[float], list[float]]] = {c: ([], []) for c in conditions}
    totals: list[RecorderStats] = []
    file_bytes = 0
    with tempfile.TemporaryDirectory() as directory:
        for index in range(rounds):
            for condition in conditions:
                path = None
                if condition != "without":
                    path = Path(directory) / f"round{index}-{condition}.ogg"
                lateness, durations, stats = run_round(
                    round_seconds, streams, path, toggle=condition == "toggled"
                )
                results[condition][0].extend(lateness)
                results[condition][1].extend(durations)
                if stats is not None:
                    totals.append(stats)
                    file_bytes += path.stat().st_size

    print("   lateness: how late each tick started; tick: mixer.tick() incl. observers")
    header = ("recorder", "ticks", "late p50", "p95", "p99", "tick p50", "p99")
    print("   " + " ".join(f"{name:>9}" for name in header) + "  (ms)")
    for condition, (lateness, durations) in results.items():
        figures = [percentile(lateness, q) for q in (50, 95, 99)]
        figures += [percentile(durations, q) for q in (50, 99)]
        row = " ".join(f"{figure:>9.3f}" for figure in figures)
        print(f"   {condition:>9} {len(lateness):>9} {row}")
    late_off, tick_off = results["without"]
    for condition in conditions[1:]:
        late_on, tick_on = results[condition]
        for q in (50, 95, 99):
            print(
                f"   ratio {condition}/without: lateness p{q} "
                f"{percentile(late_on, q) / percentile(late_off, q):.2f}, tick duration p{q} "
                f"{percentile(tick_on, q) / percentile(tick_off, q):.2f}"
            )
    written = sum(stats.packets_written for stats in totals)
    print(
        f"   recorders: packets written {written} ({written * FRAME_SECONDS:.1f} s), cut while "
        f"off {sum(stats.packets_paused for stats in totals)}, dropped "
        f"{sum(stats.packets_dropped for stats in totals)}, write errors "
        f"{sum(stats.write_errors for stats in totals)}, Ogg file bytes {file_bytes} "
        f"({file_bytes * 8 / max(written * FRAME_SECONDS, 1e-9) / 1000:.1f} kb/s)"
    )


if __name__ == "__main__":
    main()
