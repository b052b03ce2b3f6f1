"""The transcription engine: speech synthesised by espeak-ng in, timed text and WebVTT out."""

import importlib.util

import numpy as np
import pytest

from spaces.audio import transcribe
from spaces.audio.transcribe import Segment, Transcriber, webvtt
from tests.wer import word_error_rate

from .signals import espeak_speech

SENTENCE = "I would like a cup of coffee with milk and sugar please"


@pytest.fixture(scope="module")
def transcriber():
    model_dir = transcribe.packaged_model_dir()
    assert transcribe.engine_unavailable(model_dir) is None, (
        "run `make test`: it installs .[captions]"
    )
    return Transcriber(model_dir, cpu_threads=1)


def test_speech_at_48_khz_comes_out_as_the_sentence_said(transcriber):
    """espeak-ng's voice as 48 kHz mono PCM: the words come back (WER ≤ 15 %), timed within
    the clip, in English."""
    speech = espeak_speech(SENTENCE)
    seconds = speech.size / 48_000
    assert 2 <= seconds <= 4.5  # short clips keep the test fast

    transcript = transcriber.transcribe_pcm(speech, sample_rate=48_000)

    assert word_error_rate(SENTENCE, transcript.text) <= 0.15, transcript.text
    assert transcript.language == "en"
    assert transcript.segments
    for segment in transcript.segments:
        assert 0 <= segment.start < segment.end <= seconds + 0.5


def test_silence_has_no_words(transcriber):
    """Two seconds of digital silence: nothing to caption (no hallucinated words)."""
    transcript = transcriber.transcribe_pcm(np.zeros(96_000, dtype=np.int16))

    assert len(transcript.text.split()) <= 1, transcript.text


def test_resampling_to_16_khz_keeps_pitch_and_length():
    """48 kHz → 16 kHz: a third of the samples, and a 1 kHz tone stays at 1 kHz."""
    t = np.arange(48_000) / 48_000
    tone = (0.5 * np.sin(2 * np.pi * 1000 * t) * 32767).astype(np.int16)

    out = transcribe.resample_to_model_rate(tone, sample_rate=48_000)

    assert abs(out.size - 16_000) <= 64
    spectrum = np.abs(np.fft.rfft(out[:16_000] * np.hanning(min(out.size, 16_000))))
    peak_hz = np.argmax(spectrum) * 16_000 / min(out.size, 16_000)
    assert abs(peak_hz - 1000) <= 5
    assert 0.4 <= np.abs(out).max() <= 0.6


def test_webvtt_has_a_header_and_one_timed_cue_per_segment():
    vtt = webvtt([Segment("Hello there.", 0.0, 1.25), Segment("An hour in.", 3600.5, 3662.007)])

    assert vtt == (
        "WEBVTT\n\n"
        "1\n00:00:00.000 --> 00:00:01.250\nHello there.\n\n"
        "2\n01:00:00.500 --> 01:01:02.007\nAn hour in.\n"
    )


def test_webvtt_cue_text_cannot_break_the_file():
    """Text with markup, an arrow or blank lines stays one cue of plain text."""
    vtt = webvtt([Segment("a <b>bold</b> --> move\n\nnext & more", 1.0, 2.0), Segment("", 2, 3)])

    cues = vtt.split("\n\n")
    assert cues[0] == "WEBVTT"
    assert cues[1].splitlines()[2] == "a &lt;b&gt;bold&lt;/b&gt; --&gt; move next &amp; more"
    assert vtt.count("-->") == 2  # only the two timings
    assert len([c for c in cues if c.strip()]) == 3


def test_engine_unavailable_says_why(tmp_path, monkeypatch):
    """No model directory, a folder that is not a model, or no faster-whisper: a reason each."""
    assert "SALON_TRANSCRIBE_MODEL" in transcribe.engine_unavailable("")
    assert "model.bin" in transcribe.engine_unavailable(tmp_path / "missing")
    assert transcribe.engine_unavailable(transcribe.packaged_model_dir()) is None

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "faster_whisper" else real_find_spec(name, *a),
    )
    assert "faster-whisper is not installed" in transcribe.engine_unavailable(
        transcribe.packaged_model_dir()
    )
