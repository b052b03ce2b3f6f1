"""Audio across daphne processes: members of one room on different servers hear each other."""

import asyncio

import numpy as np
import pytest
from django.db import connection

from accounts.services import auth_token_issue
from spaces.audio import SAMPLE_RATE
from spaces.client import SpaceClient

from .audio.signals import dominant_frequency, write_tone
from .factories import make_live_space, make_member, put_on_stage

pytestmark = pytest.mark.slow


def spectrum_peak_near(pcm: np.ndarray, frequency: float) -> float:
    """Energy within ±20 Hz of ``frequency``, relative to the spectrum's peak."""
    pcm = pcm.astype(np.float64)
    spectrum = np.abs(np.fft.rfft(pcm * np.hanning(len(pcm))))
    freqs = np.fft.rfftfreq(len(pcm), 1 / SAMPLE_RATE)
    band = (freqs > frequency - 20) & (freqs < frequency + 20)
    return float(spectrum[band].max() / (spectrum.max() + 1e-9))


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
    assert spectrum_peak_near(heard, 440) > 0.5
    assert spectrum_peak_near(heard, 660) > 0.5
    # Each speaker hears the other one and not themselves (mix-minus), across processes.
    assert abs(dominant_frequency(hana.recorded_pcm()) - 660) < 5
    assert abs(dominant_frequency(sam.recorded_pcm()) - 440) < 5
    assert spectrum_peak_near(hana.recorded_pcm(), 440) < 0.1
    assert spectrum_peak_near(sam.recorded_pcm(), 660) < 0.1
