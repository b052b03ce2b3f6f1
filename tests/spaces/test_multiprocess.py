"""Audio across daphne processes: members of one room on different servers hear each other."""

import asyncio

import pytest
from django.db import connection

from accounts.services import auth_token_issue
from salon_client.client import SpaceClient
from spaces.audio import SAMPLE_RATE

from .audio.signals import dominant_frequency, magnitude_at, write_tone
from .factories import make_live_space, make_member, put_on_stage

pytestmark = pytest.mark.slow


def test_speakers_and_listener_on_two_processes_hear_each_other(live_server_process, tmp_path):
    """Host on server A, a speaker and a listener on server B: each hears what they should."""
    host = make_member("hana", host=True)
    speaker = make_member("sam")
    listener = make_member("leo")
    space = make_live_space(host)
    tokens = {user.username: auth_token_issue(user=user).key for user in (host, speaker, listener)}
    low = write_tone(tmp_path / "440.wav", seconds=3, frequency=440)
    high = write_tone(tmp_path / "660.wav", seconds=3, frequency=660)
    server_a, server_b = live_server_process(), live_server_process()

    def on_stage():
        try:
            put_on_stage(space, host, speaker, "speaker")
        finally:
            connection.close()  # this worker thread's own connection

    async def scenario():
        hana = SpaceClient(server_a.url, token=tokens["hana"])
        sam = SpaceClient(server_b.url, token=tokens["sam"])
        leo = SpaceClient(server_b.url, token=tokens["leo"])
        for client in (hana, sam, leo):
            await client.connect(space.pk)
        await asyncio.to_thread(on_stage)
        await sam.wait_on_stage(timeout=10)
        for client in (hana, sam):
            await client.send_command("mute.set", muted=False)
            await client.wait_publishing(timeout=10)
        await asyncio.gather(hana.stream_wav(low), sam.stream_wav(high))
        await asyncio.sleep(0.5)  # the last ticks are still on their way
        for client in (hana, sam, leo):
            await client.close()
        return hana, sam, leo

    hana, sam, leo = asyncio.run(scenario())

    heard = leo.recorded_pcm()
    assert len(heard) >= SAMPLE_RATE
    # The listener, on B, hears both: the host's voice crossed processes through Redis.
    assert magnitude_at(heard, 440, within=20) > 0.5
    assert magnitude_at(heard, 660, within=20) > 0.5
    # Each speaker hears the other one and not themselves (mix-minus), across processes.
    assert abs(dominant_frequency(hana.recorded_pcm()) - 660) < 5
    assert abs(dominant_frequency(sam.recorded_pcm()) - 440) < 5
    assert magnitude_at(hana.recorded_pcm(), 440, within=20) < 0.1
    assert magnitude_at(sam.recorded_pcm(), 660, within=20) < 0.1
