from datetime import timedelta
from pathlib import Path

import av
import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import timezone

from voicetweets import audio, processing, services
from voicetweets.models import VoiceTweet

from .factories import sine_wav, upload

pytestmark = pytest.mark.django_db


@pytest.fixture
def member():
    return get_user_model().objects.create_user(username="speaker", password="x-pass-12345")


def _post(member, data: bytes, *, name="voice.wav", thread=False, capture=None, **kwargs):
    with capture(execute=True):
        tweet = services.voicetweet_create(
            author=member, upload=upload(data, name), post_as_thread=thread, **kwargs
        )
    tweet.refresh_from_db()
    return tweet


def test_ten_second_recording_becomes_a_ready_tweet(member, django_capture_on_commit_callbacks):
    """A 10 s recording is transcoded to the canonical format, with true duration and waveform."""
    tweet = _post(member, sine_wav(10), capture=django_capture_on_commit_callbacks)

    assert tweet.state == VoiceTweet.State.READY, tweet.rejection_reason
    assert abs(tweet.duration_ms - 10_000) <= 50
    assert len(tweet.waveform) > 10 and max(tweet.waveform) > 0.1
    with av.open(tweet.audio.path) as container:
        stream = container.streams.audio[0]
        assert stream.codec_context.name == audio.OUTPUT_CODEC
        assert stream.codec_context.sample_rate == 48_000
        decoded = sum(frame.samples for frame in container.decode(stream))
    assert abs(decoded / 48_000 - 10) < 0.1
    assert not tweet.upload  # the original is gone once processed...
    uploads = Path(settings.SALON_PRIVATE_MEDIA_ROOT) / "uploads" / "voicetweets"
    assert not any(uploads.iterdir())  # ...from the disk too


def test_recording_over_140_seconds_is_rejected(member, django_capture_on_commit_callbacks):
    """141 s without "post as thread" is refused with a reason the member understands."""
    tweet = _post(member, sine_wav(141), capture=django_capture_on_commit_callbacks)

    assert tweet.state == VoiceTweet.State.REJECTED
    assert "140" in tweet.rejection_reason
    assert not tweet.upload and not tweet.audio
    assert not any((Path(settings.SALON_PRIVATE_MEDIA_ROOT) / "uploads" / "voicetweets").iterdir())


def test_long_recording_posted_as_thread_is_split(member, django_capture_on_commit_callbacks):
    """A 300 s recording with "post as thread" becomes three linked voice tweets."""
    first = _post(
        member,
        sine_wav(300),
        thread=True,
        text="part one",
        capture=django_capture_on_commit_callbacks,
    )

    assert first.state == VoiceTweet.State.READY, first.rejection_reason
    second = VoiceTweet.objects.get(parent=first)
    third = VoiceTweet.objects.get(parent=second)
    assert not VoiceTweet.objects.filter(parent=third).exists()
    durations = [t.duration_ms for t in (first, second, third)]
    assert all(d <= 140_000 for d in durations)
    assert abs(sum(durations) - 300_000) <= 150
    assert {t.author_id for t in (second, third)} == {member.pk}


def test_not_audio_is_rejected_with_a_reason(member, django_capture_on_commit_callbacks):
    """A PNG renamed .m4a is refused with a reason, and nothing crashes."""
    png = b"\x89PNG\r\n\x1a\n" + b"\0" * 2048
    tweet = _post(member, png, name="photo.m4a", capture=django_capture_on_commit_callbacks)

    assert tweet.state == VoiceTweet.State.REJECTED
    assert tweet.rejection_reason


def test_a_child_that_dies_rejects_the_tweet(
    member, monkeypatch, django_capture_on_commit_callbacks
):
    """If processing is killed (here: out of memory), the tweet is rejected, not left hanging."""
    original = processing.process_in_child
    monkeypatch.setattr(
        processing,
        "process_in_child",
        lambda *a, **k: original(*a, **{**k, "memory_bytes": 64 * 1024 * 1024}),
    )
    tweet = _post(member, sine_wav(10), capture=django_capture_on_commit_callbacks)

    assert tweet.state == VoiceTweet.State.REJECTED
    assert tweet.rejection_reason == "We could not process this recording."


def test_stalled_processing_is_retried_then_rejected(member):
    """A tweet whose worker died is queued again, and rejected once its attempts are used up."""
    tweet = VoiceTweet.objects.create(author=member, state=VoiceTweet.State.PROCESSING)
    VoiceTweet.objects.filter(pk=tweet.pk).update(
        created_at=timezone.now() - timedelta(hours=1), processing_attempts=2
    )

    assert services.voicetweets_requeue_stalled() == 1
    services.voicetweet_process(voicetweet_id=tweet.pk)

    tweet.refresh_from_db()
    assert tweet.state == VoiceTweet.State.REJECTED


@pytest.mark.parametrize(
    ("name", "data", "code"),
    [
        ("voice.wav", b"", "empty_upload"),
        ("voice.exe", b"MZ" + b"\0" * 100, "unsupported_type"),
    ],
)
def test_obviously_wrong_uploads_are_refused_before_storing(member, name, data, code):
    """Empty files and non-audio names are refused at once; nothing is stored."""
    with pytest.raises(services.VoiceTweetError) as error:
        services.voicetweet_create(author=member, upload=upload(data, name))
    assert error.value.code == code
    assert not VoiceTweet.objects.exists()


def test_text_longer_than_280_characters_is_refused(member):
    """The short text is at most 280 characters."""
    with pytest.raises(services.VoiceTweetError, match="280"):
        services.voicetweet_create(author=member, upload=upload(sine_wav(1)), text="x" * 281)
    assert not VoiceTweet.objects.exists()


def test_two_runs_on_one_recording_never_share_a_work_folder(
    member, monkeypatch, django_capture_on_commit_callbacks
):
    """A stalled-sweep requeue can start a second run while the first still transcodes: each
    writes its parts in a folder of its own (a shared one let one run overwrite or delete the
    other's files), the recording ends ready once, and both folders are gone afterwards."""
    real = processing.process_in_child
    folders: list[Path] = []

    def one_run_while_the_other_runs(upload, work_dir, **kwargs):
        folders.append(work_dir)
        if len(folders) == 1:  # the duplicate delivery arrives mid-way through the first run
            services.voicetweet_process(voicetweet_id=tweet.pk)
        return real(upload, work_dir, **kwargs)

    with django_capture_on_commit_callbacks(execute=False):
        tweet = services.voicetweet_create(author=member, upload=upload(sine_wav(2)))
    monkeypatch.setattr(processing, "process_in_child", one_run_while_the_other_runs)
    services.voicetweet_process(voicetweet_id=tweet.pk)

    tweet.refresh_from_db()
    assert tweet.state == VoiceTweet.State.READY, tweet.rejection_reason
    assert len(folders) == 2 and folders[0] != folders[1]
    assert not any(folder.exists() for folder in folders)
