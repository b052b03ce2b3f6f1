"""Build audio (and not-quite-audio) files for tests: synthetic signals encoded with PyAV.

Reusable by later voice-tweet tests (services, tasks, API): everything is generated on the fly,
nothing is checked in.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import av
import numpy as np

# container name used in file names -> (PyAV muxer, encoder)
ENCODINGS: dict[str, tuple[str, str]] = {
    "wav": ("wav", "pcm_s16le"),
    "flac": ("flac", "flac"),
    "mp3": ("mp3", "libmp3lame"),
    "ogg": ("ogg", "libopus"),
    "opus": ("opus", "libopus"),
    "webm": ("webm", "libopus"),
    "m4a": ("mp4", "aac"),
    "aac": ("adts", "aac"),
    "mkv": ("matroska", "pcm_s16le"),
}
# Opus only takes these rates; the others take any rate.
_OPUS_RATES = (8000, 12000, 16000, 24000, 48000)


def sine(
    seconds: float, *, frequency: float = 440.0, amplitude: float = 0.3, rate: int = 48_000
) -> np.ndarray:
    """A sine tone as float32 samples."""
    t = np.arange(round(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * frequency * t)).astype(np.float32)


def speech_like(seconds: float, *, amplitude: float = 0.3, rate: int = 48_000) -> np.ndarray:
    """Noise shaped into syllables (4 Hz bursts with pauses): speech's crest factor and rhythm."""
    rng = np.random.default_rng(1234)
    t = np.arange(round(seconds * rate)) / rate
    carrier = rng.standard_normal(t.size) * 0.25 + 0.5 * np.sin(2 * np.pi * 180 * t)
    syllables = np.clip(np.sin(2 * np.pi * 4 * t), 0, None) * (np.sin(2 * np.pi * 0.3 * t) > -0.6)
    return (amplitude * carrier * syllables).astype(np.float32)


def noise(seconds: float, *, amplitude: float = 0.1, rate: int = 48_000) -> np.ndarray:
    rng = np.random.default_rng(42)
    return (amplitude * rng.uniform(-1, 1, round(seconds * rate))).astype(np.float32)


def silence(seconds: float, *, rate: int = 48_000) -> np.ndarray:
    return np.zeros(round(seconds * rate), dtype=np.float32)


def write_audio(
    path: Path,
    samples: np.ndarray,
    *,
    rate: int = 48_000,
    container: str | None = None,
    channels: int = 1,
) -> Path:
    """Encode mono float samples into ``path``; the container defaults to the file's suffix.

    ``channels=2`` duplicates the signal into stereo, as most uploads are.
    """
    muxer, codec = ENCODINGS[container or path.suffix.lstrip(".")]
    if codec == "libopus" and rate not in _OPUS_RATES:
        raise ValueError(f"Opus cannot encode at {rate} Hz")
    layout = "stereo" if channels == 2 else "mono"
    with av.open(str(path), mode="w", format=muxer) as output:
        stream = output.add_stream(codec, rate=rate, layout=layout)
        chunk = rate // 10
        for start in range(0, samples.size, chunk):
            block = np.ascontiguousarray(samples[start : start + chunk], dtype=np.float32)
            planes = np.repeat(block.reshape(1, -1), channels, axis=0)
            frame = av.AudioFrame.from_ndarray(
                planes.reshape(1, -1, order="F") if channels == 2 else planes,
                format="flt",
                layout=layout,
            )
            frame.sample_rate = rate
            for packet in stream.encode(frame):
                output.mux(packet)
        for packet in stream.encode(None):
            output.mux(packet)
    return path


def write_two_audio_streams(path: Path, seconds: float = 2.0, rate: int = 16_000) -> Path:
    """A Matroska file with two PCM audio tracks (e.g. two languages)."""
    with av.open(str(path), mode="w", format="matroska") as output:
        streams = [output.add_stream("pcm_s16le", rate=rate, layout="mono") for _ in range(2)]
        samples = sine(seconds, rate=rate)
        for stream in streams:
            frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="flt", layout="mono")
            frame.sample_rate = rate
            for packet in [*stream.encode(frame), *stream.encode(None)]:
                output.mux(packet)
    return path


def write_video_only(path: Path, *, frames: int = 10) -> Path:
    """An MP4 with a few MPEG-4 Part 2 video frames and no audio track."""
    with av.open(str(path), mode="w", format="mp4") as output:
        stream = output.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for index in range(frames):
            image = np.full((48, 64, 3), index * 20 % 256, dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                output.mux(packet)
        for packet in stream.encode(None):
            output.mux(packet)
    return path


def png_bytes() -> bytes:
    """A valid 1x1 PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00"))
        + chunk(b"IEND", b"")
    )


def ffconcat_playlist(*targets: Path) -> bytes:
    lines = ["ffconcat version 1.0"] + [f"file '{target.resolve()}'" for target in targets]
    return ("\n".join(lines) + "\n").encode()


def hls_playlist(*targets: Path, segment_seconds: int = 10) -> bytes:
    lines = ["#EXTM3U", "#EXT-X-VERSION:3", f"#EXT-X-TARGETDURATION:{segment_seconds}"]
    for target in targets:
        lines += [f"#EXTINF:{segment_seconds}.0,", str(target.resolve())]
    lines.append("#EXT-X-ENDLIST")
    return ("\n".join(lines) + "\n").encode()


# Matroska "Duration" element: ID 0x4489, size 8 (0x88), then a big-endian double in
# TimecodeScale units (FFmpeg writes the default, 1 ms).
_MATROSKA_DURATION_ELEMENT = b"\x44\x89\x88"


def write_matroska_with_lying_duration(
    path: Path, *, true_seconds: float, claimed_seconds: float, rate: int = 8000
) -> Path:
    """A Matroska file that holds ``true_seconds`` of audio but whose header says otherwise."""
    write_audio(path, sine(true_seconds, rate=rate), rate=rate, container="mkv")
    data = bytearray(path.read_bytes())
    at = data.find(_MATROSKA_DURATION_ELEMENT)
    if at < 0:
        raise AssertionError("FFmpeg wrote no 8-byte Duration element")
    value_at = at + len(_MATROSKA_DURATION_ELEMENT)
    data[value_at : value_at + 8] = struct.pack(">d", claimed_seconds * 1000)
    path.write_bytes(bytes(data))
    return path
