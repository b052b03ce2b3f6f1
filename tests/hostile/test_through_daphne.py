"""Hostile clients against a real ``manage.py serve``: what daphne and autobahn themselves decide
(message size, UTF-8, handshakes), with a listener on the same
server who must keep hearing the host throughout.

Pinned elsewhere: binary 1009 and audio-flood 1008 through daphne (``tests/spaces/
test_audio_live.py``).
"""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from accounts.services import auth_token_issue
from tests.spaces.factories import make_live_space, make_member, session_cookie

from .helpers import speaker_frames

pytestmark = pytest.mark.slow


def _url(server, space_id: int) -> str:
    return server.url.replace("http", "ws") + f"/ws/spaces/{space_id}/"


async def _close_code(socket) -> tuple[int, str]:
    with pytest.raises(ConnectionClosed) as closed:
        async with asyncio.timeout(15):
            while True:
                await socket.recv()
    return closed.value.rcvd.code, closed.value.rcvd.reason


async def _talk(socket) -> None:
    loop = asyncio.get_running_loop()
    due = loop.time()
    for frame in speaker_frames():
        await socket.send(frame)
        due = max(due + 0.02, loop.time() - 0.04)
        await asyncio.sleep(max(0.0, due - loop.time()))


async def _frames(socket, count: int) -> None:
    """Until ``count`` audio frames arrived on ``socket`` (a listener that reads)."""
    received = 0
    async with asyncio.timeout(15):
        while received < count:
            if isinstance(await socket.recv(), bytes):
                received += 1


def test_hostile_clients_through_daphne_leave_the_listener_hearing(live_server_process):
    """Oversized text (1009), a text frame that is not UTF-8 (1007), a token with a NUL byte
    (4401) and a cookie from a foreign origin (403): each is refused in its own way, the server
    logs no crash, and the listener on the same server hears the host all along."""
    host, listener, mallory = (make_member(n, host=n == "hana") for n in ("hana", "leo", "mal"))
    space = make_live_space(host)
    tokens = {user: auth_token_issue(user=user).key for user in (host, listener, mallory)}
    cookie = session_cookie(mallory).decode()
    server = live_server_process()
    url = _url(server, space.pk)

    def auth(user):
        return {"Authorization": f"Token {tokens[user]}"}

    async def scenario():
        host_socket = await connect(url, additional_headers=auth(host))
        await host_socket.recv()  # snapshot
        await host_socket.send('{"type": "mute.set", "muted": false}')
        while '"mute.changed"' not in await host_socket.recv():
            pass
        talking = asyncio.create_task(_talk(host_socket))
        # Drain the host's own socket, as a client would.
        draining = asyncio.create_task(_drain(host_socket))
        leo = await connect(url, additional_headers=auth(listener))
        await _frames(leo, 25)
        outcomes = {}

        async with connect(url, additional_headers=auth(mallory), max_size=None) as hostile:
            await hostile.recv()
            await hostile.send('{"type": "' + "x" * 40_000 + '"}')
            outcomes["oversized"] = await _close_code(hostile)
        await _frames(leo, 25)

        async with connect(url, additional_headers=auth(mallory)) as hostile:
            await hostile.recv()
            # websockets will not send invalid UTF-8 as text; write the frame ourselves.
            await hostile.send(b"\xff\xfe not utf-8 \xc3\x28", text=True)
            outcomes["not utf-8"] = await _close_code(hostile)
        await _frames(leo, 25)

        # A token with a NUL byte: refused like any unknown token, not a crash.
        async with connect(url + "?token=%00abc") as hostile:
            outcomes["nul token"] = await _close_code(hostile)
        await _frames(leo, 25)

        talking.cancel()
        draining.cancel()
        for task in (talking, draining):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await leo.close()
        await host_socket.close()
        return outcomes

    outcomes = asyncio.run(scenario())

    assert outcomes["oversized"][0] == 1009
    assert outcomes["not utf-8"][0] == 1007
    assert outcomes["nul token"] == (4401, "authentication required")
    with pytest.raises(InvalidStatus) as refused:
        asyncio.run(_open(url, {"Origin": "https://evil.example", "Cookie": cookie}))
    assert refused.value.response.status_code == 403
    assert "Exception inside application" not in server.log()


async def _open(url, headers):
    async with connect(url, additional_headers=headers):
        pass


async def _drain(socket) -> None:
    with contextlib.suppress(ConnectionClosed):
        async for _ in socket:
            pass
