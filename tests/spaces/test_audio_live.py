"""The space socket's limits and large rooms through real daphne (``manage.py serve``).

WebsocketCommunicator tests skip the websocket server; these run through autobahn, which has
rules of its own about close codes and message sizes.
"""

import asyncio

import pytest
from django.utils import timezone
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from accounts.services import auth_token_issue
from spaces.models import Participant

from .factories import make_live_space, make_member
from .test_media import tone_frames

pytestmark = pytest.mark.slow


def _url(server, space_id):
    return server.url.replace("http", "ws") + f"/ws/spaces/{space_id}/"


async def _unmuted_host_socket(server, space, token):
    socket = await connect(
        _url(server, space.pk), additional_headers={"Authorization": f"Token {token}"}
    )
    await socket.recv()  # snapshot
    await socket.send('{"type": "mute.set", "muted": false}')
    while '"mute.changed"' not in await socket.recv():
        pass
    return socket


async def _close_of(socket) -> tuple[int, str]:
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            await asyncio.wait_for(socket.recv(), timeout=15)
    return closed.value.rcvd.code, closed.value.rcvd.reason


@pytest.fixture
def live_room(live_server_process):
    host = make_member("hana", host=True)
    space = make_live_space(host)
    return live_server_process(), space, auth_token_issue(user=host).key


def test_flooding_speaker_is_closed_with_1008_through_daphne(live_room):
    """Far faster than real time: the speaker's socket closes with 1008 and its reason."""
    server, space, token = live_room

    async def flood():
        socket = await _unmuted_host_socket(server, space, token)
        for frame in tone_frames(440, 400):
            await socket.send(frame)
        return await _close_of(socket)

    assert asyncio.run(flood()) == (1008, "too many audio frames")


def test_oversized_audio_frame_is_closed_with_1009_through_daphne(live_room):
    """A binary message larger than any Opus frame, yet under daphne's limit: 1009."""
    server, space, token = live_room

    async def oversized():
        socket = await _unmuted_host_socket(server, space, token)
        await socket.send(b"\x01" + b"\x00" * 3000)
        return await _close_of(socket)

    assert asyncio.run(oversized()) == (1009, "audio frame too large")


def test_a_room_whose_snapshot_exceeds_the_message_limit_still_admits(live_server_process):
    """The size limit guards what clients send; a big room's snapshot still goes out."""
    host = make_member("hana", host=True)
    crowd = [make_member(f"listener{n:03d}") for n in range(120)]
    space = make_live_space(host)
    # Listeners connected elsewhere: the server's presence sweep (its in-process beat) keeps
    # them, as it keeps members whose sockets are open.
    Participant.objects.bulk_create(
        Participant(
            space=space, user=user, role="listener", connection_count=1, last_seen=timezone.now()
        )
        for user in crowd
    )
    newcomer = make_member("late")
    token = auth_token_issue(user=newcomer).key
    # A snapshot lists at most 50 listeners by name: a small limit makes this one too big.
    limit = 4096
    server = live_server_process(
        SALON_WEBSOCKET_MAX_MESSAGE_SIZE=str(limit), SALON_WEBSOCKET_MAX_FRAME_SIZE=str(limit)
    )

    async def join():
        url = _url(server, space.pk)
        async with connect(url, additional_headers={"Authorization": f"Token {token}"}) as socket:
            return await asyncio.wait_for(socket.recv(), timeout=15)

    snapshot = asyncio.run(join())
    assert len(snapshot) > limit
    assert '"type": "snapshot"' in snapshot and '"listener119"' in snapshot
