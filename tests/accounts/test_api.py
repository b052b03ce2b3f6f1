import io

import pytest
from PIL import Image
from rest_framework.test import APIClient
from rest_framework.throttling import ScopedRateThrottle

from accounts import services
from accounts.models import Follow, Invitation, User, WaitlistEntry

from .conftest import PASSWORD

pytestmark = pytest.mark.django_db


@pytest.fixture
def api():
    return APIClient()


def token_client(user: User) -> APIClient:
    client = APIClient()
    response = client.post(
        "/api/v1/auth/token/", {"login": user.username, "password": PASSWORD}, format="json"
    )
    assert response.status_code == 200, response.content
    client.credentials(HTTP_AUTHORIZATION=f"Token {response.json()['token']}")
    return client


def png_bytes(size=(40, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 10, 10)).save(out, format="PNG")
    return out.getvalue()


def test_token_login_works_without_a_browser_session(alice):
    """A mobile client logs in with username or email and calls the API with the token only."""
    client = token_client(alice)
    by_email = APIClient().post(
        "/api/v1/auth/token/", {"login": alice.email, "password": PASSWORD}, format="json"
    )

    assert client.get("/api/v1/me/").json()["username"] == "alice"
    assert by_email.status_code == 200


def test_token_login_with_wrong_password_is_refused(api, alice):
    """Bad credentials give 400 with a machine-readable code."""
    response = api.post(
        "/api/v1/auth/token/", {"login": "alice", "password": "nope"}, format="json"
    )

    assert response.status_code == 400 and response.json()["code"] == "credentials"


def test_token_logout_deletes_the_token(alice):
    """DELETE on the token endpoint logs the client out."""
    client = token_client(alice)

    assert client.delete("/api/v1/auth/token/").status_code == 204
    anonymous = client.get("/api/v1/me/")
    assert anonymous.status_code == 401 and anonymous["WWW-Authenticate"] == "Token"


def test_suspension_blocks_token_login_and_existing_tokens(alice, staff):
    """A suspended member's token stops working and no new one is issued."""
    client = token_client(alice)
    services.user_suspend(user=alice, by=staff, reason="spam")

    refused = client.get("/api/v1/me/")
    assert refused.status_code == 401 and "token" in refused.json()["detail"].lower()
    again = APIClient().post(
        "/api/v1/auth/token/", {"login": "alice", "password": PASSWORD}, format="json"
    )
    assert again.status_code == 403 and again.json()["code"] == "suspended"


def test_me_shows_private_fields_and_updates(alice, staff):
    """/me/ includes invited_by and quota for the member; PATCH validates and saves."""
    User.objects.filter(pk=alice.pk).update(invited_by=staff)
    client = token_client(alice)

    me = client.get("/api/v1/me/").json()
    updated = client.patch("/api/v1/me/", {"display_name": "Al", "bio": "hi"}, format="json")
    too_long = client.patch("/api/v1/me/", {"bio": "x" * 161}, format="json")

    assert me["invited_by"] == "staff" and me["invitations_left"] == 2
    assert updated.status_code == 200 and updated.json()["display_name"] == "Al"
    assert too_long.status_code == 400
    assert User.objects.get(pk=alice.pk).bio == "hi"


def test_invite_graph_is_not_in_public_profiles(alice, bob, staff):
    """Other members never see who invited whom, in a profile or in follower lists."""
    User.objects.filter(pk=alice.pk).update(invited_by=staff)
    services.follow_create(follower=alice, followee=bob)
    client = token_client(bob)

    profile = client.get("/api/v1/users/alice/")
    followers = client.get("/api/v1/users/bob/followers/")
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json")

    assert profile.status_code == 200
    assert "invited_by" not in profile.json() and b"staff" not in profile.content
    assert "invited_by" not in followers.json()["results"][0]
    assert b"staff" not in followers.content
    profile_schema = schema.json()["components"]["schemas"]["Profile"]["properties"]
    assert "invited_by" not in profile_schema and "email" not in profile_schema


def test_profile_counts_and_relationship_flags(alice, bob):
    """A profile shows follower counts and whether you follow each other."""
    services.follow_create(follower=alice, followee=bob)
    body = token_client(alice).get("/api/v1/users/bob/").json()

    assert body["followers_count"] == 1 and body["following_count"] == 0
    assert body["voice_tweets_count"] == 0
    assert body["is_following"] is True and body["follows_you"] is False


def test_follow_unfollow_and_lists_over_the_api(alice, bob, make_member):
    """Follow, list followers/following (paginated), unfollow."""
    carol = make_member("carol")
    a = token_client(alice)
    token_client(carol).post("/api/v1/users/bob/follow/")

    assert a.post("/api/v1/users/bob/follow/").status_code == 200
    followers = a.get("/api/v1/users/bob/followers/").json()
    following = a.get("/api/v1/users/alice/following/").json()
    assert [m["username"] for m in followers["results"]] == ["alice", "carol"]
    assert "next" in followers
    assert [m["username"] for m in following["results"]] == ["bob"]

    assert a.delete("/api/v1/users/bob/follow/").status_code == 204
    assert not Follow.objects.filter(follower=alice, followee=bob).exists()


def test_blocked_member_cannot_follow_or_see_the_profile(alice, bob):
    """After alice blocks bob: bob gets 404 on her profile and lists, and cannot follow her."""
    a, b = token_client(alice), token_client(bob)
    assert a.post("/api/v1/users/bob/block/").status_code == 204

    assert b.get("/api/v1/users/alice/").status_code == 404
    assert b.get("/api/v1/users/alice/followers/").status_code == 404
    assert b.post("/api/v1/users/alice/follow/").status_code == 404
    assert a.post("/api/v1/users/bob/follow/").status_code == 403  # the blocker cannot either
    assert a.get("/api/v1/users/bob/").json()["is_blocked"] is True

    assert a.delete("/api/v1/users/bob/block/").status_code == 204
    assert b.post("/api/v1/users/alice/follow/").status_code == 200


def test_unknown_and_suspended_members_are_404(alice, bob, staff):
    """A suspended member's profile disappears from the API."""
    client = token_client(alice)
    services.user_suspend(user=bob, by=staff, reason="spam")

    assert client.get("/api/v1/users/nobody/").status_code == 404
    assert client.get("/api/v1/users/bob/").status_code == 404


def test_api_requires_authentication(api, alice):
    """Anonymous clients cannot read profiles or invitations."""
    assert api.get("/api/v1/users/alice/").status_code == 401
    assert api.get("/api/v1/invitations/").status_code == 401


def test_invitations_list_create_revoke_over_the_api(alice):
    """Create until the quota runs out (409), revoke one to get it back."""
    client = token_client(alice)

    first = client.post("/api/v1/invitations/", {"email": "x@example.org"}, format="json")
    client.post("/api/v1/invitations/", {}, format="json")
    exhausted = client.post("/api/v1/invitations/", {}, format="json")
    assert first.status_code == 201 and first.json()["url"].endswith(
        f"/invite/{Invitation.objects.get(email='x@example.org').token}/"
    )
    assert exhausted.status_code == 409
    assert exhausted.json()["code"] == "invitation_quota_exhausted"
    assert len(client.get("/api/v1/invitations/").json()["results"]) == 2

    revoked = client.post(f"/api/v1/invitations/{first.json()['id']}/revoke/")
    again = client.post(f"/api/v1/invitations/{first.json()['id']}/revoke/")
    assert revoked.status_code == 200 and revoked.json()["state"] == "revoked"
    assert again.status_code == 409
    assert client.get("/api/v1/me/").json()["invitations_left"] == 1


def test_bad_invitation_email_is_a_400(alice):
    """Invalid input is refused with 400 and uses no quota."""
    client = token_client(alice)
    response = client.post("/api/v1/invitations/", {"email": "nope"}, format="json")

    assert response.status_code == 400
    assert User.objects.get(pk=alice.pk).invitations_left == 2


def test_cannot_revoke_someone_elses_invitation(alice, bob):
    """Another member's invitation id is a 404."""
    invitation = services.invitation_create(inviter=alice)

    response = token_client(bob).post(f"/api/v1/invitations/{invitation.pk}/revoke/")

    assert response.status_code == 404


def test_waitlist_join_over_the_api(api):
    """Anyone can join the waitlist; joining twice is fine; a bad email is a 400."""
    assert (
        api.post("/api/v1/waitlist/", {"email": "v@example.org"}, format="json").status_code == 202
    )
    assert (
        api.post("/api/v1/waitlist/", {"email": "v@example.org"}, format="json").status_code == 202
    )
    assert api.post("/api/v1/waitlist/", {"email": "bad"}, format="json").status_code == 400
    assert WaitlistEntry.objects.count() == 1


def test_invitation_creation_is_rate_limited(alice, staff, monkeypatch):
    """Creating invitations faster than the scoped throttle allows returns 429."""
    # DRF binds the rates dict at import; patch it in place (restored after the test).
    monkeypatch.setitem(ScopedRateThrottle.THROTTLE_RATES, "invitation_create", "2/hour")
    services.user_grant_invitations(user=alice, by=staff, count=10)
    client = token_client(alice)

    statuses = [
        client.post("/api/v1/invitations/", {}, format="json").status_code for _ in range(3)
    ]

    assert statuses == [201, 201, 429]
    assert Invitation.objects.filter(inviter=alice).count() == 2


def test_profile_listing_is_rate_limited(alice, monkeypatch):
    """Bulk profile reads hit the profile_list throttle and get 429."""
    # DRF binds the rates dict at import; patch it in place (restored after the test).
    monkeypatch.setitem(ScopedRateThrottle.THROTTLE_RATES, "profile_list", "3/minute")
    client = token_client(alice)

    statuses = [client.get("/api/v1/users/alice/followers/").status_code for _ in range(4)]

    assert statuses == [200, 200, 200, 429]


def test_token_login_is_rate_limited(alice):
    """Password guessing on the token endpoint is throttled with 429."""
    client = APIClient()
    statuses = [
        client.post(
            "/api/v1/auth/token/", {"login": "alice", "password": "x"}, format="json"
        ).status_code
        for _ in range(11)
    ]
    assert statuses[-1] == 429 and statuses[0] == 400


def test_avatar_upload_is_resized_and_replaces_the_old_file(
    alice, settings, django_capture_on_commit_callbacks
):
    """A PNG becomes a 256 px WebP under avatars/; a second upload deletes the first file."""
    client = token_client(alice)

    from django.core.files.uploadedfile import SimpleUploadedFile

    def upload():
        return client.put(
            "/api/v1/me/avatar/",
            {"avatar": SimpleUploadedFile("me.png", png_bytes(), "image/png")},
            format="multipart",
        )

    first = upload()
    first_path = settings.MEDIA_ROOT / User.objects.get(pk=alice.pk).avatar.name
    with Image.open(first_path) as image:
        assert image.format == "WEBP" and image.size == (256, 256)
    assert first.status_code == 200 and first.json()["avatar_url"].endswith(".webp")

    with django_capture_on_commit_callbacks(execute=True):  # the old file goes after commit
        upload()
    assert not first_path.exists()
    assert (settings.MEDIA_ROOT / User.objects.get(pk=alice.pk).avatar.name).exists()


@pytest.mark.parametrize(
    "payload",
    [
        b"not an image at all",
        b"GIF89a" + b"\x00" * 20,
        b"<svg xmlns='http://www.w3.org/2000/svg'/>",
    ],
)
def test_bad_avatar_is_refused_and_nothing_changes(alice, payload):
    """Non-images and broken images give 400 and leave the profile untouched."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    client = token_client(alice)
    response = client.put(
        "/api/v1/me/avatar/",
        {"avatar": SimpleUploadedFile("x.png", payload, "image/png")},
        format="multipart",
    )

    assert response.status_code == 400
    assert not User.objects.get(pk=alice.pk).avatar


def test_oversized_avatar_is_refused(alice, settings):
    """Uploads above the byte cap or the pixel cap are refused."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    client = token_client(alice)
    settings.SALON_AVATAR_MAX_PIXELS = 100
    response = client.put(
        "/api/v1/me/avatar/",
        {"avatar": SimpleUploadedFile("big.png", png_bytes((20, 20)), "image/png")},
        format="multipart",
    )
    assert response.status_code == 400 and response.json()["code"] == "avatar_too_big"


def test_every_accounts_endpoint_is_in_the_schema(api):
    """The OpenAPI schema documents the accounts API, including token auth."""
    paths = api.get("/api/schema/", HTTP_ACCEPT="application/json").json()["paths"]

    for path in [
        "/api/v1/auth/token/", "/api/v1/me/", "/api/v1/me/avatar/", "/api/v1/users/{username}/",
        "/api/v1/users/{username}/follow/", "/api/v1/users/{username}/block/",
        "/api/v1/users/{username}/followers/", "/api/v1/users/{username}/following/",
        "/api/v1/invitations/", "/api/v1/invitations/{id}/revoke/", "/api/v1/waitlist/",
        "/api/v1/reports/",
    ]:  # fmt: skip
        assert path in paths, path


# --- Reports ----------------------------------------------------------------------------------


def test_report_over_the_api_then_list_it(alice, bob):
    """POST /reports/ files a report (201); GET lists your own reports."""
    from tests.voicetweets.factories import ready_tweet

    tweet = ready_tweet(bob)
    client = token_client(alice)

    created = client.post(
        "/api/v1/reports/",
        {"target_kind": "voicetweet", "target": str(tweet.pk), "reason": "spam", "note": "ads"},
        format="json",
    )
    member = client.post(
        "/api/v1/reports/", {"target_kind": "member", "target": "bob", "reason": "hate"}
    )

    assert created.status_code == 201, created.content
    assert created.json() | {"id": 0, "created_at": ""} == {
        "id": 0, "target_kind": "voicetweet", "target_id": tweet.pk, "reason": "spam",
        "note": "ads", "state": "open", "created_at": "",
    }  # fmt: skip
    assert member.status_code == 201 and member.json()["target_id"] == bob.pk
    listed = client.get("/api/v1/reports/").json()["results"]
    assert [r["target_kind"] for r in listed] == ["member", "voicetweet"]
    assert token_client(bob).get("/api/v1/reports/").json()["results"] == []


def test_report_api_refusals_say_why(alice, bob):
    """Twice: 409; unknown reason: 400 naming the field; unseen: 404; yourself: 400."""
    client = token_client(alice)
    body = {"target_kind": "member", "target": "bob", "reason": "spam"}
    assert client.post("/api/v1/reports/", body).status_code == 201

    twice = client.post("/api/v1/reports/", body)
    bad_reason = client.post("/api/v1/reports/", {**body, "reason": "boring"})
    bad_kind = client.post("/api/v1/reports/", {**body, "target_kind": "planet"})
    nobody = client.post("/api/v1/reports/", {**body, "target": "nobody"})
    missing_tweet = client.post(
        "/api/v1/reports/", {**body, "target_kind": "voicetweet", "target": "999999"}
    )
    own = client.post("/api/v1/reports/", {**body, "target": "alice"})
    long_note = client.post("/api/v1/reports/", {**body, "target": "x", "note": "n" * 501})

    assert twice.status_code == 409 and twice.json() == {
        "code": "already_reported", "detail": "You already reported this.",
    }  # fmt: skip
    assert bad_reason.status_code == 400 and "reason" in bad_reason.json()
    assert bad_kind.status_code == 400 and "target_kind" in bad_kind.json()
    assert nobody.status_code == 404 and nobody.json()["code"] == "not_found"
    assert missing_tweet.status_code == 404
    assert own.status_code == 400 and own.json()["code"] == "own"
    assert long_note.status_code == 400 and "note" in long_note.json()
    assert APIClient().post("/api/v1/reports/", body).status_code == 401
