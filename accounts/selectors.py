"""Reads of the accounts app. Rules that decide who may see or do what are here or in services."""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.apps import apps
from django.db import models
from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce

from .models import Block, Follow, Invitation, Report, User

# What rest_framework.authtoken issues: 20 random bytes as hex. Anything else is no token, and
# must not reach the database: PostgreSQL answers a NUL byte with an error, not with no match.
_TOKEN_KEY = re.compile(r"[0-9a-f]{40}")


def token_key_is_wellformed(key: str) -> bool:
    """Whether ``key`` is shaped like an API token (it may still match none)."""
    return _TOKEN_KEY.fullmatch(key) is not None


def is_blocked_between(*, user: User, other: User) -> bool:
    """True if either member blocked the other. Spaces, profiles and follows all obey this."""
    if user.pk is None or other.pk is None or user.pk == other.pk:
        return False
    return Block.objects.filter(
        Q(blocker_id=user.pk, blocked_id=other.pk) | Q(blocker_id=other.pk, blocked_id=user.pk)
    ).exists()


def is_following(*, follower: User, followee: User) -> bool:
    return Follow.objects.filter(follower_id=follower.pk, followee_id=followee.pk).exists()


def following_ids(*, user: User) -> set[int]:
    """Ids of the members ``user`` follows."""
    return set(Follow.objects.filter(follower_id=user.pk).values_list("followee_id", flat=True))


def blocked_ids(*, user: User) -> set[int]:
    """Ids of members with a block in either direction with ``user``."""
    pairs = Block.objects.filter(Q(blocker_id=user.pk) | Q(blocked_id=user.pk)).values_list(
        "blocker_id", "blocked_id"
    )
    return {a if b == user.pk else b for a, b in pairs}


def voice_tweet_count(*, user: User) -> int:
    """Voice tweets of ``user`` that others can see: processed and not hidden."""
    from voicetweets.models import VoiceTweet  # voicetweets builds on accounts, not the reverse

    return VoiceTweet.objects.filter(
        author_id=user.pk, state=VoiceTweet.State.READY, is_hidden=False
    ).count()


def profile_counts(*, user: User) -> dict[str, int]:
    return {
        "followers": Follow.objects.filter(followee_id=user.pk).count(),
        "following": Follow.objects.filter(follower_id=user.pk).count(),
        "voice_tweets": voice_tweet_count(user=user),
    }


def user_get_active(*, username: str) -> User | None:
    """The active member with this username (case-insensitive), or None."""
    return User.objects.filter(username__iexact=username, is_active=True).first()


def followers_of(*, user: User) -> QuerySet[User]:
    return User.objects.filter(is_active=True, following_set__followee_id=user.pk)


def followees_of(*, user: User) -> QuerySet[User]:
    return User.objects.filter(is_active=True, follower_set__follower_id=user.pk)


def invitations_of(*, user: User) -> QuerySet[Invitation]:
    return Invitation.objects.filter(inviter_id=user.pk).select_related("accepted_by")


def invitation_get_by_token(*, token: str) -> Invitation | None:
    if not token or len(token) > 64:
        return None
    return Invitation.objects.select_related("inviter").filter(token=token).first()


def has_blocked(*, blocker: User, blocked: User) -> bool:
    """True if ``blocker`` blocked ``blocked`` (one direction only)."""
    return Block.objects.filter(blocker_id=blocker.pk, blocked_id=blocked.pk).exists()


def profile_visible_to(*, owner: User, viewer: User) -> bool:
    """Whether ``viewer`` may see ``owner``'s profile content: not if ``owner`` blocked them."""
    if not owner.is_active:
        return False
    return not has_blocked(blocker=owner, blocked=viewer)


@dataclass(frozen=True)
class FollowSuggestion:
    member: User
    reason: str  # why it is suggested, shown beside the member


def follow_suggestions(*, user: User, limit: int = 8) -> list[FollowSuggestion]:
    """Whom a new member might follow: their inviter, the people the inviter follows, then
    members who host spaces (live, scheduled, or ended in the last 30 days). Never the member,
    anyone they already follow, anyone across a block, nor suspended members. Three queries."""
    from datetime import timedelta

    from django.utils import timezone

    from spaces.models import Space  # spaces builds on accounts, not the reverse

    excluded = following_ids(user=user) | blocked_ids(user=user) | {user.pk}
    inviter_id = user.invited_by_id
    by_inviter = (
        set(Follow.objects.filter(follower_id=inviter_id).values_list("followee_id", flat=True))
        if inviter_id
        else set()
    )
    recent = timezone.now() - timedelta(days=30)
    hosts = User.objects.filter(
        Exists(
            Space.objects.filter(host_id=OuterRef("pk")).filter(
                Q(state__in=[Space.State.LIVE, Space.State.SCHEDULED]) | Q(ended_at__gte=recent)
            )
        )
    ).values("pk")
    candidates = (
        User.objects.filter(is_active=True)
        .filter(Q(pk=inviter_id) | Q(pk__in=by_inviter) | Q(pk__in=hosts))
        .exclude(pk__in=excluded)
        .order_by("-date_joined", "-pk")
    )
    inviter = user.invited_by.username if inviter_id else ""

    def reason(member: User) -> tuple[int, str]:
        if member.pk == inviter_id:
            return 0, "Invited you"
        if member.pk in by_inviter:
            return 1, f"Followed by @{inviter}"
        return 2, "Hosts spaces"

    ranked = sorted(((reason(m), m) for m in candidates[: limit * 4]), key=lambda r: r[0][0])
    return [FollowSuggestion(member=m, reason=why) for (_, why), m in ranked[:limit]]


# --- Reports ----------------------------------------------------------------------------------


def _same_target(reports: QuerySet[Report]) -> QuerySet[Report]:
    return reports.filter(target_kind=OuterRef("target_kind"), target_id=OuterRef("target_id"))


def report_queue() -> QuerySet[Report]:
    """The moderation queue: open reports grouped by target, one row per target (its first open
    report) with ``open_count`` annotated. The admin orders it, most reported first."""
    open_reports = Report.objects.filter(state=Report.State.OPEN)
    same_target = _same_target(open_reports)
    return (
        open_reports.exclude(Exists(same_target.filter(pk__lt=OuterRef("pk"))))
        .annotate(
            open_count=Subquery(
                same_target.order_by().values("target_kind").annotate(n=Count("pk")).values("n")
            )
        )
        .select_related("target_user")
    )


def reports_on(*, kind: str, target_id: int) -> QuerySet[Report]:
    return Report.objects.filter(target_kind=kind, target_id=target_id)


def is_reported(*, kind: str, target_id: int) -> bool:
    """Whether anyone ever reported the target, whatever became of the report."""
    return reports_on(kind=kind, target_id=target_id).exists()


def has_reported(*, reporter: User, kind: str, target_id: int) -> bool:
    return reports_on(kind=kind, target_id=target_id).filter(reporter_id=reporter.pk).exists()


def report_count(*, kind: str, open_only: bool = False) -> Coalesce:
    """An annotation for a queryset of ``kind`` targets: how many reports each one has."""
    reports = Report.objects.filter(target_kind=kind, target_id=OuterRef("pk"))
    if open_only:
        reports = reports.filter(state=Report.State.OPEN)
    counted = reports.order_by().values("target_id").annotate(n=Count("pk")).values("n")
    return Coalesce(Subquery(counted), 0)


def reported_object(*, report: Report) -> models.Model | None:
    """What ``report`` is about, or None once it has been deleted. No visibility rule applies:
    this is for moderators."""
    model = apps.get_model(Report.TARGET_MODELS[report.target_kind])
    return model._default_manager.filter(pk=report.target_id).first()
