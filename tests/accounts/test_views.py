import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from accounts import services
from accounts.models import Invitation, User, WaitlistEntry

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice_client(client, alice):
    client.force_login(alice)
    return client


def test_profile_page_shows_counts_and_private_inviter_only_to_self(client, alice, bob, staff):
    """Your own profile says who invited you; someone else's never does."""
    User.objects.filter(pk=alice.pk).update(invited_by=staff)
    services.follow_create(follower=bob, followee=alice)

    client.force_login(alice)
    own = client.get("/u/alice/")
    client.force_login(bob)
    other = client.get("/u/alice/")

    assert b"Invited by" in own.content and b"@staff" in own.content
    assert other.status_code == 200 and b"Invited by" not in other.content
    assert b"@staff" not in other.content
    assert b"<strong>1</strong> follower</a>" in other.content


def test_follow_block_buttons(client, alice, bob):
    """Follow, then block from the profile; the blocked member then gets a 404."""
    client.force_login(bob)
    client.post("/u/alice/follow/")
    assert alice.follower_set.count() == 1

    client.force_login(alice)
    client.post("/u/bob/block/")
    client.force_login(bob)

    assert client.get("/u/alice/").status_code == 404
    assert client.get("/u/alice/followers/").status_code == 404
    assert client.post("/u/alice/follow/").status_code == 404
    assert alice.follower_set.count() == 0


def test_followers_and_following_pages(alice_client, alice, bob):
    """The lists show the members on each side of a follow."""
    services.follow_create(follower=alice, followee=bob)

    assert b"@bob" in alice_client.get("/u/alice/following/").content
    assert b"@alice" in alice_client.get("/u/bob/followers/").content


def test_profile_pages_need_login(client, alice):
    """Profiles are for members only."""
    assert client.get("/u/alice/").status_code == 302


def test_edit_profile_with_avatar(alice_client, alice):
    """Display name, bio and avatar are saved; the avatar becomes a 256 px WebP."""
    png = io.BytesIO()
    Image.new("RGBA", (300, 120), (0, 0, 255, 128)).save(png, format="PNG")

    response = alice_client.post(
        "/settings/profile/",
        {
            "display_name": "Alice L",
            "bio": "Hi",
            "avatar": SimpleUploadedFile("a.png", png.getvalue()),
        },
    )

    alice.refresh_from_db()
    assert response.status_code == 302
    assert alice.display_name == "Alice L" and alice.avatar.name.startswith("avatars/")
    with Image.open(alice.avatar.path) as image:
        assert image.size == (256, 256)


def test_edit_profile_refuses_a_fake_image(alice_client, alice):
    """A non-image upload is a 400 form error and nothing is saved."""
    response = alice_client.post(
        "/settings/profile/",
        {"display_name": "Changed", "bio": "", "avatar": SimpleUploadedFile("a.png", b"nope")},
    )

    alice.refresh_from_db()
    assert response.status_code == 400 and b"not a readable image" in response.content
    assert alice.display_name == "Alice" and not alice.avatar


def test_my_invitations_page_create_and_revoke(alice_client, alice):
    """Create an invitation, see its link and the remaining quota, revoke it."""
    alice_client.post("/invitations/", {"email": ""})
    invitation = Invitation.objects.get(inviter=alice)

    page = alice_client.get("/invitations/")
    assert f"/invite/{invitation.token}/".encode() in page.content
    assert b'data-testid="invitations-left">1<' in page.content

    alice_client.post(f"/invitations/{invitation.pk}/revoke/")
    page = alice_client.get("/invitations/")
    assert b'data-testid="invitations-left">2<' in page.content
    assert Invitation.objects.get(pk=invitation.pk).state == Invitation.State.REVOKED


def test_invitations_page_reports_exhausted_quota(alice_client, alice):
    """With no quota left, creating shows an error message and creates nothing."""
    User.objects.filter(pk=alice.pk).update(invitations_left=0)

    response = alice_client.post("/invitations/", {"email": ""}, follow=True)

    assert b"no invitations left" in response.content
    assert not Invitation.objects.exists()


def test_waitlist_page(client):
    """A visitor leaves an email; a bad one is a 400 with the form again."""
    assert client.post("/waitlist/", {"email": "v@example.org"}).status_code == 200
    assert client.post("/waitlist/", {"email": "bad"}).status_code == 400
    assert WaitlistEntry.objects.filter(email="v@example.org").exists()


def test_nav_links_for_members(alice_client):
    """Signed-in members see Profile and Invitations in the navigation."""
    content = alice_client.get("/").content
    assert b'href="/u/alice/"' in content and b'href="/invitations/"' in content


# --- Reports ----------------------------------------------------------------------------------


def test_report_buttons_appear_where_the_targets_do(client, alice, bob):
    """Someone else's profile and voice tweets offer 'Report'; your own do not."""
    from tests.voicetweets.factories import ready_tweet

    tweet = ready_tweet(bob)
    own = ready_tweet(alice)
    client.force_login(alice)

    profile = client.get("/u/bob/").content.decode()
    mine = client.get("/u/alice/").content.decode()

    assert "/report/member/bob/" in profile
    assert f"/report/voicetweet/{tweet.pk}/" in profile
    assert "/report/member/alice/" not in mine and f"/report/voicetweet/{own.pk}/" not in mine


def test_report_form_files_a_report_once(alice_client, bob):
    """The form shows the reasons, files the report, and says so when sent twice."""
    from accounts.models import Report

    page = alice_client.get("/report/member/bob/")
    assert page.status_code == 200 and "Harassment or bullying" in page.content.decode()

    missing = alice_client.post("/report/member/bob/", {"reason": ""})
    sent = alice_client.post("/report/member/bob/", {"reason": "harassment", "note": "threats"})
    again = alice_client.get("/report/member/bob/")

    assert missing.status_code == 400
    assert sent.status_code == 302 and sent.url == "/u/bob/"
    report = Report.objects.get()
    assert (report.reason, report.note, report.target_user) == ("harassment", "threats", bob)
    assert "You already reported this" in again.content.decode()
    assert alice_client.post("/report/member/bob/", {"reason": "spam"}).status_code == 200
    assert Report.objects.count() == 1


def test_report_page_is_404_for_what_one_cannot_see(alice_client, alice, bob):
    """A member who blocked you, or a missing thing, has no report page; a bad kind says so."""
    from accounts.models import Block

    Block.objects.create(blocker=bob, blocked=alice)

    assert alice_client.get("/report/member/bob/").status_code == 404
    assert alice_client.get("/report/voicetweet/424242/").status_code == 404
    bad_kind = alice_client.get("/report/planet/1/", follow=True)
    assert "What you report must be one of" in bad_kind.content.decode()


def test_space_page_offers_a_report_link_to_listeners_not_the_host(client, alice):
    """A live space's page has 'Report this space' for members, not for its host."""
    from tests.spaces.factories import make_live_space
    from tests.spaces.factories import make_member as make_host

    host = make_host("hana", host=True)
    space = make_live_space(host)

    client.force_login(alice)
    as_member = client.get(f"/spaces/{space.pk}/").content.decode()
    client.force_login(host)
    as_host = client.get(f"/spaces/{space.pk}/").content.decode()

    assert f"/report/space/{space.pk}/" in as_member
    assert f"/report/space/{space.pk}/" not in as_host
