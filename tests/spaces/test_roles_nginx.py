"""docs/deploy.md's nginx in front of a ``--role web`` and a ``--role live`` process: a listener
hears a speaker through nginx (the space sockets go to the live process), pages and the API
answer (from the web process), and neither process serves what belongs to the other."""

from __future__ import annotations

import asyncio
import json

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from accounts.services import auth_token_issue
from config.roles import CLOSE_MISDIRECTED
from spaces.audio import wire
from tests.hostile.test_nginx import NGINX, SECRET_KEY, Nginx, _get, _tls_context

from .factories import make_live_space, make_member
from .test_media import dominant_frequency, tone_frames

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def split_front(live_server_process, tmp_path, settings):
    """nginx as documented, routing to one web and one live process (production settings)."""
    if not NGINX.exists():
        pytest.fail("Debian's nginx is missing: make test-deps installs it")
    settings.SECRET_KEY = SECRET_KEY
    static_root = tmp_path / "static"
    static_root.mkdir()
    environment = {
        "DJANGO_SETTINGS_MODULE": "config.settings_production",
        "DJANGO_SECRET_KEY": SECRET_KEY,
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "SALON_TRUSTED_PROXIES": "127.0.0.1",
        # The health checks reach daphne directly over HTTP, which would be redirected.
        "DJANGO_SECURE_SSL_REDIRECT": "0",
    }
    web = live_server_process("--role", "web", "--proxy-headers", **environment)
    live = live_server_process("--role", "live", "--proxy-headers", **environment)
    directory = tmp_path / "nginx"
    directory.mkdir()
    nginx = Nginx(directory, static_root=static_root, web_port=web.port, live_port=live.port)
    yield nginx, web, live
    nginx.stop()


async def _socket(url: str, token: str):
    socket = await connect(
        url, ssl=_tls_context() if url.startswith("wss") else None,
        additional_headers={"Authorization": f"Token {token}"},
    )  # fmt: skip
    return socket


async def _first_message(socket) -> dict:
    while not isinstance(message := await socket.recv(), str):
        pass
    return json.loads(message)


def test_a_listener_hears_a_speaker_through_nginx_in_front_of_web_and_live(split_front):
    """Through nginx: the host speaks, a listener hears 440 Hz; the feed page and the API answer;
    straight at the processes, the web one closes a space socket with 4421 and the live one
    answers a page with 404."""
    nginx, web, live = split_front
    host, listener = make_member("hana", host=True), make_member("leo")
    space = make_live_space(host)
    host_token = auth_token_issue(user=host).key
    listener_token = auth_token_issue(user=listener).key
    port = nginx.https_port
    space_url = f"wss://127.0.0.1:{port}/ws/spaces/{space.pk}/"

    async def talk_and_listen() -> list[bytes]:
        speaker = await _socket(space_url, host_token)
        hearer = await _socket(space_url, listener_token)
        try:
            async with asyncio.timeout(30):
                assert (await _first_message(speaker))["type"] == "snapshot"
                assert (await _first_message(hearer))["type"] == "snapshot"
                await speaker.send(json.dumps({"type": "mute.set", "muted": False}))
                while (await _first_message(speaker))["type"] != "mute.changed":
                    pass
                heard: list[bytes] = []

                async def listen() -> None:
                    while len(heard) < 60:
                        message = await hearer.recv()
                        if isinstance(message, bytes):
                            heard.append(message)

                listening = asyncio.ensure_future(listen())
                for frame in tone_frames(440, 500):  # paced as a microphone would send
                    if listening.done():
                        break
                    await speaker.send(frame)
                    await asyncio.sleep(0.02)
                await listening
                return heard
        finally:
            await speaker.close()
            await hearer.close()

    heard = asyncio.run(talk_and_listen())
    assert all(wire.unpack(frame).kind == wire.FrameKind.ROOM_MIX for frame in heard)
    assert dominant_frequency(heard[-25:]) == pytest.approx(440, abs=15)

    status, _, _ = _get(port, "/spaces/")
    assert status in (200, 302), nginx.errors()
    status, _, body = _get(port, "/api/v1/spaces/", Authorization=f"Token {host_token}")
    assert status == 200 and space.pk in [s["id"] for s in json.loads(body)]

    async def straight_at_web() -> tuple[int, str]:
        url = web.url.replace("http", "ws") + f"/ws/spaces/{space.pk}/"
        socket = await _socket(url, listener_token)
        with pytest.raises(ConnectionClosed) as closed:
            async with asyncio.timeout(15):
                while True:
                    await socket.recv()
        return closed.value.rcvd.code, closed.value.rcvd.reason

    code, reason = asyncio.run(straight_at_web())
    assert code == CLOSE_MISDIRECTED and "live process" in reason
    assert _get(live.port, "/spaces/", tls=False)[0] == 404
