"""Recording a space on a real server (``manage.py serve``) fed by the Python client, then its
replay: duration, frequency, cut gaps and the speaker timeline."""

import asyncio
import time

import av
import numpy as np
import pytest
from django.db import connection

from accounts.services import auth_token_issue
from salon_client.client import SpaceClient
from spaces import services
from spaces.models import Replay

from .audio.signals import dominant_frequency, magnitude_at, write_tone
from .factories import make_member, put_on_stage

pytestmark = pytest.mark.slow


def decode(path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.concatenate([frame.to_ndarray().ravel() for frame in container.decode(audio=0)])


def wait_until_processed(space, timeout: float = 60.0) -> Replay:
    """The server processes the replay in the background once the space has ended."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        replay = Replay.objects.filter(space=space).first()
        if replay is not None and replay.state in (Replay.State.READY, Replay.State.FAILED):
            return replay
        time.sleep(0.2)  # polling for the condition, not waiting out a duration
    raise AssertionError(f"replay not processed in {timeout} s: {replay and replay.state}")


def recording_server(live_server_process):
    # The server writes the recording where this test reads it (the fixture shares the roots).
    return live_server_process()


async def speak(client: SpaceClient, wav, silence) -> None:
    """A tone, then the open microphone's silence: the talk spurt ends cleanly."""
    await client.stream_wav(wav)
    await client.stream_wav(silence)


def test_a_recorded_tone_replays_for_its_duration_at_its_frequency(live_server_process, tmp_path):
    """Recording on at creation; the host's client streams 440 Hz for 3 s; the space ends →
    the replay decodes to 3 s (± 250 ms) of 440 Hz, with the host in its timeline."""
    host = make_member("hana", host=True)
    space = services.space_create(host=host, title="Recorded", is_recording=True)
    token = auth_token_issue(user=host).key
    tone = write_tone(tmp_path / "tone.wav", seconds=3.0, frequency=440)
    silence = write_tone(tmp_path / "silence.wav", seconds=0.5, amplitude=0)
    server = recording_server(live_server_process)

    async def scenario():
        hana = SpaceClient(server.url, token=token, keep_audio=False)
        snapshot = await hana.connect(space.pk)
        assert snapshot["space"]["is_recording"] is True
        await hana.send_command("mute.set", muted=False)
        await hana.wait_publishing(timeout=10)
        await speak(hana, tone, silence)
        await hana.send_command("space.end")
        return await hana.wait_closed(timeout=10)

    closed = asyncio.run(scenario())
    replay = wait_until_processed(space)

    assert closed.code == 4410
    assert replay.state == Replay.State.READY, replay.failure_reason
    audio = decode(replay.audio_path)
    # 3 s, give or take the mixer's playout: on a loaded machine the client's frames come late
    # and the jitter buffer stretches (expands) to cover them, which the recording keeps.
    assert len(audio) / 48_000 == pytest.approx(3.0, abs=0.25)
    assert replay.duration_seconds == pytest.approx(len(audio) / 48_000, abs=0.01)
    assert dominant_frequency(audio) == pytest.approx(440, abs=5)
    assert [entry["speaker_id"] for entry in replay.timeline] == [host.pk]
    assert replay.timeline[0]["start"] == pytest.approx(0.0, abs=0.1)
    assert replay.size_bytes == replay.audio_path.stat().st_size


def test_recording_off_cuts_the_gap_and_the_timeline_keeps_turn_order(
    live_server_process, tmp_path
):
    """Host 440 Hz, speaker 660 Hz, recording off while the host plays 880 Hz, on again, host
    440 Hz → no 880 Hz in the replay, which is shorter by the gap; turns: host, speaker, host."""
    host = make_member("hana", host=True)
    speaker = make_member("sam")
    space = services.space_create(host=host, title="Recorded", is_recording=True)
    tokens = {user.username: auth_token_issue(user=user).key for user in (host, speaker)}
    low = write_tone(tmp_path / "440.wav", seconds=1.0, frequency=440)
    mid = write_tone(tmp_path / "660.wav", seconds=1.0, frequency=660)
    off_air = write_tone(tmp_path / "880.wav", seconds=2.0, frequency=880)
    silence = write_tone(tmp_path / "silence.wav", seconds=0.5, amplitude=0)
    server = recording_server(live_server_process)

    def on_stage():
        try:
            put_on_stage(space, host, speaker, "speaker")
        finally:
            connection.close()  # this worker thread's own connection

    async def set_recording(hana: SpaceClient, sam: SpaceClient, on: bool) -> None:
        await hana.send_command("recording.set", is_recording=on)
        # Everyone in the room sees it at once (the REC badge follows this event).
        for client in (hana, sam):
            event = await client.next_event("recording.changed", timeout=10)
            assert (event["is_recording"], event["by"]) == (on, host.pk)

    async def scenario():
        hana = SpaceClient(server.url, token=tokens["hana"], keep_audio=False)
        sam = SpaceClient(server.url, token=tokens["sam"], keep_audio=False)
        await hana.connect(space.pk)
        await sam.connect(space.pk)
        await asyncio.to_thread(on_stage)
        await sam.wait_on_stage(timeout=10)
        for client in (hana, sam):
            await client.send_command("mute.set", muted=False)
            await client.wait_publishing(timeout=10)
        started = time.monotonic()
        await speak(hana, low, silence)
        await speak(sam, mid, silence)
        await set_recording(hana, sam, False)
        await speak(hana, off_air, silence)
        await set_recording(hana, sam, True)
        await speak(hana, low, silence)
        elapsed = time.monotonic() - started
        await hana.send_command("space.end")
        await hana.wait_closed(timeout=10)
        await sam.wait_closed(timeout=10)
        return elapsed

    elapsed = asyncio.run(scenario())
    replay = wait_until_processed(space)

    assert replay.state == Replay.State.READY, replay.failure_reason
    audio = decode(replay.audio_path)
    seconds = len(audio) / 48_000
    # 3 s of tones with the silences between them; the 2.5 s off air are cut, not silent.
    assert 3.0 <= seconds <= elapsed - 2.5
    assert magnitude_at(audio, 440, within=20) > 0.3
    assert magnitude_at(audio, 660, within=20) > 0.3
    assert magnitude_at(audio, 880, within=20) < 0.05
    speakers = [entry["speaker_id"] for entry in replay.timeline]
    assert speakers == [host.pk, speaker.pk, host.pk]
    starts = [entry["start"] for entry in replay.timeline]
    assert starts == sorted(starts) and starts[0] == pytest.approx(0.0, abs=0.1)
