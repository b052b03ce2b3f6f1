"""Voice-tweet audio pipeline: check an upload, measure it, normalise it, transcode it.

Plain Python + numpy + PyAV; no Django here. It runs in a bounded child process
(voicetweets/processing.py, under the limits voicetweets/children.py sets), whose parent, the
voice-tweet service run by a Celery task, maps its result or :class:`AudioRejected` onto the
model.

What happens to an upload
-------------------------
1. **Sniff** the first bytes and pick the demuxer ourselves (:func:`sniff_container_format`).
   FFmpeg never probes, so it can never choose the ``hls``, ``concat``/``ffconcat``,
   ``image2`` or any other demuxer that reads a second file, a URL or a picture.
2. **Open** the upload as a Python file object (never a path string, which FFmpeg could read as
   ``concat:``, ``http:`` ...) with an ``io_open`` hook that refuses every nested open and an
   empty protocol whitelist, so even a demuxer that wanted to follow a reference (an mp4 data
   reference, a playlist entry) cannot.
3. **Pass 1 (analysis)** decodes the single audio stream, resamples to 48 kHz mono float and
   streams it through: a sample counter (the true duration; container headers can lie), a
   BS.1770 loudness meter (100 ms K-weighted energies) and a peak envelope (5 ms maxima).
   Decoding stops as soon as the decoded audio passes the allowed length, so a huge file costs
   at most ``limit + grace`` seconds of decoding.
4. **Decide**: reject (too long/short, silent), plan the thread parts, pick one gain for the
   whole recording: toward :data:`TARGET_LOUDNESS_LUFS`, never more than
   :data:`MAX_GAIN_DB`, and never pushing the sample peak above :data:`PEAK_CEILING_DBFS`.
5. **Pass 2 (render)** decodes again, applies the gain and encodes each part to the canonical
   format; the waveform comes from the pass-1 envelope.

Memory bound
------------
Both passes stream one decoded frame at a time. What is kept per recording is 10 floats per
second of loudness energies and 200 floats per second of envelope: about 0.8 MB for the
15-minute thread maximum, independent of the upload's size. The upload itself is never read
into memory. What FFmpeg's demuxers allocate for hostile headers is bounded by the upload size
(:data:`MAX_INPUT_BYTES`); the worker should still run with an address-space limit
(``RLIMIT_AS``) or Celery's ``--max-memory-per-child``, which is the task's job.

Time bound
----------
Work is done in a Python loop, one packet at a time, so Celery's soft time limit can interrupt
it between packets; ``time_limit_seconds`` adds our own check there as well. Partial outputs are
deleted whenever processing does not finish.

Canonical format: AAC-LC in MP4 (``.m4a``, ``audio/mp4``), 48 kHz mono, 64 kbit/s
---------------------------------------------------------------------------------
Ogg Opus would be smaller, but Safari does not play the Ogg container: Safari 17 added Opus
only in WebM and MP4, and although iOS 18.4 advertises Ogg, pages that offer an Ogg source
report Safari choosing it and then failing to load it (codevise/pageflow#2238; Fyrd/caniuse
#6805, #6997). Opus in MP4/WebM leaves out every iPhone still on iOS 16 or older. AAC-LC in
MP4 plays in every current browser, on every iOS version, and is what Safari's own
MediaRecorder produces. We write it with ``movflags=+faststart`` (the ``moov`` index first),
so Chromium and Safari can start playback and seek with HTTP Range requests before the file
has downloaded. 64 kbit/s is FFmpeg's native AAC encoder's comfortable rate for mono speech.

Loudness convention
-------------------
A mono file plays on both speakers, so we measure it as "dual mono" (the channel counted twice,
like FFmpeg's ``ebur128=dualmono=true``). -16 LUFS measured that way equals -19 LUFS measured
as a single channel, which is what AES TD1004 recommends for mono speech; it also leaves speech
peaks under the ceiling without a limiter in almost all cases.
"""

from __future__ import annotations

import contextlib
import io
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import BinaryIO

import av
import av.error
import av.filter
import av.stream
import numpy as np

# --- Product rules -------------------------------------------------------------------------

MAX_SECONDS = 140.0
MIN_SECONDS = 1.0
# "Post as thread" splits longer recordings; this caps how much one member can upload at once.
MAX_THREAD_SECONDS = 15 * 60.0
# Recordings that overrun the limit by at most this much (a stop button pressed late, encoder
# padding) are accepted and cut to the limit instead of being rejected.
DURATION_GRACE_SECONDS = 0.5
# A bound for callers other than the web layer, which refuses request bodies over
# SALON_VOICETWEET_MAX_UPLOAD_BYTES (28 MiB) before they are read (config.request_bodies).
MAX_INPUT_BYTES = 256 * 1024 * 1024
DEFAULT_TIME_LIMIT_SECONDS = 120.0

# --- Canonical output --------------------------------------------------------------------

SAMPLE_RATE = 48_000
OUTPUT_CODEC = "aac"
OUTPUT_CONTAINER = "mp4"
OUTPUT_SUFFIX = ".m4a"
OUTPUT_MIME_TYPE = "audio/mp4"
OUTPUT_BIT_RATE = 64_000

# --- Loudness ------------------------------------------------------------------------------

TARGET_LOUDNESS_LUFS = -16.0
# Sample-peak ceiling after gain; 1 dB of headroom absorbs inter-sample peaks and AAC's
# overshoot so that playback does not clip.
PEAK_CEILING_DBFS = -1.0
# Beyond this we would mostly amplify room noise.
MAX_GAIN_DB = 30.0
# Quieter than this (or nothing above BS.1770's -70 LUFS absolute gate) counts as silence.
SILENCE_LOUDNESS_LUFS = -60.0

WAVEFORM_BUCKETS = 100
WAVEFORM_DECIMALS = 3

# BS.1770-4 K-weighting at 48 kHz: a high shelf (head effect) then a high pass (RLB curve).
# Valid only at 48 kHz, which is why everything is resampled to 48 kHz first.
_K_WEIGHTING_SHELF = (1.53512485958697, -2.69169618940638, 1.19839281085285,
                      1.0, -1.69065929318241, 0.73248077421585)  # fmt: skip
_K_WEIGHTING_HIGH_PASS = (1.0, -2.0, 1.0, 1.0, -1.99004745483398, 0.99007225036621)
_LOUDNESS_SUB_BLOCK = SAMPLE_RATE // 10  # 100 ms: the hop of BS.1770's 400 ms gating blocks
_SUB_BLOCKS_PER_GATING_BLOCK = 4
_ABSOLUTE_GATE_LUFS = -70.0
_RELATIVE_GATE_LU = -10.0
_ENVELOPE_BLOCK = SAMPLE_RATE // 200  # 5 ms: 200 values per second, ≥ 2 per bucket at 1 s

# --- What we accept -------------------------------------------------------------------------

_SNIFF_BYTES = 16
# Decoders for the formats the issue lists (webm/ogg/opus, m4a/mp4/aac, mp3, wav, flac) and
# what browsers' MediaRecorder produces. Anything else in those containers is refused, which
# keeps rarely used (and rarely fuzzed) decoders away from member uploads.
_ALLOWED_DECODERS = frozenset(
    {"opus", "libopus", "vorbis", "aac", "aac_fixed", "mp3", "mp3float", "mp2", "mp2float",
     "flac", "alac"}
)  # fmt: skip
_ACCEPTED_FORMATS_TEXT = "WebM, Ogg, Opus, M4A/MP4, AAC, MP3, WAV or FLAC"


class RejectionReason(StrEnum):
    """Why an upload was refused; stored on the voice tweet and shown as ``message``."""

    EMPTY = "empty"
    TOO_LARGE = "too_large"
    NOT_AUDIO = "not_audio"
    UNDECODABLE = "undecodable"
    NO_AUDIO_STREAM = "no_audio_stream"
    UNSUPPORTED_CODEC = "unsupported_codec"
    TOO_SHORT = "too_short"
    TOO_LONG = "too_long"
    THREAD_TOO_LONG = "thread_too_long"
    SILENT = "silent"
    TIMED_OUT = "timed_out"


class AudioRejected(Exception):
    """The upload cannot become a voice tweet; ``message`` is written for the member."""

    def __init__(self, reason: RejectionReason, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class PartPlan:
    """One voice tweet of a recording, as a range of 48 kHz samples ``[start, end)``."""

    index: int
    start_sample: int
    end_sample: int

    @property
    def duration_seconds(self) -> float:
        return (self.end_sample - self.start_sample) / SAMPLE_RATE


@dataclass(frozen=True)
class AudioAnalysis:
    """What pass 1 learned about an upload (nothing is written yet)."""

    container_format: str
    codec_name: str
    # Decoded 48 kHz samples, after cutting an overrun within the grace period.
    total_samples: int
    # Integrated loudness (dual-mono LUFS) of the whole recording; silent ones are rejected.
    loudness_lufs: float
    sample_peak_dbfs: float
    gain_db: float
    parts: tuple[PartPlan, ...]
    # Internal per-block measurements, kept to compute per-part loudness and waveforms.
    _sub_block_energies: np.ndarray
    _envelope: np.ndarray

    @property
    def duration_seconds(self) -> float:
        return self.total_samples / SAMPLE_RATE


@dataclass(frozen=True)
class ProcessedPart:
    """One written voice tweet; ``index`` is its position in the thread (0 for a single one)."""

    index: int
    path: Path
    duration_seconds: float
    # WAVEFORM_BUCKETS peak values in 0..1 of full scale, after gain: what the file contains.
    waveform: tuple[float, ...]
    loudness_before_lufs: float | None
    loudness_after_lufs: float | None


@dataclass(frozen=True)
class ProcessedAudio:
    """The result of :func:`process_upload`: one part, or several to post as a thread."""

    parts: tuple[ProcessedPart, ...]
    duration_seconds: float
    loudness_before_lufs: float
    loudness_after_lufs: float
    gain_db: float
    source_format: str
    source_codec: str
    mime_type: str = OUTPUT_MIME_TYPE

    @property
    def is_thread(self) -> bool:
        return len(self.parts) > 1


# --- Public API ----------------------------------------------------------------------------


def process_upload(
    source: BinaryIO | Path,
    *,
    output_dir: Path,
    output_stem: str = "voicetweet",
    max_seconds: float = MAX_SECONDS,
    allow_thread: bool = False,
    max_thread_seconds: float = MAX_THREAD_SECONDS,
    time_limit_seconds: float | None = DEFAULT_TIME_LIMIT_SECONDS,
) -> ProcessedAudio:
    """Check, measure, normalise and transcode an upload into one or more ``.m4a`` files.

    ``source`` is a path or a seekable binary file (it is read twice). Parts are written as
    ``output_dir/<output_stem>-<n>.m4a`` (n from 1); on any failure nothing is left behind.
    Raises :class:`AudioRejected` with a member-facing message when the upload is unusable.
    """
    deadline = None if time_limit_seconds is None else time.monotonic() + time_limit_seconds
    with _opened_source(source) as upload:
        analysis = _analyse(
            upload,
            max_seconds=max_seconds,
            allow_thread=allow_thread,
            max_thread_seconds=max_thread_seconds,
            deadline=deadline,
        )
        upload.seek(0)
        output_dir.mkdir(parents=True, exist_ok=True)
        paths = [
            output_dir / f"{output_stem}-{part.index + 1}{OUTPUT_SUFFIX}" for part in analysis.parts
        ]
        try:
            _render(upload, analysis, paths, deadline=deadline)
        except BaseException:
            # Also on Celery's SoftTimeLimitExceeded: never leave half-written files behind.
            for path in paths:
                path.unlink(missing_ok=True)
            raise
    return ProcessedAudio(
        parts=tuple(
            _processed_part(analysis, part, path)
            for part, path in zip(analysis.parts, paths, strict=True)
        ),
        duration_seconds=analysis.duration_seconds,
        loudness_before_lufs=round(analysis.loudness_lufs, 2),
        loudness_after_lufs=round(analysis.loudness_lufs + analysis.gain_db, 2),
        gain_db=round(analysis.gain_db, 2),
        source_format=analysis.container_format,
        source_codec=analysis.codec_name,
    )


def analyse_upload(
    source: BinaryIO | Path,
    *,
    max_seconds: float = MAX_SECONDS,
    allow_thread: bool = False,
    max_thread_seconds: float = MAX_THREAD_SECONDS,
    time_limit_seconds: float | None = DEFAULT_TIME_LIMIT_SECONDS,
) -> AudioAnalysis:
    """Pass 1 only: validate and measure without writing anything (same rejections)."""
    deadline = None if time_limit_seconds is None else time.monotonic() + time_limit_seconds
    with _opened_source(source) as upload:
        return _analyse(
            upload,
            max_seconds=max_seconds,
            allow_thread=allow_thread,
            max_thread_seconds=max_thread_seconds,
            deadline=deadline,
        )


def sniff_container_format(head: bytes, next_after_id3: bytes | None = None) -> str | None:
    """Name the FFmpeg demuxer for a file starting with ``head``, or None if it is not audio.

    An ID3v2 tag can precede MP3, ADTS AAC and (non-standard) FLAC; pass the bytes that follow
    the tag as ``next_after_id3`` to tell which (see :func:`id3v2_tag_size`), else MP3 is assumed.
    Only the formats we accept are recognised; everything else (playlists, images, text,
    video containers we do not take) returns None.
    """
    if head.startswith(b"OggS"):
        return "ogg"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "wav"
    if head.startswith(b"fLaC"):
        return "flac"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "matroska,webm"
    if head[4:8] == b"ftyp":
        return "mov,mp4,m4a,3gp,3g2,mj2"
    if head.startswith(b"ID3"):
        if next_after_id3 is None:
            return "mp3"
        return sniff_container_format(next_after_id3) or "mp3"
    if len(head) >= 2 and head[0] == 0xFF:
        if head[1] & 0xF6 == 0xF0:  # 12-bit sync, layer 00: ADTS
            return "aac"
        if head[1] & 0xE0 == 0xE0 and head[1] & 0x06 != 0:  # 11-bit sync, layer I/II/III
            return "mp3"
    return None


def id3v2_tag_size(head: bytes) -> int:
    """Length in bytes of the ID3v2 tag at the start of ``head`` (0 if there is none)."""
    if len(head) < 10 or not head.startswith(b"ID3"):
        return 0
    size = 0
    for byte in head[6:10]:  # "syncsafe" integer: 7 bits per byte
        size = (size << 7) | (byte & 0x7F)
    has_footer = bool(head[5] & 0x10)
    return 10 + size + (10 if has_footer else 0)


def plan_parts(total_samples: int, *, max_seconds: float = MAX_SECONDS) -> tuple[PartPlan, ...]:
    """Split a recording into the fewest consecutive parts of at most ``max_seconds``.

    Parts are balanced (300 s becomes 3 x 100 s, not 140 + 140 + 20): no part is a stub of a
    few seconds, and every part of a split is at least ``max_seconds / 2`` long, far above
    :data:`MIN_SECONDS`. Lengths differ by at most one sample.
    """
    max_samples = round(max_seconds * SAMPLE_RATE)
    count = max(1, math.ceil(total_samples / max_samples))
    bounds = [total_samples * k // count for k in range(count + 1)]
    return tuple(
        PartPlan(index=k, start_sample=bounds[k], end_sample=bounds[k + 1]) for k in range(count)
    )


def measure_loudness(samples: np.ndarray) -> float | None:
    """Integrated loudness (BS.1770-4, dual-mono LUFS) of 48 kHz mono samples; None if silent."""
    meter = _LoudnessMeter()
    meter.add(np.asarray(samples, dtype=np.float32))
    energies = meter.finish()
    return _gated_loudness(energies)


def decode_mono(source: BinaryIO | Path) -> np.ndarray:
    """Decode any accepted upload (or our own output) to 48 kHz mono float32.

    For tests and tools on short files; the pipeline itself never holds a whole recording.
    """
    with _opened_source(source) as upload, _open_audio(upload) as (container, stream):
        chunks = list(_decoded_mono(container, stream, deadline=None))
    return np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.float32)


# --- Opening -------------------------------------------------------------------------------


class _UploadReader(io.RawIOBase):
    """Read-only view of the upload without a ``name``.

    PyAV hands a file object's ``name`` to FFmpeg as the URL; demuxers resolve relative
    references against it, so ours carries none.
    """

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        return self._raw.read(size)

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self._raw.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._raw.seek(offset, whence)

    def tell(self) -> int:
        return self._raw.tell()


@contextlib.contextmanager
def _opened_source(source: BinaryIO | Path) -> Iterator[_UploadReader]:
    if isinstance(source, Path):
        # Python's open() takes the path literally; FFmpeg never sees it.
        with source.open("rb") as raw:
            yield _UploadReader(raw)
    else:
        if not source.seekable():
            raise ValueError("process_upload needs a seekable file; spool it to disk first")
        source.seek(0)
        yield _UploadReader(source)


def _refuse_nested_open(url: str, flags: int, options: dict) -> BinaryIO:
    # FFmpeg asks this hook whenever a demuxer wants to open anything besides the upload
    # (playlists' segments, mp4 data references, ...). An upload must be self-contained.
    raise PermissionError(f"uploads may not reference other files or URLs ({url!r})")


def _input_options(container_format: str) -> dict[str, str]:
    """Demuxer options that keep FFmpeg inside the upload; a second layer behind sniffing.

    ``io_open`` alone is not enough: demuxers that open a whole nested input (``concat``
    does) create their own context without our hook, but they do inherit the protocol
    whitelist. Our upload is read through our own I/O context, which needs no protocol, so
    the whitelist names none (an unknown name matches nothing).
    """
    options = {"protocol_whitelist": "none"}
    if container_format.startswith("mov"):
        # The default already, stated so that nobody turns external data references on.
        options["enable_drefs"] = "0"
    return options


def _container_format_of(upload: _UploadReader) -> str:
    upload.seek(0, io.SEEK_END)
    size = upload.tell()
    if size == 0:
        raise AudioRejected(RejectionReason.EMPTY, "The file is empty.")
    if size > MAX_INPUT_BYTES:
        raise AudioRejected(
            RejectionReason.TOO_LARGE,
            f"The file is larger than {MAX_INPUT_BYTES // (1024 * 1024)} MB.",
        )
    upload.seek(0)
    head = upload.read(_SNIFF_BYTES)
    after_id3 = None
    if tag_size := id3v2_tag_size(head):
        upload.seek(tag_size)
        after_id3 = upload.read(_SNIFF_BYTES)
    upload.seek(0)
    container_format = sniff_container_format(head, after_id3)
    if container_format is None:
        raise AudioRejected(
            RejectionReason.NOT_AUDIO,
            f"This file is not a supported audio file. Please upload {_ACCEPTED_FORMATS_TEXT}.",
        )
    return container_format


@contextlib.contextmanager
def _open_audio(
    upload: _UploadReader,
) -> Iterator[tuple[av.container.InputContainer, av.AudioStream]]:
    """Open the upload with the sniffed demuxer and yield it with its only audio stream."""
    container_format = _container_format_of(upload)
    try:
        container = av.open(
            upload,
            mode="r",
            format=container_format,
            options=_input_options(container_format),
            io_open=_refuse_nested_open,
            metadata_errors="replace",
        )
    except (av.error.FFmpegError, ValueError, PermissionError) as error:
        raise _undecodable() from error
    with container:
        audio_streams = list(container.streams.audio)
        if not audio_streams:
            raise AudioRejected(
                RejectionReason.NO_AUDIO_STREAM, "This file has no sound in it (no audio track)."
            )
        # The first audio track is the voice, as players and FFmpeg's own default pick it; a
        # second one (another language, a commentary) is ignored like cover art.
        stream = audio_streams[0]
        codec_name = stream.codec_context.name if stream.codec_context else ""
        if codec_name not in _ALLOWED_DECODERS and not codec_name.startswith("pcm_"):
            raise AudioRejected(
                RejectionReason.UNSUPPORTED_CODEC,
                f"This file uses an audio codec we do not accept ({codec_name or 'unknown'}). "
                f"Please upload {_ACCEPTED_FORMATS_TEXT}.",
            )
        # Other streams (cover art in mp3/m4a, video in an mp4 or webm) are not even demuxed:
        # FFmpeg skips their packets, so no decoder for them ever runs.
        for other in container.streams:
            if other is not stream:
                other.discard = av.stream.Discard.all
        yield container, stream


def _undecodable() -> AudioRejected:
    return AudioRejected(
        RejectionReason.UNDECODABLE,
        "We could not read this audio file; it may be damaged or incomplete.",
    )


# --- Decoding ------------------------------------------------------------------------------


def _decoded_mono(
    container: av.container.InputContainer,
    stream: av.AudioStream,
    *,
    deadline: float | None,
) -> Iterator[np.ndarray]:
    """Yield the stream as consecutive 48 kHz mono float32 chunks, one decoded frame at a time.

    Timestamps are ignored on purpose: the duration is what was decoded, not what the
    container says. A decoding error anywhere means a damaged file and rejects it.
    """
    resampler: av.AudioResampler | None = None
    input_shape: tuple[str, str, int] | None = None
    try:
        for packet in container.demux(stream):
            if deadline is not None and time.monotonic() > deadline:
                raise AudioRejected(
                    RejectionReason.TIMED_OUT, "Processing this file took too long."
                )
            for frame in packet.decode():
                if frame.sample_rate <= 0 or frame.samples == 0:
                    continue
                shape = (frame.format.name, frame.layout.name, frame.sample_rate)
                if shape != input_shape:
                    # MP3 and ADTS streams may change rate or layout midway; PyAV's resampler
                    # is bound to its first input, so drain it and start a new one.
                    if resampler is not None:
                        yield from _frames_as_mono(resampler.resample(None))
                    resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
                    input_shape = shape
                frame.pts = None
                yield from _frames_as_mono(resampler.resample(frame))
        if resampler is not None:
            yield from _frames_as_mono(resampler.resample(None))
    except (av.error.FFmpegError, ValueError, PermissionError) as error:
        # PermissionError: a demuxer tried a nested open mid-stream and _refuse_nested_open said no.
        raise _undecodable() from error


def _frames_as_mono(frames: list[av.AudioFrame]) -> Iterator[np.ndarray]:
    for frame in frames:
        samples = frame.to_ndarray().reshape(-1)
        # Float WAV may carry NaN/inf; treat them as silence rather than poisoning the meters.
        if not np.isfinite(samples).all():
            samples = np.nan_to_num(samples, nan=0.0, posinf=0.0, neginf=0.0)
        yield samples


# --- Pass 1: analysis ----------------------------------------------------------------------


class _BlockReducer:
    """Reduce a stream of arbitrary-length chunks to one value per fixed-size block."""

    def __init__(self, block: int, reduce: str) -> None:
        self._block = block
        self._reduce = reduce
        self._carry = np.zeros(0, dtype=np.float64)
        self._values: list[np.ndarray] = []

    def add(self, samples: np.ndarray) -> None:
        if self._carry.size:
            samples = np.concatenate([self._carry, samples])
        whole = samples.size - samples.size % self._block
        if whole:
            blocks = samples[:whole].reshape(-1, self._block)
            if self._reduce == "sum_of_squares":
                values = np.einsum("ij,ij->i", blocks, blocks, dtype=np.float64)
            else:
                values = np.abs(blocks).max(axis=1)
            self._values.append(values.astype(np.float64))
        self._carry = samples[whole:].astype(np.float64)

    def finish(self, *, include_partial: bool) -> np.ndarray:
        if include_partial and self._carry.size:
            self.add(np.zeros(self._block - self._carry.size))
        return np.concatenate(self._values) if self._values else np.zeros(0)


class _LoudnessMeter:
    """K-weights 48 kHz mono audio (FFmpeg biquads, in double) and sums 100 ms energies."""

    def __init__(self) -> None:
        self._graph = av.filter.Graph()
        source = self._graph.add_abuffer(format="flt", sample_rate=SAMPLE_RATE, layout="mono")
        to_double = self._graph.add("aformat", "sample_fmts=dbl")
        shelf = self._graph.add("biquad", _biquad_args(_K_WEIGHTING_SHELF))
        high_pass = self._graph.add("biquad", _biquad_args(_K_WEIGHTING_HIGH_PASS))
        sink = self._graph.add("abuffersink")
        source.link_to(to_double)
        to_double.link_to(shelf)
        shelf.link_to(high_pass)
        high_pass.link_to(sink)
        self._graph.configure()
        self._energies = _BlockReducer(_LOUDNESS_SUB_BLOCK, "sum_of_squares")

    def add(self, samples: np.ndarray) -> None:
        for start in range(0, samples.size, SAMPLE_RATE):
            chunk = np.ascontiguousarray(samples[start : start + SAMPLE_RATE], dtype=np.float32)
            frame = av.AudioFrame.from_ndarray(chunk.reshape(1, -1), format="flt", layout="mono")
            frame.sample_rate = SAMPLE_RATE
            self._graph.push(frame)
            self._drain()

    def finish(self) -> np.ndarray:
        self._graph.push(None)
        self._drain()
        # BS.1770 gates only whole blocks; a trailing partial 100 ms block is not measured.
        return self._energies.finish(include_partial=False)

    def _drain(self) -> None:
        while True:
            try:
                frame = self._graph.pull()
            except (av.error.BlockingIOError, av.error.EOFError):
                return
            self._energies.add(frame.to_ndarray().reshape(-1))


def _biquad_args(coefficients: tuple[float, ...]) -> str:
    names = ("b0", "b1", "b2", "a0", "a1", "a2")
    return ":".join(f"{name}={value!r}" for name, value in zip(names, coefficients, strict=True))


def _gated_loudness(sub_block_energies: np.ndarray) -> float | None:
    """BS.1770-4 integrated loudness from 100 ms K-weighted energy sums (None: all gated)."""
    count = sub_block_energies.size - _SUB_BLOCKS_PER_GATING_BLOCK + 1
    if count <= 0:
        return None
    window = np.convolve(sub_block_energies, np.ones(_SUB_BLOCKS_PER_GATING_BLOCK), "valid")
    block_power = window / (_SUB_BLOCKS_PER_GATING_BLOCK * _LOUDNESS_SUB_BLOCK)
    with np.errstate(divide="ignore"):
        block_loudness = _power_to_lufs(block_power)
    above_absolute = block_power[block_loudness > _ABSOLUTE_GATE_LUFS]
    if not above_absolute.size:
        return None
    relative_gate = _power_to_lufs(above_absolute.mean()) + _RELATIVE_GATE_LU
    with np.errstate(divide="ignore"):
        gated = above_absolute[_power_to_lufs(above_absolute) > relative_gate]
    return float(_power_to_lufs(gated.mean()))


def _power_to_lufs(mean_square: np.ndarray | np.floating) -> np.ndarray:
    # Dual mono: the one channel feeds both speakers, so it counts twice (weights 1.0 each).
    return -0.691 + 10 * np.log10(2 * mean_square)


def _analyse(
    upload: _UploadReader,
    *,
    max_seconds: float,
    allow_thread: bool,
    max_thread_seconds: float,
    deadline: float | None,
) -> AudioAnalysis:
    limit_seconds = max_thread_seconds if allow_thread else max_seconds
    # One sample over this and the upload is rejected: no need to decode further.
    hard_limit_samples = round((limit_seconds + DURATION_GRACE_SECONDS) * SAMPLE_RATE)
    meter = _LoudnessMeter()
    envelope = _BlockReducer(_ENVELOPE_BLOCK, "max_abs")
    total_samples = 0
    with _open_audio(upload) as (container, stream):
        container_format = container.format.name
        codec_name = stream.codec_context.name
        for samples in _decoded_mono(container, stream, deadline=deadline):
            total_samples += samples.size
            if total_samples > hard_limit_samples:
                raise _too_long(allow_thread, max_seconds, max_thread_seconds)
            meter.add(samples)
            envelope.add(samples)
    if total_samples == 0:
        raise AudioRejected(RejectionReason.UNDECODABLE, "This file contains no audio.")

    # Cut an overrun within the grace period to exactly the limit.
    total_samples = min(total_samples, round(limit_seconds * SAMPLE_RATE))
    if total_samples < MIN_SECONDS * SAMPLE_RATE:
        raise AudioRejected(
            RejectionReason.TOO_SHORT,
            f"This recording is too short; it must be at least {MIN_SECONDS:g} second long.",
        )
    sub_block_energies = meter.finish()[: total_samples // _LOUDNESS_SUB_BLOCK]
    peak_envelope = envelope.finish(include_partial=True)[
        : math.ceil(total_samples / _ENVELOPE_BLOCK)
    ]
    loudness = _gated_loudness(sub_block_energies)
    if loudness is None or loudness < SILENCE_LOUDNESS_LUFS:
        raise AudioRejected(
            RejectionReason.SILENT, "This recording is silent; we could not hear anything in it."
        )
    peak = float(peak_envelope.max())
    peak_dbfs = 20 * math.log10(peak)  # peak > 0: the loudness would be None otherwise
    gain_db = min(TARGET_LOUDNESS_LUFS - loudness, MAX_GAIN_DB, PEAK_CEILING_DBFS - peak_dbfs)
    return AudioAnalysis(
        container_format=container_format,
        codec_name=codec_name,
        total_samples=total_samples,
        loudness_lufs=loudness,
        sample_peak_dbfs=peak_dbfs,
        gain_db=gain_db,
        parts=plan_parts(total_samples, max_seconds=max_seconds),
        _sub_block_energies=sub_block_energies,
        _envelope=peak_envelope,
    )


def _too_long(allow_thread: bool, max_seconds: float, max_thread_seconds: float) -> AudioRejected:
    if allow_thread:
        return AudioRejected(
            RejectionReason.THREAD_TOO_LONG,
            f"This recording is longer than {_minutes(max_thread_seconds)}, "
            "the most a thread can hold.",
        )
    return AudioRejected(
        RejectionReason.TOO_LONG,
        f"This recording is longer than {max_seconds:g} s. Choose “post as thread” to split "
        f"it into several voice tweets, or trim it.",
    )


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:g} minutes"


def _processed_part(analysis: AudioAnalysis, part: PartPlan, path: Path) -> ProcessedPart:
    first_block = -(-part.start_sample // _LOUDNESS_SUB_BLOCK)  # blocks wholly inside the part
    last_block = part.end_sample // _LOUDNESS_SUB_BLOCK
    before = _gated_loudness(analysis._sub_block_energies[first_block:last_block])
    envelope = analysis._envelope[
        part.start_sample // _ENVELOPE_BLOCK : math.ceil(part.end_sample / _ENVELOPE_BLOCK)
    ]
    return ProcessedPart(
        index=part.index,
        path=path,
        duration_seconds=part.duration_seconds,
        waveform=waveform_peaks(envelope * 10 ** (analysis.gain_db / 20)),
        loudness_before_lufs=None if before is None else round(before, 2),
        loudness_after_lufs=None if before is None else round(before + analysis.gain_db, 2),
    )


def waveform_peaks(envelope: np.ndarray, buckets: int = WAVEFORM_BUCKETS) -> tuple[float, ...]:
    """Reduce peak values to ``buckets`` maxima in 0..1, rounded for compact JSON."""
    if envelope.size == 0:
        return (0.0,) * buckets
    edges = np.minimum((np.arange(buckets) * envelope.size) // buckets, envelope.size - 1)
    peaks = np.maximum.reduceat(envelope, edges)
    return tuple(round(float(value), WAVEFORM_DECIMALS) for value in np.clip(peaks, 0.0, 1.0))


# --- Pass 2: render ------------------------------------------------------------------------


class _PartWriter:
    """Encodes one part to the canonical format."""

    def __init__(self, path: Path) -> None:
        # "file:" + an absolute path: FFmpeg cannot mistake our own output path for a protocol.
        # A path (not a file object) because +faststart re-reads the file to move the index.
        self._container = av.open(
            "file:" + str(path.resolve()),
            mode="w",
            format=OUTPUT_CONTAINER,
            options={"movflags": "+faststart"},
        )
        self._stream = self._container.add_stream(OUTPUT_CODEC, rate=SAMPLE_RATE, layout="mono")
        self._stream.codec_context.bit_rate = OUTPUT_BIT_RATE

    def write(self, samples: np.ndarray) -> None:
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="flt", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        for packet in self._stream.encode(frame):
            self._container.mux(packet)

    def close(self) -> None:
        for packet in self._stream.encode(None):
            self._container.mux(packet)
        self._container.close()

    def abort(self) -> None:
        with contextlib.suppress(Exception):
            self._container.close()


def _render(
    upload: _UploadReader, analysis: AudioAnalysis, paths: list[Path], *, deadline: float | None
) -> None:
    gain = np.float32(10 ** (analysis.gain_db / 20))
    parts = iter(zip(analysis.parts, paths, strict=True))
    part, path = next(parts)
    writer = _PartWriter(path)
    position = 0  # first 48 kHz sample of the current chunk in the recording
    try:
        with _open_audio(upload) as (container, stream):
            for decoded in _decoded_mono(container, stream, deadline=deadline):
                samples = np.clip(decoded * gain, -1.0, 1.0)
                chunk_start = position
                position += samples.size
                offset = 0
                while offset < samples.size and chunk_start + offset < analysis.total_samples:
                    take = min(samples.size - offset, part.end_sample - (chunk_start + offset))
                    writer.write(samples[offset : offset + take])
                    offset += take
                    if chunk_start + offset == part.end_sample:
                        writer.close()
                        next_part = next(parts, None)
                        if next_part is None:
                            return
                        part, path = next_part
                        writer = _PartWriter(path)
                if position >= analysis.total_samples:
                    break
        writer.close()
    except BaseException:
        writer.abort()
        raise
