"""Reads of voice tweets and voice messages: who may see and hear what. Every page, API view
and audio URL goes through here."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth import get_user_model
from django.db.models import Case, Count, Exists, F, Max, OuterRef, Q, QuerySet, When
from django.http import Http404

from accounts.models import Report
from accounts.selectors import blocked_ids, following_ids, is_blocked_between, is_reported

from .models import Like, Recording, VoiceMessage, VoiceTweet


def _as_seen_by(tweets: QuerySet[VoiceTweet], viewer) -> QuerySet[VoiceTweet]:
    """What every page shows with a tweet: its author, its parent's author, and liked_by_me."""
    return tweets.select_related("author", "parent__author").annotate(
        liked_by_me=Exists(Like.objects.filter(user=viewer, voice_tweet=OuterRef("pk")))
    )


def visible_voicetweets(*, viewer) -> QuerySet[VoiceTweet]:
    """Ready, not by anyone on either side of a block with ``viewer``, and not hidden by a
    moderator unless ``viewer`` wrote it (authors keep seeing their hidden tweets, marked)."""
    tweets = (
        VoiceTweet.objects.filter(state=VoiceTweet.State.READY)
        .filter(Q(is_hidden=False) | Q(author_id=viewer.pk))
        .exclude(author_id__in=blocked_ids(user=viewer))
    )
    return _as_seen_by(tweets, viewer)


def feed_for(*, viewer) -> QuerySet[VoiceTweet]:
    """Home: the member's own voice tweets and those of the people they follow, newest first."""
    authors = following_ids(user=viewer) | {viewer.pk}
    return visible_voicetweets(viewer=viewer).filter(author_id__in=authors)


def voicetweets_by(*, author, viewer) -> QuerySet[VoiceTweet]:
    """A member's profile list; nothing at all across a block."""
    return visible_voicetweets(viewer=viewer).filter(author=author)


def replies_to(*, voicetweet: VoiceTweet, viewer) -> QuerySet[VoiceTweet]:
    """Voice replies (and thread continuations) of a tweet, oldest first, as a thread reads."""
    return visible_voicetweets(viewer=viewer).filter(parent=voicetweet).order_by("created_at", "id")


def voicetweet_for_viewer(*, viewer, pk: int) -> VoiceTweet:
    """The tweet if ``viewer`` may see it, else 404 (never 403: hidden things do not exist).

    Authors also see their own tweets while processing, after rejection and once hidden by a
    moderator; admins see hidden ones (to review them). Everyone else gets 404 for those.
    """
    tweet = _as_seen_by(VoiceTweet.objects.filter(pk=pk), viewer).first()
    if tweet is None:
        raise Http404("No such voice tweet.")
    if viewer.is_staff or tweet.author_id == viewer.pk:
        return tweet
    if (
        tweet.is_hidden
        or tweet.state != VoiceTweet.State.READY
        or is_blocked_between(user=viewer, other=tweet.author)
    ):
        raise Http404("No such voice tweet.")
    return tweet


def pinnable_voicetweets(*, authors: list, viewer, limit: int = 20) -> list[VoiceTweet]:
    """The picker of a space's pin: the newest voice tweets of ``authors`` (the host, and the
    member pinning) that ``viewer`` may see, with their authors."""
    return list(
        visible_voicetweets(viewer=viewer)
        .filter(author__in=authors)
        .order_by("-created_at", "-id")[:limit]
    )


# --- Voice messages ---------------------------------------------------------------------------


def _messages_seen_by(viewer) -> QuerySet[VoiceMessage]:
    """Messages ``viewer`` is in: all they sent (in any state), and those sent to them once
    ready. Nobody else, staff included, reads messages through here."""
    return VoiceMessage.objects.filter(
        Q(sender_id=viewer.pk) | Q(recipient_id=viewer.pk, state=Recording.State.READY)
    ).select_related("sender", "recipient")


def voicemessage_for_viewer(*, viewer, pk: int) -> VoiceMessage:
    """The message if ``viewer`` sent it, or received it and it is ready; else 404."""
    message = _messages_seen_by(viewer).filter(pk=pk).first()
    if message is None:
        raise Http404("No such voice message.")
    return message


def voicemessage_for_listener(*, viewer, pk: int) -> VoiceMessage:
    """The message whose audio ``viewer`` may hear: its two members; staff only once someone
    reported it (until then the admin shows metadata only). 404 otherwise."""
    try:
        return voicemessage_for_viewer(viewer=viewer, pk=pk)
    except Http404:
        if not (viewer.is_active and viewer.is_staff):
            raise
    if not is_reported(kind=Report.Kind.VOICEMESSAGE, target_id=pk):
        raise Http404("No such voice message.")
    message = VoiceMessage.objects.filter(pk=pk, state=Recording.State.READY).first()
    if message is None:
        raise Http404("No such voice message.")
    return message


def conversation_between(*, viewer, other) -> QuerySet[VoiceMessage]:
    """The messages between ``viewer`` and ``other`` that ``viewer`` may see, newest first."""
    return _messages_seen_by(viewer).filter(
        Q(sender_id=viewer.pk, recipient_id=other.pk)
        | Q(sender_id=other.pk, recipient_id=viewer.pk)
    )


@dataclass(frozen=True)
class Conversation:
    """One line of the inbox: the other member, when the last message was, and how many of
    theirs ``viewer`` has not heard yet."""

    other: object
    last_at: datetime
    unread: int


def inbox(*, viewer, limit: int = 50) -> list[Conversation]:
    """The member's conversations, the most recent first. Suspended members' are left out."""
    rows = (
        _messages_seen_by(viewer)
        .annotate(
            other_id=Case(When(sender_id=viewer.pk, then=F("recipient_id")), default=F("sender_id"))
        )
        .values("other_id")
        .annotate(
            last_at=Max("created_at"),
            unread=Count("pk", filter=Q(recipient_id=viewer.pk, read_at__isnull=True)),
        )
        .order_by("-last_at")[:limit]
    )
    rows = list(rows)
    others = get_user_model().objects.filter(is_active=True).in_bulk([r["other_id"] for r in rows])
    return [
        Conversation(other=others[r["other_id"]], last_at=r["last_at"], unread=r["unread"])
        for r in rows
        if r["other_id"] in others
    ]


def unread_count(*, viewer) -> int:
    return VoiceMessage.objects.filter(
        recipient_id=viewer.pk, state=Recording.State.READY, read_at__isnull=True
    ).count()
