"""Replays: recording segments, processing, retention, holds and deletion."""

from __future__ import annotations

import secrets
import shutil
import time
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from accounts.services import audit_record
from config.background import enqueue
from config.leases import LEASE_FIELDS, lease_expired, lease_heartbeat
from voicetweets.children import ChildAbandoned

from .. import errors
from ..audio.replay import ReplayJoinError, join_in_child, segment_is_closed
from ..models import (
    Replay,
    Space,
)
from ..selectors import (
    user_moderates_all_spaces,
)
from ._shared import logger

# While a space is recorded, the process mixing its room (spaces.live.media) asks for a segment file
# whenever it starts recording and says when it closed one: a process taking the room over
# starts a new segment. The space's end starts processing (a Celery task on the audio queue),
# which joins the segments into the replay; beat deletes replays past their retention date.


def _new_replay_directory(space: Space) -> str:
    return f"replays/{space.pk}-{secrets.token_hex(8)}"


def _remove_replay_files(replay: Replay) -> None:
    """Delete the replay's folder once the current transaction commits (never before it)."""
    directory = replay.directory_path
    transaction.on_commit(lambda: shutil.rmtree(directory, ignore_errors=True))


@transaction.atomic
def replay_segment_start(*, space_id: int) -> Path | None:
    """The room's mixer is to record: the file for its new segment, or None when the space is
    not recorded now (not live, or recording off). The first segment creates the replay."""
    space = Space.objects.select_for_update().filter(pk=space_id).first()
    if space is None or space.state != Space.State.LIVE or not space.is_recording:
        return None
    replay, _ = Replay.objects.get_or_create(
        space=space, defaults={"directory": _new_replay_directory(space)}
    )
    if replay.state != Replay.State.RECORDING:
        return None
    replay.segments_path.mkdir(parents=True, exist_ok=True)
    # Named by start time: processing joins the segments in name order.
    return replay.segments_path / f"{time.time_ns():020d}-{secrets.token_hex(4)}.ogg"


def replay_segment_closed(*, space_id: int) -> None:
    """The room's mixer closed its segment. If the space has ended, process the replay now
    rather than when the grace period is over."""
    from ..tasks import process_replay

    replay = Replay.objects.filter(space_id=space_id, state=Replay.State.PROCESSING).first()
    if replay is not None:
        enqueue(process_replay, replay.pk)


def _replay_space_ended(space: Space) -> bool:
    """Caller holds the space lock and has just ended ``space``: its recording is over.
    Whether a replay is being made of it."""
    from ..tasks import process_replay

    replay = Replay.objects.select_for_update().filter(space=space).first()
    if replay is None or replay.state != Replay.State.RECORDING:
        return False
    replay.state = Replay.State.PROCESSING
    replay.delete_after = space.ended_at + timedelta(days=settings.SALON_REPLAY_RETENTION_DAYS)
    replay.save(update_fields=["state", "delete_after"])
    enqueue(process_replay, replay.pk)
    return True


def replay_process(*, replay_id: int) -> None:
    """Join an ended space's segments into its replay: ready, or failed with a reason.

    Safe to run twice, also at once: only a processing replay whose lease no live worker holds
    is touched (config.leases). While a segment may still be closing (the space ended less than
    SALON_REPLAY_CLOSE_GRACE_SECONDS ago) it returns; the mixer's close, or the stalled sweep,
    runs it again.
    """
    now = timezone.now()
    with transaction.atomic():
        replay = (
            Replay.objects.select_for_update()
            .select_related("space")
            .filter(pk=replay_id, state=Replay.State.PROCESSING)
            .first()
        )
        if replay is None or replay.lease_is_alive(now):
            return
        if replay.processing_attempts >= settings.SALON_REPLAY_MAX_ATTEMPTS:
            replay.lease_release()
            _replay_failed(replay, "The recording could not be processed.")
            return
        segments = sorted(replay.segments_path.glob("*.ogg"))
        closing = replay.space.ended_at + timedelta(
            seconds=settings.SALON_REPLAY_CLOSE_GRACE_SECONDS
        )
        if now < closing and not all(segment_is_closed(segment) for segment in segments):
            return
        token = replay.lease_take(now)
        replay.processing_attempts = F("processing_attempts") + 1
        replay.save(update_fields=["processing_attempts", *LEASE_FIELDS])
        directory, audio_path = replay.directory_path, replay.audio_path

    try:
        joined = join_in_child(
            segments,
            audio_path,
            timeout=settings.SALON_REPLAY_PROCESS_SECONDS,
            memory_bytes=settings.SALON_REPLAY_PROCESS_MEMORY_BYTES,
            heartbeat=lease_heartbeat(Replay, replay_id, token),
            heartbeat_seconds=settings.SALON_WORK_LEASE_RENEW_SECONDS,
        )
    except ChildAbandoned:
        logger.warning("replay %s: the lease was lost mid-way; another worker has it", replay_id)
        return
    except ReplayJoinError:
        logger.exception("replay %s: joining its segments failed", replay_id)
        joined = None

    with transaction.atomic():
        replay = Replay.objects.select_for_update().filter(pk=replay_id).first()
        if replay is None:
            # Deleted while we joined: its folder went then; remove what we wrote since.
            transaction.on_commit(lambda: shutil.rmtree(directory, ignore_errors=True))
            return
        if replay.state != Replay.State.PROCESSING or replay.lease_token != token:
            return  # our lease lapsed and another worker took the replay over
        replay.lease_release()
        if joined is None:
            _replay_failed(replay, "The recording could not be processed.")
        elif joined.packets == 0:
            _replay_failed(replay, "Nothing was recorded.")
        else:
            replay.state = Replay.State.READY
            replay.duration_ms = round(joined.duration * 1000)
            replay.size_bytes = audio_path.stat().st_size
            replay.waveform = joined.waveform
            replay.timeline = joined.timeline
            replay.processed_at = timezone.now()
            replay.save()
            segments_path = replay.segments_path
            transaction.on_commit(lambda: shutil.rmtree(segments_path, ignore_errors=True))


def _replay_failed(replay: Replay, reason: str) -> None:
    """Caller holds the row lock. The segments stay until retention: the reason may be ours."""
    replay.state = Replay.State.FAILED
    replay.failure_reason = reason[:300]
    replay.processed_at = timezone.now()
    replay.save(update_fields=["state", "failure_reason", "processed_at", *LEASE_FIELDS])


def replays_requeue_stalled(*, now: datetime | None = None) -> int:
    """Queue the replays whose processing is due and not running: their mixer never said it
    closed its segment (it died), or their worker died (its lease expired). Returns how many."""
    from ..tasks import process_replay

    now = now or timezone.now()
    closing_over = now - timedelta(seconds=settings.SALON_REPLAY_CLOSE_GRACE_SECONDS)
    due = list(
        Replay.objects.filter(state=Replay.State.PROCESSING, space__ended_at__lt=closing_over)
        .filter(Q(lease_expires_at__isnull=True) | lease_expired(now))
        .values_list("pk", flat=True)
    )
    for pk in due:
        enqueue(process_replay, pk)
    return len(due)


def replays_delete_expired(*, now: datetime | None = None) -> int:
    """Retention: delete the replays past their date, files and rows, except held ones."""
    now = now or timezone.now()
    deleted = 0
    expired = Replay.objects.filter(delete_after__lte=now, held=False).values_list("pk", flat=True)
    for pk in list(expired):
        with transaction.atomic():
            # Checked again under the lock: a moderator may have held it meanwhile.
            replay = (
                Replay.objects.select_for_update(skip_locked=True)
                .filter(pk=pk, delete_after__lte=now, held=False)
                .first()
            )
            if replay is not None:
                replay.delete()
                _remove_replay_files(replay)
                deleted += 1
    return deleted


@transaction.atomic
def replay_delete(*, replay: Replay, by) -> None:
    """The host deletes their space's replay before its retention date; the file goes at once.

    A site moderator may too (audited). Not while the space is still recorded, and not by the
    host while moderators hold it for review.
    """
    replay = _lock_replay(replay)
    moderator = user_moderates_all_spaces(user=by)
    if by.pk != replay.space.host_id and not moderator:
        raise errors.SpaceForbidden("only the host can delete the replay")
    if replay.state == Replay.State.RECORDING:
        raise errors.SpaceStateError("the space is still live; delete its replay once it ends")
    if replay.held and not moderator:
        raise errors.SpaceForbidden("moderators are reviewing this replay; it cannot be deleted")
    if by.pk != replay.space.host_id:
        audit_record(actor=by, action="replay.delete", target=replay.space)
    replay.delete()
    _remove_replay_files(replay)


def _lock_replay(replay: Replay) -> Replay:
    try:
        return Replay.objects.select_for_update().select_related("space").get(pk=replay.pk)
    except Replay.DoesNotExist:
        raise errors.SpaceNotFound("no such replay") from None


def _check_hold_reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise errors.InvalidInput("say why the replay is held")
    if len(reason) > 300:
        raise errors.InvalidInput("a reason has at most 300 characters")
    return reason


@transaction.atomic
def replay_hold(*, replay: Replay, by, reason: str) -> None:
    """A moderator keeps a replay under review: retention skips it, the host cannot delete it."""
    if not user_moderates_all_spaces(user=by):
        raise errors.SpaceForbidden("only moderators hold replays")
    reason = _check_hold_reason(reason)
    replay = _lock_replay(replay)
    replay.held, replay.hold_reason = True, reason
    replay.save(update_fields=["held", "hold_reason"])
    audit_record(actor=by, action="replay.hold", target=replay.space, reason=reason)


@transaction.atomic
def replay_release(*, replay: Replay, by, reason: str = "") -> None:
    """The review is over: retention applies again (at its next run, if the date has passed)."""
    if not user_moderates_all_spaces(user=by):
        raise errors.SpaceForbidden("only moderators release replays")
    replay = _lock_replay(replay)
    replay.held, replay.hold_reason = False, ""
    replay.save(update_fields=["held", "hold_reason"])
    audit_record(actor=by, action="replay.release", target=replay.space, reason=reason.strip())
