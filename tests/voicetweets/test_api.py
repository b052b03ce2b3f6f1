from urllib.parse import urlsplit

import pytest
from channels.testing import HttpCommunicator
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from accounts.models import Block, Follow
from config.asgi import application
from voicetweets import services
from voicetweets.models import VoiceTweet

from .factories import ready_tweet, sine_wav, upload

pytestmark = pytest.mark.django_db
User = get_user_model()


@pytest.fixture
def alice():
    return User.objects.create_user(username="alice", password="x-pass-12345")


@pytest.fixture
def bob():
    return User.objects.create_user(username="bob", password="x-pass-12345")


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_upload_returns_at_once_in_processing(alice, django_capture_on_commit_callbacks):
    """POST answers 202 with the tweet still processing; processing runs after the commit."""
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = api(alice).post(
            "/api/v1/voicetweets/",
            {"audio": upload(sine_wav(2)), "text": "hello"},
            format="multipart",
        )

    assert response.status_code == 202
    assert response.json()["state"] == "processing"
    assert response.json()["audio_url"] is None
    assert len(callbacks) == 1  # the processing task, queued on commit


def test_processed_tweet_reports_state_and_serves_ranges(
    alice, client, django_capture_on_commit_callbacks
):
    """After processing the API shows it ready, and its audio answers Range requests with 206."""
    with django_capture_on_commit_callbacks(execute=True):
        created = api(alice).post(
            "/api/v1/voicetweets/", {"audio": upload(sine_wav(3))}, format="multipart"
        )
    tweet = api(alice).get(f"/api/v1/voicetweets/{created.json()['id']}/").json()
    assert tweet["state"] == "ready"
    assert urlsplit(tweet["audio_url"]).path == f"/voicetweets/{tweet['id']}/audio"

    client.force_login(alice)
    whole = client.get(f"/voicetweets/{tweet['id']}/audio")
    part = client.get(f"/voicetweets/{tweet['id']}/audio", HTTP_RANGE="bytes=100-199")
    assert whole.status_code == 200 and whole["Accept-Ranges"] == "bytes"
    size = int(whole["Content-Length"])
    assert part.status_code == 206
    assert part["Content-Range"] == f"bytes 100-199/{size}"
    assert len(b"".join(part.streaming_content)) == 100
    assert (
        client.get(f"/voicetweets/{tweet['id']}/audio", HTTP_RANGE=f"bytes={size}-").status_code
        == 416
    )


def test_rejected_upload_reports_its_reason(alice, django_capture_on_commit_callbacks):
    """The author reads why an upload was rejected; the tweet has no audio URL."""
    with django_capture_on_commit_callbacks(execute=True):
        created = api(alice).post(
            "/api/v1/voicetweets/",
            {"audio": upload(b"not audio at all" * 100, "x.mp3")},
            format="multipart",
        )
    tweet = api(alice).get(f"/api/v1/voicetweets/{created.json()['id']}/").json()

    assert tweet["state"] == "rejected"
    assert tweet["rejection_reason"]
    assert tweet["audio_url"] is None


def test_feed_is_own_and_followed_newest_first_and_paginated(alice, bob):
    """Home holds my tweets and those of people I follow, newest first, in cursor pages."""
    carol = User.objects.create_user(username="carol")
    Follow.objects.create(follower=alice, followee=bob)
    expected = []
    for index in range(25):
        expected.append(ready_tweet(alice if index % 2 else bob, text=f"t{index}").pk)
    ready_tweet(carol, text="not followed")

    first = api(alice).get("/api/v1/voicetweets/feed/").json()
    second = api(alice).get(first["next"]).json()

    ids = [t["id"] for t in first["results"] + second["results"]]
    assert ids == list(reversed(expected))
    assert second["next"] is None


def test_blocked_members_do_not_see_each_others_tweets(alice, bob):
    """Across a block, tweets vanish from feeds, profiles and direct URLs, both ways."""
    Follow.objects.create(follower=alice, followee=bob)
    tweet = ready_tweet(bob)
    Block.objects.create(blocker=bob, blocked=alice)

    assert api(alice).get("/api/v1/voicetweets/feed/").json()["results"] == []
    assert api(alice).get(f"/api/v1/voicetweets/{tweet.pk}/").status_code == 404
    assert api(alice).get("/api/v1/users/bob/voicetweets/").json()["results"] == []
    assert api(alice).post(f"/api/v1/voicetweets/{tweet.pk}/like/").status_code == 404


def test_hidden_tweet_is_gone_for_everyone_but_its_author_and_admins(alice, bob, client):
    """A hidden tweet leaves feeds, profiles, the API and its audio URL for other members; the
    author still sees it, marked hidden; admins can still open it to review it."""
    admin = User.objects.create_user(username="mod", is_staff=True)
    Follow.objects.create(follower=alice, followee=bob)
    tweet = ready_tweet(bob)
    services.voicetweet_hide(voicetweet=tweet, by=admin, reason="spam")

    assert api(alice).get(f"/api/v1/voicetweets/{tweet.pk}/").status_code == 404
    assert api(alice).get("/api/v1/voicetweets/feed/").json()["results"] == []
    assert api(alice).get("/api/v1/users/bob/voicetweets/").json()["results"] == []
    client.force_login(alice)
    assert client.get(f"/voicetweets/{tweet.pk}/audio").status_code == 404
    assert b"voicetweet-%d" % tweet.pk not in client.get("/u/bob/").content

    own = api(bob).get(f"/api/v1/voicetweets/{tweet.pk}/")
    assert own.status_code == 200 and own.json()["is_hidden"] is True
    assert [t["id"] for t in api(bob).get("/api/v1/voicetweets/feed/").json()["results"]] == [
        tweet.pk
    ]
    client.force_login(bob)
    assert client.get(f"/voicetweets/{tweet.pk}/audio").status_code == 200
    assert b"Hidden by a moderator: only you can see it" in client.get("/u/bob/").content
    assert api(admin).get(f"/api/v1/voicetweets/{tweet.pk}/").status_code == 200


def test_only_staff_hide_voice_tweets(alice, bob):
    """Hiding is a moderator's action: a member cannot hide someone's tweet."""
    tweet = ready_tweet(bob)

    with pytest.raises(services.VoiceTweetError) as refused:
        services.voicetweet_hide(voicetweet=tweet, by=alice, reason="I do not like it")

    assert refused.value.code == "forbidden"
    assert not VoiceTweet.objects.get(pk=tweet.pk).is_hidden


def test_likes_count_once_per_member(alice, bob):
    """Liking twice counts once; liked_by_me follows the member; unliking undoes it."""
    tweet = ready_tweet(bob)
    client = api(alice)

    client.post(f"/api/v1/voicetweets/{tweet.pk}/like/")
    state = client.post(f"/api/v1/voicetweets/{tweet.pk}/like/").json()
    assert state == {"liked": True, "like_count": 1}
    assert api(bob).get(f"/api/v1/voicetweets/{tweet.pk}/").json()["liked_by_me"] is False
    assert client.delete(f"/api/v1/voicetweets/{tweet.pk}/like/").json() == {
        "liked": False,
        "like_count": 0,
    }


def test_only_the_author_deletes_and_the_file_goes_too(
    alice, bob, django_capture_on_commit_callbacks
):
    """Others get 403; the author's delete removes the row and the audio file."""
    tweet = ready_tweet(bob)
    path = tweet.audio.path

    assert api(alice).delete(f"/api/v1/voicetweets/{tweet.pk}/").status_code == 403
    with django_capture_on_commit_callbacks(execute=True):
        assert api(bob).delete(f"/api/v1/voicetweets/{tweet.pk}/").status_code == 204

    assert not VoiceTweet.objects.filter(pk=tweet.pk).exists()
    import os

    assert not os.path.exists(path)


def test_voice_reply_links_to_its_parent(alice, bob, django_capture_on_commit_callbacks):
    """A reply is a voice tweet with a parent, listed under it oldest first."""
    parent = ready_tweet(bob)
    with django_capture_on_commit_callbacks(execute=True):
        response = api(alice).post(
            "/api/v1/voicetweets/",
            {"audio": upload(sine_wav(2)), "parent_id": parent.pk},
            format="multipart",
        )
    replies = api(bob).get(f"/api/v1/voicetweets/{parent.pk}/replies/").json()["results"]

    assert response.status_code == 202
    assert [r["id"] for r in replies] == [response.json()["id"]]
    assert replies[0]["parent_id"] == parent.pk


async def test_oversized_upload_is_refused_before_the_body_is_read(settings):
    """413 from Content-Length alone: the view never sees a body over the cap."""
    communicator = HttpCommunicator(
        application,
        "POST",
        "/api/v1/voicetweets/",
        body=b"",
        headers=[
            (b"host", b"127.0.0.1"),
            (b"content-type", b"multipart/form-data; boundary=x"),
            (b"authorization", b"Token x"),  # a member's cap, not the anonymous one
            (b"content-length", str(settings.SALON_VOICETWEET_MAX_UPLOAD_BYTES + 1).encode()),
        ],
    )
    response = await communicator.get_response()

    assert response["status"] == 413
    assert b"too large" in response["body"]


async def test_chunked_body_over_the_cap_is_cut_off():
    """Without a Content-Length, the body is counted as it arrives and cut off at the cap."""
    from config.request_bodies import RequestBodyLimitMiddleware, RequestBodyLimits

    reached_view = []

    async def app(scope, receive, send):
        while (await receive()).get("more_body"):
            pass
        reached_view.append(True)

    limits = RequestBodyLimits.build(default=1000, anonymous=1000, by_prefix={})
    middleware = RequestBodyLimitMiddleware(app, limits=limits)
    communicator = HttpCommunicator(middleware, "POST", "/x", body=b"x" * 5000)
    response = await communicator.get_response()

    assert response["status"] == 413
    assert reached_view == []
