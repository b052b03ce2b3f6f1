"""Binary websocket frames carrying Opus audio (documented in docs/audio.md).

Layout, all integers big-endian::

    byte 0     kind       1 = speaker audio (client → server), 2 = room mix (server → client)
    byte 1     flags      bit 0: the sender marks the frame as containing voice activity;
                          bits 1-7 reserved, must be 0
    bytes 2-5  sequence   uint32, +1 per 20 ms frame, wraps
    bytes 6-9  timestamp  uint32, in 48 kHz samples (+960 per frame), wraps
    bytes 10-  payload    one Opus packet, 1..1275 bytes

A *bundle* (kind 3, server → client) carries consecutive room-mix frames in one websocket
message, for listeners of big rooms (``spaces/live/fanout.py``)::

    byte 0     kind       3
    byte 1     count      frames that follow, 2..16
    then, per frame: a uint16 length and that many bytes of one kind-2 frame (as above)
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

from .codec import MAX_PACKET_BYTES

HEADER = struct.Struct(">BBII")
HEADER_BYTES = HEADER.size  # 10
UINT32_MODULO = 1 << 32

FLAG_VOICE_ACTIVITY = 0x01
_RESERVED_FLAGS = 0xFF & ~FLAG_VOICE_ACTIVITY


class FrameKind(IntEnum):
    SPEAKER_AUDIO = 1  # client → server
    ROOM_MIX = 2  # server → client
    ROOM_MIX_BUNDLE = 3  # server → client: several room-mix frames in one message


BUNDLE_HEAD = struct.Struct(">BB")
BUNDLE_LENGTH = struct.Struct(">H")
BUNDLE_MAX_FRAMES = 16


class WireError(ValueError):
    """A binary frame that does not follow the format; ``reason`` says why, for humans."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class AudioFrame:
    kind: FrameKind
    sequence: int
    # In 48 kHz sample units; wraps at 2**32 like ``sequence``.
    timestamp: int
    payload: bytes
    # The sender's own voice-activity flag: advisory, the mixer measures levels itself.
    voice_activity: bool = False


def pack(
    kind: FrameKind,
    sequence: int,
    timestamp: int,
    payload: bytes,
    *,
    voice_activity: bool = False,
) -> bytes:
    """Build one binary frame. Sequence and timestamp are taken modulo 2**32 (they wrap)."""
    kind = _check_kind(kind)
    _check_payload_length(len(payload))
    flags = FLAG_VOICE_ACTIVITY if voice_activity else 0
    header = HEADER.pack(kind, flags, sequence % UINT32_MODULO, timestamp % UINT32_MODULO)
    return header + payload


def unpack(data: bytes | bytearray | memoryview) -> AudioFrame:
    """Parse one binary frame; raises ``WireError`` saying what is wrong with it."""
    if len(data) < HEADER_BYTES:
        raise WireError(f"truncated header: {len(data)} bytes, the header needs {HEADER_BYTES}")
    kind_byte, flags, sequence, timestamp = HEADER.unpack_from(data)
    kind = _check_kind(kind_byte)
    if flags & _RESERVED_FLAGS:
        raise WireError(f"reserved flag bits set: 0x{flags:02x} (only bit 0 is defined)")
    _check_payload_length(len(data) - HEADER_BYTES)
    return AudioFrame(
        kind=kind,
        sequence=sequence,
        timestamp=timestamp,
        payload=bytes(data[HEADER_BYTES:]),
        voice_activity=bool(flags & FLAG_VOICE_ACTIVITY),
    )


def pack_bundle(frames: list[bytes]) -> bytes:
    """Several packed room-mix frames (kind 2), oldest first, as one kind-3 message."""
    if not 2 <= len(frames) <= BUNDLE_MAX_FRAMES:
        raise WireError(f"a bundle carries 2..{BUNDLE_MAX_FRAMES} frames, not {len(frames)}")
    parts = [BUNDLE_HEAD.pack(FrameKind.ROOM_MIX_BUNDLE, len(frames))]
    for frame in frames:
        parts.append(BUNDLE_LENGTH.pack(len(frame)))
        parts.append(frame)
    return b"".join(parts)


def unpack_bundle(data: bytes | bytearray | memoryview) -> list[bytes]:
    """The kind-2 frames of a kind-3 message, oldest first (each still to be ``unpack``-ed)."""
    if len(data) < BUNDLE_HEAD.size:
        raise WireError("truncated bundle header")
    kind, count = BUNDLE_HEAD.unpack_from(data)
    if kind != FrameKind.ROOM_MIX_BUNDLE:
        raise WireError(f"not a bundle: kind {kind}")
    if not 2 <= count <= BUNDLE_MAX_FRAMES:
        raise WireError(f"a bundle carries 2..{BUNDLE_MAX_FRAMES} frames, not {count}")
    frames, offset = [], BUNDLE_HEAD.size
    for _ in range(count):
        if offset + BUNDLE_LENGTH.size > len(data):
            raise WireError("truncated bundle: a frame length is missing")
        (length,) = BUNDLE_LENGTH.unpack_from(data, offset)
        offset += BUNDLE_LENGTH.size
        if length < HEADER_BYTES + 1 or offset + length > len(data):
            raise WireError("truncated bundle: a frame is shorter than its length says")
        frames.append(bytes(data[offset : offset + length]))
        offset += length
    if offset != len(data):
        raise WireError(f"{len(data) - offset} stray bytes after the bundle's frames")
    return frames


def mix_frames(data: bytes | bytearray | memoryview) -> list[AudioFrame]:
    """What a listener does with one binary message: a room-mix frame, or a bundle of them."""
    if len(data) and data[0] == FrameKind.ROOM_MIX_BUNDLE:
        return [unpack(frame) for frame in unpack_bundle(data)]
    return [unpack(data)]


def _check_kind(kind: int) -> FrameKind:
    try:
        kind = FrameKind(kind)
    except ValueError:
        raise WireError(
            f"unknown frame kind {kind} (1 = speaker audio, 2 = room mix, 3 = mix bundle)"
        ) from None
    if kind == FrameKind.ROOM_MIX_BUNDLE:
        raise WireError("a bundle (kind 3) holds frames; it is not one (unpack_bundle)")
    return kind


def _check_payload_length(length: int) -> None:
    if length == 0:
        raise WireError("empty payload: a frame carries one Opus packet of at least 1 byte")
    if length > MAX_PACKET_BYTES:
        raise WireError(f"oversized payload: {length} bytes, Opus packets are at most 1275")
