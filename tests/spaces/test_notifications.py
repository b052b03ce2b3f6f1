"""Notifications (the bell): a followed host going live, the unread count, mark all read, by
service, page and API."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from accounts.models import Follow
from notifications import selectors as notification_selectors
from notifications import services as notification_services
from notifications.models import Notification
from spaces import services

from .factories import make_live_space, make_member

pytestmark = pytest.mark.django_db


def _followers(host, count: int) -> list:
    members = [make_member(f"fan{host.pk}-{i}") for i in range(count)]
    Follow.objects.bulk_create([Follow(follower=m, followee=host) for m in members])
    return members


def test_followers_hear_when_the_host_goes_live_and_others_do_not():
    """Starting a space notifies each follower once, with a link; a stranger gets nothing,
    and a closed space tells only whom it invites."""
    alice = make_member("alice", host=True)
    bob = make_member("bob")
    stranger = make_member("sue")
    Follow.objects.create(follower=bob, followee=alice)
    space = make_live_space(alice, title="Jazz")
    (notification,) = Notification.objects.filter(user=bob)
    assert notification.kind == Notification.Kind.FOLLOWED_LIVE
    assert notification.url == f"/spaces/{space.pk}/"
    assert "Jazz" in notification.text and alice.name in notification.text
    assert not Notification.objects.filter(user=stranger).exists()
    services.space_end(space=space, by=alice)
    make_live_space(alice, title="Private", visibility="closed")
    assert Notification.objects.filter(user=bob).count() == 1


def test_going_live_costs_the_same_queries_for_2_or_20_followers():
    """One insert for all followers, not a query per follower."""
    counts = []
    for size in (2, 20):
        host = make_member(f"host{size}", host=True)
        _followers(host, size)
        with CaptureQueriesContext(connection) as queries:
            make_live_space(host)
        counts.append(len(queries))
        assert Notification.objects.filter(space__host=host).count() == size
    assert counts[0] == counts[1]


def test_the_unread_count_and_mark_all_read():
    """Only unread notifications count, only the member's own; mark all read takes them to 0
    and leaves other members' alone."""
    alice = make_member("alice", host=True)
    bob, carl = make_member("bob"), make_member("carl")
    for member in (bob, carl):
        Follow.objects.create(follower=member, followee=alice)
    space = make_live_space(alice)
    services.space_end(space=space, by=alice)
    make_live_space(alice)
    assert notification_selectors.notifications_unread_count(user=bob) == 2
    assert notification_services.notifications_mark_all_read(user=bob) == 2
    assert notification_selectors.notifications_unread_count(user=bob) == 0
    assert notification_services.notifications_mark_all_read(user=bob) == 0
    assert notification_selectors.notifications_unread_count(user=carl) == 2


def test_the_api_lists_notifications_with_the_unread_count_and_marks_them_read():
    alice = make_member("alice", host=True)
    bob = make_member("bob")
    Follow.objects.create(follower=bob, followee=alice)
    space = make_live_space(alice, title="Jazz")
    api = APIClient()
    api.force_authenticate(bob)
    data = api.get("/api/v1/notifications/").json()
    assert data["unread_count"] == 1
    assert [(n["kind"], n["url"], n["read"]) for n in data["results"]] == [
        ("space.followed_live", f"/spaces/{space.pk}/", False)
    ]
    response = api.post("/api/v1/notifications/read-all/")
    assert response.status_code == 200
    assert response.json() == {"marked": 1, "unread_count": 0}
    data = api.get("/api/v1/notifications/").json()
    assert data["unread_count"] == 0 and data["results"][0]["read"] is True
    assert APIClient().get("/api/v1/notifications/").status_code in (401, 403)


def test_the_bell_shows_the_count_and_the_page_links_them(client):
    """Every page's nav has the bell with the unread count; the page lists the notifications
    with their links; "Mark all read" empties the bell."""
    alice = make_member("alice", host=True)
    bob = make_member("bob")
    Follow.objects.create(follower=bob, followee=alice)
    space = make_live_space(alice, title="Jazz")
    client.force_login(bob)
    home = client.get("/").content.decode()
    assert 'aria-label="Notifications, 1 unread"' in home
    page = client.get("/notifications/").content.decode()
    assert f'href="/spaces/{space.pk}/"' in page and "Mark all read" in page
    response = client.post("/notifications/read-all/")
    assert response.status_code == 302 and response["Location"] == "/notifications/"
    assert 'aria-label="Notifications"' in client.get("/").content.decode()


def test_the_notifications_page_makes_the_same_queries_for_3_or_30(client):
    bob = make_member("bob")
    client.force_login(bob)
    counts = []
    for size in (3, 30):
        Notification.objects.bulk_create(
            [Notification(user=bob, kind="space.soon", text=f"n{i}") for i in range(size)]
        )
        with CaptureQueriesContext(connection) as queries:
            assert client.get("/notifications/").status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1]


@pytest.mark.django_db(transaction=True)
async def test_the_notification_socket_rings_the_bell_and_tells_the_hallway():
    """Bob's /ws/notifications/: alice going live is a stored notification (with an id) and a
    hallway.changed naming the space; a stranger's socket gets the hallway change only."""
    from asgiref.sync import sync_to_async
    from channels.testing import WebsocketCommunicator

    from config.asgi import application

    from .factories import session_cookie

    alice = await sync_to_async(make_member)("alice", host=True)
    bob = await sync_to_async(make_member)("bob")
    sue = await sync_to_async(make_member)("sue")
    await sync_to_async(Follow.objects.create)(follower=bob, followee=alice)
    sockets = {}
    for member in (bob, sue):
        headers = [
            (b"host", b"127.0.0.1"),
            (b"origin", b"http://127.0.0.1"),
            (b"cookie", await sync_to_async(session_cookie)(member)),
        ]
        sockets[member.username] = WebsocketCommunicator(
            application, "/ws/notifications/", headers=headers
        )
        connected, _ = await sockets[member.username].connect()
        assert connected
        assert (await sockets[member.username].receive_json_from())["type"] == "hello"
    try:
        space = await sync_to_async(make_live_space)(alice, title="Jazz")
        bob_frames = [await sockets["bob"].receive_json_from() for _ in range(2)]
        by_type = {frame["type"]: frame for frame in bob_frames}
        assert by_type["notification"]["kind"] == "space.followed_live"
        assert by_type["notification"]["url"] == f"/spaces/{space.pk}/"
        assert isinstance(by_type["notification"]["id"], int)
        assert by_type["hallway.changed"] == {"type": "hallway.changed", "space_id": space.pk}
        assert await sockets["sue"].receive_json_from() == by_type["hallway.changed"]
        assert await sockets["sue"].receive_nothing(0.2)
    finally:
        for socket in sockets.values():
            await socket.disconnect()


def test_a_scheduled_space_starting_tells_followers_once_even_if_they_asked_for_a_reminder():
    """Followers hear of the start; one who subscribed hears it from the reminder instead."""
    from datetime import timedelta

    from django.utils import timezone

    alice = make_member("alice", host=True)
    bob, carl = make_member("bob"), make_member("carl")
    for member in (bob, carl):
        Follow.objects.create(follower=member, followee=alice)
    space = services.space_create(
        host=alice, title="Later", scheduled_start=timezone.now() + timedelta(hours=1)
    )
    services.space_subscribe(space=space, user=carl)
    assert not Notification.objects.exists()  # scheduling is not going live
    services.space_start(space=space, by=alice)
    assert list(Notification.objects.values_list("user__username", "kind")) == [
        ("bob", "space.followed_live")
    ]
    services.space_send_reminders()
    assert Notification.objects.filter(user=carl, kind="space.started").count() == 1
