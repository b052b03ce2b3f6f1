"""Reads of voice tweets: who may see what. Every page, API view and audio URL goes through here."""

from __future__ import annotations

from django.db.models import Exists, OuterRef, Q, QuerySet
from django.http import Http404

from accounts.selectors import blocked_ids, following_ids, is_blocked_between

from .models import Like, VoiceTweet


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
