"""Synthetic signals and spectrum helpers for the audio engine tests (numpy only)."""

from __future__ import annotations

import numpy as np

from spaces.audio import FRAME_SAMPLES, SAMPLE_RATE, OpusDecoder, OpusEncoder, OpusSettings


def sine(frequency: float, frames: int, *, amplitude: float = 8000.0) -> np.ndarray:
    t = np.arange(frames * FRAME_SAMPLES) / SAMPLE_RATE
    return np.round(amplitude * np.sin(2 * np.pi * frequency * t)).astype(np.int16)


def noise(frames: int, *, amplitude: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    samples = rng.normal(0.0, amplitude, frames * FRAME_SAMPLES)
    return np.clip(samples, -32768, 32767).astype(np.int16)


def split_frames(signal: np.ndarray) -> list[np.ndarray]:
    return [signal[i : i + FRAME_SAMPLES] for i in range(0, len(signal), FRAME_SAMPLES)]


def encode(signal: np.ndarray, settings: OpusSettings | None = None) -> list[bytes]:
    """Opus packets of a speaker sending ``signal``, one per 20 ms."""
    encoder = OpusEncoder(settings)
    return [encoder.encode(frame) for frame in split_frames(signal)]


def decode(packets: list[bytes]) -> np.ndarray:
    """What a client decoder plays for a stream of packets."""
    decoder = OpusDecoder()
    return np.concatenate([decoder.decode(packet) for packet in packets])


def magnitude_at(signal: np.ndarray, frequency: float, *, within: float = 10.0) -> float:
    """Spectral magnitude within ``within`` Hz of ``frequency``, relative to the strongest
    peak (0..1)."""
    windowed = signal.astype(np.float64) * np.hanning(len(signal))
    spectrum = np.abs(np.fft.rfft(windowed))
    frequencies = np.fft.rfftfreq(len(signal), 1 / SAMPLE_RATE)
    near = np.abs(frequencies - frequency) <= within
    return float(spectrum[near].max() / (spectrum.max() + 1e-9))


def amplitude_at(signal: np.ndarray, frequency: float, *, within: float = 20.0) -> float:
    """Amplitude (in samples) of a sine within ``within`` Hz of ``frequency``; 0 for silence."""
    if len(signal) == 0:
        return 0.0
    window = np.hanning(len(signal))
    spectrum = np.abs(np.fft.rfft(signal.astype(np.float64) * window))
    frequencies = np.fft.rfftfreq(len(signal), 1 / SAMPLE_RATE)
    near = np.abs(frequencies - frequency) <= within
    return float(2 * spectrum[near].max() / window.sum())


def dominant_frequency(signal: np.ndarray) -> float:
    windowed = signal.astype(np.float64) * np.hanning(len(signal))
    spectrum = np.abs(np.fft.rfft(windowed))
    return float(np.fft.rfftfreq(len(signal), 1 / SAMPLE_RATE)[spectrum.argmax()])


def rms(signal: np.ndarray) -> float:
    return float(np.sqrt(np.mean(signal.astype(np.float64) ** 2)))


def write_tone(path, *, seconds: float, frequency: float = 440.0, amplitude: int = 8000):
    """A 48 kHz mono 16-bit WAV of a sine: what a test's speaker streams."""
    import wave

    t = np.arange(round(SAMPLE_RATE * seconds)) / SAMPLE_RATE
    samples = np.round(amplitude * np.sin(2 * np.pi * frequency * t)).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(samples.tobytes())
    return path
