import re

import pytest
from django.contrib.auth import get_user_model

from accounts.models import Follow

from .factories import ready_tweet, sine_wav, upload

pytestmark = pytest.mark.django_db
User = get_user_model()


def test_home_feed_draws_waveforms_with_players(client):
    """Each feed item shows author, text, duration, an SVG waveform and a play button. The
    waveform is one compact attribute (a character per bar) that the browser draws from, not
    markup per bar."""
    alice = User.objects.create_user(username="alice", display_name="Alice")
    bob = User.objects.create_user(username="bob")
    Follow.objects.create(follower=bob, followee=alice)
    tweet = ready_tweet(alice, text="morning thoughts", seconds=83)
    client.force_login(bob)

    page = client.get("/").content.decode()

    assert "morning thoughts" in page and "Alice" in page
    assert "1:23" in page
    assert f'data-src="/voicetweets/{tweet.pk}/audio"' in page
    assert "<rect" not in page
    assert f'data-peaks="{"W" * 100}"' in page  # 0.5 of 0..63 → 32 → "W"
    assert 'aria-label="Play voice tweet by Alice"' in page


def test_home_feed_pages_with_older_link(client):
    """Past 20 items the feed offers older ones, and the next page continues where it stopped."""
    alice = User.objects.create_user(username="alice")
    tweets = [ready_tweet(alice, text=f"n{i:02d}") for i in range(23)]
    client.force_login(alice)

    first = client.get("/")
    older = client.get(f"/?before={first.context['feed_next']}")

    assert [t.pk for t in first.context["feed"]] == [t.pk for t in reversed(tweets)][:20]
    assert [t.pk for t in older.context["feed"]] == [t.pk for t in reversed(tweets)][20:]
    assert older.context["feed_next"] is None


def test_thread_page_lists_replies_and_offers_a_voice_reply(client):
    """The thread view shows a tweet, its replies in order, and a reply composer."""
    alice = User.objects.create_user(username="alice")
    bob = User.objects.create_user(username="bob")
    root = ready_tweet(alice, text="question")
    first = ready_tweet(bob, text="answer one", parent=root)
    second = ready_tweet(alice, text="answer two", parent=root)
    client.force_login(bob)

    page = client.get(f"/voicetweets/{root.pk}/").content.decode()

    assert page.index("answer one") < page.index("answer two")
    assert f'name="parent_id" value="{root.pk}"' in page
    assert f'id="voicetweet-{first.pk}"' in page and f'id="voicetweet-{second.pk}"' in page


def test_form_post_without_javascript_posts_the_tweet(client, django_capture_on_commit_callbacks):
    """The compose form works without JavaScript and redirects back with a message."""
    alice = User.objects.create_user(username="alice")
    client.force_login(alice)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/voicetweets/new", {"audio": upload(sine_wav(2)), "text": "no js", "next": "/"}
        )

    assert response["Location"] == "/"
    assert alice.voice_tweets.get().state == "ready"
    assert "no js" in client.get("/").content.decode()


def test_redirect_after_post_never_leaves_the_site(client):
    """``next`` pointing at another site is ignored (no open redirect)."""
    alice = User.objects.create_user(username="alice")
    client.force_login(alice)

    response = client.post("/voicetweets/new", {"next": "//evil.example/"})

    assert response["Location"] == "/"


def test_profile_lists_the_members_voice_tweets_but_not_across_a_block(client):
    """A profile shows its member's voice tweets; a blocked viewer sees none of them."""
    from accounts.models import Block

    alice = User.objects.create_user(username="alice")
    bob = User.objects.create_user(username="bob")
    ready_tweet(alice, text="on my profile")
    hidden = ready_tweet(alice, text="hidden one")
    hidden.is_hidden = True
    hidden.save()
    client.force_login(bob)

    page = client.get("/u/alice/").content.decode()
    assert "on my profile" in page and "hidden one" not in page
    assert re.search(r"<strong>1</strong> voice tweet\s", page)  # not "1 voice tweets"

    Block.objects.create(blocker=alice, blocked=bob)
    assert "on my profile" not in client.get("/u/alice/").content.decode()


def test_waveform_code_is_one_character_per_peak_clamped_to_its_scale():
    """0 → "0", full scale → "_", out-of-range peaks clamped, any full scale (replays: 100)."""
    from voicetweets.templatetags.voicetweets import waveform_code

    assert waveform_code([0, 0.5, 1, 1.7, -0.2]) == "0W__0"
    assert waveform_code([0, 50, 100], 100) == "0W_"
    assert waveform_code([]) == "" and waveform_code(None) == ""


def test_voice_tweet_page_has_open_graph_tags_and_cards_a_copy_link(client):
    """The thread page describes the voice tweet for link previews; every card has Copy link."""
    alice = User.objects.create_user(username="alice", display_name="Alice")
    tweet = ready_tweet(alice, text="morning thoughts", seconds=83)
    client.force_login(alice)
    page = client.get(f"/voicetweets/{tweet.pk}/").content.decode()
    assert '<meta property="og:title" content="Voice tweet by Alice">' in page
    assert '<meta property="og:description" content="morning thoughts · 1:23 of voice' in page
    assert f'data-share-url="/voicetweets/{tweet.pk}/"' in page
