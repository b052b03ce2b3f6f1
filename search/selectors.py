"""Search over what members may see: voice tweets (their text and what is said in them), space
titles and members. Visibility is the feed's, through the feed's own selectors
(voicetweets.selectors.visible_voicetweets, spaces.selectors.spaces_seen_by, blocks from
accounts.selectors): search never decides on its own who may see what.

Voice messages are not searched, not even by their two members: a private conversation does not
come up in a search box. Replay transcripts are not searched yet (replays have none).

PostgreSQL ranks full-text matches (English stemming, GIN indexes from config.pg_operations) and
highlights them; embedded SQLite falls back to a case-insensitive substring match.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.postgres.search import SearchHeadline, SearchQuery, SearchRank
from django.db import connection
from django.db.models import Q
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from accounts.selectors import blocked_ids
from spaces.models import SEARCH_VECTOR as SPACE_VECTOR
from spaces.models import Space
from spaces.selectors import spaces_seen_by
from voicetweets.models import SEARCH_VECTOR as VOICETWEET_VECTOR
from voicetweets.models import VoiceTweet
from voicetweets.selectors import visible_voicetweets

QUERY_MAX_LENGTH = 100
LIMIT = 20
# Marks PostgreSQL puts around a matched word; never in member text (control characters), so
# the snippet is escaped first and the marks become <mark> after.
_START, _STOP = "\x02", "\x03"


@dataclass(frozen=True)
class VoiceTweetHit:
    tweet: VoiceTweet
    # Escaped HTML with <mark> around the matched words: of the text, or else of the transcript.
    snippet: SafeString
    # Where the first matched word is said (the start of its transcript segment), or None when
    # the match is in the written text only.
    seconds: float | None


@dataclass(frozen=True)
class SearchResults:
    query: str
    voicetweets: list[VoiceTweetHit]
    spaces: list[Space]
    members: list


def _uses_full_text() -> bool:
    return connection.vendor == "postgresql"


def _snippet(marked: str) -> SafeString:
    """Escaped ``marked`` with each pair of marks as <mark>…</mark>; a stray mark character a
    member typed is dropped, so the markup stays balanced."""
    html = re.sub(f"{_START}([^{_START}{_STOP}]*){_STOP}", r"<mark>\1</mark>", escape(marked))
    html = html.replace(_START, "").replace(_STOP, "")
    return mark_safe(html)  # noqa: S308 -- escaped above; only our own <mark> is added


def _marked_words(marked: str) -> list[str]:
    return [w.lower() for w in re.findall(f"{_START}(.*?){_STOP}", marked) if w.strip()]


def _mark_substring(text: str, needle: str) -> str:
    """The SQLite fallback's highlight: every occurrence of ``needle``, any case."""
    return re.sub(re.escape(needle), lambda m: f"{_START}{m.group(0)}{_STOP}", text, flags=re.I)


def _second_said(segments: list[dict], words: list[str]) -> float | None:
    """The start of the segment saying most of the matched words (the earliest of equals), so
    a phrase links to where it is said rather than to the first of its words alone."""
    best, best_count = None, 0
    unique = set(words)
    for segment in segments:
        said = segment.get("text", "").lower()
        count = sum(1 for word in unique if word in said)
        if count > best_count:
            best, best_count = float(segment.get("start", 0.0)), count
    return best


def _voicetweet_hits(*, viewer, query: str) -> list[VoiceTweetHit]:
    tweets = visible_voicetweets(viewer=viewer)
    if _uses_full_text():
        terms = SearchQuery(query, config="english", search_type="websearch")
        marks = {"start_sel": _START, "stop_sel": _STOP, "config": "english"}
        # The same expression as the GIN index (voicetweets.models.SEARCH_VECTOR).
        rows = (
            tweets.alias(matched=VOICETWEET_VECTOR)
            .filter(matched=terms)
            .annotate(
                rank=SearchRank(VOICETWEET_VECTOR, terms),
                text_marked=SearchHeadline("text", terms, **marks, highlight_all=True),
                transcript_marked=SearchHeadline(
                    "transcript", terms, **marks, max_words=18, min_words=8
                ),
            )
            .order_by("-rank", "-created_at", "-id")
        )
        rows = rows[:LIMIT]
    else:
        rows = tweets.filter(Q(text__icontains=query) | Q(transcript__icontains=query))[:LIMIT]
    hits = []
    for tweet in rows:
        if _uses_full_text():
            text_marked, transcript_marked = tweet.text_marked, tweet.transcript_marked
        else:
            text_marked = _mark_substring(tweet.text, query)
            transcript_marked = _mark_substring(tweet.transcript, query)
        spoken = _marked_words(transcript_marked)
        shown = text_marked if _START in text_marked else transcript_marked
        hits.append(
            VoiceTweetHit(
                tweet=tweet,
                snippet=_snippet(shown),
                seconds=_second_said(tweet.transcript_segments, spoken) if spoken else None,
            )
        )
    return hits


def _spaces(*, viewer, query: str) -> list[Space]:
    spaces = spaces_seen_by(user=viewer).select_related("host")
    if _uses_full_text():
        terms = SearchQuery(query, config="english", search_type="websearch")
        spaces = (
            spaces.alias(matched=SPACE_VECTOR)
            .filter(matched=terms)
            .annotate(rank=SearchRank(SPACE_VECTOR, terms))
            .order_by("-rank", "-created_at")
        )
    else:
        spaces = spaces.filter(title__icontains=query)
    return list(spaces[:LIMIT])


def _members(*, viewer, query: str, blocked: set[int]) -> list:
    """Active members by username or display name (names are not words: a substring match on
    both databases), none across a block either way."""
    return list(
        get_user_model()
        .objects.filter(is_active=True)
        .filter(Q(username__icontains=query) | Q(display_name__icontains=query))
        .exclude(pk__in=blocked)
        .order_by("username")[:LIMIT]
    )


def search(*, viewer, query: str) -> SearchResults:
    """What ``viewer`` may find for ``query`` (already validated: 1..QUERY_MAX_LENGTH chars)."""
    return SearchResults(
        query=query,
        voicetweets=_voicetweet_hits(viewer=viewer, query=query),
        spaces=_spaces(viewer=viewer, query=query),
        members=_members(viewer=viewer, query=query, blocked=blocked_ids(user=viewer)),
    )
