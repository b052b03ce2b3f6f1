import pytest

from spaces.audio.wire import (
    HEADER_BYTES,
    AudioFrame,
    FrameKind,
    WireError,
    mix_frames,
    pack,
    pack_bundle,
    unpack,
    unpack_bundle,
)


def test_round_trip_keeps_every_field():
    """pack then unpack gives back kind, flag, sequence, timestamp and payload."""
    data = pack(FrameKind.SPEAKER_AUDIO, 7, 6720, b"\x78opus", voice_activity=True)
    assert unpack(data) == AudioFrame(
        kind=FrameKind.SPEAKER_AUDIO,
        sequence=7,
        timestamp=6720,
        payload=b"\x78opus",
        voice_activity=True,
    )


def test_header_layout_is_big_endian_and_ten_bytes():
    """The byte layout is exactly the documented one."""
    data = pack(FrameKind.ROOM_MIX, 0x01020304, 0x0A0B0C0D, b"\xff")
    assert HEADER_BYTES == 10
    assert data == bytes([2, 0, 1, 2, 3, 4, 10, 11, 12, 13, 0xFF])


def test_sequence_and_timestamp_wrap_at_uint32():
    """Counters past 2**32 wrap instead of failing."""
    frame = unpack(pack(FrameKind.ROOM_MIX, 2**32 + 5, 2**32 * 3 + 960, b"x"))
    assert (frame.sequence, frame.timestamp) == (5, 960)


def test_largest_opus_payload_is_accepted():
    """1275 bytes, the Opus maximum, fits."""
    assert len(unpack(pack(FrameKind.SPEAKER_AUDIO, 1, 1, b"a" * 1275)).payload) == 1275


def test_unpack_accepts_memoryview():
    """Frames straight out of a websocket buffer parse without copying first."""
    data = memoryview(pack(FrameKind.SPEAKER_AUDIO, 1, 960, b"abc"))
    assert unpack(data).payload == b"abc"


@pytest.mark.parametrize(
    ("data", "reason_start"),
    [
        (b"", "truncated header"),
        (bytes([1, 0, 0, 0, 0, 1, 0, 0, 3]), "truncated header"),
        (bytes([4, 0, 0, 0, 0, 1, 0, 0, 3, 192]) + b"x", "unknown frame kind 4"),
        (bytes([3, 0, 0, 0, 0, 1, 0, 0, 3, 192]) + b"x", "a bundle (kind 3) holds frames"),
        (bytes([0, 0, 0, 0, 0, 1, 0, 0, 3, 192]) + b"x", "unknown frame kind 0"),
        (bytes([1, 2, 0, 0, 0, 1, 0, 0, 3, 192]) + b"x", "reserved flag bits set: 0x02"),
        (bytes([1, 0x81, 0, 0, 0, 1, 0, 0, 3, 192]) + b"x", "reserved flag bits set: 0x81"),
        (bytes([1, 0, 0, 0, 0, 1, 0, 0, 3, 192]), "empty payload"),
        (bytes([1, 0, 0, 0, 0, 1, 0, 0, 3, 192]) + b"x" * 1276, "oversized payload: 1276"),
    ],
)
def test_unpack_rejects_malformed_frames_with_a_reason(data, reason_start):
    """Each malformed frame is refused with a WireError naming what is wrong."""
    with pytest.raises(WireError) as caught:
        unpack(data)
    assert caught.value.reason.startswith(reason_start)
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize(
    ("kind", "payload", "reason_start"),
    [
        (9, b"x", "unknown frame kind 9"),
        (FrameKind.ROOM_MIX, b"", "empty payload"),
        (FrameKind.ROOM_MIX, b"x" * 1276, "oversized payload"),
    ],
)
def test_pack_refuses_what_unpack_would_refuse(kind, payload, reason_start):
    """The sender side cannot build a frame the receiver would reject."""
    with pytest.raises(WireError, match=f"^{reason_start}"):
        pack(kind, 1, 1, payload)


def test_bundle_round_trip_keeps_frames_and_order():
    """A kind-3 bundle gives back its kind-2 frames, oldest first; a lone frame passes too."""
    frames = [pack(FrameKind.ROOM_MIX, n, n * 960, bytes([n]) * (n + 1)) for n in (7, 8, 9)]
    bundle = pack_bundle(frames)
    assert bundle[:2] == bytes([3, 3])
    assert unpack_bundle(bundle) == frames
    assert [f.sequence for f in mix_frames(bundle)] == [7, 8, 9]
    assert [f.sequence for f in mix_frames(frames[0])] == [7]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\x03", "truncated bundle header"),
        (b"\x03\x01", "2..16 frames"),
        (b"\x03\x02\x00", "a frame length is missing"),
        (b"\x03\x02\x00\x0b" + bytes(11) + b"\x00\x40\x02", "shorter than its length"),
        (b"\x03\x02\x00\x05abcde\x00\x05abcde", "shorter than its length"),
    ],
)
def test_malformed_bundles_are_refused_with_a_reason(data, reason):
    with pytest.raises(WireError, match=reason):
        unpack_bundle(data)


def test_stray_bytes_after_a_bundle_are_refused():
    frames = [pack(FrameKind.ROOM_MIX, n, n * 960, b"x") for n in (1, 2)]
    with pytest.raises(WireError, match="stray bytes"):
        unpack_bundle(pack_bundle(frames) + b"!")


def test_a_bundle_is_not_a_frame():
    """Clients send kind 1 only; a bundle where one frame is expected is refused."""
    frames = [pack(FrameKind.ROOM_MIX, n, n * 960, b"x") for n in (1, 2)]
    with pytest.raises(WireError, match="bundle"):
        unpack(pack_bundle(frames))
