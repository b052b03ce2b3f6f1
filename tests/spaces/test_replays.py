"""Replays: recording a space, processing the recording, retention and deletion."""

from datetime import timedelta

import numpy as np
import pytest
from django.conf import settings
from django.utils import timezone

from accounts.models import AuditEntry
from spaces import errors, services, tasks
from spaces.models import Replay

from .audio.test_recorder import RecordedRoom, decode_file, silence, tone
from .factories import make_member

pytestmark = pytest.mark.django_db


def record_segment(space, signals: dict, *, close: bool = True) -> RecordedRoom:
    """What the room's owner does: ask for a segment file, record the mix into it."""
    path = services.replay_segment_start(space_id=space.pk)
    assert path is not None
    room = RecordedRoom(path)
    room.add(*signals)
    room.play(signals)
    if close:
        room.recorder.close()
    return room


def recorded_space(host, *, visibility="open", seconds: float = 1.0):
    """A space recorded from its creation, where the host said a 440 Hz tone, then ended."""
    space = services.space_create(
        host=host, title="Recorded", visibility=visibility, is_recording=True
    )
    record_segment(space, {host.pk: tone(440, seconds)})
    services.space_end(space=space, by=host)
    return space, Replay.objects.get(space=space)


def ready_replay(host, **kwargs):
    space, replay = recorded_space(host, **kwargs)
    services.replay_process(replay_id=replay.pk)
    replay.refresh_from_db()
    assert replay.state == Replay.State.READY
    return space, replay


def test_a_space_recorded_from_creation_gets_its_replay_at_the_first_segment():
    """Recording on at creation: the mixer's first segment creates the replay (recording)."""
    host = make_member("hana", host=True)
    recorded = services.space_create(host=host, title="On", is_recording=True)
    plain = services.space_create(host=host, title="Off")

    path = services.replay_segment_start(space_id=recorded.pk)

    replay = Replay.objects.get(space=recorded)
    assert recorded.is_recording and replay.state == Replay.State.RECORDING
    assert path.parent == replay.segments_path and path.parent.is_dir()
    assert replay.directory_path.is_relative_to(settings.SALON_PRIVATE_MEDIA_ROOT)
    assert services.replay_segment_start(space_id=plain.pk) is None
    assert not Replay.objects.filter(space=plain).exists()


def test_no_segment_once_recording_is_off_or_the_space_is_over():
    """The mixer gets no file to write when recording is off, or the space ended."""
    host = make_member("hana", host=True)
    space = services.space_create(host=host, title="On", is_recording=True)
    services.space_set_recording(space=space, by=host, is_recording=False)
    assert services.replay_segment_start(space_id=space.pk) is None
    services.space_set_recording(space=space, by=host, is_recording=True)
    assert services.replay_segment_start(space_id=space.pk) is not None
    services.space_end(space=space, by=host)
    assert services.replay_segment_start(space_id=space.pk) is None
    assert services.replay_segment_start(space_id=10**9) is None


def test_recording_flag_at_creation_is_checked():
    """is_recording must be a boolean."""
    with pytest.raises(errors.InvalidInput):
        services.space_create(host=make_member("hana", host=True), title="x", is_recording="yes")


def test_the_end_of_a_space_processes_its_replay(django_capture_on_commit_callbacks):
    """Ending the space queues processing: one file, its duration, waveform and timeline."""
    host = make_member("hana", host=True)
    space = services.space_create(host=host, title="Recorded", is_recording=True)
    record_segment(space, {host.pk: np.concatenate([tone(440, 1.0), silence(1.5)])})
    record_segment(space, {host.pk: tone(440, 1.0)})  # the room moved to another process

    with django_capture_on_commit_callbacks(execute=True):
        services.space_end(space=space, by=host)

    replay = Replay.objects.get(space=space)
    space.refresh_from_db()
    assert replay.state == Replay.State.READY
    assert replay.duration_ms == pytest.approx(3500, abs=100)
    audio = decode_file(replay.audio_path)
    assert len(audio) / 48_000 == pytest.approx(replay.duration_seconds, abs=0.01)
    assert replay.size_bytes == replay.audio_path.stat().st_size
    assert [entry["speaker_id"] for entry in replay.timeline] == [host.pk, host.pk]
    assert 0 < len(replay.waveform) <= 200 and max(replay.waveform) > 50
    assert replay.delete_after == space.ended_at + timedelta(days=30)
    assert not replay.segments_path.exists()  # the segments went once joined


def test_processing_waits_while_a_segment_is_still_open():
    """A segment its mixer has not closed yet holds processing back, until the grace is over."""
    host = make_member("hana", host=True)
    space = services.space_create(host=host, title="Recorded", is_recording=True)
    room = record_segment(space, {host.pk: tone(440, 1.0)}, close=False)
    assert room.recorder.flush()
    space = services.space_end(space=space, by=host)
    replay = Replay.objects.get(space=space)

    services.replay_process(replay_id=replay.pk)
    replay.refresh_from_db()
    assert replay.state == Replay.State.PROCESSING and replay.processing_attempts == 0

    # The mixing process died: after the grace period, what reached the disk is the replay.
    space.ended_at -= timedelta(seconds=settings.SALON_REPLAY_CLOSE_GRACE_SECONDS + 1)
    space.save(update_fields=["ended_at"])
    services.replay_process(replay_id=replay.pk)
    replay.refresh_from_db()
    room.recorder.close()
    assert replay.state == Replay.State.READY
    assert 0.4 <= replay.duration_seconds <= 1.05


def test_a_recording_without_audio_fails_with_a_reason():
    """Recording was on but no mixer wrote a packet: the replay fails, saying why."""
    host = make_member("hana", host=True)
    space = services.space_create(host=host, title="Silent", is_recording=True)
    services.replay_segment_start(space_id=space.pk)
    services.space_end(space=space, by=host)
    replay = Replay.objects.get(space=space)

    services.replay_process(replay_id=replay.pk)

    replay.refresh_from_db()
    assert (replay.state, replay.failure_reason) == ("failed", "Nothing was recorded.")


def test_stalled_replays_are_processed_by_the_sweep(django_capture_on_commit_callbacks):
    """A replay whose mixer never reported back is processed once the grace period is over."""
    host = make_member("hana", host=True)
    _, replay = recorded_space(host)
    assert services.replays_requeue_stalled() == 0  # the mixer may still report
    later = timezone.now() + timedelta(seconds=settings.SALON_REPLAY_CLOSE_GRACE_SECONDS + 1)

    with django_capture_on_commit_callbacks(execute=True):
        assert services.replays_requeue_stalled(now=later) == 1

    replay.refresh_from_db()
    assert replay.state == Replay.State.READY
    assert services.replays_requeue_stalled(now=later) == 0


def test_a_replay_under_a_live_lease_is_left_alone_and_taken_up_once_it_lapsed(
    django_capture_on_commit_callbacks,
):
    """A worker joining a replay holds its lease: neither the sweep nor a second delivery
    touches it, however long ago the space ended. Its worker died (the lease lapsed): the sweep
    queues it, the next worker takes a new lease, and it ends ready."""
    host = make_member("hana", host=True)
    _, replay = recorded_space(host)
    Replay.objects.filter(pk=replay.pk).update(
        processing_attempts=1,
        lease_token="running",
        lease_expires_at=timezone.now() + timedelta(seconds=settings.SALON_WORK_LEASE_SECONDS),
    )
    space = replay.space
    space.ended_at -= timedelta(hours=1)
    space.save(update_fields=["ended_at"])

    assert services.replays_requeue_stalled() == 0
    services.replay_process(replay_id=replay.pk)
    replay.refresh_from_db()
    assert (replay.state, replay.processing_attempts) == (Replay.State.PROCESSING, 1)

    Replay.objects.filter(pk=replay.pk).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert services.replays_requeue_stalled() == 1

    replay.refresh_from_db()
    assert (replay.state, replay.processing_attempts) == (Replay.State.READY, 2)
    assert not replay.lease_token and replay.lease_expires_at is None


def test_retention_deletes_expired_replays_and_their_files_but_not_held_ones(
    django_capture_on_commit_callbacks,
):
    """Past the retention date, replays go, files and rows; a held one stays."""
    host = make_member("hana", host=True)
    admin = make_member("ada")
    admin.is_superuser = True
    admin.save()
    _, expired = ready_replay(host)
    _, held = ready_replay(host)
    _, fresh = ready_replay(host)
    services.replay_hold(replay=held, by=admin, reason="reported for abuse")
    Replay.objects.filter(pk__in=[expired.pk, held.pk]).update(
        delete_after=timezone.now() - timedelta(minutes=1)
    )

    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.delete_expired_replays() == 1

    assert not Replay.objects.filter(pk=expired.pk).exists()
    assert not expired.directory_path.exists()
    assert held.audio_path.exists() and fresh.audio_path.exists()
    assert set(Replay.objects.values_list("pk", flat=True)) == {held.pk, fresh.pk}

    services.replay_release(replay=held, by=admin)
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.delete_expired_replays() == 1
    assert not held.directory_path.exists()


def test_host_deletes_the_replay_and_its_file_at_once(django_capture_on_commit_callbacks):
    """The host may delete earlier than retention; the file is gone when the call returns."""
    host = make_member("hana", host=True)
    _, replay = ready_replay(host)
    with pytest.raises(errors.SpaceForbidden):
        services.replay_delete(replay=replay, by=make_member("leo"))

    with django_capture_on_commit_callbacks(execute=True):
        services.replay_delete(replay=replay, by=host)

    assert not Replay.objects.filter(pk=replay.pk).exists()
    assert not replay.audio_path.exists() and not replay.directory_path.exists()


def test_host_cannot_delete_a_held_replay_or_one_still_recording():
    """A hold is a moderator's; a live space's recording is not over yet."""
    host = make_member("hana", host=True)
    admin = make_member("ada")
    admin.is_superuser = True
    admin.save()
    _, replay = ready_replay(host)
    services.replay_hold(replay=replay, by=admin, reason="under review")
    with pytest.raises(errors.SpaceForbidden, match="reviewing"):
        services.replay_delete(replay=replay, by=host)
    live = services.space_create(host=host, title="Live", is_recording=True)
    services.replay_segment_start(space_id=live.pk)
    with pytest.raises(errors.SpaceStateError):
        services.replay_delete(replay=Replay.objects.get(space=live), by=host)


def test_holds_are_for_moderators_with_a_reason_and_audited():
    """Only moderators hold and release; a hold needs a reason; both go to the audit log."""
    host = make_member("hana", host=True)
    admin = make_member("ada")
    admin.is_superuser = True
    admin.save()
    _, replay = ready_replay(host)
    with pytest.raises(errors.SpaceForbidden):
        services.replay_hold(replay=replay, by=host, reason="mine")
    with pytest.raises(errors.InvalidInput):
        services.replay_hold(replay=replay, by=admin, reason="  ")

    services.replay_hold(replay=replay, by=admin, reason="reported")
    replay.refresh_from_db()
    assert (replay.held, replay.hold_reason) == (True, "reported")
    services.replay_release(replay=replay, by=admin, reason="fine")
    replay.refresh_from_db()
    assert (replay.held, replay.hold_reason) == (False, "")
    actions = list(AuditEntry.objects.order_by("pk").values_list("action", "reason"))
    assert actions == [("replay.hold", "reported"), ("replay.release", "fine")]


def test_beat_schedule_runs_retention_and_the_stalled_sweep():
    """Retention runs hourly, the stalled-replay sweep every half lease; processing on
    'audio'."""
    schedule = settings.CELERY_BEAT_SCHEDULE
    assert schedule["spaces.delete-expired-replays"]["task"] == tasks.delete_expired_replays.name
    assert schedule["spaces.requeue-stalled-replays"]["task"] == (
        tasks.requeue_stalled_replays.name
    )
    assert settings.CELERY_TASK_ROUTES[tasks.process_replay.name] == {"queue": "audio"}
    assert settings.SALON_REPLAY_RETENTION_DAYS == 30
