"""Every write to voice tweets, and the rules for it."""

from __future__ import annotations

import logging
import secrets
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.core.files import File
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from accounts.realtime import notify_user
from accounts.selectors import is_blocked_between
from config.background import enqueue

from . import processing
from .models import Like, VoiceTweet

logger = logging.getLogger(__name__)

# What an upload's name may end with; the content decides in the end (see voicetweets.audio).
UPLOAD_SUFFIXES = {".webm", ".weba", ".ogg", ".oga", ".opus", ".m4a", ".mp4", ".aac", ".mp3",
                   ".wav", ".flac"}  # fmt: skip


class VoiceTweetError(Exception):
    """A request the rules refuse; ``code`` is stable for clients, the message is for people."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


class VoiceTweetNotFound(VoiceTweetError):
    def __init__(self):
        super().__init__("not_found", "No such voice tweet.")


def voicetweet_create(
    *,
    author,
    upload: UploadedFile,
    text: str = "",
    parent: VoiceTweet | None = None,
    post_as_thread: bool = False,
) -> VoiceTweet:
    """Store an upload as a voice tweet in ``processing`` and queue its processing.

    Returns at once; the author is notified on their sockets when processing ends.
    """
    text = text.strip()
    if len(text) > 280:
        raise VoiceTweetError("text_too_long", "The text can be at most 280 characters.")
    if upload.size == 0:
        raise VoiceTweetError("empty_upload", "The uploaded file is empty.")
    if upload.size > settings.SALON_VOICETWEET_MAX_UPLOAD_BYTES:
        limit_mb = settings.SALON_VOICETWEET_MAX_UPLOAD_BYTES // (1024 * 1024)
        raise VoiceTweetError("upload_too_large", f"The file is larger than {limit_mb} MB.")
    suffix = Path(upload.name or "").suffix.lower()
    if suffix not in UPLOAD_SUFFIXES:
        allowed = ", ".join(sorted(s.lstrip(".") for s in UPLOAD_SUFFIXES))
        raise VoiceTweetError("unsupported_type", f"Upload an audio file ({allowed}).")
    if parent is not None:
        _check_can_reply(author=author, parent=parent)
    # Never keep the member's file name: it is theirs, not ours, and may be anything.
    upload.name = f"{secrets.token_hex(12)}{suffix}"
    with transaction.atomic():
        tweet = VoiceTweet.objects.create(
            author=author, text=text, parent=parent, post_as_thread=post_as_thread, upload=upload
        )
        from .tasks import process_voicetweet

        enqueue(process_voicetweet, tweet.pk)
    return tweet


def _check_can_reply(*, author, parent: VoiceTweet) -> None:
    if parent.state != VoiceTweet.State.READY or parent.is_hidden:
        raise VoiceTweetNotFound
    if is_blocked_between(user=author, other=parent.author):
        raise VoiceTweetNotFound


def voicetweet_process(*, voicetweet_id: int) -> None:
    """Turn an upload into a playable voice tweet, or reject it with a reason.

    Safe to run twice (a redelivered task): only a tweet still ``processing`` is touched, and a
    tweet whose workers keep dying is rejected after SALON_VOICETWEET_MAX_ATTEMPTS.
    """
    with transaction.atomic():
        tweet = (
            VoiceTweet.objects.select_for_update()
            .filter(pk=voicetweet_id, state=VoiceTweet.State.PROCESSING)
            .first()
        )
        if tweet is None:
            return
        if tweet.processing_attempts >= settings.SALON_VOICETWEET_MAX_ATTEMPTS:
            _finish_rejected(tweet, "We could not process this recording. Please try again.")
            return
        tweet.processing_attempts = F("processing_attempts") + 1
        tweet.save(update_fields=["processing_attempts"])

    work_dir = Path(settings.MEDIA_ROOT) / "work" / f"voicetweet-{voicetweet_id}"
    try:
        parts = processing.process_in_child(
            Path(tweet.upload.path),
            work_dir,
            allow_thread=tweet.post_as_thread,
        )
    except processing.Rejected as rejected:
        with transaction.atomic():
            tweet = VoiceTweet.objects.select_for_update().get(pk=voicetweet_id)
            if tweet.state == VoiceTweet.State.PROCESSING:
                _finish_rejected(tweet, rejected.message)
        processing.remove_dir(work_dir)
        return

    with transaction.atomic():
        tweet = VoiceTweet.objects.select_for_update().get(pk=voicetweet_id)
        if tweet.state == VoiceTweet.State.PROCESSING:
            _finish_ready(tweet, parts)
    processing.remove_dir(work_dir)


def _finish_ready(tweet: VoiceTweet, parts: list[processing.Part]) -> None:
    """Caller holds the row lock. The first part becomes ``tweet``; later parts its thread."""
    now = timezone.now()
    _discard_upload(tweet)  # saved with the first part below
    previous = tweet
    thread_ids = []
    for index, part in enumerate(parts):
        target = tweet if index == 0 else VoiceTweet(author=tweet.author, parent=previous)
        with open(part.path, "rb") as handle:
            name = f"{secrets.token_hex(12)}{part.path.suffix}"
            target.audio.save(name, File(handle), save=False)
        target.duration_ms = part.duration_ms
        target.waveform = part.waveform
        target.state = VoiceTweet.State.READY
        target.processed_at = now
        target.save()
        thread_ids.append(target.pk)
        previous = target
    notify_user(
        user_id=tweet.author_id,
        payload={"event": "voicetweet.ready", "id": tweet.pk, "thread_ids": thread_ids},
    )


def _finish_rejected(tweet: VoiceTweet, reason: str) -> None:
    """Caller holds the row lock."""
    tweet.state = VoiceTweet.State.REJECTED
    tweet.rejection_reason = reason[:300]
    tweet.processed_at = timezone.now()
    _discard_upload(tweet)
    tweet.save(update_fields=["state", "rejection_reason", "processed_at", "upload"])
    notify_user(
        user_id=tweet.author_id,
        payload={"event": "voicetweet.rejected", "id": tweet.pk, "reason": tweet.rejection_reason},
    )


def _discard_upload(tweet: VoiceTweet) -> None:
    """Clear the upload field (the caller saves it) and delete the file once the transaction
    commits (never before: it may roll back)."""
    if tweet.upload:
        storage, name = tweet.upload.storage, tweet.upload.name
        transaction.on_commit(lambda: storage.delete(name))
        tweet.upload = ""


def voicetweets_requeue_stalled() -> int:
    """Queue again the tweets whose processing stopped with its worker; returns how many."""
    cutoff = timezone.now() - timedelta(seconds=settings.SALON_VOICETWEET_STALLED_SECONDS)
    stalled = list(
        VoiceTweet.objects.filter(
            state=VoiceTweet.State.PROCESSING, created_at__lt=cutoff
        ).values_list("pk", flat=True)
    )
    from .tasks import process_voicetweet

    for pk in stalled:
        # process_voicetweet rejects it once its attempts are used up.
        enqueue(process_voicetweet, pk)
    return len(stalled)


def voicetweet_delete(*, voicetweet: VoiceTweet, by) -> None:
    """Authors delete their own voice tweets; the audio goes with the row."""
    if voicetweet.author_id != by.pk:
        raise VoiceTweetError("forbidden", "Only the author can delete a voice tweet.")
    files = [f for f in (voicetweet.audio, voicetweet.upload) if f]
    with transaction.atomic():
        voicetweet.delete()
        for field in files:
            transaction.on_commit(lambda field=field: field.storage.delete(field.name))


def voicetweet_like(*, user, voicetweet: VoiceTweet) -> bool:
    """Like a voice tweet; returns False if it was already liked (liking is idempotent)."""
    if is_blocked_between(user=user, other=voicetweet.author):
        raise VoiceTweetNotFound
    with transaction.atomic():
        _, created = Like.objects.get_or_create(user=user, voice_tweet=voicetweet)
        if created:
            VoiceTweet.objects.filter(pk=voicetweet.pk).update(like_count=F("like_count") + 1)
    return created


def voicetweet_unlike(*, user, voicetweet: VoiceTweet) -> bool:
    with transaction.atomic():
        deleted, _ = Like.objects.filter(user=user, voice_tweet=voicetweet).delete()
        if deleted:
            VoiceTweet.objects.filter(pk=voicetweet.pk, like_count__gt=0).update(
                like_count=F("like_count") - 1
            )
    return bool(deleted)


def _check_moderator(by) -> None:
    if not (by.is_active and by.is_staff):
        raise VoiceTweetError("forbidden", "Only staff can hide or unhide voice tweets.")


def voicetweet_hide(*, voicetweet: VoiceTweet, by, reason: str) -> None:
    """A moderator hides a voice tweet: gone for everyone but its author and admins, audited."""
    from accounts.services import audit_record

    _check_moderator(by)
    reason = (reason or "").strip()
    if not reason:
        raise VoiceTweetError("reason_required", "Say why the voice tweet is hidden.")
    if len(reason) > 300:
        raise VoiceTweetError("reason_too_long", "Keep the reason under 300 characters.")
    with transaction.atomic():
        VoiceTweet.objects.filter(pk=voicetweet.pk).update(is_hidden=True, hidden_reason=reason)
        voicetweet.is_hidden, voicetweet.hidden_reason = True, reason
        audit_record(actor=by, action="voicetweet.hide", target=voicetweet, reason=reason)


def voicetweet_unhide(*, voicetweet: VoiceTweet, by, reason: str = "") -> None:
    from accounts.services import audit_record

    _check_moderator(by)
    with transaction.atomic():
        VoiceTweet.objects.filter(pk=voicetweet.pk).update(is_hidden=False, hidden_reason="")
        voicetweet.is_hidden, voicetweet.hidden_reason = False, ""
        audit_record(actor=by, action="voicetweet.unhide", target=voicetweet, reason=reason)
