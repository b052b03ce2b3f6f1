"""Crafted uploads through the API: a clear 4xx at once, or a ``rejected`` state after
processing, and never a corrupt file left behind or a recording stuck in ``processing``.

Pinned elsewhere, not repeated: the pipeline on its own against every container, truncated
files, random bytes behind valid magic, playlists, lying Matroska durations and time limits
(``tests/voicetweets/test_audio.py``); 413 from Content-Length and chunked bodies over the cap
(``tests/voicetweets/test_api.py``); empty files and .exe names at the service
(``tests/voicetweets/test_services.py``); a child killed for memory, stalled processing
(``tests/voicetweets/test_services.py``, ``test_messages.py``).
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from tests.hostile.helpers import multipart
from tests.voicetweets.audiofiles import (
    SECOND_STREAM_FILES,
    assert_plays_a_440_hz_tone_for,
    png_bytes,
    sine,
    write_audio,
)
from tests.voicetweets.factories import sine_wav
from voicetweets.models import VoiceMessage, VoiceTweet

pytestmark = pytest.mark.django_db


def _api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def _stored_files() -> list[Path]:
    roots = [Path(settings.MEDIA_ROOT), Path(settings.SALON_PRIVATE_MEDIA_ROOT)]
    return sorted(p for root in roots if root.exists() for p in root.rglob("*") if p.is_file())


def _ogg_with_random_pages() -> bytes:
    rng = np.random.default_rng(7)
    return b"OggS" + rng.integers(0, 256, 20_000, dtype=np.uint8).tobytes()


def _header_only(tmp_path: Path) -> bytes:
    """The first 300 bytes of a real 3 s MP3: a valid start with no audio behind it."""
    return write_audio(tmp_path / "whole.mp3", sine(3.0)).read_bytes()[:300]


def _wav_claiming_4_gb() -> bytes:
    """3 s of WAV whose RIFF and data sizes both claim 4 GB."""
    data = bytearray(sine_wav(3))
    data[4:8] = struct.pack("<I", 0xFFFFFFFF)
    at = data.find(b"data")
    data[at + 4 : at + 8] = struct.pack("<I", 0xFFFFFFFF)
    return bytes(data)


def _flac_bomb(tmp_path: Path) -> bytes:
    """20 minutes of a constant signal in about 200 kB of FLAC: decoded to 48 kHz float it
    would be over 200 MB, and it is four times the longest thread."""
    samples = np.full(8000 * 60 * 20, 0.25, dtype=np.float32)
    return write_audio(tmp_path / "bomb.flac", samples, rate=8000).read_bytes()


# (name on the upload, its declared content type, how to build it)
CRAFTED = {
    "png-as-m4a": ("photo.m4a", "audio/mp4", lambda tmp: png_bytes()),
    "random-ogg-pages": ("voice.ogg", "audio/ogg", lambda tmp: _ogg_with_random_pages()),
    "mp3-header-only": ("voice.mp3", "audio/mpeg", _header_only),
    "text-as-wav": ("voice.wav", "audio/wav", lambda tmp: b"RIFF, but really a letter\n" * 50),
    "flac-bomb": ("voice.flac", "audio/flac", _flac_bomb),
}


@pytest.mark.parametrize("case", CRAFTED)
def test_crafted_files_end_rejected_with_a_reason_and_leave_nothing(
    alice, tmp_path, case, django_capture_on_commit_callbacks
):
    """Accepted for processing (202), then rejected with a reason the member can read; the
    upload is deleted and no audio is stored or served."""
    name, content_type, build = CRAFTED[case]
    upload = SimpleUploadedFile(name, build(tmp_path), content_type=content_type)
    with django_capture_on_commit_callbacks(execute=True):
        response = _api(alice).post("/api/v1/voicetweets/", {"audio": upload}, format="multipart")
    assert response.status_code == 202, response.content

    tweet = _api(alice).get(f"/api/v1/voicetweets/{response.json()['id']}/").json()
    assert tweet["state"] == "rejected"
    assert tweet["rejection_reason"] and tweet["audio_url"] is None
    if case == "flac-bomb":
        assert "140" in tweet["rejection_reason"]
    assert _stored_files() == []
    client = APIClient()
    client.force_login(alice)
    assert client.get(f"/voicetweets/{tweet['id']}/audio").status_code == 404


def test_a_header_claiming_4_gb_is_measured_not_believed(alice, django_capture_on_commit_callbacks):
    """A WAV whose header claims 4 GB holds 3 s: it becomes a 3 s voice tweet (the duration
    comes from the decoded samples), and only its canonical audio stays on disk."""
    upload = SimpleUploadedFile("voice.wav", _wav_claiming_4_gb(), content_type="audio/wav")
    with django_capture_on_commit_callbacks(execute=True):
        response = _api(alice).post("/api/v1/voicetweets/", {"audio": upload}, format="multipart")

    tweet = VoiceTweet.objects.get(pk=response.json()["id"])
    assert tweet.state == VoiceTweet.State.READY, tweet.rejection_reason
    assert abs(tweet.duration_ms - 3000) <= 50
    assert _stored_files() == [Path(tweet.audio.path)]


@pytest.mark.parametrize("case", SECOND_STREAM_FILES)
def test_audio_with_cover_art_or_a_video_track_becomes_a_voice_tweet(
    alice, tmp_path, case, django_capture_on_commit_callbacks
):
    """Phone and podcast exports carry cover art, clips a video track (sometimes as the first
    stream): processed in its child like any upload, the audio stream becomes a ready voice
    tweet with its true length and sound; the picture or video is never stored."""
    source = SECOND_STREAM_FILES[case](tmp_path)
    upload = SimpleUploadedFile(source.name, source.read_bytes(), content_type="audio/mpeg")
    with django_capture_on_commit_callbacks(execute=True):
        response = _api(alice).post("/api/v1/voicetweets/", {"audio": upload}, format="multipart")
    assert response.status_code == 202, response.content

    tweet = VoiceTweet.objects.get(pk=response.json()["id"])
    assert tweet.state == VoiceTweet.State.READY, tweet.rejection_reason
    assert abs(tweet.duration_ms - 6000) <= 50
    assert_plays_a_440_hz_tone_for(Path(tweet.audio.path), 6.0)
    assert _stored_files() == [Path(tweet.audio.path)]


def test_the_declared_content_type_is_not_trusted(alice, django_capture_on_commit_callbacks):
    """Real audio declared as an image is judged by its content (ready); an image declared as
    audio likewise (rejected, above)."""
    upload = SimpleUploadedFile("voice.wav", sine_wav(2), content_type="image/png")
    with django_capture_on_commit_callbacks(execute=True):
        response = _api(alice).post("/api/v1/voicetweets/", {"audio": upload}, format="multipart")
    assert VoiceTweet.objects.get(pk=response.json()["id"]).state == VoiceTweet.State.READY


def test_a_crafted_voice_message_is_rejected_and_never_reaches_the_recipient(
    alice, bob, django_capture_on_commit_callbacks
):
    """The same pipeline for messages: rejected, nothing stored, nothing in bob's inbox."""
    upload = SimpleUploadedFile("hi.m4a", png_bytes(), content_type="audio/mp4")
    with django_capture_on_commit_callbacks(execute=True):
        response = _api(alice).post(
            "/api/v1/conversations/bob/", {"audio": upload}, format="multipart"
        )

    assert response.status_code == 202
    assert VoiceMessage.objects.get().state == VoiceMessage.State.REJECTED
    assert _stored_files() == []
    assert _api(bob).get("/api/v1/conversations/").json() == []


@pytest.mark.parametrize(
    ("build", "status"),
    [
        # Not multipart at all.
        (lambda: (b'{"audio": "AAAA"}', "application/json"), 415),
        (lambda: (b"audio=not-a-file", "text/plain"), 415),
        # The audio field as a plain string instead of a file.
        (lambda: multipart({"audio": "RIFF" * 100}, {}), 400),
        # Text far over 280 characters, with a real file.
        (lambda: multipart({"text": "x" * 100_000}, {"audio": ("v.wav", sine_wav(2))}), 400),
        # More fields than Django parses (DATA_UPLOAD_MAX_NUMBER_FIELDS).
        (lambda: multipart({f"f{n}": "x" for n in range(2000)}, {}), 400),
        # A part whose file name is not audio.
        (lambda: multipart({}, {"audio": ("v.exe", sine_wav(2))}), 400),
        # A multipart body that ends in the middle.
        (lambda: (multipart({}, {"audio": ("v.wav", sine_wav(2))})[0][:500], _CT), 400),
    ],
    ids=["json", "text-plain", "string-field", "long-text", "many-fields", "exe", "cut-short"],
)
def test_malformed_requests_get_a_clear_4xx_and_store_nothing(alice, build, status):
    """Wrong body types, wrong field types, too many fields, too much text: a 4xx that says
    so; no voice tweet row and no file."""
    body, content_type = build()
    response = _api(alice).generic(
        "POST", "/api/v1/voicetweets/", data=body, content_type=content_type
    )

    assert response.status_code == status, response.content[:300]
    assert not VoiceTweet.objects.exists()
    assert _stored_files() == []


_CT = "multipart/form-data; boundary=hostile-boundary"


@pytest.mark.parametrize(
    "filename",
    ["a" * 5000 + ".wav", "../../../../../etc/passwd.wav", "voice\x00.exe.wav", "ç/\\:*?.wav"],
    ids=["5000-chars", "traversal", "nul", "odd-characters"],
)
def test_hostile_file_names_are_never_used_on_disk(
    alice, filename, django_capture_on_commit_callbacks
):
    """Whatever the file is called, it is stored (and processed) under a name of our own,
    inside the media folder; only the canonical audio stays."""
    body, content_type = multipart({}, {"audio": (filename, sine_wav(2))})
    with django_capture_on_commit_callbacks(execute=True):
        response = _api(alice).generic(
            "POST", "/api/v1/voicetweets/", data=body, content_type=content_type
        )

    if response.status_code == 400:  # a name we cannot read as audio: refused up front
        assert not VoiceTweet.objects.exists() and _stored_files() == []
        return
    assert response.status_code == 202, response.content[:300]
    tweet = VoiceTweet.objects.get()
    assert tweet.state == VoiceTweet.State.READY, tweet.rejection_reason
    (stored,) = _stored_files()
    assert stored == Path(tweet.audio.path)
    assert stored.is_relative_to(Path(settings.SALON_PRIVATE_MEDIA_ROOT) / "voicetweets")
    assert len(stored.name) < 40
