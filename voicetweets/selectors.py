"""Reads of voice tweets: who may see what. Every page, API view and audio URL goes through here."""

from __future__ import annotations

from django.db.models import Exists, OuterRef, QuerySet
from django.http import Http404

from accounts.selectors import blocked_ids, following_ids

from .models import Like, VoiceTweet


def visible_voicetweets(*, viewer) -> QuerySet[VoiceTweet]:
    """Ready, not hidden, and not by anyone on either side of a block with ``viewer``."""
    return (
        VoiceTweet.objects.filter(state=VoiceTweet.State.READY, is_hidden=False)
        .exclude(author_id__in=blocked_ids(user=viewer))
        .select_related("author", "parent__author")
        .annotate(liked_by_me=Exists(Like.objects.filter(user=viewer, voice_tweet=OuterRef("pk"))))
    )


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

    Authors also see their own tweets while processing or after rejection; admins see hidden ones.
    """
    base = VoiceTweet.objects.select_related("author", "parent__author").annotate(
        liked_by_me=Exists(Like.objects.filter(user=viewer, voice_tweet=OuterRef("pk")))
    )
    tweet = base.filter(pk=pk).first()
    if tweet is None:
        raise Http404("No such voice tweet.")
    if viewer.is_staff or tweet.author_id == viewer.pk:
        if tweet.is_hidden and not viewer.is_staff:
            raise Http404("No such voice tweet.")
        return tweet
    if tweet.state != VoiceTweet.State.READY or tweet.is_hidden:
        raise Http404("No such voice tweet.")
    if tweet.author_id in blocked_ids(user=viewer):
        raise Http404("No such voice tweet.")
    return tweet
