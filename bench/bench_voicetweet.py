"""Time voice-tweet processing of a 140 s upload against the same work done by the ffmpeg CLI.

    .venv/bin/python bench/bench_voicetweet.py [--repetitions N]

Both sides do the same job: decode a 140 s stereo WebM/Opus upload, downmix to 48 kHz mono,
measure integrated loudness (dual mono), then decode again and encode AAC-LC 64 kbit/s into a
faststart .m4a with the gain applied. The ffmpeg row runs two ``ffmpeg`` processes (an
``ebur128`` pass, then a ``volume`` + encode pass), which is how one would script it.
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.voicetweets import audiofiles
from voicetweets import audio

SECONDS = 140.0


def time_runs(run: Callable[[int], object], repetitions: int) -> list[float]:
    durations = []
    for repetition in range(repetitions):
        started = time.perf_counter()
        run(repetition)
        durations.append(time.perf_counter() - started)
    return durations


def ffmpeg_transcode(ffmpeg: str, source: Path, target: Path) -> float:
    """Loudness pass then encode pass with the CLI; returns the applied gain in dB."""
    downmix = f"aresample={audio.SAMPLE_RATE},aformat=channel_layouts=mono"
    measured = subprocess.run(
        [ffmpeg, "-nostdin", "-hide_banner", "-i", str(source),
         "-af", f"{downmix},ebur128=dualmono=true", "-f", "null", "-"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    loudness = float(re.findall(r"I:\s+(-?[\d.]+) LUFS", measured.stderr)[-1])
    gain_db = audio.TARGET_LOUDNESS_LUFS - loudness
    subprocess.run(
        [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i", str(source),
         "-af", f"{downmix},volume={gain_db:.2f}dB", "-c:a", "aac",
         "-b:a", str(audio.OUTPUT_BIT_RATE), "-movflags", "+faststart", str(target)],
        check=True,
    )  # fmt: skip
    return gain_db


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="one repetition")
    args = parser.parse_args()
    repetitions = 1 if args.quick else args.repetitions

    with tempfile.TemporaryDirectory(prefix="bench-voicetweet-") as scratch:
        workdir = Path(scratch)
        source = audiofiles.write_audio(
            workdir / "upload.webm", audiofiles.speech_like(SECONDS), channels=2
        )
        print(f"input: {SECONDS:g} s stereo WebM/Opus speech-like, {source.stat().st_size} bytes")
        print(f"repetitions: {repetitions} (medians; wall clock)")

        results = {}

        def run_pipeline(repetition: int) -> None:
            results["pipeline"] = audio.process_upload(
                source, output_dir=workdir / f"out-{repetition}"
            )

        pipeline = statistics.median(time_runs(run_pipeline, repetitions))
        processed = results["pipeline"]
        print(
            f"process_upload      median {pipeline:6.3f} s  ({SECONDS / pipeline:5.0f}x real time)"
            f"  gain {processed.gain_db:+.2f} dB,"
            f" {processed.parts[0].path.stat().st_size} bytes out"
        )

        ffmpeg = shutil.which("ffmpeg")
        if ffmpeg is None:
            print("ffmpeg CLI          skipped: no ffmpeg on PATH")
            return

        def run_cli(repetition: int) -> None:
            results["cli"] = ffmpeg_transcode(ffmpeg, source, workdir / f"cli-{repetition}.m4a")

        cli = statistics.median(time_runs(run_cli, repetitions))
        print(
            f"ffmpeg CLI (2 runs) median {cli:6.3f} s  ({SECONDS / cli:5.0f}x real time)"
            f"  gain {results['cli']:+.2f} dB"
        )
        print(f"ratio process_upload / ffmpeg CLI: {pipeline / cli:.2f}")


if __name__ == "__main__":
    main()
