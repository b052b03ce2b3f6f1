"""Opus at 48 kHz, mono (stereo in the "music_stereo" mode), in 20 ms frames: PyAV's libopus
wrapper, and libopus itself for the live decoder.

Encoding (and every decode outside the live per-speaker path: recorder, replay, benches) goes
through PyAV. The live per-speaker decoder is the one exception: it calls the libopus that PyAV
ships (``av.libs/libopus-*.so``, found next to the ``av`` package) through a small ctypes
binding, because FFmpeg's libopus wrapper (libavcodec/libopusdec.c, FFmpeg 8 / PyAV 18) hides
the two calls a jitter buffer needs:

* **FEC cannot be decoded through FFmpeg.** ``libopus_decode`` always calls
  ``opus_multistream_decode(..., decode_fec=0)`` and exposes no option to change it, so the
  LBRR copy of frame *n* carried in packet *n + 1* is unreachable. libopus' own
  ``opus_decode(packet n + 1, decode_fec=1)`` returns frame *n* from it (or runs PLC when the
  packet carries none), which :meth:`OpusDecoder.decode_fec` does when a frame is lost and the
  next one is already buffered.
* **PLC.** An empty ``AVPacket`` means "drain" to libavcodec, so ``opus_decode(NULL, 0)``, the
  documented way to ask for concealment, cannot be requested through FFmpeg. libopus called
  directly takes it as it is.

It is the same library PyAV decodes with, in the same version, so nothing new is installed and
packets decode identically. If it cannot be loaded (another PyAV build, no ``av.libs``), the
decoder falls back to PyAV: no FEC, and PLC through a trick: libopus runs the same PLC for a
packet whose only frame is 0 bytes long (``opus_decode_frame``: "Payloads of 1 (2 including
ToC) or 0 trigger the PLC/DTX"), so the fallback feeds a one-byte packet (the TOC byte, same
mode and bandwidth as the last real packet, 20 ms, one frame). If even that fails (no packet
decoded yet, decoder error), concealment is a numpy fade: the last frame repeated with a
decaying gain, then silence.
"""

from __future__ import annotations

import ctypes
import glob
import os
from dataclasses import dataclass, replace
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
      late rather than lost, and in-band FEC would spend bits for nothing. A speaker's client
      turns it on when the server reports uplink loss (``uplink.quality``); the live decoder
      rebuilds a lost frame from it (:meth:`OpusDecoder.decode_fec`).

    The "music" mode (:data:`AUDIO_MODES`) keeps "audio" and raises the bitrate to 96 kb/s:
    a chord with harmonics up to 16 kHz comes out at 0.99 (0.98 at 64 kb/s, 0.996 at
    128 kb/s for a third more bandwidth); libopus codes it fullband (20 kHz).
    "music_stereo" is music in two channels at 128 kb/s, libopus's own figure for fullband
    stereo music (its joint-stereo coding spends the extra third on the side signal).
    """

    application: Application = "audio"
    bitrate: int = 32_000
    complexity: int = 5
    fec: bool = False
    packet_loss_percent: int = 0
    # 2: the stream is stereo (frames of shape (960, 2)), and so is a room mixing with it.
    channels: int = 1

    def __post_init__(self) -> None:
        if self.application not in ("voip", "audio", "lowdelay"):
            raise ValueError(f"unknown Opus application {self.application!r}")
        if not 6_000 <= self.bitrate <= 510_000:
            raise ValueError(f"Opus bitrate must be 6000..510000 b/s, got {self.bitrate}")
        if not 0 <= self.complexity <= 10:
            raise ValueError(f"Opus complexity must be 0..10, got {self.complexity}")
        if not 0 <= self.packet_loss_percent <= 100:
            raise ValueError(f"packet loss must be 0..100 %, got {self.packet_loss_percent}")
        if self.channels not in (1, 2):
            raise ValueError(f"Opus channels must be 1 or 2, got {self.channels}")
        if self.fec and self.packet_loss_percent == 0:
            # libopus only spends bits on FEC when told to expect loss.
            raise ValueError("in-band FEC needs a non-zero expected packet_loss_percent")

    def expecting_loss(self, loss_percent: int) -> OpusSettings:
        """These settings for an uplink the server reports ``loss_percent`` on
        (``uplink.quality``): in-band FEC for that loss (at least 1 %), off at 0."""
        loss = max(0, min(100, loss_percent))
        return replace(self, fec=loss > 0, packet_loss_percent=max(1, loss) if loss else 0)


AudioMode = Literal["speech", "music", "music_stereo"]

# A space's audio mode -> the encoder settings of its uplinks (space_client; the browser's
# copy is ENCODER_CONFIGS in static/js/spaces/audio.js) and of its mix. One table, both sides.
# Stereo is a kind of music mode, not a setting of its own: there is no stereo speech, so the
# rule "stereo only in music" is this table's shape rather than a check somewhere.
AUDIO_MODES: dict[str, OpusSettings] = {
    "speech": OpusSettings(),
    "music": OpusSettings(application="audio", bitrate=96_000),
    "music_stereo": OpusSettings(application="audio", bitrate=128_000, channels=2),
}


def packet_is_stereo(payload: bytes) -> bool:
    """Whether an Opus packet codes two channels: the TOC byte's s bit (RFC 6716 §3.1)."""
    return bool(payload) and bool(payload[0] & 0x04)


def opus_settings_for(mode: str) -> OpusSettings:
    """The encoder settings of audio mode ``mode``; ``ValueError`` for an unknown mode."""
    try:
        return AUDIO_MODES[mode]
    except KeyError:
        raise ValueError(f"unknown audio mode {mode!r}") from None


class OpusEncoder:
    """Encodes 960-sample int16 frames to one Opus packet each: shape (960,) for mono
    settings, (960, 2) for stereo ones (a (960,) frame given to a stereo encoder is coded as
    centred mono, the same in both channels).

    One instance per output stream: Opus is stateful, so a stream must keep its encoder.
    The input ``AudioFrame`` is allocated once and refilled, so an encode does no allocation
    on the Python side besides the packet bytes.
    """

    def __init__(self, settings: OpusSettings | None = None) -> None:
        self.settings = settings or OpusSettings()
        context = av.CodecContext.create("libopus", "w")
        channels = self.settings.channels
        layout = "stereo" if channels == 2 else "mono"
        context.sample_rate = SAMPLE_RATE
        context.layout = layout
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
        self._frame = av.AudioFrame(format="s16", layout=layout, samples=FRAME_SAMPLES)
        self._frame.sample_rate = SAMPLE_RATE
        # Packed s16: stereo is interleaved in the one plane, i.e. a (960, 2) array.
        samples = np.frombuffer(self._frame.planes[0], dtype=np.int16)[: FRAME_SAMPLES * channels]
        self._samples = samples.reshape(FRAME_SAMPLES, 2) if channels == 2 else samples
        self._pts = 0

    def encode(self, pcm: np.ndarray) -> bytes:
        """Encode one frame of 960 int16 samples per channel; returns the Opus packet."""
        if pcm.ndim < self._samples.ndim:
            pcm = pcm[:, None]  # mono into a stereo stream: both channels
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


def _load_libopus() -> ctypes.CDLL | None:
    """The libopus PyAV ships (``av.libs`` next to the ``av`` package), or None."""
    libs = os.path.join(os.path.dirname(os.path.dirname(av.__file__)), "av.libs")
    for path in sorted(glob.glob(os.path.join(libs, "libopus*.so*"))):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        lib.opus_decoder_create.restype = ctypes.c_void_p
        lib.opus_decoder_create.argtypes = [ctypes.c_int32, ctypes.c_int, ctypes.c_void_p]
        lib.opus_decode.restype = ctypes.c_int
        lib.opus_decode.argtypes = [
            ctypes.c_void_p,
            ctypes.c_char_p,
            ctypes.c_int32,
            ctypes.c_void_p,
            ctypes.c_int,
            ctypes.c_int,
        ]
        lib.opus_decoder_ctl.restype = ctypes.c_int
        lib.opus_decoder_ctl.argtypes = [ctypes.c_void_p, ctypes.c_int]
        lib.opus_decoder_destroy.restype = None
        lib.opus_decoder_destroy.argtypes = [ctypes.c_void_p]
        if hasattr(lib, "opus_packet_has_lbrr"):  # libopus >= 1.5
            lib.opus_packet_has_lbrr.restype = ctypes.c_int
            lib.opus_packet_has_lbrr.argtypes = [ctypes.c_char_p, ctypes.c_int32]
        return lib
    return None


_LIBOPUS = _load_libopus()
_OPUS_RESET_STATE = 4028  # opus_defines.h


class _LibopusDecoder:
    """One libopus decoder state (ctypes). Returns None where PyAV would raise."""

    def __init__(self, lib: ctypes.CDLL, channels: int = 1) -> None:
        error = ctypes.c_int(0)
        state = lib.opus_decoder_create(SAMPLE_RATE, channels, ctypes.byref(error))
        if not state or error.value != 0:
            raise CodecError(f"opus_decoder_create failed ({error.value})")
        self._lib = lib
        self._state = state
        self._shape = (FRAME_SAMPLES, 2) if channels == 2 else (FRAME_SAMPLES,)

    def decode(self, payload: bytes | None, fec: bool = False) -> np.ndarray | None:
        """``payload`` None: PLC. ``fec``: frame n from packet n + 1's LBRR data. libopus
        decodes any packet to the decoder's channels: a mono packet comes out in both
        channels of a stereo decoder, a stereo one downmixed from a mono decoder."""
        pcm = np.empty(self._shape, dtype=np.int16)  # interleaved, as libopus writes it
        count = self._lib.opus_decode(
            self._state,
            payload,
            len(payload) if payload is not None else 0,
            pcm.ctypes.data,
            FRAME_SAMPLES,
            1 if fec else 0,
        )
        if count != FRAME_SAMPLES:
            return None
        return pcm

    def reset(self) -> None:
        self._lib.opus_decoder_ctl(self._state, _OPUS_RESET_STATE)

    def __del__(self) -> None:
        state, self._state = getattr(self, "_state", None), None
        if state:
            self._lib.opus_decoder_destroy(state)


class OpusDecoder:
    """Decodes one speaker's Opus packets to 960-sample int16 frames, and conceals losses.

    ``channels=2``: frames of shape (960, 2), whatever each packet codes (a mono packet is
    heard in both channels); 1: shape (960,), stereo packets downmixed.
    ``use_libopus=False`` forces the PyAV path (what runs when libopus cannot be loaded).
    """

    def __init__(self, *, channels: int = 1, use_libopus: bool = True) -> None:
        if channels not in (1, 2):
            raise ValueError(f"Opus channels must be 1 or 2, got {channels}")
        self.channels = channels
        self._shape = (FRAME_SAMPLES, 2) if channels == 2 else (FRAME_SAMPLES,)
        self._libopus = _LibopusDecoder(_LIBOPUS, channels) if use_libopus and _LIBOPUS else None
        self._context = None
        if self._libopus is None:
            context = av.CodecContext.create("libopus", "r")
            context.sample_rate = SAMPLE_RATE
            context.layout = "stereo" if channels == 2 else "mono"
            context.format = "s16"
            context.open()
            self._context = context
        self._plc_packet: bytes | None = None
        self._last = np.zeros(self._shape, dtype=np.int16)
        self._fallback_gain = 0.0
        self.concealed_with_opus = 0
        self.concealed_with_fallback = 0
        self.recovered_with_fec = 0

    @property
    def can_decode_fec(self) -> bool:
        return self._libopus is not None

    def has_fec(self, payload: bytes) -> bool:
        """Whether ``payload`` carries an in-band FEC copy of the frame before it that this
        decoder can use. libopus only codes one when it expects loss and the frame is
        active speech at a bitrate that affords it."""
        lib = self._libopus._lib if self._libopus is not None else None
        if lib is None or not hasattr(lib, "opus_packet_has_lbrr"):
            return self._libopus is not None  # unknown: decode_fec falls back to PLC itself
        return lib.opus_packet_has_lbrr(payload, len(payload)) == 1

    def decode(self, payload: bytes) -> np.ndarray:
        """Decode one 20 ms packet. Raises ``CodecError`` for corrupt or non-20 ms packets."""
        pcm = self._decode(payload)
        if pcm is None:
            raise CodecError("packet is not a decodable 20 ms Opus frame")
        self._plc_packet = bytes((_toc_for_20ms_plc(payload[0]),))
        self._last = pcm
        self._fallback_gain = 1.0
        return pcm

    def decode_fec(self, next_payload: bytes) -> np.ndarray:
        """A stand-in for the lost frame just before ``next_payload``: its in-band FEC copy
        when the packet carries one (libopus runs PLC when it does not), else ``conceal()``.
        Then decode ``next_payload`` itself as usual."""
        if self._libopus is not None and self._plc_packet is not None:
            pcm = self._libopus.decode(next_payload, fec=True)
            if pcm is not None:
                self.recovered_with_fec += 1
                self._last = pcm
                return pcm
        return self.conceal()

    def conceal(self) -> np.ndarray:
        """A stand-in for one lost frame: Opus PLC if possible, else a fading repeat."""
        if self._plc_packet is not None:
            if self._libopus is not None:
                pcm = self._libopus.decode(None)
            else:
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
        if self._libopus is not None:
            self._libopus.reset()
        else:
            self._context.flush_buffers()
        self._plc_packet = None
        self._last = np.zeros(self._shape, dtype=np.int16)
        self._fallback_gain = 0.0

    def _decode(self, payload: bytes) -> np.ndarray | None:
        if self._libopus is not None:
            return self._libopus.decode(payload)
        try:
            frames = self._context.decode(av.Packet(payload))
        except av.FFmpegError:
            return None
        if len(frames) != 1 or frames[0].samples != FRAME_SAMPLES:
            return None
        # A view on the decoded frame's own buffer (it keeps the frame alive): to_ndarray()
        # would stack planes and copy, a fifth of a decode's cost. Packed s16: interleaved.
        count = FRAME_SAMPLES * self.channels
        pcm = np.frombuffer(frames[0].planes[0], dtype=np.int16, count=count)
        return pcm.reshape(self._shape) if self.channels == 2 else pcm
