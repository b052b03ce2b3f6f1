"""Transcribe a recording's audio (spaces.audio.transcribe) in a bounded child process.

Recognition takes a model of ~75 MB and a few hundred MB of address space, and a second of CPU
per ~30 s of speech: it runs in a child of the worker with the one runner's limits
(voicetweets.children), one thread, on the ``transcribe`` queue. The parent's side
(:func:`transcribe_in_child`, :func:`captions_unavailable`) reads Django's settings; the
child's (:func:`main`) imports no Django.

Child protocol: ``python -m voicetweets.transcription --parent-pid PID --memory BYTES --cpu
SECONDS MODEL_DIR AUDIO`` prints one JSON object on stdout: ``{"language": "en", "segments":
[{"text", "start", "end"}, ...]}``. Anything else leaves a traceback on stderr and a non-zero
exit, which the parent raises as :class:`TranscriptionFailed`.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from voicetweets import children

logger = logging.getLogger(__name__)


class TranscriptionFailed(Exception):
    """The child did not produce a transcript (it crashed, ran out of time or memory)."""


def captions_unavailable() -> str | None:
    """Why captions are off on this installation, or None when they are on."""
    from django.conf import settings

    from spaces.audio.transcribe import engine_unavailable

    return engine_unavailable(settings.SALON_TRANSCRIBE_MODEL)


def transcribe_in_child(audio: Path):
    """The transcript of ``audio`` (a :class:`spaces.audio.transcribe.Transcript`)."""
    from django.conf import settings

    from spaces.audio.transcribe import Segment, Transcript

    try:
        result = children.run_child(
            "voicetweets.transcription",
            [str(settings.SALON_TRANSCRIBE_MODEL), str(audio)],
            timeout=settings.SALON_TRANSCRIBE_SECONDS,
            memory_bytes=settings.SALON_TRANSCRIBE_MEMORY_BYTES,
        )
    except children.ChildTimedOut as timed_out:
        raise TranscriptionFailed(str(timed_out)) from None
    if result.returncode != 0:
        raise TranscriptionFailed(
            f"the transcriber exited with {result.returncode}:\n{result.stderr_tail()}"
        )
    outcome = json.loads(result.stdout)
    return Transcript(
        language=str(outcome["language"]),
        segments=[
            Segment(text=str(s["text"]), start=float(s["start"]), end=float(s["end"]))
            for s in outcome["segments"]
        ],
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("audio", type=Path)
    args = children.enter_child(parser, argv)
    # The model is a local directory: never ask the Hugging Face hub for anything.
    os.environ["HF_HUB_OFFLINE"] = "1"

    from spaces.audio.transcribe import Transcriber  # heavy imports only under the limits

    transcript = Transcriber(args.model_dir, cpu_threads=1).transcribe_file(args.audio)
    print(
        json.dumps(
            {
                "language": transcript.language,
                "segments": [segment.as_dict() for segment in transcript.segments],
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
