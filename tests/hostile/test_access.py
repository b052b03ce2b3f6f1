"""Who may hear a room, and how fast someone stops being heard.

Already pinned elsewhere: who may join by visibility and the 4403/4002/4410 refusals
(``tests/spaces/test_consumers.py``), a demoted speaker going silent
(``tests/spaces/test_audio_transport.py``), suspension closing open sockets
(``tests/accounts/test_suspension.py``, ``tests/spaces/test_consumers.py``). What is added here:
nobody refused ever receives a single audio frame, a removed or suspended speaker stops being
heard even when their client ignores the close and keeps sending, and a closed space's page and
API (where its replay will be) stay hidden from non-members after it ends.
"""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from accounts import services as accounts_services
from config.asgi import application
from spaces import services
from spaces.audio import FRAME_SAMPLES
from tests.spaces.audio.signals import amplitude_at
from tests.spaces.factories import (
    SpaceSocket,
    cookie_socket,
    make_live_space,
    make_member,
    put_on_stage,
    session_cookie,
)
from tests.spaces.test_media import decode_mix

from .helpers import fresh_audio, talk_forever

pytestmark = pytest.mark.django_db(transaction=True)

db = sync_to_async
# A tone at 0.3 of full scale comes out at about 9,800; what leaks through Opus is under 300.
HEARD, SILENT = 3000, 300
# Ticks the mixer may have mixed before it learnt of a cut, still on their way (the bus, the
# fan-out) when the test sees the close: a loaded machine holds a few. "At once" within ticks
# is tests/spaces/test_streams.py's subject; here it is "never again, whatever the client sends".
IN_FLIGHT_TICKS = 10


async def _outputs_until_close(communicator, timeout: float = 10) -> list[dict]:
    outputs = []
    async with asyncio.timeout(timeout):
        while True:
            output = await communicator.receive_output(timeout=timeout + 5)
            outputs.append(output)
            if output["type"] == "websocket.close":
                return outputs


def _closed_invitation_room():
    host = make_member("hana", host=True)
    space = make_live_space(host, visibility="closed")
    guest, stranger = make_member("gia"), make_member("stan")
    services.space_invite(space=space, by=host, username=guest.username)
    return space, host, guest, stranger


async def test_a_stranger_to_a_closed_space_gets_not_one_frame(sockets):
    """While the host talks, an invitee hears the room; a stranger is closed with 4403 having
    received nothing but the close: no snapshot, no event, no audio."""
    space, host, guest, stranger = await db(_closed_invitation_room)()
    host_socket = await sockets.open(space.pk, host)
    await host_socket.send({"type": "mute.set", "muted": False})
    await host_socket.receive_type("mute.changed", user_id=host.pk)
    talking = asyncio.create_task(talk_forever(host_socket))
    try:
        guest_socket = await sockets.open(space.pk, guest)
        assert len(await fresh_audio(guest_socket, 10)) == 10

        intruder = await sockets.open(space.pk, stranger, expect_snapshot=False)
        outputs = await _outputs_until_close(intruder.communicator)
    finally:
        talking.cancel()

    assert outputs == [
        {"type": "websocket.close", "code": 4403, "reason": "this space is for invited members"}
    ]


async def test_a_banned_member_gets_not_one_frame(live_room, sockets):
    """Banned from a room that is talking: rejoining is refused with 4002 and nothing else."""
    sam = await db(make_member)("sam")
    socket = await sockets.open(live_room.space.pk, sam)
    await live_room.host_socket.send({"type": "participant.remove", "user_id": sam.pk, "ban": True})
    assert (await socket.receive_close())["code"] == 4002

    again = await sockets.open(live_room.space.pk, sam, expect_snapshot=False)
    outputs = await _outputs_until_close(again.communicator)

    assert [o["type"] for o in outputs] == ["websocket.close"]
    assert outputs[0]["code"] == 4002


def _end_closed_space(space, host) -> None:
    services.space_end(space=space, by=host)


@pytest.mark.parametrize("state", ["live", "ended"])
def test_a_closed_space_page_and_api_are_hidden_from_strangers(state):
    """A stranger gets 404 for a closed space's page and API resource, live or ended (the
    ended space's page is where its replay is offered); an invitee gets them."""
    space, host, guest, stranger = _closed_invitation_room()
    if state == "ended":
        _end_closed_space(space, host)

    def statuses(user) -> tuple[int, int]:
        page, api = Client(), APIClient()
        page.force_login(user)
        api.force_authenticate(user)
        return (
            page.get(f"/spaces/{space.pk}/").status_code,
            api.get(f"/api/v1/spaces/{space.pk}/").status_code,
        )

    assert statuses(stranger) == (404, 404)
    assert statuses(guest) == (200, 200)


async def _speaker_talking(room, sockets, username: str, frequency: int):
    """A member on stage, unmuted, talking a tone; the listener hears it."""
    speaker = await db(make_member)(username)
    socket = await sockets.open(room.space.pk, speaker)
    await db(put_on_stage)(room.space, room.host, speaker, "speaker")
    await socket.receive_type("role.changed", user_id=speaker.pk, role="speaker")
    await socket.send({"type": "mute.set", "muted": False})
    await socket.receive_type("mute.changed", user_id=speaker.pk)
    talking = asyncio.create_task(talk_forever(socket, frequency))
    heard = decode_mix(await fresh_audio(room.listener_socket, 50))
    assert amplitude_at(heard, frequency) > HEARD
    return speaker, socket, talking


async def _audio_after_cut(socket):
    """What the listener plays from the first tick mixed after a speaker was cut off."""
    frames = await fresh_audio(socket, IN_FLIGHT_TICKS + 50)
    return decode_mix(frames)[IN_FLIGHT_TICKS * FRAME_SAMPLES :]


async def _stop(task: asyncio.Task) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def test_a_removed_speaker_is_not_heard_even_if_their_client_keeps_sending(
    live_room, sockets
):
    """Removed while talking: their socket closes with 4001, and from then on the listener
    hears the host but not them, though their client goes on sending; back in the room, they
    are a listener whose frames are refused."""
    sam, sam_socket, talking = await _speaker_talking(live_room, sockets, "sam", 660)

    await live_room.host_socket.send({"type": "participant.remove", "user_id": sam.pk})
    assert (await sam_socket.receive_close())["code"] == 4001
    after = await _audio_after_cut(live_room.listener_socket)
    await _stop(talking)

    assert amplitude_at(after, 660) < SILENT
    assert amplitude_at(after, 440) > HEARD

    back = await sockets.open(live_room.space.pk, sam)
    assert back.snapshot["you"]["role"] == "listener"
    talking = asyncio.create_task(talk_forever(back, 660))
    try:
        await back.receive_type("error", code="not_publishing")
        again = decode_mix(await fresh_audio(live_room.listener_socket, 50))
    finally:
        await _stop(talking)
    assert amplitude_at(again, 660) < SILENT


def _suspend(user) -> None:
    staff = make_member("staff")
    type(staff).objects.filter(pk=staff.pk).update(is_staff=True, is_superuser=True)
    staff.refresh_from_db()
    accounts_services.user_suspend(user=user, by=staff, reason="abuse")


async def test_a_suspended_speaker_is_cut_off_everywhere_at_once(live_room, sockets):
    """Suspended while talking: their space socket and their notification socket close with
    4403, the listener stops hearing them though their client keeps sending, and neither their
    token nor their session opens a socket again."""
    sam, sam_socket, talking = await _speaker_talking(live_room, sockets, "sam", 660)
    cookie = await db(session_cookie)(sam)
    token = await db(lambda: Token.objects.get(user=sam).key)()
    notifications = WebsocketCommunicator(
        application,
        "/ws/notifications/",
        headers=[(b"host", b"127.0.0.1"), (b"origin", b"http://127.0.0.1"), (b"cookie", cookie)],
    )
    assert (await notifications.connect())[0]
    assert (await notifications.receive_json_from())["type"] == "hello"

    await db(_suspend)(sam)
    assert (await sam_socket.receive_close())["code"] == 4403
    assert (await notifications.receive_output(timeout=10))["code"] == 4403
    after = await _audio_after_cut(live_room.listener_socket)
    await _stop(talking)
    await notifications.disconnect()

    assert amplitude_at(after, 660) < SILENT
    assert amplitude_at(after, 440) > HEARD
    by_token = SpaceSocket(live_room.space.pk, token=token)
    by_cookie = cookie_socket(live_room.space.pk, cookie)
    for communicator in (by_token.communicator, by_cookie):
        assert (await communicator.connect())[0]
        outputs = await _outputs_until_close(communicator)
        assert [o["type"] for o in outputs] == ["websocket.close"]
        assert outputs[0]["code"] in (4401, 4403)
        await communicator.disconnect()
