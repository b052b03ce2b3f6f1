import logging
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


def test_a_child_out_of_memory_rejects_the_tweet_saying_so(
    member, monkeypatch, caplog, django_capture_on_commit_callbacks
):
    """If processing is killed (here: out of memory), the tweet is rejected, not left hanging;
    the member reads that it needed too much memory, the log has the child's traceback."""
    original = processing.process_in_child
    monkeypatch.setattr(
        processing,
        "process_in_child",
        lambda *a, **k: original(*a, **{**k, "memory_bytes": 64 * 1024 * 1024}),
    )
    with caplog.at_level(logging.ERROR, logger="voicetweets.processing"):
        tweet = _post(member, sine_wav(10), capture=django_capture_on_commit_callbacks)

    assert tweet.state == VoiceTweet.State.REJECTED
    assert tweet.rejection_reason == processing.FAILURE_MESSAGES["memory"]
    (record,) = [r for r in caplog.records if r.name == "voicetweets.processing"]
    assert "Traceback (most recent call last)" in record.getMessage()


def test_a_child_that_crashes_is_logged_with_its_traceback(
    member, caplog, django_capture_on_commit_callbacks
):
    """An exception in the child (here: its upload vanished from the disk) is not a verdict on
    the file: the member reads that processing failed unexpectedly, and the parent's log has
    the child's traceback, down to the exception."""
    with django_capture_on_commit_callbacks(execute=False):
        tweet = services.voicetweet_create(author=member, upload=upload(sine_wav(2)))
    Path(tweet.upload.path).unlink()

    with caplog.at_level(logging.ERROR, logger="voicetweets.processing"):
        services.voicetweet_process(voicetweet_id=tweet.pk)

    tweet.refresh_from_db()
    assert tweet.state == VoiceTweet.State.REJECTED
    assert tweet.rejection_reason == processing.FAILURE_MESSAGES["crash"]
    (record,) = [r for r in caplog.records if r.name == "voicetweets.processing"]
    logged = record.getMessage()
    assert "failed (crash" in logged
    assert "Traceback (most recent call last)" in logged
    assert "FileNotFoundError" in logged


def test_a_child_past_its_deadline_is_rejected_as_too_long(
    member, monkeypatch, django_capture_on_commit_callbacks
):
    """A child still working at the wall-clock deadline is killed; the member reads that it
    took too long (not that the file is bad)."""
    original = processing.process_in_child
    monkeypatch.setattr(
        processing,
        "process_in_child",
        lambda *a, **k: original(*a, **{**k, "timeout_seconds": 0.05}),
    )
    tweet = _post(member, sine_wav(10), capture=django_capture_on_commit_callbacks)

    assert tweet.state == VoiceTweet.State.REJECTED
    assert tweet.rejection_reason == processing.FAILURE_MESSAGES["timeout"]


def test_a_file_the_pipeline_cannot_read_keeps_the_pipeline_reason(
    member, django_capture_on_commit_callbacks
):
    """Damaged or foreign files are the pipeline's verdict, said as such: distinct from the
    categories of a failing child."""
    tweet = _post(
        member,
        b"RIFF" + b"\x00" * 4000,
        name="voice.wav",
        capture=django_capture_on_commit_callbacks,
    )

    assert tweet.state == VoiceTweet.State.REJECTED
    assert tweet.rejection_reason not in processing.FAILURE_MESSAGES.values()
    assert "could not read" in tweet.rejection_reason or "not a supported" in tweet.rejection_reason


def test_a_dead_workers_recording_is_queued_again_once_its_lease_expired(
    member, settings, monkeypatch
):
    """A started recording is queued again only when its lease expired (its worker died),
    however recently it was created; one whose lease is alive is left alone however old it is."""
    settings.SALON_VOICETWEET_STALLED_SECONDS = 3600
    dead = VoiceTweet.objects.create(author=member, processing_attempts=1, lease_token="dead")
    alive = VoiceTweet.objects.create(author=member, processing_attempts=1, lease_token="alive")
    VoiceTweet.objects.filter(pk=dead.pk).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    VoiceTweet.objects.filter(pk=alive.pk).update(
        created_at=timezone.now() - timedelta(days=1),
        lease_expires_at=timezone.now() + timedelta(seconds=30),
    )
    queued = []
    monkeypatch.setattr(services, "enqueue", lambda task, pk: queued.append(pk))

    assert services.voicetweets_requeue_stalled() == 1
    assert queued == [dead.pk]


def test_a_recording_never_started_waits_for_the_stalled_delay_unless_the_queue_died(
    member, settings, monkeypatch
):
    """No lease: the task may still be waiting in a queue, so the periodic sweep waits
    SALON_VOICETWEET_STALLED_SECONDS; when the queue was the dead process's memory (the
    embedded default starting), it is queued again at once."""
    settings.SALON_VOICETWEET_STALLED_SECONDS = 600
    waiting = VoiceTweet.objects.create(author=member)
    queued = []
    monkeypatch.setattr(services, "enqueue", lambda task, pk: queued.append(pk))

    assert services.voicetweets_requeue_stalled() == 0
    assert services.voicetweets_requeue_stalled(queue_lost=True) == 1
    VoiceTweet.objects.filter(pk=waiting.pk).update(created_at=timezone.now() - timedelta(hours=1))
    assert services.voicetweets_requeue_stalled() == 1
    assert queued == [waiting.pk, waiting.pk]


def test_stalled_processing_is_retried_then_rejected(member):
    """A tweet whose workers died is queued again, and rejected once its attempts are used up."""
    tweet = VoiceTweet.objects.create(author=member, state=VoiceTweet.State.PROCESSING)
    VoiceTweet.objects.filter(pk=tweet.pk).update(
        processing_attempts=2,
        lease_token="gone",
        lease_expires_at=timezone.now() - timedelta(seconds=1),
    )

    assert services.voicetweets_requeue_stalled() == 1
    services.voicetweet_process(voicetweet_id=tweet.pk)

    tweet.refresh_from_db()
    assert tweet.state == VoiceTweet.State.REJECTED
    assert "interrupted 2 times" in tweet.rejection_reason
    assert not tweet.lease_token and tweet.lease_expires_at is None


def test_work_folders_of_dead_attempts_and_strays_are_removed_by_the_sweep(member):
    """The sweep keeps the folder of an attempt whose lease is alive and removes the rest:
    an attempt whose lease expired, a recording no longer processing, a stray folder."""
    work = Path(settings.SALON_PRIVATE_MEDIA_ROOT) / "work"
    live = VoiceTweet.objects.create(
        author=member, lease_token="a1", lease_expires_at=timezone.now() + timedelta(seconds=30)
    )
    dead = VoiceTweet.objects.create(
        author=member, lease_token="b2", lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    done = VoiceTweet.objects.create(author=member, state=VoiceTweet.State.REJECTED)
    folders = {
        "live": work / f"voicetweet-{live.pk}-a1",
        "dead": work / f"voicetweet-{dead.pk}-b2",
        "old attempt of the live one": work / f"voicetweet-{live.pk}-00",
        "done": work / f"voicetweet-{done.pk}-c3",
        "stray": work / "something-else",
    }
    for folder in folders.values():
        folder.mkdir(parents=True)
        (folder / "part-1.m4a").write_bytes(b"x")

    services.voicetweets_requeue_stalled()

    assert sorted(p.name for p in work.iterdir()) == [folders["live"].name]


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


def test_a_second_delivery_leaves_a_recording_under_a_live_lease_alone(
    member, monkeypatch, django_capture_on_commit_callbacks
):
    """A redelivered task (or a sweep's requeue) arriving while a worker holds the lease does
    nothing: one child runs, the recording ends ready once, and the folder is gone after."""
    real = processing.process_in_child
    folders: list[Path] = []

    def one_run_while_the_other_arrives(upload, work_dir, **kwargs):
        folders.append(work_dir)
        services.voicetweet_process(voicetweet_id=tweet.pk)  # the duplicate delivery
        return real(upload, work_dir, **kwargs)

    with django_capture_on_commit_callbacks(execute=False):
        tweet = services.voicetweet_create(author=member, upload=upload(sine_wav(2)))
    monkeypatch.setattr(processing, "process_in_child", one_run_while_the_other_arrives)
    services.voicetweet_process(voicetweet_id=tweet.pk)

    tweet.refresh_from_db()
    assert tweet.state == VoiceTweet.State.READY, tweet.rejection_reason
    assert tweet.processing_attempts == 1
    assert len(folders) == 1 and not folders[0].exists()
    assert not tweet.lease_token and tweet.lease_expires_at is None


def test_a_worker_whose_lease_was_taken_over_never_writes_its_result(
    member, monkeypatch, settings, caplog, django_capture_on_commit_callbacks
):
    """A worker that stalled past its lease (the sweep gave the recording to another) is
    fenced out: its child is killed at the next heartbeat, and only the new attempt's result
    counts, written once."""
    settings.SALON_WORK_LEASE_RENEW_SECONDS = 0.05
    real = processing.process_in_child
    attempts: list[Path] = []

    def stall_then_lose_the_lease(upload, work_dir, **kwargs):
        attempts.append(work_dir)
        if len(attempts) == 1:
            # This worker stalls; its lease lapses and another worker takes the recording.
            VoiceTweet.objects.filter(pk=tweet.pk).update(
                lease_expires_at=timezone.now() - timedelta(seconds=1)
            )
            services.voicetweet_process(voicetweet_id=tweet.pk)
        return real(upload, work_dir, **kwargs)

    with django_capture_on_commit_callbacks(execute=False):
        tweet = services.voicetweet_create(author=member, upload=upload(sine_wav(20)))
    monkeypatch.setattr(processing, "process_in_child", stall_then_lose_the_lease)
    with django_capture_on_commit_callbacks(execute=True), caplog.at_level(logging.WARNING):
        services.voicetweet_process(voicetweet_id=tweet.pk)

    # The first child starts after the takeover: its first heartbeat finds the lease gone.
    assert any("lease was lost" in record.getMessage() for record in caplog.records)
    tweet.refresh_from_db()
    assert tweet.state == VoiceTweet.State.READY, tweet.rejection_reason
    assert tweet.processing_attempts == 2
    assert not VoiceTweet.objects.filter(parent=tweet).exists()
    assert len(attempts) == 2 and not any(folder.exists() for folder in attempts)
