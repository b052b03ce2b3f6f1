"""Binary websocket frames carrying Opus audio (documented in docs/audio.md).

Layout, all integers big-endian::

    byte 0     kind       1 = speaker audio (client → server), 2 = room mix (server → client)
    byte 1     flags      bit 0: the sender marks the frame as containing voice activity;
                          bits 1-7 reserved, must be 0
    bytes 2-5  sequence   uint32, +1 per 20 ms frame, wraps
    bytes 6-9  timestamp  uint32, in 48 kHz samples (+960 per frame), wraps
    bytes 10-  payload    one Opus packet, 1..1275 bytes
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


def _check_kind(kind: int) -> FrameKind:
    try:
        return FrameKind(kind)
    except ValueError:
        raise WireError(f"unknown frame kind {kind} (1 = speaker audio, 2 = room mix)") from None


def _check_payload_length(length: int) -> None:
    if length == 0:
        raise WireError("empty payload: a frame carries one Opus packet of at least 1 byte")
    if length > MAX_PACKET_BYTES:
        raise WireError(f"oversized payload: {length} bytes, Opus packets are at most 1275")
