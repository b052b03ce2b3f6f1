"""REST API /api/v1/spaces/: shape, hosting permission, lifecycle and errors."""

from datetime import timedelta

import pytest
from django.urls import include, path
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from spaces import services
from spaces.models import Participant, Space

from .factories import make_live_space, make_member

pytestmark = pytest.mark.django_db

SHAPE = {
    "id", "title", "state", "visibility", "host", "cohost_ids", "speaker_ids",
    "participant_count", "listener_count", "scheduled_start", "started_at", "ended_at",
    "is_recording", "pinned_voice_tweet_id",
}  # fmt: skip


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_create_needs_the_hosting_permission():
    """A member outside the hosts group cannot create a space (403 with a code)."""
    response = api(make_member("mo")).post("/api/v1/spaces/", {"title": "Hi"}, format="json")
    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"


def test_setting_opens_hosting_to_everyone(settings):
    """SALON_SPACES_HOSTING_OPEN lets any member host."""
    settings.SALON_SPACES_HOSTING_OPEN = True
    response = api(make_member("mo")).post("/api/v1/spaces/", {"title": "Hi"}, format="json")
    assert response.status_code == 201
    assert response.json()["state"] == "live"


def test_create_live_space_has_the_twitter_like_shape():
    """A created space carries every documented field."""
    host = make_member("hana", host=True)
    response = api(host).post(
        "/api/v1/spaces/", {"title": "Morning", "visibility": "followers"}, format="json"
    )
    assert response.status_code == 201
    data = response.json()
    assert set(data) == SHAPE
    assert data["host"]["username"] == "hana" and data["visibility"] == "followers"
    assert data["cohost_ids"] == [] and data["participant_count"] == 0


def test_schedule_limits():
    """Scheduling works up to 14 days ahead; later or past starts are 400."""
    client = api(make_member("hana", host=True))
    soon = timezone.now() + timedelta(days=2)
    response = client.post(
        "/api/v1/spaces/", {"title": "Later", "scheduled_start": soon.isoformat()}, format="json"
    )
    assert response.status_code == 201 and response.json()["state"] == "scheduled"
    for when in (timezone.now() + timedelta(days=15), timezone.now() - timedelta(hours=1)):
        response = client.post(
            "/api/v1/spaces/", {"title": "X", "scheduled_start": when.isoformat()}, format="json"
        )
        assert response.status_code == 400


def test_lifecycle_start_end_and_illegal_transitions():
    """scheduled → live → ended through the API; ending twice is 409; others cannot end."""
    host = make_member("hana", host=True)
    space = services.space_create(
        host=host, title="Later", scheduled_start=timezone.now() + timedelta(hours=1)
    )
    client = api(host)
    assert client.post(f"/api/v1/spaces/{space.pk}/end/").status_code == 409
    assert client.post(f"/api/v1/spaces/{space.pk}/start/").json()["state"] == "live"
    assert api(make_member("mo")).post(f"/api/v1/spaces/{space.pk}/end/").status_code == 403
    assert client.post(f"/api/v1/spaces/{space.pk}/end/").json()["state"] == "ended"
    response = client.post(f"/api/v1/spaces/{space.pk}/end/")
    assert response.status_code == 409 and response.json()["code"] == "invalid_state"
    assert client.post(f"/api/v1/spaces/{space.pk}/cancel/").status_code == 409


def test_closed_space_is_invisible_to_strangers():
    """A closed space is a 404 for a member who was not invited, and visible once invited."""
    host = make_member("hana", host=True)
    space = make_live_space(host, visibility="closed")
    stranger = make_member("mo")
    assert api(stranger).get(f"/api/v1/spaces/{space.pk}/").status_code == 404
    assert space.pk not in [s["id"] for s in api(stranger).get("/api/v1/spaces/").json()]
    response = api(host).post(
        f"/api/v1/spaces/{space.pk}/invites/", {"username": "mo"}, format="json"
    )
    assert response.status_code == 204
    assert api(stranger).get(f"/api/v1/spaces/{space.pk}/").status_code == 200


def test_list_and_participants():
    """The list shows live spaces with counts; participants lists roles."""
    host = make_member("hana", host=True)
    space = make_live_space(host)
    listener = make_member("leo")
    services.participant_join(space_id=space.pk, user=host)
    services.participant_join(space_id=space.pk, user=listener)
    listed = api(listener).get("/api/v1/spaces/?state=live").json()
    assert [(s["id"], s["participant_count"]) for s in listed] == [(space.pk, 2)]
    people = api(listener).get(f"/api/v1/spaces/{space.pk}/participants/").json()
    assert {p["username"]: p["role"] for p in people} == {"hana": "host", "leo": "listener"}


def test_stage_actions_through_the_api():
    """Hand raise, approve, mute, co-host and remove work over REST with the same rules."""
    host = make_member("hana", host=True)
    space = make_live_space(host)
    leo = make_member("leo")
    for user in (host, leo):
        services.participant_join(space_id=space.pk, user=user)
    base = f"/api/v1/spaces/{space.pk}"
    assert api(leo).post(f"{base}/participants/{host.pk}/remove/").status_code == 403
    assert api(leo).post(f"{base}/hand/").status_code == 204
    assert api(host).post(f"{base}/participants/{leo.pk}/approve/").status_code == 204
    assert api(leo).post(f"{base}/mute/", {"muted": False}, format="json").status_code == 204
    assert api(host).post(f"{base}/participants/{leo.pk}/mute/").status_code == 204
    assert api(host).post(f"{base}/cohosts/{leo.pk}/").status_code == 204
    participant = Participant.objects.get(space=space, user=leo)
    assert (participant.role, participant.is_muted) == ("cohost", True)
    response = api(host).post(f"{base}/participants/{leo.pk}/remove/", {"ban": True})
    assert response.status_code == 204
    assert api(leo).get(f"{base}/").status_code == 200  # banned from joining, not from seeing
    assert Space.objects.get(pk=space.pk).bans.filter(user=leo).exists()


def test_not_in_the_space_is_a_conflict():
    """Raising a hand without being connected to the space is 409 not_participant."""
    space = make_live_space(make_member("hana", host=True))
    response = api(make_member("leo")).post(f"/api/v1/spaces/{space.pk}/hand/")
    assert response.status_code == 409 and response.json()["code"] == "not_participant"


def test_subscription_on_scheduled_space():
    """Remind me works for scheduled spaces only."""
    host = make_member("hana", host=True)
    scheduled = services.space_create(
        host=host, title="Later", scheduled_start=timezone.now() + timedelta(hours=3)
    )
    client = api(make_member("leo"))
    assert client.post(f"/api/v1/spaces/{scheduled.pk}/subscription/").status_code == 204
    assert scheduled.subscriptions.count() == 1
    assert client.delete(f"/api/v1/spaces/{scheduled.pk}/subscription/").status_code == 204
    live = make_live_space(host)
    assert client.post(f"/api/v1/spaces/{live.pk}/subscription/").status_code == 409


def test_anonymous_is_refused():
    """The API needs a signed-in member or a token."""
    assert APIClient().get("/api/v1/spaces/").status_code in (401, 403)


def test_openapi_schema_has_every_spaces_action():
    """The OpenAPI schema documents the spaces endpoints."""
    generator = SchemaGenerator(patterns=[path("api/v1/", include("spaces.api_urls"))])
    paths = generator.get_schema(public=True)["paths"]
    for expected in (
        "/api/v1/spaces/",
        "/api/v1/spaces/{id}/",
        "/api/v1/spaces/{id}/hand/",
        "/api/v1/spaces/{id}/participants/{user_id}/approve/",
        "/api/v1/spaces/{id}/participants/{user_id}/remove/",
        "/api/v1/spaces/{id}/cohosts/{user_id}/",
        "/api/v1/spaces/{id}/subscription/",
        "/api/v1/spaces/{id}/mute-all/",
    ):
        assert expected in paths
