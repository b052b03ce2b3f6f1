"""Every list page and list API makes the same number of queries whatever its number of rows:
each is measured with ``django_assert_num_queries`` on a small and a larger data set."""

from __future__ import annotations

import uuid

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.utils import timezone
from rest_framework.authtoken.models import Token

from accounts.models import Follow, Invitation
from spaces import services as space_services
from spaces.models import Participant, Replay, Space
from spaces.selectors import HOSTS_GROUP
from tests.voicetweets.factories import ready_message, ready_tweet

pytestmark = pytest.mark.django_db


def _member(username: str, *, host: bool = False):
    """A member without a password (hashing one is most of the time a test like this takes)."""
    user = get_user_model().objects.create(username=username)
    if host:
        group, _ = Group.objects.get_or_create(name=HOSTS_GROUP)
        group.permissions.add(Permission.objects.get(codename="host_space"))
        user.groups.add(group)
    return user


def build(size: int):
    """``size`` hosts each with a live, a scheduled and an ended space with a ready replay, a
    listener and a speaker in every live space, and ``size`` voice tweets (two liked, one
    reply) by people the viewer follows; the viewer blocks nobody but is blocked by one."""
    viewer = _member("viewer")
    tweets = []
    for index in range(size):
        host = _member(f"host{index}", host=True)
        Follow.objects.create(follower=viewer, followee=host)
        Follow.objects.create(follower=host, followee=viewer)
        live = space_services.space_create(host=host, title=f"Live {index}", visibility="open")
        for role in (Participant.Role.LISTENER, Participant.Role.SPEAKER):
            Participant.objects.create(
                space=live, user=_member(f"p{index}{role}"), role=role, last_seen=timezone.now()
            )
        space_services.space_create(
            host=host,
            title=f"Later {index}",
            visibility="followers",
            scheduled_start=timezone.now() + timezone.timedelta(days=1),
        )
        _ended_with_replay(host, title=f"Ended {index}")
        tweets.append(
            ready_tweet(host, text=f"tweet {index}", parent=tweets[0] if tweets else None)
        )
        # The first host's profile grows too: one more voice tweet and replay per row.
        _ended_with_replay(tweets[0].author, title=f"Ended more {index}")
        ready_tweet(tweets[0].author, text=f"more {index}")
        ready_message(host, viewer)
        ready_message(viewer, host)
        Invitation.objects.create(inviter=viewer, email=f"friend{index}@example.com")
    return viewer, tweets


def _ended_with_replay(host, *, title: str) -> Replay:
    now = timezone.now()
    ended = Space.objects.create(
        host=host, title=title, state=Space.State.ENDED, started_at=now, ended_at=now
    )
    return Replay.objects.create(
        space=ended,
        state=Replay.State.READY,
        directory=f"replays/{uuid.uuid4().hex}",
        duration_ms=60_000,
        waveform=[50] * 200,
    )


# Each page (its url for the viewer) and the queries it makes, whatever the number of rows. The
# API calls send a token, which authenticates in one query (the session is not read); every
# page counts the bell's unread notifications in one.
PAGES = {
    "home": ("/", 10),
    "profile": ("/u/host0/", 19),
    "spaces": ("/spaces/", 10),
    "api_feed": ("/api/v1/voicetweets/feed/", 4),
    "api_spaces": ("/api/v1/spaces/", 5),
    "api_user_voicetweets": ("/api/v1/users/host0/voicetweets/", 5),
    "api_replies": ("/api/v1/voicetweets/{first}/replies/", 5),
    "thread": ("/voicetweets/{first}/", 7),
    "followers": ("/u/viewer/followers/", 7),
    "following": ("/u/viewer/following/", 7),
    "api_followers": ("/api/v1/users/viewer/followers/", 4),
    "api_following": ("/api/v1/users/viewer/following/", 4),
    "inbox": ("/messages/", 5),
    "conversation": ("/messages/host0/", 9),
    "api_conversations": ("/api/v1/conversations/", 3),
    "api_conversation": ("/api/v1/conversations/host0/", 3),
    "invitations": ("/invitations/", 5),
    "api_invitations": ("/api/v1/invitations/", 2),
    # Every voice tweet says "tweet", every live space's title "Live", every host is "host…".
    "search_tweets": ("/search/?q=tweet", 10),
    "api_search_tweets": ("/api/v1/search/?q=tweet", 8),
    "search_spaces": ("/search/?q=live", 10),
    "api_search_members": ("/api/v1/search/?q=host", 8),
}


@pytest.mark.parametrize("size", [2, 5])
def test_list_query_count_does_not_grow_with_rows(client, django_assert_num_queries, size):
    """Each list page and list API makes its fixed number of queries at both sizes."""
    viewer, tweets = build(size)
    token = Token.objects.create(user=viewer)
    client.force_login(viewer)
    for name, (url, expected) in PAGES.items():
        url = url.format(first=tweets[0].pk)
        headers = {"HTTP_AUTHORIZATION": f"Token {token.key}"} if url.startswith("/api/") else {}
        with django_assert_num_queries(expected):
            response = client.get(url, **headers)
        assert response.status_code == 200, name
