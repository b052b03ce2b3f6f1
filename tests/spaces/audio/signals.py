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


def stereo(left: np.ndarray | None, right: np.ndarray | None) -> np.ndarray:
    """A (samples, 2) signal of two mono ones; None is a silent side."""
    length = len(left if left is not None else right)
    silent = np.zeros(length, dtype=np.int16)
    return np.stack([silent if left is None else left, silent if right is None else right], 1)


def split_frames(signal: np.ndarray) -> list[np.ndarray]:
    return [signal[i : i + FRAME_SAMPLES] for i in range(0, len(signal), FRAME_SAMPLES)]


def encode(signal: np.ndarray, settings: OpusSettings | None = None) -> list[bytes]:
    """Opus packets of a speaker sending ``signal``, one per 20 ms."""
    encoder = OpusEncoder(settings)
    return [encoder.encode(frame) for frame in split_frames(signal)]


def decode(packets: list[bytes], *, channels: int = 1) -> np.ndarray:
    """What a client decoder plays for a stream of packets ((samples, 2) with ``channels=2``)."""
    decoder = OpusDecoder(channels=channels)
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


def speech_like(frames: int, *, pitch: float = 140.0, seed: int = 7) -> np.ndarray:
    """A voiced, syllable-rate modulated harmonic signal with breath noise (strong
    fundamental: what a speech high-pass harms most)."""
    rng = np.random.default_rng(seed)
    t = np.arange(frames * FRAME_SAMPLES) / SAMPLE_RATE
    vibrato = pitch * (1 + 0.03 * np.sin(2 * np.pi * 5 * t))
    phase = 2 * np.pi * np.cumsum(vibrato) / SAMPLE_RATE
    voiced = sum(np.sin(k * phase) / k for k in range(1, 8))
    syllables = 0.55 + 0.45 * np.sin(2 * np.pi * 4 * t + seed)
    signal = 6000 * voiced * syllables + rng.normal(0, 300, len(t))
    return np.clip(signal, -32768, 32767).astype(np.int16)


def chord(frames: int, *, seed: int = 0) -> np.ndarray:
    """Music-like: a C major triad, each note with harmonics up to 16 kHz, slowly swelling."""
    rng = np.random.default_rng(seed)
    t = np.arange(frames * FRAME_SAMPLES) / SAMPLE_RATE
    signal = np.zeros_like(t)
    for fundamental in (261.63, 329.63, 392.0):
        for k in range(1, int(16_000 // fundamental) + 1):
            signal += np.sin(2 * np.pi * k * fundamental * t + rng.uniform(0, 2 * np.pi)) / k**0.7
    swell = 0.6 + 0.4 * np.sin(2 * np.pi * 0.5 * t)
    return (12_000 * swell * signal / np.abs(signal).max()).astype(np.int16)


def espeak_installed() -> bool:
    import shutil

    return shutil.which("espeak-ng") is not None


def espeak_speech(text: str) -> np.ndarray:
    """espeak-ng's voice saying ``text``, at 48 kHz, whole frames (``make test-deps`` and
    ``make bench`` install espeak-ng). The benches use it too: one copy of every signal."""
    import subprocess
    import tempfile
    from pathlib import Path

    import av
    from av.audio.resampler import AudioResampler

    if not espeak_installed():
        raise RuntimeError("espeak-ng is not installed: run `make test-deps`")
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "speech.wav"
        subprocess.run(["espeak-ng", "-w", str(path), text], check=True)
        resampler = AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
        with av.open(str(path)) as container:
            frames = [f for frame in container.decode(audio=0) for f in resampler.resample(frame)]
        frames += resampler.resample(None)
    signal = np.concatenate([frame.to_ndarray().reshape(-1) for frame in frames])
    return signal[: len(signal) // FRAME_SAMPLES * FRAME_SAMPLES].astype(np.int16)


def best_lag_correlation(source: np.ndarray, output: np.ndarray, *, max_lag: int) -> float:
    """Correlation of ``output`` with ``source`` at the delay (0..max_lag samples) that fits
    best: 1.0 is a perfect, only delayed, copy."""
    a = source.astype(np.float64)
    b = output.astype(np.float64)
    size = 1 << int(np.ceil(np.log2(2 * len(a))))
    cross = np.fft.irfft(np.conj(np.fft.rfft(a, size)) * np.fft.rfft(b, size), size)[:max_lag]
    lag = int(np.argmax(cross))
    a, b = a[: len(a) - lag], b[lag : len(a)]
    return float(np.dot(a, b) / np.sqrt(np.dot(a, a) * np.dot(b, b) + 1e-9))
