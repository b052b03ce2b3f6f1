"""Transcripts and captions of voice tweets and voice messages (voicetweets.transcription):
made after processing on the transcribe queue, served as WebVTT to exactly those who may hear
the audio, off without an engine, and never in the way of playback."""

import importlib.util
import io
import subprocess
import wave
from urllib.parse import urlsplit

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from accounts import services as accounts_services
from accounts.models import Block, Follow
from spaces.audio import transcribe
from tests.wer import word_error_rate
from voicetweets import services
from voicetweets.models import Recording, VoiceMessage, VoiceTweet

from .factories import ready_message, ready_tweet, sine_wav, upload

pytestmark = pytest.mark.django_db
User = get_user_model()

SENTENCE = "Welcome to the salon where everyone can speak and listen"
SEGMENTS = [
    {"text": "Meet me at noon.", "start": 0.0, "end": 1.4},
    {"text": "Bring the cake.", "start": 1.6, "end": 2.9},
]


@pytest.fixture
def captions_on(settings):
    """The tests' default is captions off (tests/conftest.py); these turn the packaged model on."""
    settings.SALON_TRANSCRIBE_MODEL = str(transcribe.packaged_model_dir())


@pytest.fixture
def alice():
    return User.objects.create_user(username="alice", password="x-pass-12345")


@pytest.fixture
def bob():
    return User.objects.create_user(username="bob", password="x-pass-12345")


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def espeak_wav(text: str, directory) -> bytes:
    """espeak-ng saying ``text``, as the WAV it writes (22.05 kHz mono)."""
    path = directory / "speech.wav"
    subprocess.run(["espeak-ng", "-w", str(path), text], check=True)
    return path.read_bytes()


def with_transcript(recording: Recording) -> Recording:
    """A ready recording with a ready transcript, without running the engine."""
    type(recording).objects.filter(pk=recording.pk).update(
        transcript_state=Recording.TranscriptState.READY,
        transcript_segments=SEGMENTS,
        transcript="Meet me at noon. Bring the cake.",
        transcript_language="en",
    )
    recording.refresh_from_db()
    return recording


def _post(author, data: bytes, capture) -> VoiceTweet:
    with capture(execute=True):
        tweet = services.voicetweet_create(author=author, upload=upload(data))
    tweet.refresh_from_db()
    return tweet


def test_a_voice_tweets_transcript_is_what_was_said(
    alice, captions_on, django_capture_on_commit_callbacks, tmp_path
):
    """A spoken voice tweet comes out ready with its words (WER ≤ 15 %), timed, in English; the
    API gives the transcript and a captions link that plays without a session."""
    data = espeak_wav(SENTENCE, tmp_path)
    with wave.open(io.BytesIO(data)) as clip:
        assert 2 <= clip.getnframes() / clip.getframerate() <= 4.5

    tweet = _post(alice, data, django_capture_on_commit_callbacks)

    assert tweet.state == VoiceTweet.State.READY, tweet.rejection_reason
    assert tweet.transcript_state == VoiceTweet.TranscriptState.READY
    assert word_error_rate(SENTENCE, tweet.transcript) <= 0.15, tweet.transcript
    assert tweet.transcript_language == "en"
    assert all(
        0 <= s["start"] < s["end"] <= tweet.duration_seconds + 0.5
        for s in tweet.transcript_segments
    )

    body = api(alice).get(f"/api/v1/voicetweets/{tweet.pk}/").json()
    assert body["transcript"] == tweet.transcript
    assert body["transcript_language"] == "en"
    assert body["transcript_state"] == "ready"
    link = urlsplit(body["captions_url"])
    vtt = APIClient().get(f"{link.path}?{link.query}")  # a token client: no session
    assert vtt.status_code == 200
    assert vtt["Content-Type"] == "text/vtt; charset=utf-8"
    text = vtt.content.decode()
    assert text.startswith("WEBVTT\n") and "-->" in text
    assert word_error_rate(SENTENCE, " ".join(text.split("\n")[4::4])) <= 0.15


def test_a_voice_message_is_transcribed_on_its_own_task(
    alice, bob, captions_on, django_capture_on_commit_callbacks, monkeypatch
):
    """Voice messages get transcripts too, through the transcribe task of their kind."""
    heard = []

    def fake_transcribe(path):
        heard.append(path)
        return transcribe.Transcript("en", [transcribe.Segment("Hi Bob.", 0.0, 0.8)])

    monkeypatch.setattr(services.transcription, "transcribe_in_child", fake_transcribe)
    bob.messages_from_anyone = True
    bob.save()
    with django_capture_on_commit_callbacks(execute=True):
        message = services.voicemessage_send(
            sender=alice, recipient=bob, upload=upload(sine_wav(2))
        )
    message.refresh_from_db()

    assert message.state == VoiceMessage.State.READY
    assert message.transcript_state == VoiceMessage.TranscriptState.READY
    assert message.transcript == "Hi Bob."
    assert [str(path) for path in heard] == [message.audio.path]
    body = api(bob).get(f"/api/v1/voicemessages/{message.pk}/").json()
    assert body["transcript"] == "Hi Bob." and body["captions_url"]


def _statuses(client, member, kind: str, pk: int) -> tuple[int, int]:
    """(audio, captions) status codes for ``member``."""
    client.force_login(member)
    return (
        client.get(f"/{kind}/{pk}/audio").status_code,
        client.get(f"/{kind}/{pk}/captions.vtt").status_code,
    )


def test_a_voice_messages_captions_are_as_private_as_the_message(alice, bob, client):
    """Its two members read the captions; a stranger cannot, nor staff until it is reported:
    for everyone, captions answer exactly as the audio does."""
    carol = User.objects.create_user(username="carol")
    staff = User.objects.create_user(username="mod", is_staff=True, is_superuser=True)
    message = with_transcript(ready_message(alice, bob))

    assert _statuses(client, alice, "voicemessages", message.pk) == (200, 200)
    assert _statuses(client, bob, "voicemessages", message.pk) == (200, 200)
    assert _statuses(client, carol, "voicemessages", message.pk) == (404, 404)
    assert _statuses(client, staff, "voicemessages", message.pk) == (404, 404)
    assert api(carol).get(f"/api/v1/voicemessages/{message.pk}/").status_code == 404
    client.force_login(staff)  # the admin shows no transcript of an unreported message
    page = client.get(f"/admin/voicetweets/voicemessage/{message.pk}/change/").content.decode()
    assert "Bring the cake" not in page

    accounts_services.report_create(
        reporter=bob, target_kind="voicemessage", target=message.pk, reason="harassment"
    )

    assert _statuses(client, staff, "voicemessages", message.pk) == (200, 200)


def test_captions_are_refused_where_the_audio_is(alice, bob, client):
    """A blocked member gets neither audio nor captions; nor does anyone once the tweet is
    hidden, except its author; a captions link is bound to its member like an audio link."""
    tweet = with_transcript(ready_tweet(alice))
    Follow.objects.create(follower=bob, followee=alice)

    assert _statuses(client, bob, "voicetweets", tweet.pk) == (200, 200)
    captions_url = urlsplit(api(bob).get(f"/api/v1/voicetweets/{tweet.pk}/").json()["captions_url"])
    vtt = client.get(f"/voicetweets/{tweet.pk}/captions.vtt").content.decode()
    assert "00:00:01.600 --> 00:00:02.900\nBring the cake." in vtt

    Block.objects.create(blocker=alice, blocked=bob)
    assert _statuses(client, bob, "voicetweets", tweet.pk) == (404, 404)
    client.logout()
    assert APIClient().get(f"{captions_url.path}?{captions_url.query}").status_code == 404
    Block.objects.all().delete()

    tweet.is_hidden = True
    tweet.save()
    assert _statuses(client, bob, "voicetweets", tweet.pk) == (404, 404)
    assert _statuses(client, alice, "voicetweets", tweet.pk) == (200, 200)


@pytest.mark.parametrize("how", ["missing model", "no faster-whisper"])
def test_without_an_engine_captions_are_off_and_the_admin_says_why(
    alice, settings, tmp_path, monkeypatch, client, django_capture_on_commit_callbacks, how
):
    """No model directory, or faster-whisper not installed: the tweet is ready and playable,
    its transcript "off", no captions link; the admin's list says captions are off and why."""
    if how == "missing model":
        settings.SALON_TRANSCRIBE_MODEL = str(tmp_path / "no-such-model")
        why = "no-such-model"
    else:
        settings.SALON_TRANSCRIBE_MODEL = str(transcribe.packaged_model_dir())
        real_find_spec = importlib.util.find_spec
        monkeypatch.setattr(
            importlib.util,
            "find_spec",
            lambda name, *a: None if name == "faster_whisper" else real_find_spec(name, *a),
        )
        why = "faster-whisper is not installed"

    tweet = _post(alice, sine_wav(2), django_capture_on_commit_callbacks)

    assert tweet.state == VoiceTweet.State.READY
    assert tweet.transcript_state == VoiceTweet.TranscriptState.OFF
    body = api(alice).get(f"/api/v1/voicetweets/{tweet.pk}/").json()
    assert body["transcript_state"] == "off" and body["captions_url"] is None
    assert body["transcript"] == ""
    client.force_login(alice)
    assert client.get(f"/voicetweets/{tweet.pk}/audio").status_code == 200
    assert client.get(f"/voicetweets/{tweet.pk}/captions.vtt").status_code == 404
    staff = User.objects.create_user(username="mod", is_staff=True, is_superuser=True)
    client.force_login(staff)
    listing = client.get("/admin/voicetweets/voicetweet/").content.decode()
    assert "Captions are off" in listing and why in listing


def test_the_admin_says_nothing_when_captions_are_on(captions_on, client):
    staff = User.objects.create_user(username="mod", is_staff=True, is_superuser=True)
    client.force_login(staff)

    assert "Captions are off" not in client.get("/admin/voicetweets/voicetweet/").content.decode()


@pytest.mark.parametrize("how", ["not a model", "out of memory"])
def test_a_failed_transcription_marks_it_failed_and_the_tweet_plays_on(
    alice, settings, tmp_path, client, django_capture_on_commit_callbacks, how
):
    """The transcribing child dies (a model directory that looks right but is not a model, or
    an address space too small to load one): the transcript is "failed", and the voice tweet
    is ready and playable as before."""
    if how == "not a model":
        broken = tmp_path / "broken-model"
        broken.mkdir()
        (broken / "model.bin").write_bytes(b"not a model")
        (broken / "config.json").write_text("{}")
        settings.SALON_TRANSCRIBE_MODEL = str(broken)
    else:
        settings.SALON_TRANSCRIBE_MODEL = str(transcribe.packaged_model_dir())
        settings.SALON_TRANSCRIBE_MEMORY_BYTES = 256 * 1024 * 1024

    tweet = _post(alice, sine_wav(2), django_capture_on_commit_callbacks)

    assert tweet.state == VoiceTweet.State.READY
    assert tweet.transcript_state == VoiceTweet.TranscriptState.FAILED
    assert tweet.transcript == "" and tweet.transcript_segments == []
    body = api(alice).get(f"/api/v1/voicetweets/{tweet.pk}/").json()
    assert body["transcript_state"] == "failed" and body["captions_url"] is None
    assert body["audio_url"]
    client.force_login(alice)
    assert client.get(f"/voicetweets/{tweet.pk}/audio").status_code == 200
    assert client.get(f"/voicetweets/{tweet.pk}/captions.vtt").status_code == 404


def test_a_rejected_recording_has_no_transcript_to_wait_for(
    alice, captions_on, django_capture_on_commit_callbacks
):
    """Rejected: nothing to caption, so "off", never "pending"."""
    tweet = _post(alice, sine_wav(141), django_capture_on_commit_callbacks)

    assert tweet.state == VoiceTweet.State.REJECTED
    assert tweet.transcript_state == VoiceTweet.TranscriptState.OFF


def test_pending_transcripts_are_queued_again_when_the_queue_died(alice, bob, monkeypatch):
    """Embedded, the queue is this process's memory: starting again queues every pending
    transcript of a ready recording once; the periodic sweep leaves them to their tasks."""
    tweet = ready_tweet(alice)
    message = ready_message(alice, bob)
    done = with_transcript(ready_tweet(alice))
    queued = []
    monkeypatch.setattr(services, "enqueue", lambda task, pk: queued.append((task.name, pk)))

    assert services.voicetweets_requeue_stalled() == 0
    assert services.voicetweets_requeue_stalled(queue_lost=True) == 2
    assert sorted(queued) == [
        ("voicetweets.transcribe", tweet.pk),
        ("voicetweets.transcribe_message", message.pk),
    ]
    assert done.pk not in [pk for _, pk in queued]


def test_an_audio_link_does_not_open_the_captions(alice):
    """A link is signed for one view: the audio's cannot fetch the captions, nor the reverse."""
    tweet = with_transcript(ready_tweet(alice))
    body = api(alice).get(f"/api/v1/voicetweets/{tweet.pk}/").json()
    audio_link, captions_link = urlsplit(body["audio_url"]), urlsplit(body["captions_url"])

    assert APIClient().get(f"{captions_link.path}?{audio_link.query}").status_code == 403
    assert APIClient().get(f"{audio_link.path}?{captions_link.query}").status_code == 403
    assert APIClient().get(f"{captions_link.path}?{captions_link.query}").status_code == 200


def test_a_transcript_queued_before_captions_were_turned_off_ends_off(alice, settings):
    """The operator turned captions off while transcripts waited: they end "off", untried."""
    tweet = ready_tweet(alice)
    assert tweet.transcript_state == VoiceTweet.TranscriptState.PENDING
    settings.SALON_TRANSCRIBE_MODEL = ""

    services.recording_transcribe(model=VoiceTweet, pk=tweet.pk)

    tweet.refresh_from_db()
    assert tweet.transcript_state == VoiceTweet.TranscriptState.OFF


def test_the_voice_tweet_admin_shows_the_transcript(alice, client):
    staff = User.objects.create_user(username="mod", is_staff=True, is_superuser=True)
    tweet = with_transcript(ready_tweet(alice))
    client.force_login(staff)

    page = client.get(f"/admin/voicetweets/voicetweet/{tweet.pk}/change/").content.decode()

    assert "Meet me at noon. Bring the cake." in page
