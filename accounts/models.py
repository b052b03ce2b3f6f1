import secrets
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.db.models import F, Q
from django.utils import timezone


def default_invitation_quota() -> int:
    return settings.SALON_INVITATION_QUOTA


class User(AbstractUser):
    """A Salon member. Custom from the first migration so profile fields can live here.

    A suspended member is also ``is_active=False``: Django's ModelBackend, session auth,
    Channels' AuthMiddleware and DRF's TokenAuthentication all refuse inactive users, so
    suspension needs no check of its own anywhere else.
    """

    # Shown instead of the username wherever people are listed; may contain spaces and emoji.
    display_name = models.CharField(max_length=50, blank=True)
    bio = models.CharField(max_length=160, blank=True)
    # Square WebP written by services.user_set_avatar under a random name; never a raw upload.
    avatar = models.ImageField(upload_to="avatars/", blank=True)
    # Who invited this member; shown to the member and to admins only, never in public output.
    invited_by = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="invitees"
    )
    # Invitations the member can still create. Creating one takes one; revoking or expiry of an
    # unused one gives it back; admins grant more.
    invitations_left = models.PositiveIntegerField(default=default_invitation_quota)
    # Set together with is_active=False by services.user_suspend; cleared by user_unsuspend.
    suspended_at = models.DateTimeField(null=True, blank=True)
    suspended_reason = models.TextField(blank=True)
    suspended_by = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Off: only members this one follows and who follow back may send voice messages. On: any
    # member may (blocks still apply). The rule is voicetweets.services.voicemessage_check_send.
    messages_from_anyone = models.BooleanField(
        default=False, verbose_name="accept voice messages from anyone"
    )

    class Meta:
        ordering = ["username"]

    def __str__(self) -> str:
        return self.username

    @property
    def name(self) -> str:
        return self.display_name or self.username

    @property
    def is_suspended(self) -> bool:
        return self.suspended_at is not None


class Follow(models.Model):
    """``follower`` follows ``followee``. Only created through services.follow_create."""

    follower = models.ForeignKey(User, on_delete=models.CASCADE, related_name="following_set")
    followee = models.ForeignKey(User, on_delete=models.CASCADE, related_name="follower_set")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["follower", "followee"], name="follow_unique_pair"),
            models.CheckConstraint(condition=~Q(follower=F("followee")), name="follow_not_self"),
        ]
        indexes = [models.Index(fields=["followee", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.follower_id} → {self.followee_id}"


class Block(models.Model):
    """``blocker`` blocks ``blocked``; the rule it implies is selectors.is_blocked_between."""

    blocker = models.ForeignKey(User, on_delete=models.CASCADE, related_name="blocking_set")
    blocked = models.ForeignKey(User, on_delete=models.CASCADE, related_name="blocked_by_set")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["blocker", "blocked"], name="block_unique_pair"),
            models.CheckConstraint(condition=~Q(blocker=F("blocked")), name="block_not_self"),
        ]
        indexes = [models.Index(fields=["blocked"])]

    def __str__(self) -> str:
        return f"{self.blocker_id} ⊘ {self.blocked_id}"


def new_invitation_token() -> str:
    return secrets.token_urlsafe(24)


def default_invitation_expiry():
    return timezone.now() + timedelta(days=settings.SALON_INVITATION_TTL_DAYS)


class Invitation(models.Model):
    """A single-use link a member gives to let one person sign up.

    States: pending → accepted | revoked | expired; each transition is one service in
    accounts.services and is a conditional UPDATE on ``state='pending'``, so at most one
    transition ever wins.
    """

    class State(models.TextChoices):
        PENDING = "pending"
        ACCEPTED = "accepted"
        REVOKED = "revoked"
        EXPIRED = "expired"

    # The secret in the link; whoever holds it may sign up once.
    token = models.CharField(max_length=64, unique=True, default=new_invitation_token)
    inviter = models.ForeignKey(User, on_delete=models.CASCADE, related_name="invitations_sent")
    # Optional: who the inviter meant it for (also used to prefill the signup form).
    email = models.EmailField(blank=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(default=default_invitation_expiry)
    # When the state left pending, whichever way it went.
    closed_at = models.DateTimeField(null=True, blank=True)
    # The account created with it. Unique: one invitation, one account, enforced by the database.
    accepted_by = models.OneToOneField(
        User,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="accepted_invitation",
    )

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(state__in=["pending", "accepted", "revoked", "expired"]),
                name="invitation_state_valid",
            ),
            models.CheckConstraint(
                condition=Q(state="accepted") | Q(accepted_by__isnull=True),
                name="invitation_accepted_by_only_when_accepted",
            ),
        ]
        indexes = [models.Index(fields=["state", "expires_at"])]

    def __str__(self) -> str:
        return f"Invitation {self.pk} from {self.inviter_id} ({self.state})"

    @property
    def is_expired(self) -> bool:
        return self.expires_at <= timezone.now()

    @property
    def valid(self) -> bool:
        """Whether someone may still sign up with it right now."""
        return self.state == self.State.PENDING and not self.is_expired


class WaitlistEntry(models.Model):
    """A visitor without an invitation who asked to be let in."""

    email = models.EmailField(unique=True)
    # Optional note from the visitor ("I host a podcast about ...").
    note = models.CharField(max_length=280, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # The invitation an admin sent from the waitlist; null while the person still waits.
    invitation = models.OneToOneField(
        Invitation, null=True, blank=True, on_delete=models.SET_NULL, related_name="waitlist_entry"
    )

    class Meta:
        ordering = ["created_at"]
        verbose_name_plural = "waitlist"

    def __str__(self) -> str:
        return self.email


class AuditEntry(models.Model):
    """One administrative or moderation action, for any kind of target. Append-only."""

    actor = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="audit_entries"
    )
    # Dotted verb, e.g. "user.suspend", "invitation.grant", "space.end".
    action = models.CharField(max_length=64, db_index=True)
    target_type = models.ForeignKey(
        ContentType, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # A string so targets with any primary key type fit; the repr survives the target's deletion.
    target_id = models.CharField(max_length=64, blank=True)
    target_repr = models.CharField(max_length=200, blank=True)
    reason = models.TextField(blank=True)
    extra = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "audit entries"
        indexes = [models.Index(fields=["target_type", "target_id"])]

    def __str__(self) -> str:
        return f"{self.action} {self.target_repr} by {self.actor_id}"


# Report.Reason's values, for its check constraint (Meta cannot see the class body).
REPORT_REASONS = [
    "spam", "harassment", "hate", "violence", "sexual", "self_harm", "impersonation", "other",
]  # fmt: skip


class Report(models.Model):
    """A member tells the moderators about a voice tweet, a voice message, a space or a member.

    States: open → dismissed | actioned. services.report_dismiss and services.report_act move
    every open report on the same target at once, so the queue holds one row per target.

    The target is a kind and an id, not a foreign key: accounts is the app the others build on,
    and a report outlives what it reports (an author may delete a reported voice tweet).
    """

    class Kind(models.TextChoices):
        VOICETWEET = "voicetweet", "Voice tweet"
        VOICEMESSAGE = "voicemessage", "Voice message"
        SPACE = "space", "Space"
        MEMBER = "member", "Member"

    # The model each kind's target_id points into (app_label.ModelName).
    TARGET_MODELS = {
        Kind.VOICETWEET: "voicetweets.VoiceTweet",
        Kind.VOICEMESSAGE: "voicetweets.VoiceMessage",
        Kind.SPACE: "spaces.Space",
        Kind.MEMBER: "accounts.User",
    }

    class Reason(models.TextChoices):
        SPAM = "spam", "Spam or scam"
        HARASSMENT = "harassment", "Harassment or bullying"
        HATE = "hate", "Hate speech"
        VIOLENCE = "violence", "Violence or threats"
        SEXUAL = "sexual", "Sexual content"
        SELF_HARM = "self_harm", "Self-harm or suicide"
        IMPERSONATION = "impersonation", "Impersonation"
        OTHER = "other", "Something else"

    class State(models.TextChoices):
        OPEN = "open", "Open"
        DISMISSED = "dismissed", "Dismissed"
        ACTIONED = "actioned", "Action taken"

    reporter = models.ForeignKey(User, on_delete=models.CASCADE, related_name="reports_made")
    target_kind = models.CharField(max_length=16, choices=Kind.choices)
    # The reported thing's primary key (the member's own, for kind "member").
    target_id = models.PositiveBigIntegerField()
    # Who answers for the target: its author, sender or host, or the reported member. "Suspend
    # member" acts on them, even once the target itself is gone.
    target_user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="reports_against")
    reason = models.CharField(max_length=16, choices=Reason.choices)
    # Optional words from the reporter; only moderators read them.
    note = models.CharField(max_length=500, blank=True)
    state = models.CharField(max_length=12, choices=State.choices, default=State.OPEN)
    created_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The audit action that closed it: "voicetweet.hide", "space.end", "user.suspend" or
    # "report.dismiss".
    resolution = models.CharField(max_length=32, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # "A member cannot report the same thing twice", whatever became of the first report.
            models.UniqueConstraint(
                fields=["reporter", "target_kind", "target_id"], name="report_once_per_target"
            ),
            models.CheckConstraint(condition=~Q(reporter=F("target_user")), name="report_not_own"),
            models.CheckConstraint(
                condition=Q(target_kind__in=["voicetweet", "voicemessage", "space", "member"]),
                name="report_target_kind_valid",
            ),
            models.CheckConstraint(
                condition=Q(reason__in=REPORT_REASONS),
                name="report_reason_valid",
            ),
            models.CheckConstraint(
                condition=Q(state="open", resolved_at__isnull=True)
                | Q(state__in=["dismissed", "actioned"], resolved_at__isnull=False),
                name="report_resolved_when_closed",
            ),
        ]
        indexes = [
            models.Index(fields=["target_kind", "target_id", "state"], name="report_target"),
            models.Index(fields=["state", "created_at"], name="report_queue"),
        ]

    def __str__(self) -> str:
        return f"report {self.pk}: {self.target_kind} {self.target_id} ({self.reason})"

    @property
    def is_open(self) -> bool:
        return self.state == self.State.OPEN


class ModerationQueueItem(Report):
    """The admin's moderation queue: open reports grouped by target, one row per target (see
    accounts.selectors.report_queue). A proxy, so the queue and the full report history are
    two pages of the same table."""

    class Meta:
        proxy = True
        verbose_name = "moderation queue item"
        verbose_name_plural = "moderation queue"
