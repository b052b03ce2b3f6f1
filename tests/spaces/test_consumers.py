"""The live control channel /ws/spaces/<id>/ driven through WebsocketCommunicator."""

from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.db import transaction
from django.utils import timezone

from accounts import services as accounts_services
from spaces import services
from spaces.models import Participant, Space, SpaceBan

from .factories import (
    SpaceSocket,
    cookie_socket,
    make_live_space,
    make_member,
    put_on_stage,
    session_cookie,
)

pytestmark = pytest.mark.django_db(transaction=True)

db = sync_to_async


async def _room(sockets, *, visibility="open"):
    host = await db(make_member)("hana", host=True)
    space = await db(make_live_space)(host, visibility=visibility)
    host_socket = await sockets.open(space.pk, host)
    return space, host, host_socket


async def test_snapshot_lists_the_room(sockets):
    """A member joining gets a snapshot with the space, the participants and their own role."""
    space, host, _ = await _room(sockets)
    listener = await db(make_member)("leo")
    socket = await sockets.open(space.pk, listener)
    snapshot = socket.snapshot
    assert snapshot["space"]["id"] == space.pk
    assert snapshot["space"]["host"]["id"] == host.pk
    assert {p["user_id"]: p["role"] for p in snapshot["participants"]} == {
        host.pk: "host",
        listener.pk: "listener",
    }
    assert snapshot["you"]["role"] == "listener" and snapshot["you"]["is_muted"] is True
    assert "👏" in snapshot["reactions"]


async def _audience_until(socket, check) -> dict:
    """The first audience.changed digest for which ``check`` holds."""
    while not check(event := await socket.receive_type("audience.changed")):
        pass
    return event


async def test_others_see_a_member_join(sockets):
    """The host's join is an event; a listener's reaches the room in the audience digest."""
    space, _, host_socket = await _room(sockets)
    listener = await db(make_member)("leo")
    await sockets.open(space.pk, listener)
    first = await host_socket.receive_type("participant.joined")
    assert first["participant"]["role"] == "host"  # the host's own join comes after the snapshot
    event = await _audience_until(
        host_socket, lambda e: listener.pk in {p["user_id"] for p in e["joined"]}
    )
    assert (event["participant_count"], event["listener_count"]) == (2, 1)


async def test_a_join_wave_reaches_members_as_digests_not_events(sockets):
    """Listeners joining are not one event each for every member: a listener already in the
    room gets no participant.joined, and the digests add up to every newcomer."""
    space, _, _host_socket = await _room(sockets)
    first = await sockets.open(space.pk, await db(make_member)("first"))
    newcomers = [await db(make_member)(f"wave{n}") for n in range(8)]
    for member in newcomers:
        await sockets.open(space.pk, member)

    heard: set[int] = set()
    newcomer_ids = {m.pk for m in newcomers}
    while not newcomer_ids <= heard:
        event = await first.receive()
        # (The host's own join may still be on its way to this socket: docs/protocol.md.)
        joined = event.get("participant", {}).get("user_id")
        assert not (event["type"] == "participant.joined" and joined in newcomer_ids), event
        if event["type"] == "audience.changed":
            heard |= {p["user_id"] for p in event["joined"]}
            last = event
    assert last["listener_count"] == len(newcomers) + 1


async def test_hand_raise_then_approve_is_seen_by_everyone(sockets):
    """Listener raises a hand, host approves: every client sees hand.raised, then role.changed."""
    space, host, host_socket = await _room(sockets)
    listener = await db(make_member)("leo")
    other = await db(make_member)("olga")
    listener_socket = await sockets.open(space.pk, listener)
    other_socket = await sockets.open(space.pk, other)
    await listener_socket.send({"type": "hand.raise"})
    for socket in (host_socket, listener_socket, other_socket):
        event = await socket.receive_type("hand.raised")
        assert event["user_id"] == listener.pk
    await host_socket.send({"type": "hand.approve", "user_id": listener.pk})
    for socket in (host_socket, listener_socket, other_socket):
        event = await socket.receive_type("role.changed")
        assert (event["user_id"], event["role"], event["previous_role"], event["by"]) == (
            listener.pk,
            "speaker",
            "listener",
            host.pk,
        )
    participant = await db(Participant.objects.get)(space=space, user=listener)
    assert participant.role == "speaker" and participant.is_muted and not participant.hand_raised


# --- who may do what, in which role -----------------------------------------------------------

# (command, needs a target with a raised hand, roles that may do it)
MATRIX = [
    ("hand.approve", True, {"host", "cohost"}),
    ("hand.dismiss", True, {"host", "cohost"}),
    ("speak.invite", False, {"host", "cohost"}),
    ("participant.remove", False, {"host", "cohost"}),
    ("cohost.add", False, {"host"}),
    ("speakers.mute_all", False, {"host", "cohost"}),
    ("space.end", False, {"host"}),
    ("recording.set", False, {"host"}),
]


@pytest.mark.parametrize("actor_role", ["listener", "speaker", "cohost", "host"])
@pytest.mark.parametrize(("command", "hand_raised", "allowed"), MATRIX)
async def test_permission_matrix(sockets, actor_role, command, hand_raised, allowed):
    """Moderation commands succeed for the roles allowed and are refused with 'forbidden'."""
    space, host, host_socket = await _room(sockets)
    target = await db(make_member)("tara")
    target_socket = await sockets.open(space.pk, target)
    if actor_role == "host":
        actor, actor_socket = host, host_socket
    else:
        actor = await db(make_member)("ari")
        actor_socket = await sockets.open(space.pk, actor)
        await db(put_on_stage)(space, host, actor, actor_role)
    if hand_raised:
        await target_socket.send({"type": "hand.raise"})
        await actor_socket.receive_type("hand.raised", user_id=target.pk)
    message = {"type": command, "user_id": target.pk, "is_recording": True}
    await actor_socket.send(
        {k: v for k, v in message.items() if k != "is_recording"}
        | ({"is_recording": True} if command == "recording.set" else {})
    )
    if actor_role in allowed:
        expected = {
            "hand.approve": "role.changed",
            "hand.dismiss": "hand.lowered",
            "speak.invite": "speak.invited",
            "participant.remove": "participant.removed",
            "cohost.add": "role.changed",
            "speakers.mute_all": None,
            "space.end": "space.ended",
            "recording.set": "recording.changed",
        }[command]
        if expected:
            event = await target_socket.receive_type(expected)
            assert event["type"] == expected
        else:
            assert "error" not in [e["type"] for e in await actor_socket.drain()]
    else:
        error = await actor_socket.receive_type("error")
        assert error["code"] == "forbidden", error


async def test_cohost_cannot_act_on_the_host(sockets):
    """A co-host may moderate speakers and listeners but not mute or remove the host."""
    space, host, _host_socket = await _room(sockets)
    cohost = await db(make_member)("cora")
    cohost_socket = await sockets.open(space.pk, cohost)
    await db(put_on_stage)(space, host, cohost, "cohost")
    await db(services.participant_set_muted)(space=space, user=host, muted=False)
    for command in ("speaker.mute", "participant.remove"):
        await cohost_socket.send({"type": command, "user_id": host.pk})
        assert (await cohost_socket.receive_type("error"))["code"] == "forbidden"


async def test_speaker_may_unmute_after_a_moderator_mute_but_not_after_demotion(sockets):
    """A speaker muted by the host unmutes themselves; moved back to listeners, they cannot."""
    space, host, host_socket = await _room(sockets)
    speaker = await db(make_member)("sam")
    speaker_socket = await sockets.open(space.pk, speaker)
    await db(put_on_stage)(space, host, speaker, "speaker")
    await speaker_socket.send({"type": "mute.set", "muted": False})
    assert (await host_socket.receive_type("mute.changed"))["is_muted"] is False
    await host_socket.send({"type": "speaker.mute", "user_id": speaker.pk})
    event = await speaker_socket.receive_type("mute.changed", is_muted=True)
    assert event["is_muted"] is True and event["muted_by_moderator"] is True
    await speaker_socket.send({"type": "mute.set", "muted": False})
    event = await speaker_socket.receive_type("mute.changed", is_muted=False)
    assert event["muted_by_moderator"] is False
    await host_socket.send({"type": "speaker.move_to_listeners", "user_id": speaker.pk})
    assert (await speaker_socket.receive_type("role.changed"))["role"] == "listener"
    await speaker_socket.send({"type": "mute.set", "muted": False})
    assert (await speaker_socket.receive_type("error"))["code"] == "forbidden"


async def test_invite_to_speak_accept(sockets):
    """Host invites a listener to speak; the listener accepts and is a speaker for everyone."""
    space, _host, host_socket = await _room(sockets)
    listener = await db(make_member)("leo")
    listener_socket = await sockets.open(space.pk, listener)
    await host_socket.send({"type": "speak.invite", "user_id": listener.pk})
    assert (await listener_socket.receive_type("speak.invited"))["user_id"] == listener.pk
    await listener_socket.send({"type": "speak.accept"})
    event = await host_socket.receive_type("role.changed")
    assert (event["user_id"], event["role"]) == (listener.pk, "speaker")


async def test_speaker_limit(sockets, settings):
    """Approving beyond SALON_SPACE_MAX_SPEAKERS is refused with role_limit."""
    settings.SALON_SPACE_MAX_SPEAKERS = 1
    space, host, host_socket = await _room(sockets)
    first, second = await db(make_member)("fred"), await db(make_member)("gina")
    await sockets.open(space.pk, first)
    second_socket = await sockets.open(space.pk, second)
    await db(put_on_stage)(space, host, first, "speaker")
    await second_socket.send({"type": "hand.raise"})
    await host_socket.receive_type("hand.raised", user_id=second.pk)
    await host_socket.send({"type": "hand.approve", "user_id": second.pk, "request_id": "r1"})
    error = await host_socket.receive_type("error")
    assert (error["code"], error["request_id"]) == ("role_limit", "r1"), error


async def test_reactions_are_broadcast_and_rate_limited(sockets, settings):
    """Reactions from the fixed set reach everyone; beyond the rate they are refused."""
    settings.SALON_SPACE_REACTION_RATE = (2, 60)
    space, _host, host_socket = await _room(sockets)
    listener = await db(make_member)("leo")
    listener_socket = await sockets.open(space.pk, listener)
    for _ in range(2):
        await listener_socket.send({"type": "reaction.send", "emoji": "👏"})
        assert (await host_socket.receive_type("reaction"))["emoji"] == "👏"
    await listener_socket.send({"type": "reaction.send", "emoji": "👏"})
    assert (await listener_socket.receive_type("error"))["code"] == "rate_limited"
    await listener_socket.send({"type": "reaction.send", "emoji": "💩"})
    assert (await listener_socket.receive_type("error"))["code"] == "invalid"


async def test_malformed_and_unknown_messages_get_errors(sockets):
    """Garbage, unknown types, missing fields and binary frames get error events, no crash."""
    _space, _, host_socket = await _room(sockets)
    communicator = host_socket.communicator
    await communicator.send_to(text_data="not json")
    assert (await host_socket.receive_type("error"))["code"] == "malformed"
    await host_socket.send({"type": "fly"})
    assert (await host_socket.receive_type("error"))["code"] == "unknown_type"
    await host_socket.send({"type": "hand.approve"})
    assert (await host_socket.receive_type("error"))["code"] == "malformed"
    await host_socket.send({"type": "hand.approve", "user_id": "x"})
    assert (await host_socket.receive_type("error"))["code"] == "invalid"
    await communicator.send_to(bytes_data=b"\x00\x01")
    assert (await host_socket.receive_type("error"))["code"] == "bad_audio_frame"
    await host_socket.send(["a", "list"])
    assert (await host_socket.receive_type("error"))["code"] == "malformed"
    await host_socket.send({"type": "recording.set", "is_recording": True})
    assert (await host_socket.receive_type("recording.changed"))["is_recording"] is True


async def test_the_host_switches_music_mode_over_the_socket(sockets):
    """audio_mode.set: everyone gets audio_mode.changed and a newcomer's snapshot says music;
    a listener is refused, and a bad value or a missing key is an error, not a change."""
    space, host, host_socket = await _room(sockets)
    listener = await db(make_member)("leo")
    listener_socket = await sockets.open(space.pk, listener)
    assert listener_socket.snapshot["space"]["audio_mode"] == "speech"

    await listener_socket.send({"type": "audio_mode.set", "audio_mode": "music"})
    assert (await listener_socket.receive_type("error"))["code"] == "forbidden"
    await host_socket.send({"type": "audio_mode.set", "audio_mode": "loud", "request_id": "q"})
    error = await host_socket.receive_type("error")
    assert (error["code"], error["request_id"]) == ("invalid", "q")
    await host_socket.send({"type": "audio_mode.set"})
    assert (await host_socket.receive_type("error"))["code"] == "malformed"

    await host_socket.send({"type": "audio_mode.set", "audio_mode": "music"})
    event = await listener_socket.receive_type("audio_mode.changed")
    assert (event["audio_mode"], event["by"]) == ("music", host.pk)
    newcomer = await sockets.open(space.pk, await db(make_member)("nia"))
    assert newcomer.snapshot["space"]["audio_mode"] == "music"


# --- who may join -----------------------------------------------------------------------------


def _relate(host, member, relation, space):
    from accounts.models import Follow

    if relation == "followed":
        Follow.objects.create(follower=host, followee=member)
    elif relation == "invited":
        services.space_invite(space=space, by=host, username=member.username)


@pytest.mark.parametrize(
    ("visibility", "relation", "admitted"),
    [
        ("open", "stranger", True),
        ("followers", "stranger", False),
        ("followers", "followed", True),
        ("followers", "invited", True),
        ("closed", "stranger", False),
        ("closed", "followed", False),
        ("closed", "invited", True),
    ],
)
async def test_visibility_decides_who_joins(sockets, visibility, relation, admitted):
    """Open admits members, followers admits people the host follows, closed only invitees."""
    host = await db(make_member)("hana", host=True)
    space = await db(make_live_space)(host, visibility=visibility)
    member = await db(make_member)("mo")
    await db(_relate)(host, member, relation, space)
    socket = await sockets.open(space.pk, member, expect_snapshot=False)
    if admitted:
        assert (await socket.receive())["type"] == "snapshot"
    else:
        close = await socket.receive_close()
        assert close["code"] == 4403


async def test_unknown_and_ended_spaces(sockets):
    """No such space closes with 4404; an ended one with 4410."""
    host = await db(make_member)("hana", host=True)
    space = await db(make_live_space)(host)
    await db(services.space_end)(space=space, by=host)
    socket = await sockets.open(space.pk, host, expect_snapshot=False)
    assert (await socket.receive_close())["code"] == 4410
    socket = await sockets.open(space.pk + 1000, host, expect_snapshot=False)
    assert (await socket.receive_close())["code"] == 4404


async def test_anonymous_is_refused():
    """A socket without session or token closes with 4401."""
    socket = SpaceSocket(1)
    await socket.connect()
    close = await socket.receive_close()
    assert close == {"type": "websocket.close", "code": 4401, "reason": "authentication required"}
    await socket.disconnect()


async def test_session_cookie_joins():
    """A browser's session cookie (same origin) authenticates the socket."""
    host = await db(make_member)("hana", host=True)
    space = await db(make_live_space)(host)
    communicator = cookie_socket(space.pk, await db(session_cookie)(host))
    connected, _ = await communicator.connect()
    assert connected
    assert (await communicator.receive_json_from())["type"] == "snapshot"
    await communicator.disconnect()


async def test_capacity(sockets, settings):
    """Listeners beyond SALON_SPACE_CAPACITY are refused with 4409; the host still gets in."""
    settings.SALON_SPACE_CAPACITY = 1
    host = await db(make_member)("hana", host=True)
    space = await db(make_live_space)(host)
    await sockets.open(space.pk, await db(make_member)("first"))
    late = await sockets.open(space.pk, await db(make_member)("late"), expect_snapshot=False)
    close = await late.receive_close()
    assert (close["code"], close["reason"]) == (4409, "this space is full")
    assert (await sockets.open(space.pk, host)).snapshot["you"]["role"] == "host"


async def test_ban_closes_every_tab_and_keeps_the_member_out(sockets):
    """A banned member's sockets close at once with 4002, others see it, rejoining is refused."""
    space, _host, host_socket = await _room(sockets)
    troll = await db(make_member)("troll")
    tab_one = await sockets.open(space.pk, troll)
    tab_two = await sockets.open(space.pk, troll)
    await host_socket.send({"type": "participant.remove", "user_id": troll.pk, "ban": True})
    event = await host_socket.receive_type("participant.removed")
    assert (event["user_id"], event["banned"]) == (troll.pk, True)
    for tab in (tab_one, tab_two):
        assert (await tab.receive_close())["code"] == 4002
    assert await db(SpaceBan.objects.filter(space=space, user=troll).exists)()
    again = await sockets.open(space.pk, troll, expect_snapshot=False)
    assert (await again.receive_close())["code"] == 4002


async def test_remove_without_ban_closes_with_4001_and_allows_return(sockets):
    """A removed (not banned) member is closed with 4001 and may come back."""
    space, _host, host_socket = await _room(sockets)
    member = await db(make_member)("mo")
    socket = await sockets.open(space.pk, member)
    await host_socket.send({"type": "participant.remove", "user_id": member.pk})
    assert (await socket.receive_close())["code"] == 4001
    assert (await sockets.open(space.pk, member)).snapshot["you"]["role"] == "listener"


async def test_blocked_member_cannot_join(sockets):
    """A member the host blocked (or who blocked the host) is refused with 4403 and a reason."""
    host = await db(make_member)("hana", host=True)
    space = await db(make_live_space)(host)
    member = await db(make_member)("mo")
    await db(accounts_services.block_create)(blocker=member, blocked=host)
    socket = await sockets.open(space.pk, member, expect_snapshot=False)
    close = await socket.receive_close()
    assert (close["code"], close["reason"]) == (4403, "you cannot join this host's spaces")


async def test_suspended_member_is_refused():
    """A suspended member's session is refused with 4403 'your account is suspended'."""
    host = await db(make_member)("hana", host=True)
    space = await db(make_live_space)(host)
    member = await db(make_member)("mo")
    cookie = await db(session_cookie)(member)
    admin = await db(make_member)("root")
    await db(lambda: type(admin).objects.filter(pk=admin.pk).update(is_staff=True))()
    admin = await db(type(admin).objects.get)(pk=admin.pk)
    await db(accounts_services.user_suspend)(user=member, by=admin, reason="spam")
    communicator = cookie_socket(space.pk, cookie)
    await communicator.connect()
    close = await communicator.receive_output()
    assert close == {"type": "websocket.close", "code": 4403, "reason": "your account is suspended"}
    await communicator.disconnect()


async def test_suspension_closes_an_open_space_socket(sockets):
    """Suspending a member closes the space socket they have open (member group)."""
    space, _host, _ = await _room(sockets)
    member = await db(make_member)("mo")
    socket = await sockets.open(space.pk, member)
    admin = await db(make_member)("root")
    await db(lambda: type(admin).objects.filter(pk=admin.pk).update(is_staff=True))()
    admin = await db(type(admin).objects.get)(pk=admin.pk)
    await db(accounts_services.user_suspend)(user=member, by=admin, reason="spam")
    assert (await socket.receive_close())["code"] == 4403


def _notify(user_id: int) -> None:
    from accounts.realtime import notify_user

    with transaction.atomic():
        notify_user(user_id=user_id, payload={"event": "voicetweet.ready", "id": 1})


async def test_a_notification_leaves_the_members_space_socket_working(sockets):
    """Notifications go to every socket of the member: the space socket lets them be. (It had
    no handler for them and crashed, e.g. when the host's voice tweet became ready.)"""
    _space, host, host_socket = await _room(sockets)

    await db(_notify)(host.pk)
    await host_socket.send({"type": "recording.set", "is_recording": True, "request_id": "r"})

    assert (await host_socket.receive_type("recording.changed"))["is_recording"] is True


async def test_a_failing_handler_closes_with_1011_and_counts_the_member_out(sockets, monkeypatch):
    """Whatever fails inside the consumer, the socket closes with 1011 and its member is
    counted out, instead of a dead consumer whose heartbeat keeps a ghost participant."""
    from spaces.consumers import SpaceConsumer

    space, _host, host_socket = await _room(sockets)
    member = await db(make_member)("mo")
    socket = await sockets.open(space.pk, member)

    async def broken(self, message):
        raise RuntimeError("a bug")

    monkeypatch.setattr(SpaceConsumer, "space_recording_changed", broken)
    await host_socket.send({"type": "recording.set", "is_recording": True})
    closed = await socket.receive_close()
    await socket.communicator.disconnect()

    assert (closed["code"], closed["reason"]) == (1011, "server error; reconnect")
    count = await db(lambda: Participant.objects.get(space=space, user=member).connection_count)()
    assert count == 0


# --- ending, presence, grace ------------------------------------------------------------------


def _admin_end(space_id: int) -> int:
    from django.test import Client

    admin = make_member("root")
    type(admin).objects.filter(pk=admin.pk).update(is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(admin)
    response = client.post(
        "/admin/spaces/space/", {"action": "end_now", "_selected_action": [space_id]}
    )
    return response.status_code


async def test_end_by_admin_closes_every_socket_and_is_audited(sockets):
    """The admin's "end space now" reaches every open socket at once (4410) and is audited."""
    from accounts.models import AuditEntry

    space, _host, host_socket = await _room(sockets)
    listeners = [await sockets.open(space.pk, await db(make_member)(f"l{i}")) for i in range(3)]
    assert await db(_admin_end)(space.pk) == 302
    for socket in (host_socket, *listeners):
        event = await socket.receive_type("space.ended")
        assert event["reason"] == "ended_by_admin"
        assert (await socket.receive_close())["code"] == 4410
    space = await db(Space.objects.get)(pk=space.pk)
    assert space.state == "ended"
    assert await db(AuditEntry.objects.filter(action="space.end").exists)()


async def test_host_ends_the_space(sockets):
    """Only the host ends the space; everyone gets space.ended and is closed."""
    space, host, host_socket = await _room(sockets)
    listener_socket = await sockets.open(space.pk, await db(make_member)("leo"))
    await host_socket.send({"type": "space.end"})
    assert (await listener_socket.receive_type("space.ended"))["by"] == host.pk
    assert (await listener_socket.receive_close())["code"] == 4410


async def test_no_event_when_the_transaction_rolls_back(sockets):
    """A service inside a transaction that rolls back sends nothing to the room."""
    space, _host, host_socket = await _room(sockets)
    listener = await db(make_member)("leo")
    listener_socket = await sockets.open(space.pk, listener)
    await host_socket.drain()
    await listener_socket.drain()

    def raise_then_roll_back():
        with pytest.raises(RuntimeError), transaction.atomic():
            services.hand_raise(space=space, user=listener)
            raise RuntimeError("roll back")

    await db(raise_then_roll_back)()
    assert await host_socket.nothing(0.5)
    assert await listener_socket.nothing(0.1)
    participant = await db(Participant.objects.get)(space=space, user=listener)
    assert participant.hand_raised is False


async def test_leave_closes_the_members_other_tabs(sockets):
    """Leaving from one tab removes the member; their other tab closes, others see them go."""
    space, _host, host_socket = await _room(sockets)
    member = await db(make_member)("mo")
    tab_one = await sockets.open(space.pk, member)
    tab_two = await sockets.open(space.pk, member)
    await tab_one.send({"type": "leave"})
    for tab in (tab_one, tab_two):
        assert (await tab.receive_close())["code"] == 4000
    event = await _audience_until(host_socket, lambda e: member.pk in e["left"])
    assert event["listener_count"] == 0


def _age_participant(space, user, *, seconds: int) -> None:
    Participant.objects.filter(space=space, user=user).update(
        last_seen=timezone.now() - timedelta(seconds=seconds)
    )


def _host_absent_for(space, *, seconds: int) -> None:
    Space.objects.filter(pk=space.pk).update(
        host_absent_since=timezone.now() - timedelta(seconds=seconds)
    )


def _sweep_later(seconds: int) -> dict:
    return services.space_sweep(now=timezone.now() + timedelta(seconds=seconds))


async def test_presence_two_tabs_then_timeout(sockets):
    """One of two tabs closing keeps the member; the last one closing removes them after the
    presence timeout, and the room hears of it in the audience digest."""
    space, _host, host_socket = await _room(sockets)
    member = await db(make_member)("mo")
    tab_one = await sockets.open(space.pk, member)
    tab_two = await sockets.open(space.pk, member)
    await tab_one.disconnect()
    assert (await db(_sweep_later)(20))["removed"] == 0
    await tab_two.disconnect()
    assert (await db(_sweep_later)(5))["removed"] == 0
    assert (await db(_sweep_later)(20))["removed"] == 1
    event = await _audience_until(host_socket, lambda e: member.pk in e["left"])
    assert (event["participant_count"], event["listener_count"]) == (1, 0)


async def test_no_ghosts_after_a_process_died(sockets):
    """A participant whose sockets stopped heartbeating (process died) is swept as stale."""
    space, _host, host_socket = await _room(sockets)
    member = await db(make_member)("mo")
    # A socket on a server process that then died: counted, but never heartbeats or decrements.
    await db(services.participant_join)(space_id=space.pk, user=member)
    assert (await db(_sweep_later)(20))["removed"] == 0  # still counted as connected
    await db(_age_participant)(space, member, seconds=45)
    assert (await db(services.space_sweep)())["removed"] == 1
    await _audience_until(host_socket, lambda e: member.pk in e["left"])
    assert not await db(Participant.objects.filter(space=space, user=member).exists)()


async def test_host_grace_hands_the_space_to_a_cohost(sockets):
    """The host gone past the grace period: the co-host present becomes host, for everyone."""
    space, host, host_socket = await _room(sockets)
    cohost = await db(make_member)("cora")
    cohost_socket = await sockets.open(space.pk, cohost)
    await db(put_on_stage)(space, host, cohost, "cohost")
    await host_socket.disconnect()
    await db(_sweep_later)(20)  # host removed by presence; grace starts now
    assert (await db(services.space_sweep)())["host_grace_applied"] == 0
    await db(_host_absent_for)(space, seconds=301)
    assert (await db(services.space_sweep)())["host_grace_applied"] == 1
    event = await cohost_socket.receive_type("role.changed")
    while event["user_id"] != cohost.pk or event["role"] != "host":
        event = await cohost_socket.receive_type("role.changed")
    space = await db(Space.objects.get)(pk=space.pk)
    assert (space.state, space.host_id) == ("live", cohost.pk)


async def test_host_grace_ends_a_space_without_cohost(sockets):
    """The host gone past the grace period with no co-host: the space ends for everyone."""
    space, _host, host_socket = await _room(sockets)
    listener_socket = await sockets.open(space.pk, await db(make_member)("leo"))
    await host_socket.disconnect()
    await db(_sweep_later)(20)
    await db(_host_absent_for)(space, seconds=301)
    await db(services.space_sweep)()
    assert (await listener_socket.receive_type("space.ended"))["reason"] == "host_left"
    assert (await listener_socket.receive_close())["code"] == 4410
