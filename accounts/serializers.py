"""API shapes of the accounts app. No rules here: they live in services and selectors."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from . import selectors
from .models import Invitation, Report, User


def avatar_url(user: User, request) -> str | None:
    if not user.avatar:
        return None
    url = user.avatar.url
    return request.build_absolute_uri(url) if request is not None else url


class UserSummarySerializer(serializers.ModelSerializer):
    """A member as listed (followers, following). Never includes who invited whom."""

    avatar_url = serializers.SerializerMethodField()

    class Meta:
        model = User
        fields = ["username", "display_name", "avatar_url"]
        read_only_fields = fields

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_avatar_url(self, user: User) -> str | None:
        return avatar_url(user, self.context.get("request"))


class ProfileSerializer(UserSummarySerializer):
    """A member's public profile, as seen by another signed-in member."""

    joined_at = serializers.DateTimeField(source="date_joined", read_only=True)
    followers_count = serializers.SerializerMethodField()
    following_count = serializers.SerializerMethodField()
    voice_tweets_count = serializers.SerializerMethodField()
    is_following = serializers.SerializerMethodField(
        help_text="Whether the requesting member follows this member."
    )
    follows_you = serializers.SerializerMethodField()
    is_blocked = serializers.SerializerMethodField(
        help_text="Whether the requesting member has blocked this member."
    )
    can_message = serializers.SerializerMethodField(
        help_text="Whether the requesting member may send this member a voice message."
    )

    class Meta:
        model = User
        fields = [
            "username", "display_name", "bio", "avatar_url", "joined_at", "followers_count",
            "following_count", "voice_tweets_count", "is_following", "follows_you", "is_blocked",
            "can_message",
        ]  # fmt: skip
        read_only_fields = fields

    def _counts(self, user: User) -> dict[str, int]:
        cache = self.context.setdefault("_counts", {})
        if user.pk not in cache:
            cache[user.pk] = selectors.profile_counts(user=user)
        return cache[user.pk]

    def get_followers_count(self, user: User) -> int:
        return self._counts(user)["followers"]

    def get_following_count(self, user: User) -> int:
        return self._counts(user)["following"]

    def get_voice_tweets_count(self, user: User) -> int:
        return self._counts(user)["voice_tweets"]

    def _viewer(self) -> User | None:
        request = self.context.get("request")
        return request.user if request is not None and request.user.is_authenticated else None

    def get_is_following(self, user: User) -> bool:
        viewer = self._viewer()
        return bool(viewer) and selectors.is_following(follower=viewer, followee=user)

    def get_follows_you(self, user: User) -> bool:
        viewer = self._viewer()
        return bool(viewer) and selectors.is_following(follower=user, followee=viewer)

    def get_is_blocked(self, user: User) -> bool:
        viewer = self._viewer()
        return bool(viewer) and selectors.has_blocked(blocker=viewer, blocked=user)

    def get_can_message(self, user: User) -> bool:
        # voicetweets builds on accounts, so it is imported here; the rule is its service's.
        from voicetweets.services import voicemessage_may_send

        viewer = self._viewer()
        return bool(viewer) and voicemessage_may_send(sender=viewer, recipient=user)


class MeSerializer(ProfileSerializer):
    """The signed-in member's own profile: the public one plus private fields."""

    invited_by = serializers.SerializerMethodField(
        help_text="Username of the member who invited you. Shown only to you and to admins."
    )

    class Meta:
        model = User
        fields = [
            "username", "display_name", "bio", "avatar_url", "joined_at", "followers_count",
            "following_count", "voice_tweets_count", "email", "invited_by", "invitations_left",
            "messages_from_anyone",
        ]  # fmt: skip
        read_only_fields = fields

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_invited_by(self, user: User) -> str | None:
        return user.invited_by.username if user.invited_by_id else None


class ProfileUpdateSerializer(serializers.Serializer):
    display_name = serializers.CharField(max_length=50, required=False, allow_blank=True)
    bio = serializers.CharField(max_length=160, required=False, allow_blank=True)
    messages_from_anyone = serializers.BooleanField(
        required=False,
        help_text="Accept voice messages from any member, not only from people you follow who "
        "follow you back. Blocks still apply.",
    )


class AvatarUploadSerializer(serializers.Serializer):
    avatar = serializers.FileField(
        help_text="PNG, JPEG, GIF or WebP, at most 5 MB; stored as a 256 px square WebP."
    )


class InvitationSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField(help_text="The single-use signup link to share.")
    accepted_by = serializers.SerializerMethodField()
    state = serializers.SerializerMethodField(
        help_text="pending, accepted, revoked or expired (a pending one past expires_at)."
    )

    class Meta:
        model = Invitation
        fields = ["id", "url", "email", "state", "created_at", "expires_at", "accepted_by"]
        read_only_fields = fields

    def get_url(self, invitation: Invitation) -> str:
        from .services import invitation_url

        request = self.context.get("request")
        base = request.build_absolute_uri("/") if request is not None else ""
        return invitation_url(invitation=invitation, base_url=base)

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_accepted_by(self, invitation: Invitation) -> str | None:
        return invitation.accepted_by.username if invitation.accepted_by_id else None

    def get_state(self, invitation: Invitation) -> str:
        if invitation.state == Invitation.State.PENDING and invitation.is_expired:
            return Invitation.State.EXPIRED
        return invitation.state


class InvitationCreateSerializer(serializers.Serializer):
    email = serializers.EmailField(required=False, allow_blank=True, max_length=254)


class WaitlistJoinSerializer(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    note = serializers.CharField(max_length=280, required=False, allow_blank=True)


class TokenRequestSerializer(serializers.Serializer):
    login = serializers.CharField(max_length=254, help_text="Username or email address.")
    password = serializers.CharField(max_length=4096, trim_whitespace=False)


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField(
        help_text="Send as `Authorization: Token <token>` on every API request."
    )


class ErrorSerializer(serializers.Serializer):
    code = serializers.CharField()
    detail = serializers.CharField()


class ReportCreateSerializer(serializers.Serializer):
    target_kind = serializers.ChoiceField(choices=Report.Kind.choices)
    target = serializers.CharField(
        max_length=150,
        help_text="The id of the voice tweet, voice message or space; a member's username.",
    )
    reason = serializers.ChoiceField(choices=Report.Reason.choices)
    note = serializers.CharField(
        max_length=500, required=False, allow_blank=True, default="",
        help_text="Optional: what the moderators should know. Only they read it.",
    )  # fmt: skip


class ReportSerializer(serializers.ModelSerializer):
    state = serializers.ChoiceField(
        choices=Report.State.choices,
        help_text="open until a moderator looks at it; then dismissed, or actioned.",
    )

    class Meta:
        model = Report
        fields = ["id", "target_kind", "target_id", "reason", "note", "state", "created_at"]
        read_only_fields = fields
