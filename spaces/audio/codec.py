"""Opus at 48 kHz mono in 20 ms frames, through PyAV's libopus wrapper.

What FFmpeg's libopus wrapper allows (libavcodec/libopusdec.c, FFmpeg 8 / PyAV 18):

* **FEC cannot be decoded.** ``libopus_decode`` always calls ``opus_multistream_decode(...,
  decode_fec=0)`` and exposes no option to change it, so the LBRR copy of frame *n* carried in
  packet *n + 1* is unreachable from Python. The encoder side (``fec``, ``packet_loss``) works;
  it only pays off for clients whose own libopus decodes FEC.
* **Real Opus PLC is reachable, with a trick.** An empty ``AVPacket`` means "drain" to
  libavcodec, so ``opus_decode(NULL, 0)`` (the documented way to ask for concealment) cannot
  be requested directly. But libopus runs the same PLC for a packet whose only frame is 0 bytes
  long (``opus_decode_frame``: "Payloads of 1 (2 including ToC) or 0 trigger the PLC/DTX"):
  that is how DTX works. So :meth:`OpusDecoder.conceal` feeds a one-byte packet (just the TOC
  byte, same mode and bandwidth as the last real packet, 20 ms, one frame). Opus then
  extrapolates the signal and fades it out on its own over consecutive losses.
* If that ever fails (no packet decoded yet, decoder error), concealment falls back to numpy:
  the last frame repeated with a decaying gain, then silence.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import av
import numpy as np

SAMPLE_RATE = 48_000
FRAME_SAMPLES = 960  # 20 ms at 48 kHz
FRAME_SECONDS = FRAME_SAMPLES / SAMPLE_RATE
MAX_PACKET_BYTES = 1275  # the largest Opus frame (RFC 6716 §3.4, R2)

# Numpy fallback concealment: each repeated frame is this much quieter than the previous one,
# so a lost stream fades out in about five frames instead of buzzing.
_FALLBACK_DECAY = 0.5

Application = Literal["voip", "audio", "lowdelay"]


class CodecError(RuntimeError):
    """The codec refused data (corrupt packet, wrong frame size)."""


@dataclass(frozen=True, slots=True)
class OpusSettings:
    """Encoder settings. The defaults are the "speech" audio mode's (``bench/bench_mixer.py``,
    section 0, measures every choice below end to end: uplink encode, server decode, mix
    re-encode, listener decode).

    * ``application="audio"``, not "voip": every hop of a "voip" encoder runs libopus's
      speech high-pass (a cutoff that follows the pitch, up to ~100 Hz), whose phase shift
      and loss of the fundamental compound over our two encodes (uplink, then mix). With
      "voip" on both hops, clean speech (espeak-ng) came out at a correlation of 0.88 with
      its source whatever the bitrate (32-48 kb/s); "audio" on both hops, at the same
      32 kb/s, at 0.99, and its encode costs about half as much. Browsers clean the microphone up
      (echo cancellation, noise suppression) before it reaches the encoder, so the
      high-pass buys little; "lowdelay" forces CELT and loses SILK's efficiency on voice.
    * ``bitrate=32_000``: speech is already at 0.99 end to end; 40 or 48 kb/s add < 0.01
      for 25-50 % more bandwidth per listener (4 kB/s at 32 kb/s).
    * ``complexity=5``: the encoder is the mixer's biggest cost (1 + talking speakers per
      tick per room). On speech at 32 kb/s, 10 costs nearly three times as much per frame
      (25 % more at music's 96 kb/s, for +0.004 correlation), and 0 saves about a third but
      degrades SILK's analysis (see the bench tables); 5 is the usual middle ground for
      servers mixing many streams.
    * ``fec=False, packet_loss_percent=0``: our websocket transport is TCP, so frames arrive
      late rather than lost, and the server's decoder cannot use FEC anyway (module
      docstring). In-band FEC would spend bits for nothing; enable it for lossy transports.

    The "music" mode (:data:`AUDIO_MODES`) keeps "audio" and raises the bitrate to 96 kb/s:
    a chord with harmonics up to 16 kHz comes out at 0.99 (0.98 at 64 kb/s, 0.996 at
    128 kb/s for a third more bandwidth); libopus codes it fullband (20 kHz).
    """

    application: Application = "audio"
    bitrate: int = 32_000
    complexity: int = 5
    fec: bool = False
    packet_loss_percent: int = 0

    def __post_init__(self) -> None:
        if self.application not in ("voip", "audio", "lowdelay"):
            raise ValueError(f"unknown Opus application {self.application!r}")
        if not 6_000 <= self.bitrate <= 510_000:
            raise ValueError(f"Opus bitrate must be 6000..510000 b/s, got {self.bitrate}")
        if not 0 <= self.complexity <= 10:
            raise ValueError(f"Opus complexity must be 0..10, got {self.complexity}")
        if not 0 <= self.packet_loss_percent <= 100:
            raise ValueError(f"packet loss must be 0..100 %, got {self.packet_loss_percent}")
        if self.fec and self.packet_loss_percent == 0:
            # libopus only spends bits on FEC when told to expect loss.
            raise ValueError("in-band FEC needs a non-zero expected packet_loss_percent")


AudioMode = Literal["speech", "music"]

# A space's audio mode -> the encoder settings of its uplinks (space_client; the browser's
# copy is ENCODER_CONFIGS in static/js/spaces/audio.js) and of its mix. One table, both sides.
AUDIO_MODES: dict[str, OpusSettings] = {
    "speech": OpusSettings(),
    "music": OpusSettings(application="audio", bitrate=96_000),
}


def opus_settings_for(mode: str) -> OpusSettings:
    """The encoder settings of audio mode ``mode``; ``ValueError`` for an unknown mode."""
    try:
        return AUDIO_MODES[mode]
    except KeyError:
        raise ValueError(f"unknown audio mode {mode!r}") from None


class OpusEncoder:
    """Encodes 960-sample int16 frames to one Opus packet each.

    One instance per output stream: Opus is stateful, so a stream must keep its encoder.
    The input ``AudioFrame`` is allocated once and refilled, so an encode does no allocation
    on the Python side besides the packet bytes.
    """

    def __init__(self, settings: OpusSettings | None = None) -> None:
        self.settings = settings or OpusSettings()
        context = av.CodecContext.create("libopus", "w")
        context.sample_rate = SAMPLE_RATE
        context.layout = "mono"
        context.format = "s16"
        context.bit_rate = self.settings.bitrate
        context.options = {
            "application": self.settings.application,
            "frame_duration": "20",
            "compression_level": str(self.settings.complexity),
            "fec": "1" if self.settings.fec else "0",
            "packet_loss": str(self.settings.packet_loss_percent),
        }
        context.open()
        self._context = context
        self._frame = av.AudioFrame(format="s16", layout="mono", samples=FRAME_SAMPLES)
        self._frame.sample_rate = SAMPLE_RATE
        self._samples = np.frombuffer(self._frame.planes[0], dtype=np.int16)[:FRAME_SAMPLES]
        self._pts = 0

    def encode(self, pcm: np.ndarray) -> bytes:
        """Encode one frame of 960 int16 samples; returns the Opus packet."""
        self._samples[:] = pcm
        self._frame.pts = self._pts
        self._pts += FRAME_SAMPLES
        packets = self._context.encode(self._frame)
        if len(packets) != 1:
            raise CodecError(f"libopus returned {len(packets)} packets for one 20 ms frame")
        return bytes(packets[0])


def _toc_for_20ms_plc(toc: int) -> int:
    """The TOC byte of a one-frame, 20 ms packet in the same mode/bandwidth as ``toc``.

    Config numbers (RFC 6716 §3.1): 0-11 SILK (4 durations each: 10/20/40/60 ms),
    12-15 hybrid (2 each: 10/20 ms), 16-31 CELT (4 each: 2.5/5/10/20 ms).
    """
    config = toc >> 3
    if config < 12:
        config = (config // 4) * 4 + 1
    elif config < 16:
        config = (config // 2) * 2 + 1
    else:
        config = (config // 4) * 4 + 3
    stereo_bit = toc & 0x04
    return (config << 3) | stereo_bit  # frame count code 0: one frame


class OpusDecoder:
    """Decodes one speaker's Opus packets to 960-sample int16 frames, and conceals losses."""

    def __init__(self) -> None:
        context = av.CodecContext.create("libopus", "r")
        context.sample_rate = SAMPLE_RATE
        context.layout = "mono"
        context.format = "s16"
        context.open()
        self._context = context
        self._plc_packet: bytes | None = None
        self._last = np.zeros(FRAME_SAMPLES, dtype=np.int16)
        self._fallback_gain = 0.0
        self.concealed_with_opus = 0
        self.concealed_with_fallback = 0

    def decode(self, payload: bytes) -> np.ndarray:
        """Decode one 20 ms packet. Raises ``CodecError`` for corrupt or non-20 ms packets."""
        pcm = self._decode(payload)
        if pcm is None:
            raise CodecError("packet is not a decodable 20 ms mono Opus frame")
        self._plc_packet = bytes((_toc_for_20ms_plc(payload[0]),))
        self._last = pcm
        self._fallback_gain = 1.0
        return pcm

    def conceal(self) -> np.ndarray:
        """A stand-in for one lost frame: Opus PLC if possible, else a fading repeat."""
        if self._plc_packet is not None:
            pcm = self._decode(self._plc_packet)
            if pcm is not None:
                self.concealed_with_opus += 1
                self._last = pcm
                return pcm
        self.concealed_with_fallback += 1
        self._fallback_gain *= _FALLBACK_DECAY
        if self._fallback_gain < 1 / 64:
            self._fallback_gain = 0.0
        return (self._last * self._fallback_gain).astype(np.int16)

    def reset(self) -> None:
        """Forget the stream (a speaker re-joins or resumes after a demotion)."""
        self._context.flush_buffers()
        self._plc_packet = None
        self._last = np.zeros(FRAME_SAMPLES, dtype=np.int16)
        self._fallback_gain = 0.0

    def _decode(self, payload: bytes) -> np.ndarray | None:
        try:
            frames = self._context.decode(av.Packet(payload))
        except av.FFmpegError:
            return None
        if len(frames) != 1 or frames[0].samples != FRAME_SAMPLES:
            return None
        # A view on the decoded frame's own buffer (it keeps the frame alive): to_ndarray()
        # would stack planes and copy, a fifth of a decode's cost.
        return np.frombuffer(frames[0].planes[0], dtype=np.int16, count=FRAME_SAMPLES)
