"""Run the voice-tweet audio pipeline (voicetweets.audio) in a child process, with hard bounds.

Decoding files from strangers is the riskiest thing Salon does: a hostile file may make FFmpeg
spin or allocate without end. The child sets its own address-space and CPU limits before it
imports anything heavy (voicetweets.children.enter_child), and the parent kills it at a
wall-clock deadline; either way only the child dies and the voice tweet is rejected. The
parent's side (:func:`process_in_child`) reads its limits from Django's settings; the child's
(:func:`main`) imports no Django, so it starts fast.

Child protocol: ``python -m voicetweets.processing --parent-pid PID --memory BYTES --cpu SECONDS
--max-thread-seconds S [--thread] UPLOAD WORK_DIR`` prints one JSON object on stdout:
``{"status": "ready", "parts": [...]}`` or ``{"status": "rejected", "message": ...}``. Anything
else (an exception) leaves a traceback on stderr and a non-zero exit: the parent logs it and
tells the member what kind of failure it was (:data:`FAILURE_MESSAGES`).
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from voicetweets import children

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Part:
    """One processed voice tweet: a whole recording, or one part of a thread."""

    path: Path
    duration_ms: int
    waveform: list[float]


class Rejected(Exception):
    """The upload cannot become a voice tweet; ``message`` is for the member: the pipeline's
    verdict on the file, or one of :data:`FAILURE_MESSAGES`."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


# What the member reads when the child did not finish, by kind: a category, not the traceback.
FAILURE_MESSAGES = {
    "timeout": "We could not process this recording: it took too long.",
    "memory": "We could not process this recording: it needed too much memory.",
    "crash": "We could not process this recording: processing failed unexpectedly.",
}
# How running out of address space (RLIMIT_AS) shows in a child's last words: Python's
# MemoryError, PyAV's ENOMEM, the dynamic loader unable to map a library, OpenBLAS giving up.
_OUT_OF_MEMORY_SIGNS = (
    "MemoryError",
    "Cannot allocate memory",
    "failed to map segment",
    "Memory allocation still failed",
)


def process_in_child(
    upload: Path,
    work_dir: Path,
    *,
    allow_thread: bool,
    timeout_seconds: float | None = None,
    memory_bytes: int | None = None,
    heartbeat: Callable[[], bool] | None = None,
) -> list[Part]:
    """Process ``upload`` in a bounded child process; raise :class:`Rejected` with a reason.

    ``heartbeat`` is beaten every SALON_WORK_LEASE_RENEW_SECONDS while the child runs (it
    renews the recording's lease); when it returns False the child is killed and
    :class:`children.ChildAbandoned` propagates: the work is someone else's now.
    """
    from django.conf import settings

    timeout_seconds = timeout_seconds or settings.SALON_VOICETWEET_PROCESS_SECONDS
    max_thread_seconds = settings.SALON_VOICETWEET_MAX_THREAD_SECONDS
    memory_bytes = memory_bytes or settings.SALON_VOICETWEET_PROCESS_MEMORY_BYTES
    work_dir.mkdir(parents=True, exist_ok=True)
    args = [
        "--max-thread-seconds", str(max_thread_seconds),
        *(["--thread"] if allow_thread else []),
        str(upload), str(work_dir),
    ]  # fmt: skip
    try:
        result = children.run_child(
            "voicetweets.processing",
            args,
            timeout=timeout_seconds,
            memory_bytes=memory_bytes,
            heartbeat=heartbeat,
            heartbeat_seconds=settings.SALON_WORK_LEASE_RENEW_SECONDS,
        )
    except children.ChildTimedOut:
        logger.warning("voice tweet processing timed out after %s s: %s", timeout_seconds, upload)
        raise Rejected(FAILURE_MESSAGES["timeout"]) from None
    if result.returncode != 0:
        kind = _failure_kind(result)
        logger.error(
            "voice tweet processing failed (%s, exit %s): %s\nthe child's stderr:\n%s",
            kind,
            result.returncode,
            upload,
            result.stderr_tail(),
        )
        raise Rejected(FAILURE_MESSAGES[kind])
    outcome = json.loads(result.stdout)
    if outcome["status"] == "rejected":
        raise Rejected(outcome["message"])
    return [
        Part(path=Path(p["path"]), duration_ms=int(p["duration_ms"]), waveform=p["waveform"])
        for p in outcome["parts"]
    ]


def _failure_kind(result: children.ChildExit) -> str:
    if result.returncode == -signal.SIGXCPU:  # its CPU-time limit (RLIMIT_CPU)
        return "timeout"
    stderr = result.stderr_tail()
    if any(sign in stderr for sign in _OUT_OF_MEMORY_SIGNS):
        return "memory"
    return "crash"


def remove_dir(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--thread", action="store_true")
    parser.add_argument("--max-thread-seconds", type=float, required=True)
    parser.add_argument("upload", type=Path)
    parser.add_argument("work_dir", type=Path)
    args = children.enter_child(parser, argv)

    from voicetweets import audio  # heavy imports (av, numpy) only under the limits

    try:
        with open(args.upload, "rb") as source:
            result = audio.process_upload(
                source,
                output_dir=args.work_dir,
                allow_thread=args.thread,
                max_thread_seconds=args.max_thread_seconds,
                # The parent's deadline kills the child; this one lets it say why first.
                time_limit_seconds=max(1, args.cpu - 10),
            )
    except audio.AudioRejected as rejected:
        print(json.dumps({"status": "rejected", "message": rejected.message}))
        return 0
    parts = [
        {
            "path": str(part.path),
            "duration_ms": round(part.duration_seconds * 1000),
            "waveform": list(part.waveform),
        }
        for part in result.parts
    ]
    print(json.dumps({"status": "ready", "parts": parts}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
