"""A newcomer's way in: the landing page says Salon is invite-only, the pages say "Log in",
sign-up names the inviter and leads to follow suggestions, and counts are in good English."""

import re
from pathlib import Path

import pytest

from accounts import selectors, services
from accounts.models import Block, Follow
from spaces import services as space_services
from tests.spaces.factories import make_member as make_host

from .conftest import PASSWORD
from .test_adapter import accept_link, signup_data

pytestmark = pytest.mark.django_db
TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


def test_landing_page_says_invite_only_and_links_the_waitlist(client):
    """A visitor reads that Salon is invite-only, with the waitlist and log-in links."""
    page = client.get("/").content.decode()
    assert (
        "invite-only" in page and 'href="/waitlist/"' in page and 'href="/accounts/login/"' in page
    )


def test_one_wording_log_in_everywhere(client, alice):
    """No "Sign in"/"Sign out" left, in our templates or allauth's pages as Salon serves them."""
    for path in [*TEMPLATES.rglob("*.html"), *TEMPLATES.rglob("*.txt")]:
        assert not re.search(r"sign[ -]?(in|out)\b", path.read_text(), re.I), path
    login = client.get("/accounts/login/").content.decode()
    assert "Log in" in login and not re.search(r"sign[ -]?in", login, re.I)
    logged_in = client.post(
        "/accounts/login/", {"login": "alice", "password": PASSWORD}, follow=True
    )
    assert "Logged in as" in logged_in.content.decode()
    logout = client.get("/accounts/logout/").content.decode()
    assert "Log out" in logout and not re.search(r"sign[ -]?out", logout, re.I)


def test_signup_page_names_the_inviter_and_then_suggests_whom_to_follow(client, alice, invitation):
    """The sign-up form says who invited you; after it the member lands on /welcome/."""
    accept_link(client, invitation)
    page = client.get("/accounts/signup/").content.decode()
    assert "Alice" in page and "@alice" in page and "invited you" in page
    assert '<label for="id_username">' in page  # visible labels, not placeholders only
    response = client.post("/accounts/signup/", signup_data("newbie"))
    assert response.status_code == 302 and response["Location"] == "/welcome/"
    assert client.get("/welcome/").status_code == 200


def test_follow_suggestions_are_the_inviters_follows_and_active_hosts(alice, make_member):
    """Inviter first, then whom the inviter follows, then hosts; never yourself, people you
    follow, anyone across a block or suspended members."""
    newbie = make_member("newbie", invited_by=alice)
    friend, followed, blocker, gone = (make_member(n) for n in ("fern", "fred", "bart", "gone"))
    for other in (friend, followed, blocker, gone):
        Follow.objects.create(follower=alice, followee=other)
    Follow.objects.create(follower=newbie, followee=followed)
    Block.objects.create(blocker=blocker, blocked=newbie)
    gone.is_active = False
    gone.save()
    host = make_host("hana", host=True)
    space_services.space_create(host=host, title="Live now", visibility="open")
    make_member("quiet")  # neither followed by the inviter nor a host

    suggestions = selectors.follow_suggestions(user=newbie)

    assert [(s.member.username, s.reason) for s in suggestions] == [
        ("alice", "Invited you"),
        ("fern", "Followed by @alice"),
        ("hana", "Hosts spaces"),
    ]


def test_following_from_the_welcome_page_stays_on_it(client, alice, make_member):
    """The Follow button of a suggestion follows and comes back to the suggestions."""
    newbie = make_member("newbie", invited_by=alice)
    client.force_login(newbie)
    page = client.get("/welcome/").content.decode()
    assert "Follow Alice" in page
    response = client.post("/u/alice/follow/", {"next": "welcome"})
    assert response["Location"] == "/welcome/"
    assert selectors.is_following(follower=newbie, followee=alice)
    assert "Follow Alice" not in client.get("/welcome/").content.decode()


def test_profile_counts_are_pluralized(client, alice, bob):
    """ "1 follower", "2 followers", "1 voice tweet"."""
    from tests.voicetweets.factories import ready_tweet

    services.follow_create(follower=bob, followee=alice)
    ready_tweet(alice)
    client.force_login(bob)
    page = re.sub(r"\s+", " ", client.get("/u/alice/").content.decode())
    assert "<strong>1</strong> follower</a>" in page
    assert "<strong>1</strong> voice tweet" in page and "voice tweets" not in page.split("<h2")[0]
