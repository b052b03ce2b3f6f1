from pathlib import Path

from django.conf import settings
from django.contrib.contenttypes.fields import GenericRelation
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVector
from django.db import models
from django.db.models import F, Q

from config.leases import Leased
from config.private_media import private_storage

# Content types of the canonical audio files, by suffix (voicetweets.audio decides the format).
AUDIO_CONTENT_TYPES = {".m4a": "audio/mp4", ".ogg": "audio/ogg", ".opus": "audio/ogg"}


class Recording(Leased):
    """What voice tweets and voice messages share: a member's upload, processed into canonical
    audio by one pipeline (voicetweets.services._recording_process).

    States: processing → ready | rejected. The upload is kept only while processing; a ready
    recording has its canonical audio (see voicetweets.audio for the format) and its waveform.
    While a worker processes it, that worker holds its lease (config.leases). A recording that
    becomes ready gets a transcript (voicetweets.transcription), in states of its own: pending →
    ready | failed, or off where captions are off; the audio plays whatever they are.
    Subclasses add ``upload`` and ``audio`` file fields (each model stores under its own folder of
    the private root: config.private_media serves them to those who may hear them).
    """

    class State(models.TextChoices):
        PROCESSING = "processing", "Processing"
        READY = "ready", "Ready"
        REJECTED = "rejected", "Rejected"

    state = models.CharField(max_length=12, choices=State, default=State.PROCESSING)
    # Shown to the member when processing rejected the upload (e.g. "longer than 140 s").
    rejection_reason = models.CharField(max_length=300, blank=True)
    # Workers that started on it; after SALON_VOICETWEET_MAX_ATTEMPTS it is rejected.
    processing_attempts = models.PositiveSmallIntegerField(default=0)
    # Measured from the decoded samples, never from the container's header.
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    # Peak levels (0..1) of equal slices of the audio, for drawing.
    waveform = models.JSONField(default=list, blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class TranscriptState(models.TextChoices):
        # Ready audio waits on the transcribe queue (or is still processing).
        PENDING = "pending", "Pending"
        READY = "ready", "Ready"
        # The transcriber failed; the audio plays as before.
        FAILED = "failed", "Failed"
        # Captions are off on this installation (no engine or no model: see the admin).
        OFF = "off", "Off"

    transcript_state = models.CharField(
        max_length=8, choices=TranscriptState, default=TranscriptState.PENDING
    )
    # The timed segments, [{"text", "start", "end"}] in seconds, read whole (captions, the
    # transcript view); ``transcript`` is their text joined, for reading and search.
    transcript_segments = models.JSONField(default=list, blank=True)
    transcript = models.TextField(blank=True)
    # What the model heard (ISO 639-1, "en" for tiny.en); empty until ready.
    transcript_language = models.CharField(max_length=16, blank=True)

    class Meta(Leased.Meta):
        abstract = True

    @property
    def audio_content_type(self) -> str:
        return AUDIO_CONTENT_TYPES.get(Path(self.audio.name).suffix, "application/octet-stream")

    @property
    def duration_seconds(self) -> float | None:
        return None if self.duration_ms is None else self.duration_ms / 1000

    @property
    def allows_thread(self) -> bool:
        """Whether processing may split a long recording into parts instead of rejecting it."""
        return False


# What search matches a voice tweet on: its text and its transcript, in English stemming.
SEARCH_VECTOR = SearchVector("text", "transcript", config="english")


class VoiceTweet(Recording):
    """A short audio post: at most 140 s, optionally a reply to another voice tweet."""

    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="voice_tweets"
    )
    text = models.CharField(max_length=280, blank=True)
    # A voice reply, or the next part of a thread split from one long recording.
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="replies"
    )
    # The member's original file; deleted once processing ends either way.
    upload = models.FileField(upload_to="uploads/voicetweets/", storage=private_storage, blank=True)
    # "Post as thread": a recording over 140 s is split into replies instead of rejected.
    post_as_thread = models.BooleanField(default=False)
    audio = models.FileField(upload_to="voicetweets/%Y/%m/", storage=private_storage, blank=True)
    # Kept by the like services, so feeds need no COUNT per item.
    like_count = models.PositiveIntegerField(default=0)
    # Hidden by a moderator: gone for everyone but its author (who sees it marked) and admins;
    # the reason goes into the audit log.
    is_hidden = models.BooleanField(default=False)
    hidden_reason = models.CharField(max_length=300, blank=True)
    # The bell's notifications about it (replies, likes): they go when it goes.
    notifications = GenericRelation(
        "notifications.Notification", content_type_field="target_type", object_id_field="target_id"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["author", "-created_at", "-id"], name="voicetweet_author_recent"),
            models.Index(
                fields=["created_at"],
                condition=Q(state="processing"),
                name="voicetweet_processing",
            ),
            # Full-text search over what it says, written and spoken (search.selectors builds
            # the same expression, so PostgreSQL uses this); PostgreSQL only (config.pg_operations).
            GinIndex(SEARCH_VECTOR, name="voicetweet_search"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=~Q(state="ready") | Q(duration_ms__isnull=False),
                name="voicetweet_ready_has_duration",
            ),
        ]

    def __str__(self) -> str:
        return f"voice tweet {self.pk} by {self.author_id}"

    @property
    def allows_thread(self) -> bool:
        return self.post_as_thread


class Like(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    voice_tweet = models.ForeignKey(VoiceTweet, on_delete=models.CASCADE, related_name="likes")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "voice_tweet"], name="like_once"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} likes {self.voice_tweet_id}"


class VoiceMessage(Recording):
    """A private voice message, at most 140 s, from one member to another.

    Only its two members hear it. Staff see its metadata, and may listen only once it has been
    reported (voicetweets.selectors.voicemessage_for_listener). The recipient never sees it before
    it is ready. Who may send to whom is services.voicemessage_check_send.
    """

    sender = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="voice_messages_sent"
    )
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="voice_messages_received"
    )
    # The member's original file; deleted once processing ends either way.
    upload = models.FileField(
        upload_to="uploads/voicemessages/", storage=private_storage, blank=True
    )
    audio = models.FileField(upload_to="voicemessages/%Y/%m/", storage=private_storage, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # When the recipient opened the conversation after the message was ready; null while unread.
    read_at = models.DateTimeField(null=True, blank=True)
    # The bell's notifications about it (the recipient's): they go when it goes.
    notifications = GenericRelation(
        "notifications.Notification", content_type_field="target_type", object_id_field="target_id"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(
                fields=["sender", "recipient", "-created_at"], name="voicemessage_pair_recent"
            ),
            models.Index(fields=["recipient", "-created_at"], name="voicemessage_inbox"),
            models.Index(
                fields=["created_at"],
                condition=Q(state="processing"),
                name="voicemessage_processing",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=~Q(sender=F("recipient")), name="voicemessage_not_to_self"
            ),
            models.CheckConstraint(
                condition=~Q(state="ready") | Q(duration_ms__isnull=False),
                name="voicemessage_ready_has_duration",
            ),
        ]

    def __str__(self) -> str:
        return f"voice message {self.pk} from {self.sender_id} to {self.recipient_id}"
