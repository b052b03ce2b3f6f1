"""REST API /api/v1/spaces/: shape, hosting permission, lifecycle and errors."""

from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.urls import include, path
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from spaces import services
from spaces.models import Participant, Space

from .factories import make_live_space, make_member, make_replay

pytestmark = pytest.mark.django_db

SHAPE = {
    "id", "title", "state", "visibility", "host", "cohost_ids", "speaker_ids",
    "participant_count", "listener_count", "scheduled_start", "started_at", "ended_at",
    "is_recording", "audio_mode", "pinned_voice_tweet_id", "host_away",
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
    assert APIClient().get("/api/v1/spaces/").status_code == 401


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
        "/api/v1/spaces/{id}/audio-mode/",
    ):
        assert expected in paths


# --- Replays --------------------------------------------------------------------------------


def test_replay_resource_has_state_duration_timeline_and_audio_url():
    """GET /spaces/{id}/replay/: state, duration, waveform, who talked when, the audio URL."""
    host = make_member("hana", host=True)
    replay = make_replay(host, seconds=2.0)

    data = api(make_member("leo")).get(f"/api/v1/spaces/{replay.space_id}/replay/").json()

    assert set(data) == {
        "space_id", "state", "duration", "waveform", "timeline", "audio_url", "delete_after"
    }  # fmt: skip
    assert (data["space_id"], data["state"]) == (replay.space_id, "ready")
    assert data["duration"] == pytest.approx(2.0, abs=0.1)
    assert [(t["speaker_id"], t["username"], t["name"]) for t in data["timeline"]] == [
        (host.pk, "hana", host.name)
    ]
    url = urlsplit(data["audio_url"])
    assert url.netloc == "testserver" and url.path == f"/spaces/{replay.space_id}/replay/audio"
    assert data["delete_after"] is not None and max(data["waveform"]) > 50


def test_replay_while_recording_has_no_audio_yet():
    """During the space the replay is 'recording', without duration or audio."""
    host = make_member("hana", host=True)
    space = services.space_create(host=host, title="Live", is_recording=True)
    services.replay_segment_start(space_id=space.pk)

    data = api(host).get(f"/api/v1/spaces/{space.pk}/replay/").json()

    assert (data["state"], data["duration"], data["audio_url"]) == ("recording", None, None)
    plain = make_live_space(host)
    assert api(host).get(f"/api/v1/spaces/{plain.pk}/replay/").status_code == 404


def test_replay_delete_is_for_the_host_and_hidden_from_non_members(
    django_capture_on_commit_callbacks,
):
    """DELETE: 403 for a member, 404 (and GET 404) outside a closed space, 204 for the host."""
    host = make_member("hana", host=True)
    invited = make_member("ivy")
    replay = make_replay(host, visibility="closed", invite=[invited])
    url = f"/api/v1/spaces/{replay.space_id}/replay/"

    outsider = api(make_member("nina"))
    assert (outsider.get(url).status_code, outsider.delete(url).status_code) == (404, 404)
    refused = api(invited).delete(url)
    assert refused.status_code == 403 and refused.json()["code"] == "forbidden"
    with django_capture_on_commit_callbacks(execute=True):
        assert api(host).delete(url).status_code == 204
    assert not replay.audio_path.exists()
    assert api(host).get(url).status_code == 404


def test_create_can_record_from_the_start():
    """``is_recording: true`` at creation: the space is recorded from the start."""
    client = api(make_member("hana", host=True))
    response = client.post("/api/v1/spaces/", {"title": "Hi", "is_recording": True}, format="json")
    assert response.status_code == 201 and response.json()["is_recording"] is True
    bad = client.post("/api/v1/spaces/", {"title": "Hi", "is_recording": "maybe"}, format="json")
    assert bad.status_code == 400 and "is_recording" in bad.json()


def test_openapi_schema_documents_the_replay():
    """The schema has the replay resource (GET, DELETE) and its fields."""
    generator = SchemaGenerator(patterns=[path("api/v1/", include("spaces.api_urls"))])
    schema = generator.get_schema(public=True)
    operations = schema["paths"]["/api/v1/spaces/{id}/replay/"]
    assert {"get", "delete"} <= set(operations)
    fields = schema["components"]["schemas"]["Replay"]["properties"]
    assert {"state", "duration", "timeline", "audio_url", "delete_after"} <= set(fields)


def test_the_host_switches_the_audio_mode_through_the_api():
    """POST audio-mode: the host gets the space back in music mode; others get 403, nonsense
    400 with the field named; creation takes the mode too."""
    host = make_member("hana", host=True)
    space = make_live_space(host)
    url = f"/api/v1/spaces/{space.pk}/audio-mode/"
    response = api(host).post(url, {"audio_mode": "music"}, format="json")
    assert response.status_code == 200 and response.json()["audio_mode"] == "music"
    assert api(host).get(f"/api/v1/spaces/{space.pk}/").json()["audio_mode"] == "music"
    other = api(make_member("olga")).post(url, {"audio_mode": "speech"}, format="json")
    assert other.status_code == 403 and other.json()["code"] == "forbidden"
    bad = api(host).post(url, {"audio_mode": "loud"}, format="json")
    assert bad.status_code == 400 and "audio_mode" in bad.json()
    assert api(host).post(url, {}, format="json").status_code == 400
    created = api(host).post(
        "/api/v1/spaces/", {"title": "Gig", "audio_mode": "music"}, format="json"
    )
    assert created.status_code == 201 and created.json()["audio_mode"] == "music"
    services.space_end(space=space, by=host)
    ended = api(host).post(url, {"audio_mode": "speech"}, format="json")
    assert ended.status_code == 409, ended.json()


def test_the_host_switches_music_to_stereo_through_the_api():
    """music_stereo is a mode like the others: set, read back, and created with; the API
    schema lists it."""
    host = make_member("hana", host=True)
    space = make_live_space(host)
    url = f"/api/v1/spaces/{space.pk}/audio-mode/"
    response = api(host).post(url, {"audio_mode": "music_stereo"}, format="json")
    assert response.status_code == 200 and response.json()["audio_mode"] == "music_stereo"
    assert api(host).get(f"/api/v1/spaces/{space.pk}/").json()["audio_mode"] == "music_stereo"
    back = api(host).post(url, {"audio_mode": "music"}, format="json")
    assert back.json()["audio_mode"] == "music"
    bad = api(host).post(url, {"audio_mode": "speech_stereo"}, format="json")
    assert bad.status_code == 400 and "audio_mode" in bad.json()
    created = api(host).post(
        "/api/v1/spaces/", {"title": "Duo", "audio_mode": "music_stereo"}, format="json"
    )
    assert created.status_code == 201 and created.json()["audio_mode"] == "music_stereo"
    schema = SchemaGenerator().get_schema(request=None, public=True)
    assert "music_stereo" in str(schema["components"]["schemas"])
