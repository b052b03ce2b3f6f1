"""Salon's live audio engine: plain Python + numpy + PyAV, no Django (docs/audio.md).

Speakers' Opus frames go in (``RoomMixer.push``), a 20 ms clock (``MixerRunner``) ticks each
room's mixer, and out come one shared mix packet for listeners, mix-minus packets for the
speakers who are talking, and ~5 Hz level events.
"""

from .clock import Clock, FakeClock, MonotonicClock, TickClock, TickTiming
from .codec import (
    AUDIO_MODES,
    FRAME_SAMPLES,
    FRAME_SECONDS,
    SAMPLE_RATE,
    AudioMode,
    CodecError,
    OpusDecoder,
    OpusEncoder,
    OpusSettings,
    opus_settings_for,
    packet_is_stereo,
)
from .jitter import JitterBuffer, JitterSettings, JitterStats, Playout
from .levels import LevelsEvent, SpeakerLevel, TalkDetector, frame_level_dbfs
from .mixer import MixerStats, MixPacket, RoomMixer, TickResult
from .runner import MixerRunner
from .wire import AudioFrame, FrameKind, WireError, pack, unpack

__all__ = [
    "AUDIO_MODES",
    "FRAME_SAMPLES",
    "FRAME_SECONDS",
    "SAMPLE_RATE",
    "AudioFrame",
    "AudioMode",
    "Clock",
    "CodecError",
    "FakeClock",
    "FrameKind",
    "JitterBuffer",
    "JitterSettings",
    "JitterStats",
    "LevelsEvent",
    "MixPacket",
    "MixerRunner",
    "MixerStats",
    "MonotonicClock",
    "OpusDecoder",
    "OpusEncoder",
    "OpusSettings",
    "Playout",
    "RoomMixer",
    "SpeakerLevel",
    "TalkDetector",
    "TickClock",
    "TickResult",
    "TickTiming",
    "WireError",
    "frame_level_dbfs",
    "opus_settings_for",
    "pack",
    "packet_is_stereo",
    "unpack",
]
