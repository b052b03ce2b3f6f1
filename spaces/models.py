"""Spaces: live audio rooms, who is in them and in which role.

A ``Participant`` row exists while a member is in a live space (it is presence, not history):
joining over the websocket creates it, leaving, removal or the presence sweep deletes it. The
audio engine reads the same rows to decide who may publish.
"""

from pathlib import Path

from django.conf import settings
from django.contrib.contenttypes.fields import GenericRelation
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVector
from django.db import models
from django.db.models import Q

from config.leases import Leased

# What search matches a space on: its title, in English stemming.
SEARCH_VECTOR = SearchVector("title", config="english")


class Space(models.Model):
    """A live audio room. State machine: scheduled → live → ended; scheduled → cancelled."""

    class State(models.TextChoices):
        SCHEDULED = "scheduled"
        LIVE = "live"
        ENDED = "ended"
        CANCELLED = "cancelled"

    # Every allowed transition; each one is a service in spaces.services.
    TRANSITIONS = {
        State.SCHEDULED: {State.LIVE, State.CANCELLED},
        State.LIVE: {State.ENDED},
        State.ENDED: set(),
        State.CANCELLED: set(),
    }

    class Visibility(models.TextChoices):
        OPEN = "open", "Open: any member"
        # Clubhouse's "social" room: the people the host follows.
        FOLLOWERS = "followers", "Followers: people the host follows"
        CLOSED = "closed", "Closed: only invited members"

    class AudioMode(models.TextChoices):
        # The encoder settings of each mode are spaces.audio.codec.AUDIO_MODES.
        SPEECH = "speech", "Speech"
        # Clubhouse's music mode: fullband at a higher bitrate, and speakers' browsers leave
        # the microphone unprocessed (no echo cancellation, noise suppression or gain control).
        MUSIC = "music", "Music: high-quality audio"
        # Music mode in two channels: speakers' browsers capture and send stereo, the room
        # mixes and records it so. A mode rather than a flag: stereo applies to music only.
        MUSIC_STEREO = "music_stereo", "Music in stereo"

    title = models.CharField(max_length=120)
    # The one host. Changes only when a co-host takes over after the host's grace period.
    host = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="hosted_spaces"
    )
    state = models.CharField(max_length=16, choices=State.choices, default=State.SCHEDULED)
    visibility = models.CharField(
        max_length=16, choices=Visibility.choices, default=Visibility.OPEN
    )
    created_at = models.DateTimeField(auto_now_add=True)
    scheduled_start = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    is_recording = models.BooleanField(default=False)
    # How the room's audio is coded, uplinks and mix alike; the host switches it, live too.
    audio_mode = models.CharField(
        max_length=16, choices=AudioMode.choices, default=AudioMode.SPEECH
    )
    # The pinned voice tweet's id. An integer rather than a foreign key so spaces do not depend
    # on the voicetweets app's schema; services.space_pin_tweet checks that the tweet exists.
    pinned_voice_tweet_id = models.PositiveBigIntegerField(null=True, blank=True)
    # Set when a live space has no host present (the host's last connection went away, or the
    # host never connected); the sweep ends the space or hands it to a co-host once
    # SALON_SPACE_HOST_GRACE_SECONDS have passed. Null while the host is in the room.
    host_absent_since = models.DateTimeField(null=True, blank=True)
    # The bell's notifications about this space: they go when it goes (no column of its own).
    notifications = GenericRelation(
        "notifications.Notification",
        content_type_field="target_type",
        object_id_field="target_id",
        related_query_name="space",
    )

    class Meta:
        ordering = ["-created_at"]
        permissions = [
            ("host_space", "Can host spaces"),
            ("moderate_space", "Can moderate any space (end it, remove participants)"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(state__in=["scheduled", "live", "ended", "cancelled"]),
                name="space_state_valid",
            ),
            models.CheckConstraint(
                condition=Q(visibility__in=["open", "followers", "closed"]),
                name="space_visibility_valid",
            ),
            models.CheckConstraint(
                condition=Q(audio_mode__in=["speech", "music", "music_stereo"]),
                name="space_audio_mode_valid",
            ),
            models.CheckConstraint(
                condition=~Q(state="scheduled") | Q(scheduled_start__isnull=False),
                name="space_scheduled_has_start",
            ),
            models.CheckConstraint(
                condition=~Q(state__in=["live", "ended"]) | Q(started_at__isnull=False),
                name="space_started_has_started_at",
            ),
        ]
        indexes = [
            models.Index(fields=["state", "scheduled_start"]),
            # Full-text search over titles (search.selectors); PostgreSQL only
            # (config.pg_operations).
            GinIndex(SEARCH_VECTOR, name="space_title_search"),
        ]

    def __str__(self) -> str:
        return f"{self.title} ({self.state})"

    @property
    def is_music(self) -> bool:
        """A music mode, mono or stereo (the badge; the browser's unprocessed microphone)."""
        return self.audio_mode in (self.AudioMode.MUSIC, self.AudioMode.MUSIC_STEREO)

    def can_transition_to(self, state: str) -> bool:
        return state in self.TRANSITIONS[self.State(self.state)]

    @property
    def is_live(self) -> bool:
        return self.state == self.State.LIVE


class Participant(models.Model):
    """A member present in a live space, with their role and their stage state."""

    class Role(models.TextChoices):
        HOST = "host"
        COHOST = "cohost"
        SPEAKER = "speaker"
        LISTENER = "listener"

    # Roles allowed on stage (may publish audio when unmuted).
    STAGE_ROLES = (Role.HOST, Role.COHOST, Role.SPEAKER)
    MODERATOR_ROLES = (Role.HOST, Role.COHOST)

    space = models.ForeignKey(Space, on_delete=models.CASCADE, related_name="participants")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="space_participations"
    )
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.LISTENER)
    # A listener asking to speak.
    hand_raised = models.BooleanField(default=False)
    is_muted = models.BooleanField(default=True)
    # Muted by the host or a co-host rather than by themselves; the speaker may still unmute.
    muted_by_moderator = models.BooleanField(default=False)
    # The host or a co-host asked this listener up to the stage; they may accept or decline.
    invited_to_speak = models.BooleanField(default=False)
    joined_at = models.DateTimeField(auto_now_add=True)
    # Open websockets of this member in this space (two tabs count twice).
    connection_count = models.PositiveIntegerField(default=0)
    # Refreshed by every open socket's heartbeat and on disconnect; the presence sweep removes
    # participants whose last_seen is too old (see services.space_sweep).
    last_seen = models.DateTimeField()

    class Meta:
        ordering = ["joined_at", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["space", "user"], name="participant_unique_member"),
            models.UniqueConstraint(
                fields=["space"], condition=Q(role="host"), name="participant_one_host"
            ),
            models.CheckConstraint(
                condition=Q(role__in=["host", "cohost", "speaker", "listener"]),
                name="participant_role_valid",
            ),
            # Listeners never publish: they are muted by construction.
            models.CheckConstraint(
                condition=~Q(role="listener") | Q(is_muted=True),
                name="participant_listener_muted",
            ),
            models.CheckConstraint(
                condition=Q(role="listener") | Q(hand_raised=False, invited_to_speak=False),
                name="participant_hand_only_listeners",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} in {self.space_id} as {self.role}"

    @property
    def is_moderator(self) -> bool:
        return self.role in self.MODERATOR_ROLES

    @property
    def on_stage(self) -> bool:
        return self.role in self.STAGE_ROLES

    @property
    def may_publish(self) -> bool:
        """Whether the audio engine should accept this participant's audio right now."""
        return self.on_stage and not self.is_muted


class SpaceInvite(models.Model):
    """A member the host or a co-host invited to a closed space."""

    space = models.ForeignKey(Space, on_delete=models.CASCADE, related_name="invites")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="space_invites"
    )
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["space", "user"], name="spaceinvite_unique_member")
        ]

    def __str__(self) -> str:
        return f"{self.user_id} invited to {self.space_id}"


class SpaceBan(models.Model):
    """A member removed from a space and not allowed back into it."""

    space = models.ForeignKey(Space, on_delete=models.CASCADE, related_name="bans")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="space_bans"
    )
    banned_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["space", "user"], name="spaceban_unique_member")
        ]

    def __str__(self) -> str:
        return f"{self.user_id} banned from {self.space_id}"


class SpaceSubscription(models.Model):
    """ "Remind me": a member wants to hear before a scheduled space starts and when it does."""

    space = models.ForeignKey(Space, on_delete=models.CASCADE, related_name="subscriptions")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="space_subscriptions"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # When the "starts in 30 minutes" reminder went out; null until then.
    soon_reminder_sent_at = models.DateTimeField(null=True, blank=True)
    # When the "is live now" notice went out; null until then.
    started_notice_sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["space", "user"], name="spacesubscription_unique")
        ]

    def __str__(self) -> str:
        return f"{self.user_id} subscribed to {self.space_id}"


class Replay(Leased):
    """The recording of a space, one per space, made from the room's mix while recording is on.

    States: recording → processing → ready | failed. Recording lasts while the space is live
    (recording may be on and off meanwhile); the space's end starts processing, which joins the
    recorded segments into one file. Replays are deleted ``delete_after`` unless ``held``.
    The worker joining the segments holds the replay's lease (config.leases).
    """

    class State(models.TextChoices):
        RECORDING = "recording"
        PROCESSING = "processing"
        READY = "ready"
        FAILED = "failed"

    TRANSITIONS = {
        State.RECORDING: {State.PROCESSING},
        State.PROCESSING: {State.READY, State.FAILED},
        State.READY: set(),
        State.FAILED: set(),
    }

    space = models.OneToOneField(Space, on_delete=models.CASCADE, related_name="replay")
    state = models.CharField(max_length=16, choices=State.choices, default=State.RECORDING)
    # Folder under SALON_PRIVATE_MEDIA_ROOT with the segments (one per mixer that owned the room
    # while it was recorded), then the replay file; only the replay's audio view serves it.
    directory = models.CharField(max_length=200, unique=True)
    # Measured from the joined file's packets, once ready.
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    size_bytes = models.PositiveBigIntegerField(null=True, blank=True)
    # Peak level of equal slices of the replay, 0..100, for drawing.
    waveform = models.JSONField(default=list, blank=True)
    # Who talked when: [{"speaker_id", "start", "end"}] in seconds of the replay file.
    timeline = models.JSONField(default=list, blank=True)
    # Shown to the host when processing failed (e.g. nothing was recorded).
    failure_reason = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # Workers that started on it; after SALON_REPLAY_MAX_ATTEMPTS the replay fails.
    processing_attempts = models.PositiveSmallIntegerField(default=0)
    processed_at = models.DateTimeField(null=True, blank=True)
    # The retention date: the space's end + SALON_REPLAY_RETENTION_DAYS. Null while recording.
    delete_after = models.DateTimeField(null=True, blank=True, db_index=True)
    # Kept under review by a moderator: retention leaves it alone and the host cannot delete it.
    held = models.BooleanField(default=False)
    hold_reason = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(state__in=["recording", "processing", "ready", "failed"]),
                name="replay_state_valid",
            ),
            models.CheckConstraint(
                condition=~Q(state="ready") | Q(duration_ms__isnull=False),
                name="replay_ready_has_duration",
            ),
        ]

    def __str__(self) -> str:
        return f"replay of space {self.space_id} ({self.state})"

    def can_transition_to(self, state: str) -> bool:
        return state in self.TRANSITIONS[self.State(self.state)]

    @property
    def directory_path(self) -> Path:
        return Path(settings.SALON_PRIVATE_MEDIA_ROOT) / self.directory

    @property
    def segments_path(self) -> Path:
        return self.directory_path / "segments"

    @property
    def audio_path(self) -> Path:
        return self.directory_path / "replay.ogg"

    @property
    def duration_seconds(self) -> float | None:
        return None if self.duration_ms is None else self.duration_ms / 1000
