"""Spaces pages: the hallway on the home page, the space page, create/schedule, remind me."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from accounts.models import Follow
from spaces import services
from spaces.models import Space, SpaceSubscription

from .factories import make_live_space, make_member

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
    assert response.status_code == 200 and "14 days" in response.content.decode()
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


def test_seed_demo_opens_a_live_space_for_alice():
    """seed_demo gives alice a live open space and a scheduled one, idempotently."""
    call_command("seed_demo", force=True)
    call_command("seed_demo", force=True)
    spaces = Space.objects.filter(host__username="alice")
    assert sorted(spaces.values_list("state", flat=True)) == ["live", "scheduled"]
