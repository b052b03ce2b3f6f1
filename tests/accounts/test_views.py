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
    assert b"<strong>1</strong> followers" in other.content


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
