"""Real-time factor of transcription (spaces.audio.transcribe) per core, for a voice tweet.

    .venv/bin/python bench/bench_transcribe.py [--seconds 140] [--repetitions 3] [--quick]

The clip is espeak-ng reading known sentences with pauses between them, at 48 kHz mono, as long
as a voice tweet may be (140 s; ``--quick``: 30 s, one repetition). The engine runs on one
thread (``cpu_threads=1``), as the transcribe task does, so CPU seconds per second of audio is
the real-time factor *per core*: 0.05 means one core transcribes 20 s of speech per second.
Rows: the loaded engine on the PCM (median of repetitions), and the whole task's child process
(interpreter, imports, model load, decoding the file, transcription), timed once. The word
error rate against the sentences read is printed beside each.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import tempfile
import time
import wave
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from spaces.audio import transcribe
from tests.spaces.audio.signals import espeak_speech
from tests.wer import word_error_rate
from voicetweets import children

RATE = 48_000
SENTENCES = [
    "Welcome to the salon where everyone can speak and listen",
    "I would like a cup of coffee with milk and sugar please",
    "Please call me back after the meeting tomorrow morning",
    "The library opens at nine and closes late on Fridays",
    "We recorded this short message for our friends at home",
]


def speech_clip(seconds: float) -> tuple[np.ndarray, str]:
    """Sentences read one after another, 0.6 s apart, until ``seconds``; and what was said."""
    voiced = [espeak_speech(sentence) for sentence in SENTENCES]
    pause = np.zeros(int(0.6 * RATE), dtype=np.int16)
    pieces, said, total, index = [], [], 0, 0
    while True:
        clip = voiced[index % len(voiced)]
        if total + clip.size + pause.size > seconds * RATE:
            break
        pieces += [clip, pause]
        said.append(SENTENCES[index % len(SENTENCES)])
        total += clip.size + pause.size
        index += 1
    return np.concatenate(pieces), " ".join(said)


def child_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=140.0)
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="30 s of speech, one repetition")
    args = parser.parse_args()
    seconds, repetitions = (30.0, 1) if args.quick else (args.seconds, args.repetitions)

    model_dir = transcribe.packaged_model_dir()
    reason = transcribe.engine_unavailable(model_dir)
    if reason is not None:
        print(f"skipped: {reason}")
        return
    pcm, said = speech_clip(seconds)
    audio_seconds = pcm.size / RATE
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(f"model: {model_dir} (Whisper tiny.en, CTranslate2 int8), cpu_threads=1")
    words = len(said.split())
    print(f"input: {audio_seconds:.1f} s of espeak-ng speech at 48 kHz mono, {words} words")
    print(f"repetitions: {repetitions} (medians)")

    started = time.perf_counter()
    engine = transcribe.Transcriber(model_dir, cpu_threads=1)
    print(f"model load            {time.perf_counter() - started:6.2f} s wall")

    walls, cpus, text = [], [], ""
    for _ in range(repetitions):
        wall, cpu = time.perf_counter(), time.process_time()
        text = engine.transcribe_pcm(pcm, sample_rate=RATE).text
        cpus.append(time.process_time() - cpu)
        walls.append(time.perf_counter() - wall)
    cpu, wall = statistics.median(cpus), statistics.median(walls)
    print(
        f"engine (PCM)          {cpu:6.2f} s CPU  {wall:6.2f} s wall  "
        f"RTF per core {cpu / audio_seconds:.3f}  WER {word_error_rate(said, text):.1%}"
    )

    with tempfile.TemporaryDirectory(prefix="bench-transcribe-") as scratch:
        path = Path(scratch) / "clip.wav"
        with wave.open(str(path), "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(RATE)
            out.writeframes(pcm.astype("<i2").tobytes())
        before, wall = child_cpu_seconds(), time.perf_counter()
        result = children.run_child(
            "voicetweets.transcription",
            [str(model_dir), str(path)],
            timeout=600,
            memory_bytes=2048 * 1024 * 1024,
        )
        wall, cpu = time.perf_counter() - wall, child_cpu_seconds() - before
    if result.returncode != 0:
        raise SystemExit(f"the child failed:\n{result.stderr_tail()}")
    child_text = " ".join(s["text"] for s in json.loads(result.stdout)["segments"])
    print(
        f"task's child (all in) {cpu:6.2f} s CPU  {wall:6.2f} s wall  "
        f"RTF per core {cpu / audio_seconds:.3f}  WER {word_error_rate(said, child_text):.1%}"
    )


if __name__ == "__main__":
    main()
