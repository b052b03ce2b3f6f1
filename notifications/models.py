from django.conf import settings
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.db import models


class Notification(models.Model):
    """An in-app notification: a space starting, an invitation, a new follower, a voice message,
    a reply, likes. The bell in the nav counts the unread ones (``read_at`` null).

    Written only by ``notifications.services``, which holds the rules every kind obeys (nobody
    is notified of their own action, blocked members never notify each other).
    """

    class Kind(models.TextChoices):
        SPACE_SOON = "space.soon"
        SPACE_STARTED = "space.started"
        # Someone the member follows started a space (spaces.services.lifecycle._went_live).
        FOLLOWED_LIVE = "space.followed_live"
        SPACE_INVITED = "space.invited"
        SPACE_CANCELLED = "space.cancelled"
        # A host or co-host invited the member, listening, up to the stage.
        SPEAK_INVITED = "space.speak_invited"
        FOLLOWED = "follow.created"
        VOICE_MESSAGE = "voicemessage.received"
        REPLIED = "voicetweet.replied"
        # Aggregated: one unread notification per voice tweet, however many like it.
        LIKED = "voicetweet.liked"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications"
    )
    kind = models.CharField(max_length=32, choices=Kind.choices)
    text = models.CharField(max_length=300)
    url = models.CharField(max_length=300, blank=True)
    # Who caused it (the follower, the host, the latest liker); null for the system (reminders).
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    # What it is about (a space, a voice tweet, a message), of any app: the owning models hold a
    # GenericRelation to it, so deleting the target deletes its notifications.
    target_type = models.ForeignKey(
        ContentType, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    target_id = models.PositiveBigIntegerField(null=True, blank=True)
    target = GenericForeignKey("target_type", "target_id")
    # Aggregated kinds: every member counted in it, so a like, unlike and like again counts once.
    actor_ids = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        # The table the spaces app created (the model moved here; migrations kept its rows).
        db_table = "spaces_notification"
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["user", "-created_at"], name="spaces_noti_user_id_1464ef_idx"),
            # The bell's count, on every page.
            models.Index(
                fields=["user"],
                condition=models.Q(read_at__isnull=True),
                name="notification_unread",
            ),
            # The target's notifications: aggregation, and deleting them with the target.
            models.Index(fields=["target_type", "target_id"], name="notification_target"),
        ]
        constraints = [
            # Likes fold into one unread notification per target: two first likes at once
            # cannot make two (services.notification_aggregate folds the loser into the winner).
            models.UniqueConstraint(
                fields=["user", "kind", "target_type", "target_id"],
                condition=models.Q(read_at__isnull=True, kind="voicetweet.liked"),
                name="notification_one_unread_like",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} for {self.user_id}"
