"""Spaces pages: the hallway on the home page, the space page, create/schedule, remind me."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from accounts.models import Follow
from spaces import services
from spaces.models import Space, SpaceSubscription

from .factories import make_live_space, make_member, make_replay

pytestmark = pytest.mark.django_db


def test_hallway_puts_spaces_of_people_you_follow_first(client):
    """Home page: live spaces hosted by people you follow come before busier open ones."""
    followed = make_member("fay", host=True)
    other = make_member("otto", host=True)
    busy = make_live_space(other, title="Busy open room")
    for name in ("a1", "a2"):
        services.participant_join(space_id=busy.pk, user=make_member(name))
    make_live_space(followed, title="Friend's room")
    make_live_space(make_member("cleo", host=True), visibility="closed", title="Secret room")
    viewer = make_member("vic")
    Follow.objects.create(follower=viewer, followee=followed)
    client.force_login(viewer)
    page = client.get("/").content.decode()
    assert page.index("Friend&#x27;s room") < page.index("Busy open room")
    assert "Secret room" not in page
    assert f'data-space-count="{busy.pk}">2<' in page


def test_space_page_for_members_with_socket_script(client):
    """The live space page carries the socket path and loads space.js; hidden spaces are 404."""
    host = make_member("hana", host=True)
    space = make_live_space(host)
    client.force_login(make_member("leo"))
    page = client.get(f"/spaces/{space.pk}/").content.decode()
    assert f'data-ws-path="/ws/spaces/{space.pk}/"' in page
    assert "js/space.js" in page
    closed = make_live_space(host, visibility="closed")
    assert client.get(f"/spaces/{closed.pk}/").status_code == 404


def test_create_form_live_and_scheduled(client):
    """The form starts a live space now or schedules one; non-hosts are sent away."""
    client.force_login(make_member("hana", host=True))
    response = client.post("/spaces/new/", {"title": "Now", "visibility": "open"})
    space = Space.objects.get(title="Now")
    assert response.url == f"/spaces/{space.pk}/" and space.state == "live"
    later = (timezone.now() + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    client.post("/spaces/new/", {"title": "Later", "visibility": "open", "scheduled_start": later})
    assert Space.objects.get(title="Later").state == "scheduled"
    too_late = (timezone.now() + timedelta(days=20)).strftime("%Y-%m-%dT%H:%M")
    response = client.post(
        "/spaces/new/", {"title": "Far", "visibility": "open", "scheduled_start": too_late}
    )
    assert response.status_code == 400 and "14 days" in response.content.decode()
    client.force_login(make_member("mo"))
    assert client.get("/spaces/new/").status_code == 302


def test_scheduled_list_remind_me(client):
    """The scheduled list offers 'Remind me', which subscribes and then shows it is set."""
    host = make_member("hana", host=True)
    space = services.space_create(
        host=host, title="Later", scheduled_start=timezone.now() + timedelta(hours=5)
    )
    member = make_member("leo")
    client.force_login(member)
    assert "Remind me" in client.get("/spaces/").content.decode()
    client.post(f"/spaces/{space.pk}/remind/", {"next": "list"})
    assert SpaceSubscription.objects.filter(space=space, user=member).exists()
    assert "Reminder set" in client.get("/spaces/").content.decode()


def test_seed_demo_opens_a_live_space_for_the_bot_and_schedules_one_for_alice():
    """seed_demo: the bot hosts the live open space (alice's would end without her), alice has
    a scheduled one and the ended one of her replay, idempotently."""
    call_command("seed_demo", force=True)
    call_command("seed_demo", force=True)
    spaces = Space.objects.filter(host__username="alice")
    assert sorted(spaces.values_list("state", flat=True)) == ["ended", "scheduled"]
    live = Space.objects.get(state="live")
    assert live.host.username == "salonbot" and live.visibility == "open"


# --- Replays --------------------------------------------------------------------------------


def test_replay_page_has_the_player_timeline_and_next_speaker(client):
    """A ready replay's page: seekable audio, who talked when, and the "next speaker" button."""
    host = make_member("hana", host=True)
    replay = make_replay(host)
    client.force_login(make_member("leo"))

    page = client.get(f"/spaces/{replay.space_id}/replay/").content.decode()

    assert f'src="/spaces/{replay.space_id}/replay/audio"' in page
    assert f'data-speaker-id="{host.pk}"' in page and "hana" in page
    assert "Next speaker" in page and "js/spaces/replay.js" in page
    assert "Delete replay" not in page  # only for the host


def test_closed_space_replay_is_404_for_non_members_page_and_audio(client):
    """A closed space's replay: the host and invited members hear it; anyone else gets 404."""
    host = make_member("hana", host=True)
    invited = make_member("ivy")
    replay = make_replay(host, visibility="closed", invite=[invited])
    urls = [f"/spaces/{replay.space_id}/replay/", f"/spaces/{replay.space_id}/replay/audio"]

    client.force_login(make_member("nina"))
    assert [client.get(url).status_code for url in urls] == [404, 404]
    assert client.post(f"/spaces/{replay.space_id}/replay/delete/").status_code == 404
    for member in (invited, host):
        client.force_login(member)
        assert [client.get(url).status_code for url in urls] == [200, 200]
    client.logout()
    # Not the login page: an audio player cannot follow it; signed-out clients use audio links.
    assert client.get(urls[1]).status_code == 403


def test_replay_audio_is_served_in_ranges_for_seeking(client):
    """The audio URL answers Range requests with 206, so players can seek."""
    replay = make_replay(make_member("hana", host=True))
    client.force_login(make_member("leo"))

    whole = client.get(f"/spaces/{replay.space_id}/replay/audio")
    part = client.get(f"/spaces/{replay.space_id}/replay/audio", HTTP_RANGE="bytes=100-199")

    assert whole["Content-Type"] == "audio/ogg" and whole["Accept-Ranges"] == "bytes"
    assert b"".join(whole.streaming_content)[:4] == b"OggS"
    assert part.status_code == 206 and len(b"".join(part.streaming_content)) == 100
    assert part["Content-Range"] == f"bytes 100-199/{replay.size_bytes}"


def test_ended_space_hallway_and_profile_link_to_the_replay(client):
    """The ended space's page, the spaces list and the host's profile lead to the replay."""
    host = make_member("hana", host=True)
    replay = make_replay(host)
    client.force_login(make_member("leo"))
    link = f'href="/spaces/{replay.space_id}/replay/"'

    assert link in client.get(f"/spaces/{replay.space_id}/").content.decode()
    assert link in client.get("/spaces/").content.decode()
    assert link in client.get("/u/hana/").content.decode()


def test_host_deletes_the_replay_from_its_page(client, django_capture_on_commit_callbacks):
    """Only the host gets the delete button; deleting removes the file and the page."""
    host = make_member("hana", host=True)
    replay = make_replay(host)
    client.force_login(make_member("leo"))
    client.post(f"/spaces/{replay.space_id}/replay/delete/")
    assert replay.audio_path.exists()

    client.force_login(host)
    assert "Delete replay" in client.get(f"/spaces/{replay.space_id}/replay/").content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/spaces/{replay.space_id}/replay/delete/")

    assert response.url == f"/spaces/{replay.space_id}/"
    assert not replay.audio_path.exists()
    assert client.get(f"/spaces/{replay.space_id}/replay/").status_code == 404


def test_create_form_can_record_from_the_start(client):
    """ "Record this space" on the create form starts the space recorded."""
    client.force_login(make_member("hana", host=True))
    client.post("/spaces/new/", {"title": "Recorded", "visibility": "open", "is_recording": "on"})
    client.post("/spaces/new/", {"title": "Not recorded", "visibility": "open"})
    assert Space.objects.get(title="Recorded").is_recording
    assert not Space.objects.get(title="Not recorded").is_recording


def test_create_form_can_start_in_music_mode_and_the_page_shows_it(client):
    """Audio "music" on the create form: the space is in music mode and its page shows the
    badge (visible from the first paint); a speech space's badge is hidden; nonsense is the form
    again, with the error, and no space."""
    client.force_login(make_member("hana", host=True))
    client.post("/spaces/new/", {"title": "Gig", "visibility": "open", "audio_mode": "music"})
    gig = Space.objects.get(title="Gig")
    assert gig.audio_mode == "music"
    page = client.get(f"/spaces/{gig.pk}/").content.decode()
    assert 'data-role="audio-mode" class="badge music"' in page
    client.post("/spaces/new/", {"title": "Talk", "visibility": "open"})
    talk = Space.objects.get(title="Talk")
    assert talk.audio_mode == "speech"
    assert (
        'data-role="audio-mode" hidden class="badge music"'
        in client.get(f"/spaces/{talk.pk}/").content.decode()
    )
    bad = client.post("/spaces/new/", {"title": "Bad", "visibility": "open", "audio_mode": "x"})
    assert "Select a valid choice" in bad.content.decode()
    assert not Space.objects.filter(title="Bad").exists()


def test_space_page_has_open_graph_tags_a_share_link_and_a_pin_picker(client):
    """Open Graph tags name the space; Copy link carries its address; the host picks a voice
    tweet to pin from a list of theirs instead of typing an id."""
    from tests.voicetweets.factories import ready_tweet

    host = make_member("hana", host=True)
    space = make_live_space(host, title="Morning show")
    tweet = ready_tweet(host, text="Running order")
    client.force_login(host)
    page = client.get(f"/spaces/{space.pk}/").content.decode()
    address = f"http://testserver/spaces/{space.pk}/"
    assert '<meta property="og:title" content="Morning show">' in page
    assert f'<meta property="og:url" content="{address}">' in page
    assert f'data-share-url="{address}"' in page
    assert f'<option value="{tweet.pk}">{host.name}: Running order' in page
    assert 'type="number"' not in page


def test_the_hallway_fragment_lists_live_spaces_with_an_away_host_in_constant_queries(client):
    """/spaces/hallway/ (what open pages swap in live): the live spaces, "host reconnecting…"
    for one whose host's last connection closed, in the same queries for 2 or 6 spaces."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    viewer = make_member("vic")
    client.force_login(viewer)
    counts = []
    for size in (2, 6):
        for index in range(size - Space.objects.filter(state="live").count()):
            host = make_member(f"h{size}-{index}", host=True)
            space = make_live_space(host, title=f"Room {size}-{index}")
            services.participant_join(space_id=space.pk, user=host)
        with CaptureQueriesContext(connection) as queries:
            body = client.get("/spaces/hallway/").content.decode()
        counts.append(len(queries))
        assert body.count('class="space-card card"') == size
    assert counts[0] == counts[1]
    services.participant_disconnect(space_id=space.pk, user_id=host.pk)
    body = client.get("/spaces/hallway/").content.decode()
    assert body.count("host reconnecting…") == 1
