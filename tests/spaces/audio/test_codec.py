import numpy as np
import pytest

from spaces.audio import FRAME_SAMPLES, CodecError, OpusDecoder, OpusSettings

from .signals import decode, dominant_frequency, encode, rms, sine


def test_opus_round_trip_keeps_pitch_and_level():
    """A 440 Hz tone survives encode + decode at the default voice settings."""
    tone = sine(440, 50)
    decoded = decode(encode(tone))
    steady = decoded[20 * FRAME_SAMPLES :]
    assert len(decoded) == len(tone)
    assert abs(dominant_frequency(steady) - 440) < 5
    assert rms(steady) == pytest.approx(rms(tone), rel=0.15)


@pytest.mark.parametrize(
    "opus_settings",
    [
        OpusSettings(application="audio", bitrate=64_000, complexity=10),
        OpusSettings(application="lowdelay", bitrate=24_000, complexity=0),
        OpusSettings(fec=True, packet_loss_percent=10),
    ],
)
def test_every_setting_produces_decodable_20ms_packets(opus_settings):
    """Application, bitrate, complexity and FEC are all accepted by libopus."""
    decoded = decode(encode(sine(660, 30), opus_settings))
    assert abs(dominant_frequency(decoded[10 * FRAME_SAMPLES :]) - 660) < 5


def test_settings_reject_nonsense():
    """Out-of-range settings fail at construction, not inside libopus."""
    with pytest.raises(ValueError, match="application"):
        OpusSettings(application="music")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="complexity"):
        OpusSettings(complexity=11)
    with pytest.raises(ValueError, match="FEC"):
        OpusSettings(fec=True, packet_loss_percent=0)


def test_opus_plc_continues_the_tone_for_a_lost_frame():
    """Concealing one lost frame uses Opus PLC: the tone goes on, at about the same level."""
    tone = sine(440, 40)
    packets = encode(tone)
    decoder = OpusDecoder()
    for packet in packets[:30]:
        decoder.decode(packet)
    concealed = decoder.conceal()
    assert decoder.concealed_with_opus == 1
    assert rms(concealed) > 0.5 * rms(tone)
    assert abs(dominant_frequency(concealed) - 440) < 30


def test_repeated_concealment_fades_out():
    """A stream that stops is not extended forever: concealment decays towards silence."""
    packets = encode(sine(440, 30))
    decoder = OpusDecoder()
    for packet in packets:
        decoder.decode(packet)
    levels = [rms(decoder.conceal()) for _ in range(15)]
    assert levels[-1] < 0.1 * levels[0]


def test_concealment_before_any_packet_is_silence():
    """With nothing decoded yet there is nothing to extrapolate: the numpy fallback is silent."""
    decoder = OpusDecoder()
    assert not decoder.conceal().any()
    assert decoder.concealed_with_fallback == 1


def test_corrupt_or_wrong_duration_packets_raise_codec_error():
    """Garbage and 40 ms packets are refused, so the mixer can conceal instead."""
    decoder = OpusDecoder()
    with pytest.raises(CodecError):
        decoder.decode(bytes([0x7B, 0xFF, 0xFF]))  # code 3 with an impossible frame count
    forty_ms_toc = (10 << 3) | 0  # SILK wideband 40 ms
    with pytest.raises(CodecError):
        decoder.decode(bytes([forty_ms_toc]))


def test_decoded_frames_are_int16_mono():
    """The mixer relies on 960 int16 samples per frame."""
    pcm = OpusDecoder().decode(encode(np.zeros(FRAME_SAMPLES, dtype=np.int16))[0])
    assert pcm.dtype == np.int16
    assert pcm.shape == (FRAME_SAMPLES,)
