"""The media path of its own (spaces/live/media.py, MediaLoop): through real daphne, a main event
loop that is stuck does not stop the room's audio reaching its listeners."""

import asyncio
import json
import time
import urllib.request

import pytest
from websockets.asyncio.client import connect

from accounts.services import auth_token_issue

from .factories import make_live_space, make_member
from .test_audio_live import _unmuted_host_socket, _url
from .test_media import tone_frames

pytestmark = pytest.mark.slow

BLOCK_MS = 300


def _block_server_loop(server, ms: int) -> dict:
    with urllib.request.urlopen(f"{server.url}/test/block-loop?ms={ms}", timeout=30) as response:  # noqa: S310
        return json.load(response)


def test_listeners_keep_hearing_the_room_while_the_main_loop_is_blocked(live_server_process):
    """A handler holds daphne's loop for 300 ms: the ticks the mixer makes meanwhile (what the
    speaker's jitter buffer held, then the silent tail) still reach the listener during the
    block, written by the media thread. On the daphne loop they would all wait for it."""
    host, listener = make_member("hana", host=True), make_member("leo")
    space = make_live_space(host)
    host_token = auth_token_issue(user=host).key
    listener_token = auth_token_issue(user=listener).key
    server = live_server_process(DJANGO_SETTINGS_MODULE="tests.blocking_settings")

    async def scenario():
        speaker = await _unmuted_host_socket(server, space, host_token)
        ear = await connect(
            _url(server, space.pk), additional_headers={"Authorization": f"Token {listener_token}"}
        )
        await ear.recv()  # snapshot
        arrivals: list[float] = []
        hearing = asyncio.Event()

        async def listen():
            async for message in ear:
                if isinstance(message, bytes):
                    arrivals.append(time.monotonic())
                    if len(arrivals) >= 10:
                        hearing.set()

        async def speak():
            for frame in tone_frames(440, 200):
                await speaker.send(frame)
                await asyncio.sleep(0.02)  # a speaker's pace, not a synchronisation

        listening = asyncio.create_task(listen())
        speaking = asyncio.create_task(speak())
        await asyncio.wait_for(hearing.wait(), timeout=20)
        block = await asyncio.to_thread(_block_server_loop, server, BLOCK_MS)
        speaking.cancel()
        await speaker.close()
        await ear.close()
        await asyncio.gather(listening, speaking, return_exceptions=True)
        return block, arrivals

    block, arrivals = asyncio.run(scenario())
    assert block["on_main_thread"], "the handler must have held daphne's own loop"
    during = [t for t in arrivals if block["start"] < t < block["end"]]
    assert len(during) >= 5, f"{len(during)} frames arrived during the block"
