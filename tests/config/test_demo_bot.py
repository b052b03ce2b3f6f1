"""The demo bot (config.demo, started by ``serve`` in the embedded mode) is heard: a listener
who joins the demo space records its speech."""

import asyncio
import subprocess
import time

import numpy as np
import pytest

from accounts.services import auth_token_issue
from config import demo
from salon_client.client import SpaceClient
from tests.spaces.audio.signals import rms
from tests.spaces.factories import make_live_space, make_member

pytestmark = pytest.mark.slow


def test_a_listener_hears_the_demo_bot_talking(live_server_process, settings, tmp_path):
    """The bot's command (what serve runs) hosts the space and streams its clip on a loop; a
    listener's recording of the room has speech in it."""
    settings.DATA_DIR = tmp_path
    bot = make_member(demo.BOT_USERNAME, host=True)
    auth_token_issue(user=bot)
    space = make_live_space(bot, title=demo.BOT_SPACE_TITLE)
    demo.speech_clip(demo.demo_dir() / "bot.wav", demo.BOT_SCRIPT)
    listener_token = auth_token_issue(user=make_member("leo")).key
    server = live_server_process()
    command = demo.demo_bot_plan(server.url)
    log = open(tmp_path / "bot.log", "wb")  # noqa: SIM115 - closed below
    bot_process = subprocess.Popen(command, stdout=log, stderr=log)

    async def listen() -> np.ndarray:
        audience = SpaceClient(server.url, token=listener_token)
        await audience.connect(space.pk)
        deadline = time.monotonic() + 30
        # Wait on the condition (two seconds of the room heard with speech in it), not a delay.
        while time.monotonic() < deadline:
            pcm = audience.recorded_pcm()
            if len(pcm) > 2 * 48_000 and rms(pcm[-48_000:]) > 300:
                break
            await asyncio.sleep(0.2)
        await audience.close()
        return audience.recorded_pcm()

    try:
        pcm = asyncio.run(listen())
    finally:
        bot_process.terminate()
        bot_process.wait(timeout=10)
        log.close()
    assert len(pcm) > 2 * 48_000, (tmp_path / "bot.log").read_text()
    assert rms(pcm[-48_000:]) > 300, (tmp_path / "bot.log").read_text()
