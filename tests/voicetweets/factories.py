"""Small builders for voice-tweet tests."""

from __future__ import annotations

import io
import wave

import numpy as np
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile

from voicetweets.models import VoiceMessage, VoiceTweet


def sine_wav(seconds: float, *, frequency: float = 440.0, rate: int = 16_000) -> bytes:
    """A mono 16-bit WAV of a sine at -6 dBFS."""
    t = np.arange(int(seconds * rate)) / rate
    samples = (0.5 * np.sin(2 * np.pi * frequency * t) * 32767).astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(samples.tobytes())
    return buffer.getvalue()


def upload(data: bytes, name: str = "voice.wav") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="application/octet-stream")


def ready_tweet(author, *, text: str = "", parent=None, seconds: float = 3.0) -> VoiceTweet:
    """A processed voice tweet, without running the pipeline (for feed and permission tests)."""
    tweet = VoiceTweet(
        author=author,
        text=text,
        parent=parent,
        state=VoiceTweet.State.READY,
        duration_ms=int(seconds * 1000),
        waveform=[0.5] * 100,
    )
    tweet.audio.save("fixture.ogg", ContentFile(b"OggS" + b"\0" * 4000), save=False)
    tweet.save()
    return tweet


def ready_message(sender, recipient, *, seconds: float = 3.0) -> VoiceMessage:
    """A processed voice message, without running the pipeline (for privacy and page tests)."""
    message = VoiceMessage(
        sender=sender,
        recipient=recipient,
        state=VoiceMessage.State.READY,
        duration_ms=int(seconds * 1000),
        waveform=[0.5] * 100,
    )
    message.audio.save("fixture.ogg", ContentFile(b"OggS" + b"\0" * 4000), save=False)
    message.save()
    return message
