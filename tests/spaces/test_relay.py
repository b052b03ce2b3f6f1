"""Lite sockets (spaces/live/relay.py): ticket listeners without a channel of their own get the
room's events through the process's relay and still obey what concerns them."""

import json

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer

from accounts import services as accounts_services
from spaces.audio import wire
from spaces.live import tickets
from spaces.live.relay import room_relay
from spaces.models import SpaceBan

from .factories import SpaceSocket, make_live_space, make_member
from .test_audio_transport import collect_audio, stream
from .test_media import dominant_frequency, tone_frames

pytestmark = pytest.mark.django_db(transaction=True)

db = sync_to_async


@pytest.fixture
async def lite():
    """Open a socket with a join ticket (``await lite(space, user)``); closed after the test."""
    opened = []

    async def open_(space, user) -> SpaceSocket:
        ticket = await db(lambda: tickets.ticket_issue(space=space, user=user)["ticket"])()
        socket = SpaceSocket(space.pk, user, path=f"/ws/spaces/{space.pk}/?ticket={ticket}")
        opened.append(socket)
        await socket.connect()
        socket.snapshot = await socket.receive_type("snapshot")
        return socket

    yield open_
    for socket in opened:
        await socket.disconnect()


async def _room(sockets):
    host = await db(make_member)("hana", host=True)
    space = await db(make_live_space)(host)
    host_socket = await sockets.open(space.pk, host)  # a token: a socket with its channel
    return space, host, host_socket


def _lite_consumers(space_id: int) -> list:
    return list(room_relay().rooms.get(space_id, {}).values())


async def test_a_lite_join_takes_no_channel_and_no_group(sockets, lite, monkeypatch):
    """A ticket listener's join creates no channel-layer channel and joins no group; the
    process's relay joined the room's group once, for the first one."""
    space, _host, _host_socket = await _room(sockets)
    await lite(space, await db(make_member)("first"))  # the relay joins the room here
    layer = get_channel_layer()
    calls = []
    for name in ("new_channel", "group_add"):
        original = getattr(layer, name)

        def counted(*args, _original=original, _name=name, **kwargs):
            calls.append(_name)
            return _original(*args, **kwargs)

        monkeypatch.setattr(layer, name, counted)
    leo = await lite(space, await db(make_member)("leo"))
    assert calls == []
    assert leo.snapshot["you"]["role"] == "listener"
    consumers = _lite_consumers(space.pk)
    assert len(consumers) == 2 and all(c.lite for c in consumers)
    members = set().union(*(set(channels) for channels in layer.groups.values()))
    assert not any(c.channel_name in members for c in consumers)


async def test_a_lite_listener_gets_room_events_in_order(sockets, lite):
    """Room events reach a lite socket once each, in the order the services sent them."""
    space, host, host_socket = await _room(sockets)
    leo = await lite(space, await db(make_member)("leo"))
    mia = await lite(space, await db(make_member)("mia"))
    await leo.send({"type": "hand.raise"})  # sent once its batch is written
    await host_socket.receive_type("hand.raised", user_id=leo.user.pk)
    await host_socket.send({"type": "reaction.send", "emoji": "👏"})
    await host_socket.send({"type": "recording.set", "is_recording": True})
    for socket in (leo, mia):
        raised = await socket.receive_type("hand.raised")
        assert raised["user_id"] == leo.user.pk
        reaction = await socket.receive_type("reaction")
        assert (reaction["user_id"], reaction["emoji"]) == (host.pk, "👏")
        assert (await socket.receive_type("recording.changed"))["is_recording"] is True
        again = {"hand.raised", "reaction", "recording.changed"}
        assert not [e for e in await socket.drain() if e["type"] in again]  # each once


async def test_a_lite_listener_is_promoted_and_heard(sockets, lite):
    """Approved on stage, a lite listener's role changes, it unmutes and another lite
    listener hears it."""
    space, _host, host_socket = await _room(sockets)
    leo = await lite(space, await db(make_member)("leo"))
    mia = await lite(space, await db(make_member)("mia"))
    await leo.send({"type": "hand.raise"})
    await host_socket.receive_type("hand.raised", user_id=leo.user.pk)
    await host_socket.send({"type": "hand.approve", "user_id": leo.user.pk})
    changed = await leo.receive_type("role.changed", user_id=leo.user.pk)
    assert changed["role"] == "speaker"
    await leo.send({"type": "mute.set", "muted": False})
    await leo.receive_type("mute.changed", user_id=leo.user.pk, is_muted=False)

    await stream(leo, tone_frames(440, 75))
    frames = await collect_audio(mia, 40)

    assert all(wire.unpack(f).kind == wire.FrameKind.ROOM_MIX for f in frames)
    assert dominant_frequency(frames[-25:]) == pytest.approx(440, abs=15)


@pytest.mark.parametrize(("ban", "code"), [(False, 4001), (True, 4002)])
async def test_a_lite_listener_is_removed_or_banned(sockets, lite, ban, code):
    """Removed, the lite socket gets participant.removed, then closes 4001 (4002 banned);
    the other lite listeners only see the event."""
    space, _host, host_socket = await _room(sockets)
    troll = await lite(space, await db(make_member)("troll"))
    other = await lite(space, await db(make_member)("other"))
    await troll.send({"type": "hand.raise"})  # waits for its batch: the row exists
    await host_socket.receive_type("hand.raised", user_id=troll.user.pk)
    await host_socket.send({"type": "participant.remove", "user_id": troll.user.pk, "ban": ban})
    removed = await troll.receive_type("participant.removed")
    assert (removed["user_id"], removed["banned"]) == (troll.user.pk, ban)
    assert (await troll.receive_close())["code"] == code
    assert (await other.receive_type("participant.removed"))["user_id"] == troll.user.pk
    # Still open (drain fails on a close), and the event came once.
    assert not [e for e in await other.drain() if e["type"] == "participant.removed"]
    banned = await db(SpaceBan.objects.filter(space=space, user=troll.user).exists)()
    assert banned is ban


async def test_a_suspended_lite_listener_is_closed_4403(sockets, lite):
    """A suspension reaches the member's lite sockets (no personal group) and closes them."""
    space, _host, _host_socket = await _room(sockets)
    member = await db(make_member)("mo")
    tab_one = await lite(space, member)
    tab_two = await lite(space, member)
    staff = await db(make_member)("staff")
    staff.is_staff = True
    await db(staff.save)()
    await db(accounts_services.user_suspend)(user=member, by=staff, reason="spam")
    for tab in (tab_one, tab_two):
        assert (await tab.receive_close())["code"] == 4403


async def test_lite_listeners_see_the_space_end(sockets, lite):
    """The host ends the space: every lite socket gets space.ended, then closes 4410."""
    space, _host, host_socket = await _room(sockets)
    listeners = [await lite(space, await db(make_member)(name)) for name in ("leo", "mia")]
    await host_socket.send({"type": "space.end"})
    for socket in listeners:
        assert (await socket.receive_type("space.ended"))["reason"] == "ended"
        assert (await socket.receive_close())["code"] == 4410


async def test_leaving_from_one_lite_tab_closes_the_other(sockets, lite):
    """A member who leaves from one tab has their other lite tab closed 4000."""
    space, _host, _host_socket = await _room(sockets)
    member = await db(make_member)("mo")
    tab_one = await lite(space, member)
    tab_two = await lite(space, member)
    await tab_one.send({"type": "leave"})
    assert (await tab_two.receive_close())["code"] == 4000


async def test_the_newer_lite_tab_speaks_for_a_promoted_member(sockets, lite):
    """Two lite tabs of a member brought on stage and unmuted: the older one is superseded."""
    space, _host, host_socket = await _room(sockets)
    member = await db(make_member)("mo")
    older = await lite(space, member)
    newer = await lite(space, member)
    await newer.send({"type": "hand.raise"})
    await host_socket.receive_type("hand.raised", user_id=member.pk)
    await host_socket.send({"type": "hand.approve", "user_id": member.pk})
    for tab in (older, newer):
        await tab.receive_type("role.changed", user_id=member.pk)
    await newer.send({"type": "mute.set", "muted": False})
    await older.receive_type("stream.superseded")
    assert not any(e["type"] == "stream.superseded" for e in await newer.drain())


class _Consumer:
    """What the relay needs of a SpaceConsumer: what it was sent and what it handled."""

    def __init__(self, space_id: int, user_id: int, key: str) -> None:
        from types import SimpleNamespace

        self.space_id, self.user, self.socket_key = space_id, SimpleNamespace(pk=user_id), key
        self.joined, self.refusing = True, False
        self.relay_pending = self.relay_task = None
        self.sent: list[str] = []
        self.handled: list[str] = []

    async def send(self, text_data: str) -> None:
        self.sent.append(text_data)

    async def dispatch(self, message: dict) -> None:
        self.handled.append(message["type"])


def _event(kind: str, **fields) -> dict:
    return {"type": "space." + kind.replace(".", "_"), "space_id": 1, "event": fields}


async def test_events_before_a_socket_is_live_are_sent_after_its_snapshot_in_order():
    """Registered before its snapshot, a socket keeps the room's events until it is live,
    then sends them in order and runs their handlers; nothing falls between."""
    relay = room_relay()
    consumer = _Consumer(1, 7, "k")
    await relay.add(consumer)
    relay.handle(_event("reaction", type="reaction", user_id=3, emoji="👏"))
    relay.handle(_event("role.changed", type="role.changed", user_id=7))
    relay.handle({"type": "user.disconnect", "user_id": 7, "code": 4403, "reason": "r"})
    relay.handle({"type": "user.disconnect", "user_id": 8, "code": 4403, "reason": "r"})
    relay.handle(
        _event("reaction", type="reaction", user_id=3, emoji="🙌", space_id=2) | {"space_id": 2}
    )
    await relay.go_live(consumer)

    assert [json.loads(text)["type"] for text in consumer.sent] == ["reaction", "role.changed"]
    assert consumer.handled == ["space.reaction", "space.role_changed", "user.disconnect"]
    assert consumer.relay_pending is None
    relay.remove(consumer)
    assert relay.rooms == {} and 7 not in relay.members
