"""Search (search.selectors, /search, /api/v1/search/): finds what is said and written, ranks
and highlights it, links to the second it is said, and shows exactly what the feed would."""

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from accounts import services as accounts_services
from search import selectors
from spaces.models import Space, SpaceInvite
from tests.voicetweets.factories import ready_message, ready_tweet
from voicetweets.models import Recording

pytestmark = pytest.mark.django_db
User = get_user_model()

SEGMENTS = [
    {"text": "Good morning everyone.", "start": 0.0, "end": 2.5},
    {"text": "Today we talk about porcupines and gardens.", "start": 2.5, "end": 6.0},
]


def member(username: str, **fields):
    return User.objects.create_user(username=username, password="x-pass-12345", **fields)


def with_transcript(tweet, segments=SEGMENTS):
    tweet.transcript_state = Recording.TranscriptState.READY
    tweet.transcript_segments = segments
    tweet.transcript = " ".join(s["text"] for s in segments)
    tweet.transcript_language = "en"
    tweet.save()
    return tweet


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_finds_a_voice_tweet_by_a_word_said_only_in_its_audio():
    """A word in the transcript only finds the tweet, highlights it, and links to its second."""
    alice, bob = member("alice"), member("bob")
    tweet = with_transcript(ready_tweet(alice, text="my morning show"))
    response = api(bob).get("/api/v1/search/", {"q": "porcupines"})
    assert response.status_code == 200
    [hit] = response.json()["voicetweets"]
    assert hit["voicetweet"]["id"] == tweet.pk
    assert "<mark>porcupines</mark>" in hit["snippet"]
    assert hit["seconds"] == 2.5
    assert hit["url"] == f"/voicetweets/{tweet.pk}/?t=2.5"


def test_stemming_and_ranking_put_the_better_match_first():
    """English stemming matches "porcupine" to "porcupines"; a tweet saying it in its text and
    its audio ranks above one saying it once."""
    alice, bob = member("alice"), member("bob")
    once = with_transcript(ready_tweet(alice))
    twice = with_transcript(ready_tweet(alice, text="porcupine facts"))
    ids = [
        h["tweet"].pk
        for h in [vars(h) for h in selectors.search(viewer=bob, query="porcupine").voicetweets]
    ]
    assert ids == [twice.pk, once.pk]


def test_a_phrase_links_to_the_segment_that_says_it():
    """Every word of the query is in the second segment; only one is in the first."""
    alice, bob = member("alice"), member("bob")
    segments = [
        {"text": "Meet me at noon.", "start": 0.0, "end": 1.5},
        {"text": "Bring the cake at noon.", "start": 1.5, "end": 3.0},
    ]
    with_transcript(ready_tweet(alice), segments)
    [hit] = selectors.search(viewer=bob, query="cake noon").voicetweets
    assert hit.seconds == 1.5


def test_written_text_matches_without_a_second():
    alice, bob = member("alice"), member("bob")
    tweet = ready_tweet(alice, text="Jazz tonight")
    [hit] = selectors.search(viewer=bob, query="jazz").voicetweets
    assert hit.tweet.pk == tweet.pk and hit.seconds is None
    assert "<mark>Jazz</mark>" in hit.snippet


def test_snippets_escape_what_members_wrote():
    alice, bob = member("alice"), member("bob")
    ready_tweet(alice, text="porcupine 1 < 2 & 3 > 4 \x02<mark>")
    [hit] = selectors.search(viewer=bob, query="porcupine").voicetweets
    assert hit.snippet == "<mark>porcupine</mark> 1 &lt; 2 &amp; 3 &gt; 4 &lt;mark&gt;"


def test_a_blocked_member_does_not_find_it_either_way():
    """Bob, blocked by Alice, finds neither her voice tweet nor her; nor does she find him."""
    alice, bob = member("alice"), member("bob")
    with_transcript(ready_tweet(alice))
    assert len(api(bob).get("/api/v1/search/", {"q": "porcupines"}).json()["voicetweets"]) == 1
    accounts_services.block_create(blocker=alice, blocked=bob)
    assert api(bob).get("/api/v1/search/", {"q": "porcupines"}).json()["voicetweets"] == []
    assert api(bob).get("/api/v1/search/", {"q": "alice"}).json()["members"] == []
    assert api(alice).get("/api/v1/search/", {"q": "bob"}).json()["members"] == []


def test_hidden_tweets_only_for_their_author():
    alice, bob = member("alice"), member("bob")
    tweet = with_transcript(ready_tweet(alice))
    tweet.is_hidden = True
    tweet.save()
    assert selectors.search(viewer=bob, query="porcupines").voicetweets == []
    assert [h.tweet.pk for h in selectors.search(viewer=alice, query="porcupines").voicetweets] == [
        tweet.pk
    ]


def test_voice_messages_are_never_searched():
    """Not by others, and not by their two members either: a conversation stays out of search."""
    alice, bob = member("alice"), member("bob")
    message = ready_message(alice, bob)
    message.transcript_state = Recording.TranscriptState.READY
    message.transcript = "the secret porcupines"
    message.transcript_segments = [{"text": "the secret porcupines", "start": 0.0, "end": 2.0}]
    message.save()
    for viewer in (alice, bob, member("carol")):
        assert selectors.search(viewer=viewer, query="porcupines").voicetweets == []


def space(host, title: str, visibility: str) -> Space:
    return Space.objects.create(
        host=host, title=title, visibility=visibility, scheduled_start=timezone.now()
    )


def test_closed_spaces_only_for_invited_members():
    host, invited, stranger = member("host"), member("invited"), member("stranger")
    open_space = space(host, "Gardening hour", Space.Visibility.OPEN)
    closed = space(host, "Gardening secrets", Space.Visibility.CLOSED)
    SpaceInvite.objects.create(space=closed, user=invited, invited_by=host)
    found = lambda viewer: {s.pk for s in selectors.search(viewer=viewer, query="gardening").spaces}  # noqa: E731
    assert found(stranger) == {open_space.pk}
    assert found(invited) == {open_space.pk, closed.pk}
    assert found(host) == {open_space.pk, closed.pk}


def test_members_by_username_or_name():
    viewer = member("viewer")
    zed = member("zedwards", display_name="Zoe Edwards")
    member("inactive_zoe", is_active=False)
    assert [m.pk for m in selectors.search(viewer=viewer, query="zoe").members] == [zed.pk]
    assert [m.pk for m in selectors.search(viewer=viewer, query="ZEDW").members] == [zed.pk]


def test_query_count_does_not_grow_with_rows():
    alice, bob = member("alice"), member("bob")
    host = member("gardener")

    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            response = api(bob).get("/api/v1/search/", {"q": "gardens"})
            assert response.status_code == 200
        return len(queries)

    count()  # the first request of a test fills caches (content types, the throttle)
    with_transcript(ready_tweet(alice))
    space(host, "Gardens", Space.Visibility.OPEN)
    few = count()
    for _ in range(5):
        with_transcript(ready_tweet(member(f"m{_}")))
        space(host, "Gardens again", Space.Visibility.OPEN)
    assert count() == few


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({}, "Type something to search for"),
        ({"q": "   "}, "Type something to search for"),
        ({"q": "x" * 101}, "at most 100 characters"),
        ({"q": "a\x00b"}, "Null characters are not allowed"),
    ],
)
def test_api_refuses_an_empty_or_long_query(params, message):
    response = api(member("bob")).get("/api/v1/search/", params)
    assert response.status_code == 400
    assert message in response.json()["q"][0]


def test_search_page_shows_results_and_links_to_the_moment(client):
    alice, bob = member("alice"), member("bob", display_name="Bob")
    tweet = with_transcript(ready_tweet(alice))
    client.force_login(bob)
    response = client.get("/search/", {"q": "porcupines"})
    assert response.status_code == 200
    page = response.content.decode()
    assert f'href="/voicetweets/{tweet.pk}/?t=2.5"' in page
    assert "<mark>porcupines</mark>" in page
    assert client.get("/search/", {"q": "x" * 101}).status_code == 400
