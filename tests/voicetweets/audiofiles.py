"""Build audio (and not-quite-audio) files for tests: synthetic signals encoded with PyAV.

Reusable by later voice-tweet tests (services, tasks, API): everything is generated on the fly,
nothing is checked in.
"""

from __future__ import annotations

import math
import struct
import zlib
from pathlib import Path

import av
import av.stream
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
    with av.open(str(path), mode="w", format=muxer) as output:
        stream = output.add_stream(codec, rate=rate, layout="stereo" if channels == 2 else "mono")
        _encode_into(output, stream, samples, rate=rate)
    return path


def write_audio_with_picture(
    path: Path,
    samples: np.ndarray,
    *,
    rate: int = 48_000,
    picture_codec: str = "mjpeg",
) -> Path:
    """Audio with cover art, as phones and podcast tools export it: a one-frame video stream
    marked ``attached_pic`` (an ID3 APIC frame in MP3, a ``covr`` atom in MP4). Both muxers
    store the picture as metadata, so it reads back as the second stream whatever the order
    here; :func:`write_audio_with_video` makes files whose first stream is video."""
    muxer, codec = ENCODINGS[path.suffix.lstrip(".")]
    with av.open(str(path), mode="w", format=muxer) as output:
        # Every stream exists before the first packet is muxed (that writes the header).
        audio = output.add_stream(codec, rate=rate, layout="mono")
        picture = _add_picture_stream(output, picture_codec)
        image = av.VideoFrame.from_ndarray(_test_card(64, 64, 0), format="rgb24")
        for packet in [*picture.encode(image.reformat(format=picture.pix_fmt)), *picture.encode()]:
            output.mux(packet)
        _encode_into(output, audio, samples, rate=rate)
    return path


def _add_picture_stream(output: av.container.OutputContainer, codec: str) -> av.VideoStream:
    picture = output.add_stream(codec, rate=1)
    picture.width, picture.height = 64, 64
    picture.pix_fmt = "yuvj420p" if codec == "mjpeg" else "rgb24"
    picture.disposition = av.stream.Disposition.attached_pic
    return picture


def _encode_into(
    output: av.container.OutputContainer, stream: av.AudioStream, samples: np.ndarray, *, rate
) -> None:
    """Encode mono float samples into ``stream``, duplicated into stereo if it is stereo."""
    channels = stream.codec_context.layout.nb_channels
    layout = stream.codec_context.layout.name
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


def write_audio_with_video(
    path: Path,
    samples: np.ndarray,
    *,
    rate: int = 48_000,
    audio_codec: str | None = None,
    video_codec: str = "libvpx",
    video_first: bool = False,
    frames_per_second: int = 5,
) -> Path:
    """Audio with a moving video track beside it for its whole length (a screen recording, a
    clip saved as WebM). With ``video_first`` the video is stream 0 and the audio stream 1."""
    muxer, default_codec = ENCODINGS[path.suffix.lstrip(".")]
    codec = audio_codec or default_codec
    with av.open(str(path), mode="w", format=muxer) as output:
        # FFmpeg's own Vorbis encoder (PyAV has no libvorbis) encodes stereo only.
        layout = "stereo" if codec == "vorbis" else "mono"
        if video_first:
            video = output.add_stream(video_codec, rate=frames_per_second)
            audio = output.add_stream(codec, rate=rate, layout=layout)
        else:
            audio = output.add_stream(codec, rate=rate, layout=layout)
            video = output.add_stream(video_codec, rate=frames_per_second)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        if codec == "vorbis":
            # ... and is marked experimental.
            audio.codec_context.options = {"strict": "experimental"}
        for index in range(math.ceil(samples.size / rate * frames_per_second)):
            image = av.VideoFrame.from_ndarray(_test_card(48, 64, index), format="rgb24")
            image.pts = index
            for packet in video.encode(image.reformat(format="yuv420p")):
                output.mux(packet)
        for packet in video.encode(None):
            output.mux(packet)
        _encode_into(output, audio, samples, rate=rate)
    return path


def _test_card(height: int, width: int, index: int) -> np.ndarray:
    image = np.zeros((height, width, 3), dtype=np.uint8)
    image[:, :, 0] = np.arange(width, dtype=np.uint8) * 4
    image[:, :, 1] = index * 37 % 256
    return image


# Audio beside a second, non-audio stream: cover art from phones and podcast tools, a video
# track in a WebM or MP4 clip, and files whose first stream is the video.
SECOND_STREAM_FILES = {
    "mp3-with-jpeg-cover": lambda path: write_audio_with_picture(
        path / "cover.mp3", sine(6.0, frequency=440)
    ),
    "mp3-with-png-cover": lambda path: write_audio_with_picture(
        path / "cover.mp3", sine(6.0, frequency=440), picture_codec="png"
    ),
    "m4a-with-cover": lambda path: write_audio_with_picture(
        path / "cover.m4a", sine(6.0, frequency=440)
    ),
    "webm-vp8-then-opus": lambda path: write_audio_with_video(
        path / "clip.webm", sine(6.0, frequency=440)
    ),
    "webm-vp9-first-then-opus": lambda path: write_audio_with_video(
        path / "clip.webm",
        sine(6.0, frequency=440),
        video_codec="libvpx-vp9",
        video_first=True,
    ),
    "webm-vp8-first-then-vorbis": lambda path: write_audio_with_video(
        path / "clip.webm",
        sine(6.0, frequency=440),
        audio_codec="vorbis",
        video_first=True,
    ),
    "mp4-video-first-then-aac": lambda path: write_audio_with_video(
        path / "clip.m4a",
        sine(6.0, frequency=440),
        video_codec="mpeg4",
        video_first=True,
    ),
}


def assert_plays_a_440_hz_tone_for(path: Path, seconds: float) -> None:
    """The processed file lasts ``seconds`` and is the tone the fixtures wrote, clearly
    audible (not silence, not the picture's or video's bytes turned into noise)."""
    from voicetweets.audio import decode_mono

    decoded = decode_mono(path)
    assert abs(decoded.size / 48_000 - seconds) <= 0.06
    middle = decoded[4800:-4800]
    assert np.sqrt(np.mean(middle**2)) > 0.05
    spectrum = np.abs(np.fft.rfft(middle * np.hanning(middle.size)))
    assert abs(np.fft.rfftfreq(middle.size, 1 / 48_000)[spectrum.argmax()] - 440) <= 5


def write_two_audio_streams(
    path: Path, seconds: float = 2.0, rate: int = 16_000, frequencies=(440.0, 1000.0)
) -> Path:
    """A Matroska file with two PCM audio tracks (e.g. two languages), a tone each."""
    with av.open(str(path), mode="w", format="matroska") as output:
        streams = [output.add_stream("pcm_s16le", rate=rate, layout="mono") for _ in frequencies]
        for stream, frequency in zip(streams, frequencies, strict=True):
            samples = sine(seconds, frequency=frequency, rate=rate)
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
