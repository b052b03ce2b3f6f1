"""Every write to voice tweets and voice messages, and the rules for them.

Both are recordings (voicetweets.models.Recording) and go through one pipeline: the upload is
checked and stored (_accept_upload), then processed in a bounded child process
(_recording_process), which ends in ready or rejected. A ready recording is then transcribed on
the transcribe queue (recording_transcribe), which never changes whether it plays.
"""

from __future__ import annotations

import logging
import secrets
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.core.files import File
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models import F, Q
from django.urls import reverse
from django.utils import timezone

from accounts.realtime import notify_user
from accounts.selectors import is_blocked_between, is_following
from config.background import enqueue
from config.leases import LEASE_FIELDS, lease_expired, lease_heartbeat
from notifications.models import Notification
from notifications.services import notification_aggregate, notification_send

from . import children, processing, transcription
from .models import Like, Recording, VoiceMessage, VoiceTweet

logger = logging.getLogger(__name__)

# What an upload's name may end with; the content decides in the end (see voicetweets.audio).
UPLOAD_SUFFIXES = {".webm", ".weba", ".ogg", ".oga", ".opus", ".m4a", ".mp4", ".aac", ".mp3",
                   ".wav", ".flac"}  # fmt: skip


class VoiceTweetError(Exception):
    """A request the rules refuse; ``code`` is stable for clients, the message is for people,
    ``status`` is the HTTP status adapters answer with."""

    STATUS_BY_CODE = {"not_found": 404, "forbidden": 403}

    def __init__(self, code: str, message: str, *, status: int | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status or self.STATUS_BY_CODE.get(code, 400)


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
    _accept_upload(upload)
    if parent is not None:
        _check_can_reply(author=author, parent=parent)
    with transaction.atomic():
        tweet = VoiceTweet.objects.create(
            author=author, text=text, parent=parent, post_as_thread=post_as_thread, upload=upload
        )
        from .tasks import process_voicetweet

        enqueue(process_voicetweet, tweet.pk)
    return tweet


def _accept_upload(upload: UploadedFile) -> None:
    """Refuse what cannot be audio before storing it, and give it a name of our own."""
    if upload.size == 0:
        raise VoiceTweetError("empty_upload", "The uploaded file is empty.")
    if upload.size > settings.SALON_VOICETWEET_MAX_UPLOAD_BYTES:
        limit_mb = settings.SALON_VOICETWEET_MAX_UPLOAD_BYTES // (1024 * 1024)
        raise VoiceTweetError("upload_too_large", f"The file is larger than {limit_mb} MB.")
    suffix = Path(upload.name or "").suffix.lower()
    if suffix not in UPLOAD_SUFFIXES:
        allowed = ", ".join(sorted(s.lstrip(".") for s in UPLOAD_SUFFIXES))
        raise VoiceTweetError("unsupported_type", f"Upload an audio file ({allowed}).")
    # Never keep the member's file name: it is theirs, not ours, and may be anything.
    upload.name = f"{secrets.token_hex(12)}{suffix}"


def _check_can_reply(*, author, parent: VoiceTweet) -> None:
    if parent.state != VoiceTweet.State.READY or parent.is_hidden:
        raise VoiceTweetNotFound
    if is_blocked_between(user=author, other=parent.author):
        raise VoiceTweetNotFound


def voicetweet_process(*, voicetweet_id: int) -> None:
    """Turn an upload into a playable voice tweet (or a thread), or reject it with a reason."""
    _recording_process(
        VoiceTweet, voicetweet_id, finish_ready=_finish_ready, finish_rejected=_finish_rejected
    )


def _recording_process(model: type[Recording], pk: int, *, finish_ready, finish_rejected) -> None:
    """The processing state machine every recording goes through.

    Safe to run twice, also at once (a redelivered task, a sweep's requeue): only a recording
    still ``processing`` whose lease no live worker holds is touched (config.leases), and one
    whose workers keep dying is rejected after SALON_VOICETWEET_MAX_ATTEMPTS.
    ``finish_ready(recording, parts)`` and ``finish_rejected(recording, reason)`` run with the
    row locked, in the transaction that moves it out of ``processing``.
    """
    with transaction.atomic():
        recording = (
            model.objects.select_for_update()
            .filter(pk=pk, state=Recording.State.PROCESSING)
            .first()
        )
        if recording is None or recording.lease_is_alive():
            return
        # The attempt before this one died (its lease expired): its folder is litter now.
        _remove_work_dir_on_commit(model, pk, recording.lease_token)
        if recording.processing_attempts >= settings.SALON_VOICETWEET_MAX_ATTEMPTS:
            recording.lease_release()
            finish_rejected(
                recording,
                "We could not process this recording: processing was interrupted "
                f"{recording.processing_attempts} times. Please try again.",
            )
            return
        token = recording.lease_take()
        recording.processing_attempts = F("processing_attempts") + 1
        recording.save(update_fields=["processing_attempts", *LEASE_FIELDS])

    # A folder of this attempt's own, named by its lease token: the sweep removes the folders
    # of attempts whose lease is gone.
    work_dir = _work_dir(model, pk, token)
    try:
        parts = processing.process_in_child(
            Path(recording.upload.path),
            work_dir,
            allow_thread=recording.allows_thread,
            heartbeat=lease_heartbeat(model, pk, token),
        )
    except children.ChildAbandoned:
        logger.warning("%s %s: the lease was lost mid-way; another worker has it", model, pk)
        processing.remove_dir(work_dir)
        return
    except processing.Rejected as rejected:
        reason = rejected.message
        _finish_attempt(model, pk, token, lambda recording: finish_rejected(recording, reason))
        processing.remove_dir(work_dir)
        return
    _finish_attempt(model, pk, token, lambda recording: finish_ready(recording, parts))
    processing.remove_dir(work_dir)


def _finish_attempt(model: type[Recording], pk: int, token: str, finish) -> None:
    """Run ``finish(recording)`` with the row locked, if this attempt still holds its lease:
    once it lapsed and another worker took the recording over, that worker's result counts."""
    with transaction.atomic():
        recording = model.objects.select_for_update().get(pk=pk)
        if recording.state != Recording.State.PROCESSING or recording.lease_token != token:
            return
        recording.lease_release()
        finish(recording)


def _work_root() -> Path:
    return Path(settings.SALON_PRIVATE_MEDIA_ROOT) / "work"


def _work_dir(model: type[Recording], pk: int, token: str) -> Path:
    return _work_root() / f"{model._meta.model_name}-{pk}-{token}"


def _remove_work_dir_on_commit(model: type[Recording], pk: int, token: str) -> None:
    if token:
        work_dir = _work_dir(model, pk, token)
        transaction.on_commit(lambda: processing.remove_dir(work_dir))


def _store_part(recording: Recording, part: processing.Part, *, now) -> None:
    """Make ``recording`` ready with ``part``'s audio, and save it (caller holds the lock)."""
    with open(part.path, "rb") as handle:
        name = f"{secrets.token_hex(12)}{part.path.suffix}"
        recording.audio.save(name, File(handle), save=False)
    recording.duration_ms = part.duration_ms
    recording.waveform = part.waveform
    recording.state = Recording.State.READY
    recording.processed_at = now
    # Captions: the transcript is made on the transcribe queue, or never when they are off here.
    captions_off = transcription.captions_unavailable() is not None
    recording.transcript_state = (
        Recording.TranscriptState.OFF if captions_off else Recording.TranscriptState.PENDING
    )
    recording.save()
    if not captions_off:
        from .tasks import transcribe_voicemessage, transcribe_voicetweet

        is_tweet = isinstance(recording, VoiceTweet)
        enqueue(transcribe_voicetweet if is_tweet else transcribe_voicemessage, recording.pk)


def recording_transcribe(*, model: type[Recording], pk: int) -> None:
    """Transcribe a ready recording whose transcript is pending; ends ``ready`` or ``failed``.

    The audio stays playable whatever happens here. Running it twice is harmless: only a
    pending transcript is worked on, and the same audio gives the same transcript.
    """
    recording = model.objects.filter(
        pk=pk, state=Recording.State.READY, transcript_state=Recording.TranscriptState.PENDING
    ).first()
    if recording is None or not recording.audio:
        return
    if transcription.captions_unavailable() is not None:  # turned off since it was queued
        model.objects.filter(pk=pk, transcript_state=Recording.TranscriptState.PENDING).update(
            transcript_state=Recording.TranscriptState.OFF
        )
        return
    try:
        transcript = transcription.transcribe_in_child(Path(recording.audio.path))
    except Exception:
        logger.exception("transcribing %s %s failed", model._meta.model_name, pk)
        recording_transcript_failed(model=model, pk=pk)
        return
    model.objects.filter(pk=pk, transcript_state=Recording.TranscriptState.PENDING).update(
        transcript_state=Recording.TranscriptState.READY,
        transcript_segments=[segment.as_dict() for segment in transcript.segments],
        transcript=transcript.text,
        transcript_language=transcript.language[:16],
    )


def recording_transcript_failed(*, model: type[Recording], pk: int) -> None:
    """Mark a pending transcript failed (its audio plays on, without captions)."""
    model.objects.filter(pk=pk, transcript_state=Recording.TranscriptState.PENDING).update(
        transcript_state=Recording.TranscriptState.FAILED
    )


def _mark_rejected(recording: Recording, reason: str) -> None:
    """Caller holds the row lock."""
    recording.state = Recording.State.REJECTED
    recording.rejection_reason = reason[:300]
    recording.processed_at = timezone.now()
    recording.transcript_state = Recording.TranscriptState.OFF  # no audio, nothing to caption
    _discard_upload(recording)
    recording.save(
        update_fields=[
            "state", "rejection_reason", "processed_at", "upload", "transcript_state",
            *LEASE_FIELDS,
        ]
    )  # fmt: skip


def _finish_ready(tweet: VoiceTweet, parts: list[processing.Part]) -> None:
    """Caller holds the row lock. The first part becomes ``tweet``; later parts its thread."""
    now = timezone.now()
    _discard_upload(tweet)  # saved with the first part below
    previous = tweet
    thread_ids = []
    for index, part in enumerate(parts):
        target = tweet if index == 0 else VoiceTweet(author=tweet.author, parent=previous)
        _store_part(target, part, now=now)
        thread_ids.append(target.pk)
        previous = target
    notify_user(
        user_id=tweet.author_id,
        payload={"event": "voicetweet.ready", "id": tweet.pk, "thread_ids": thread_ids},
    )
    if tweet.parent_id is not None:
        _notify_reply(tweet)


def _notify_reply(reply: VoiceTweet) -> None:
    """A reply is ready (never before: a rejected one tells nobody): its parent's author hears
    of it. A thread's own parts reply to their author, who is not told of their own action."""
    parent = reply.parent
    notification_send(
        user=parent.author,
        kind=Notification.Kind.REPLIED,
        text=f"{reply.author.name} replied to your voice tweet.",
        url=reverse("voicetweets:detail", args=[reply.pk]),
        target=reply,
        actor=reply.author,
    )


def _finish_rejected(tweet: VoiceTweet, reason: str) -> None:
    """Caller holds the row lock."""
    _mark_rejected(tweet, reason)
    notify_user(
        user_id=tweet.author_id,
        payload={"event": "voicetweet.rejected", "id": tweet.pk, "reason": tweet.rejection_reason},
    )


def _discard_upload(recording: Recording) -> None:
    """Clear the upload field (the caller saves it) and delete the file once the transaction
    commits (never before: it may roll back)."""
    if recording.upload:
        storage, name = recording.upload.storage, recording.upload.name
        transaction.on_commit(lambda: storage.delete(name))
        recording.upload = ""


def voicetweets_requeue_stalled(*, queue_lost: bool = False) -> int:
    """Queue again the recordings (voice tweets and voice messages) whose worker died, and
    remove the work folders no live attempt owns; returns how many were queued.

    A recording whose worker started on it is queued again once its lease expired
    (config.leases), never while it is alive. One that no worker ever started is queued again
    after SALON_VOICETWEET_STALLED_SECONDS (its task was lost on the way), or at once when
    ``queue_lost``: the queue it waited in was the memory of a process that is gone (the
    embedded default, starting). Then pending transcripts are queued again too: their tasks were
    in that memory as well. (With Celery a queued transcript survives a worker; one lost with
    the broker's queue stays pending.)
    """
    from .tasks import process_voicemessage, process_voicetweet

    now = timezone.now()
    never_started = Q(lease_expires_at__isnull=True)
    if not queue_lost:
        cutoff = now - timedelta(seconds=settings.SALON_VOICETWEET_STALLED_SECONDS)
        never_started &= Q(created_at__lt=cutoff)
    queued = 0
    for model, task in ((VoiceTweet, process_voicetweet), (VoiceMessage, process_voicemessage)):
        stalled = model.objects.filter(state=Recording.State.PROCESSING).filter(
            lease_expired(now) | never_started
        )
        for pk in stalled.values_list("pk", flat=True):
            # The task rejects the recording once its attempts are used up.
            enqueue(task, pk)
            queued += 1
    if queue_lost:
        queued += _requeue_pending_transcripts()
    _remove_orphaned_work_dirs()
    return queued


def _requeue_pending_transcripts() -> int:
    from .tasks import transcribe_voicemessage, transcribe_voicetweet

    queued = 0
    for model, task in (
        (VoiceTweet, transcribe_voicetweet),
        (VoiceMessage, transcribe_voicemessage),
    ):
        pending = model.objects.filter(
            state=Recording.State.READY, transcript_state=Recording.TranscriptState.PENDING
        )
        for pk in pending.values_list("pk", flat=True):
            enqueue(task, pk)
            queued += 1
    return queued


def _remove_orphaned_work_dirs() -> None:
    """Remove every work folder that belongs to no live attempt: its worker died, or it is
    not a recording's at all.

    The folders are listed before the leases are read: an attempt commits its lease before it
    creates its folder, so any folder listed whose attempt is alive is found alive after.
    """
    root = _work_root()
    if not root.is_dir():
        return
    entries = list(root.iterdir())
    now = timezone.now()
    alive = set()
    for model in (VoiceTweet, VoiceMessage):
        leases = model.objects.filter(state=Recording.State.PROCESSING, lease_expires_at__gt=now)
        alive |= {
            _work_dir(model, pk, token).name
            for pk, token in leases.values_list("pk", "lease_token")
        }
    for entry in entries:
        if entry.name not in alive:
            logger.info("removing orphaned work folder %s", entry)
            if entry.is_dir() and not entry.is_symlink():
                processing.remove_dir(entry)
            else:
                entry.unlink(missing_ok=True)


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
            # One unread "N people liked" per voice tweet; each liker counts once, ever.
            notification_aggregate(
                user=voicetweet.author,
                kind=Notification.Kind.LIKED,
                actor=user,
                target=voicetweet,
                url=reverse("voicetweets:detail", args=[voicetweet.pk]),
                action="liked your voice tweet",
            )
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


# --- Voice messages ---------------------------------------------------------------------------


def voicemessage_check_send(*, sender, recipient) -> None:
    """Whether ``sender`` may send ``recipient`` a voice message; raises VoiceTweetError if not.

    Allowed when the two follow each other, or when the recipient accepts messages from anyone
    (a profile setting); never across a block in either direction.
    """
    if not sender.is_active:
        raise VoiceTweetError("forbidden", "Suspended members cannot send voice messages.")
    if sender.pk == recipient.pk:
        raise VoiceTweetError("self", "You cannot send a voice message to yourself.")
    if not recipient.is_active:
        raise VoiceTweetError("not_found", "No such member.")
    if is_blocked_between(user=sender, other=recipient):
        raise VoiceTweetError("blocked", "You cannot message this member.", status=403)
    if recipient.messages_from_anyone:
        return
    if not (
        is_following(follower=sender, followee=recipient)
        and is_following(follower=recipient, followee=sender)
    ):
        raise VoiceTweetError(
            "not_mutual",
            f"@{recipient.username} takes voice messages only from people they follow who "
            "follow them back.",
            status=403,
        )


def voicemessage_may_send(*, sender, recipient) -> bool:
    """voicemessage_check_send as a yes or no, for pages and API fields that offer the action."""
    try:
        voicemessage_check_send(sender=sender, recipient=recipient)
    except VoiceTweetError:
        return False
    return True


def voicemessage_send(*, sender, recipient, upload: UploadedFile) -> VoiceMessage:
    """Store a voice message in ``processing`` and queue its processing (the same pipeline as
    voice tweets, never split into parts: over 140 s is rejected).

    Returns at once; the sender is notified when processing ends, the recipient once it is ready.
    """
    voicemessage_check_send(sender=sender, recipient=recipient)
    _accept_upload(upload)
    with transaction.atomic():
        message = VoiceMessage.objects.create(sender=sender, recipient=recipient, upload=upload)
        from .tasks import process_voicemessage

        enqueue(process_voicemessage, message.pk)
    return message


def voicemessage_process(*, voicemessage_id: int) -> None:
    _recording_process(
        VoiceMessage,
        voicemessage_id,
        finish_ready=_finish_message_ready,
        finish_rejected=_finish_message_rejected,
    )


def _message_event(message: VoiceMessage, event: str) -> dict:
    return {
        "event": event,
        "id": message.pk,
        "sender": message.sender.username,
        "recipient": message.recipient.username,
    }


def _finish_message_ready(message: VoiceMessage, parts: list[processing.Part]) -> None:
    """Caller holds the row lock. Messages never allow threads, so there is one part."""
    (part,) = parts
    _discard_upload(message)
    _store_part(message, part, now=timezone.now())
    notify_user(user_id=message.sender_id, payload=_message_event(message, "voicemessage.ready"))
    notify_user(
        user_id=message.recipient_id, payload=_message_event(message, "voicemessage.received")
    )
    notification_send(
        user=message.recipient,
        kind=Notification.Kind.VOICE_MESSAGE,
        text=f"{message.sender.name} sent you a voice message.",
        url=reverse("voicetweets:conversation", args=[message.sender.username]),
        target=message,
        actor=message.sender,
    )


def _finish_message_rejected(message: VoiceMessage, reason: str) -> None:
    """Caller holds the row lock. The recipient never hears of a rejected message."""
    _mark_rejected(message, reason)
    payload = _message_event(message, "voicemessage.rejected") | {"reason": reason[:300]}
    notify_user(user_id=message.sender_id, payload=payload)


def voicemessages_mark_read(*, reader, other) -> int:
    """Mark the ready messages ``other`` sent ``reader`` as read; returns how many changed."""
    return VoiceMessage.objects.filter(
        sender_id=other.pk,
        recipient_id=reader.pk,
        state=Recording.State.READY,
        read_at__isnull=True,
    ).update(read_at=timezone.now())
