"""The space client without a Salon server: receiver, pacing, file framing, socket handling."""

import asyncio
import json
import random
import threading
import wave

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from websockets.asyncio.server import serve
from websockets.sync.server import serve as serve_in_thread

from salon_client.client import (
    AudioStreamer,
    ClientClosed,
    LoginFailed,
    MixReceiver,
    Pacer,
    SpaceClient,
    audio_frames,
    fetch_token,
    space_socket_url,
    write_wav,
)
from spaces.audio import FRAME_SAMPLES, SAMPLE_RATE, FrameKind, OpusDecoder, pack, unpack
from spaces.audio.wire import pack_bundle

from .audio.signals import decode, dominant_frequency, encode, rms, sine


def mix_frame(sequence: int, payload: bytes) -> object:
    return unpack(pack(FrameKind.ROOM_MIX, sequence, sequence * FRAME_SAMPLES, payload))


@pytest.fixture(scope="module")
def tone_packets() -> list[bytes]:
    """Two seconds of a 440 Hz tone as the server's mix packets."""
    return encode(sine(440, 100))


def write_tone(path, *, rate=SAMPLE_RATE, channels=1, seconds=1.0, frequency=440.0, amplitude=8000):
    t = np.arange(round(rate * seconds)) / rate
    samples = np.round(amplitude * np.sin(2 * np.pi * frequency * t)).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(np.repeat(samples, channels).tobytes())
    return path


# --- receiver --------------------------------------------------------------------------------


def test_receiver_puts_reordered_frames_back_in_sequence(tone_packets):
    """Frames shuffled within a few places decode exactly as the in-order stream does."""
    order = list(range(len(tone_packets)))
    rng = random.Random(7)
    for start in range(0, len(order) - 3, 3):
        window = order[start : start + 3]
        rng.shuffle(window)
        order[start : start + 3] = window
    receiver = MixReceiver()
    for sequence in order:
        receiver.push(mix_frame(sequence, tone_packets[sequence]))
    receiver.flush()

    assert np.array_equal(receiver.pcm(), decode(tone_packets))
    assert receiver.stats.played == len(tone_packets)
    assert receiver.stats.concealed == receiver.stats.late == receiver.stats.duplicates == 0


def test_receiver_drops_duplicates_and_late_frames(tone_packets):
    """A frame received twice, or after its slot was concealed, is dropped and counted."""
    receiver = MixReceiver()
    for sequence in (0, 1, 2, 1, 4, 5, 6, 7):  # 1 twice; 3 missing
        receiver.push(mix_frame(sequence, tone_packets[sequence]))
    receiver.push(mix_frame(3, tone_packets[3]))  # too late: 3 was concealed when 7 came
    receiver.push(mix_frame(7, tone_packets[7]))  # duplicate of a buffered or played frame

    assert receiver.stats.duplicates == 2
    assert receiver.stats.late == 1
    assert receiver.stats.concealed == 1
    assert receiver.stats.frames == 10
    assert len(receiver.pcm()) == 8 * FRAME_SAMPLES


def test_receiver_conceals_a_short_gap_with_opus_plc(tone_packets):
    """Two lost frames keep their place in the timeline and sound like the tone, not silence."""
    receiver = MixReceiver()
    for sequence in range(50):
        if sequence not in (30, 31):
            receiver.push(mix_frame(sequence, tone_packets[sequence]))
    receiver.flush()

    pcm = receiver.pcm()
    gap = pcm[30 * FRAME_SAMPLES : 32 * FRAME_SAMPLES]
    assert len(pcm) == 50 * FRAME_SAMPLES
    assert receiver.stats.concealed == 2
    assert rms(gap) > 0.3 * rms(pcm[20 * FRAME_SAMPLES : 30 * FRAME_SAMPLES])
    assert abs(dominant_frequency(gap) - 440) < 30


def test_receiver_fills_a_long_gap_with_silence(tone_packets):
    """A gap longer than the concealment limit is a pause (room DTX): silence, same timeline."""
    receiver = MixReceiver(conceal_limit=5)
    for sequence in [*range(10), *range(40, 50)]:
        receiver.push(mix_frame(sequence, tone_packets[sequence]))
    receiver.flush()

    pcm = receiver.pcm()
    assert len(pcm) == 50 * FRAME_SAMPLES
    assert receiver.stats.paused == 30
    assert receiver.stats.pauses == 1
    assert receiver.stats.concealed == 0
    assert not pcm[10 * FRAME_SAMPLES : 40 * FRAME_SAMPLES].any()


def test_receiver_orders_across_the_sequence_wrap(tone_packets):
    """Sequence numbers wrap from 2**32 - 1 to 0 without a gap or a restart."""
    receiver = MixReceiver()
    first = 2**32 - 5
    for index in (0, 1, 3, 2, 4, 5, 7, 6, 8, 9):
        receiver.push(mix_frame((first + index) % 2**32, tone_packets[index]))
    receiver.flush()

    assert receiver.stats.played == 10
    assert receiver.stats.restarts == receiver.stats.concealed == receiver.stats.late == 0


def test_receiver_restarts_on_a_new_numbering(tone_packets):
    """A big backward jump (another process took the room) restarts playout, not drops it all."""
    receiver = MixReceiver()
    for sequence in range(5000, 5010):
        receiver.push(mix_frame(sequence, tone_packets[sequence - 5000]))
    for sequence in range(10):
        receiver.push(mix_frame(sequence, tone_packets[10 + sequence]))
    receiver.flush()

    assert receiver.stats.restarts == 1
    assert receiver.stats.played == 20
    assert receiver.stats.late == 0


def test_counting_receiver_does_no_audio_work(tone_packets):
    """decode=False counts frames and gaps but keeps no PCM."""
    receiver = MixReceiver(decode=False)
    for sequence in (0, 1, 2, 4, 5, 6, 7):
        receiver.push(mix_frame(sequence, tone_packets[sequence]))

    assert receiver.stats.played == 7
    assert receiver.stats.concealed == 1
    assert receiver.stats.bytes == sum(10 + len(tone_packets[s]) for s in (0, 1, 2, 4, 5, 6, 7))
    assert len(receiver.pcm()) == 0


def test_receiver_counts_speaker_frames_as_invalid(tone_packets):
    """Only room-mix frames are played; a kind 1 frame from the server is counted and ignored."""
    receiver = MixReceiver()
    receiver.push(unpack(pack(FrameKind.SPEAKER_AUDIO, 0, 0, tone_packets[0])))

    assert receiver.stats.invalid == 1
    assert receiver.stats.frames == 0


def test_write_wav_is_48k_mono_with_the_same_samples(tmp_path):
    """The recording is a plain 48 kHz mono 16-bit WAV holding exactly what was heard."""
    pcm = sine(440, 10)
    write_wav(tmp_path / "heard.wav", pcm)

    with wave.open(str(tmp_path / "heard.wav"), "rb") as heard:
        assert (heard.getframerate(), heard.getnchannels(), heard.getsampwidth()) == (48_000, 1, 2)
        samples = np.frombuffer(heard.readframes(heard.getnframes()), dtype="<i2")
    assert np.array_equal(samples, pcm)


# --- pacing ----------------------------------------------------------------------------------


class FakeClock:
    """Time moves only when the pacer sleeps or a test says so."""

    def __init__(self, start: float = 500.0) -> None:
        self.time = start
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.time

    async def sleep_until(self, deadline: float) -> None:
        self.sleeps.append(deadline)
        self.time = max(self.time, deadline)


async def test_pacer_sleeps_to_absolute_deadlines_without_drift():
    """Frame n waits for start + n·20 ms, however long each send takes."""
    clock = FakeClock()
    pacer = Pacer(clock)
    for _ in range(3000):  # a minute of frames
        await pacer.wait()
        clock.time += 0.007  # sending and encoding take time

    assert len(clock.sleeps) == 2999  # all but the first, which goes at once
    assert clock.sleeps[-1] == pytest.approx(500.0 + 2999 * 0.02, abs=1e-9)
    assert all(
        deadline == pytest.approx(500.0 + n * 0.02, abs=1e-9)
        for n, deadline in enumerate(clock.sleeps, start=1)
    )
    assert pacer.stalls == 0


async def test_pacer_catches_up_a_small_delay_in_a_short_burst():
    """Two frames behind: the frames go back to back, then the original schedule resumes."""
    clock = FakeClock()
    pacer = Pacer(clock, max_catch_up=2)
    for _ in range(5):
        await pacer.wait()
    clock.time += 0.055  # the loop was blocked: frame 5 is 35 ms late, frame 6 15 ms
    released_at = []
    for _ in range(6):
        await pacer.wait()
        released_at.append(clock.time)

    assert pacer.stalls == 0
    assert released_at[:2] == pytest.approx([500.135, 500.135])  # frames 5 and 6 go at once
    assert released_at[2:] == pytest.approx([500.14, 500.16, 500.18, 500.2])


async def test_pacer_never_bursts_a_long_backlog():
    """A second behind: it re-anchors instead of sending 50 frames at once."""
    clock = FakeClock()
    pacer = Pacer(clock, max_catch_up=2)
    for _ in range(10):
        await pacer.wait()
    clock.time += 1.0
    sleeps_before = len(clock.sleeps)
    releases = []
    for _ in range(10):
        await pacer.wait()
        releases.append(clock.time)

    assert pacer.stalls == 1
    assert len(clock.sleeps) == sleeps_before + 9  # only the first frame went without waiting
    assert np.diff(releases) == pytest.approx([0.02] * 9)


# --- file → Opus frames ----------------------------------------------------------------------


async def streamed(path, **kwargs) -> list:
    clock = FakeClock()
    sent: list[bytes] = []

    async def send(message: bytes) -> None:
        sent.append(message)

    streamer = AudioStreamer(clock=clock)
    stats = await streamer.stream(
        audio_frames(path, loop=kwargs.pop("loop", False)), send, **kwargs
    )
    return [unpack(message) for message in sent], stats, clock


async def test_one_second_wav_becomes_fifty_paced_opus_frames_at_440_hz(tmp_path):
    """A 1 s 440 Hz WAV → 50 speaker frames, numbered and timed, decoding to 440 Hz."""
    frames, stats, clock = await streamed(write_tone(tmp_path / "tone.wav"))

    assert len(frames) == stats.frames == 50
    assert [f.kind for f in frames] == [FrameKind.SPEAKER_AUDIO] * 50
    assert [f.sequence for f in frames] == list(range(50))
    assert [f.timestamp for f in frames] == [n * FRAME_SAMPLES for n in range(50)]
    assert all(f.voice_activity for f in frames)
    assert len(clock.sleeps) == 49
    decoder = OpusDecoder()
    pcm = np.concatenate([decoder.decode(f.payload) for f in frames])
    assert abs(dominant_frequency(pcm[10 * FRAME_SAMPLES :]) - 440) < 5


async def test_other_rates_and_stereo_are_resampled_to_48k_mono(tmp_path):
    """A 44.1 kHz stereo file streams as 48 kHz mono frames at the same pitch."""
    path = write_tone(tmp_path / "cd.wav", rate=44_100, channels=2, frequency=440)
    frames, _, _ = await streamed(path)

    assert len(frames) == 50
    decoder = OpusDecoder()
    pcm = np.concatenate([decoder.decode(f.payload) for f in frames])
    assert abs(dominant_frequency(pcm[10 * FRAME_SAMPLES :]) - 440) < 5


async def test_loop_with_seconds_streams_a_continuous_sequence(tmp_path):
    """Looping a 0.5 s file for 3 s sends 150 frames numbered without a jump."""
    path = write_tone(tmp_path / "short.wav", seconds=0.5)
    frames, _, _ = await streamed(path, loop=True, seconds=3)

    assert [f.sequence for f in frames] == list(range(150))


async def test_silence_is_not_flagged_as_voice(tmp_path):
    """The advisory voice-activity flag follows the frame's level."""
    frames, stats, _ = await streamed(write_tone(tmp_path / "quiet.wav", amplitude=0))

    assert not any(f.voice_activity for f in frames)
    assert stats.voiced == 0


def test_a_partial_last_frame_is_padded(tmp_path):
    """A file that is not a whole number of frames ends with one padded frame."""
    path = write_tone(tmp_path / "odd.wav", seconds=1.01)
    frames = list(audio_frames(path))

    assert len(frames) == 51
    assert all(len(frame) == FRAME_SAMPLES for frame in frames)


# --- the socket ------------------------------------------------------------------------------


def test_socket_url_follows_the_server_url():
    assert space_socket_url("http://127.0.0.1:8000", 3) == "ws://127.0.0.1:8000/ws/spaces/3/"
    assert space_socket_url("https://salon.example/", 7) == "wss://salon.example/ws/spaces/7/"
    with pytest.raises(ValueError):
        space_socket_url("ftp://salon.example", 1)


SNAPSHOT = {
    "type": "snapshot",
    "space": {"id": 3},
    "participants": [],
    "you": {"user_id": 7, "role": "listener", "is_muted": True},
    "reactions": [],
}


@pytest.fixture
async def fake_server():
    """A websocket server playing Salon's part with a scripted handler."""
    servers = []

    async def start(handler):
        server = await serve(handler, "127.0.0.1", 0).__aenter__()
        servers.append(server)
        return f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


async def test_refused_join_raises_client_closed_with_the_code(fake_server):
    """A server that accepts then closes with 4403 surfaces as ClientClosed(4403, reason)."""

    async def refuse(connection):
        await connection.close(4403, "you are not invited")

    url = await fake_server(refuse)
    client = SpaceClient(url, token="k")
    with pytest.raises(ClientClosed) as closed:
        await client.connect(3)

    assert (closed.value.code, closed.value.reason) == (4403, "you are not invited")
    assert not closed.value.normal


async def test_client_routes_events_audio_and_its_own_state(fake_server, tone_packets):
    """Token header out; snapshot, events and mix frames (single and bundled) in; leaving ends
    with a normal 4000."""
    seen = {}

    async def room(connection):
        seen["authorization"] = connection.request.headers["Authorization"]
        await connection.send(json.dumps(SNAPSHOT))
        seen["commands"] = [json.loads(await connection.recv())]
        frames = [
            pack(FrameKind.ROOM_MIX, sequence, sequence * 960, tone_packets[sequence])
            for sequence in range(50)
        ]
        for frame in frames[:20]:
            await connection.send(frame)
        for index in range(20, 50, 2):  # then as a big room sends them: bundles of two
            await connection.send(pack_bundle(frames[index : index + 2]))
        participant = {"user_id": 7, "role": "speaker", "is_muted": True}
        await connection.send(
            json.dumps(
                {"type": "role.changed", "user_id": 7, "role": "speaker",
                 "previous_role": "listener", "by": 1, "participant": participant}
            )
        )  # fmt: skip
        seen["commands"].append(json.loads(await connection.recv()))
        await connection.send(
            json.dumps({"type": "mute.changed", "user_id": 7, "is_muted": False,
                        "muted_by_moderator": False, "by": 7})
        )  # fmt: skip
        seen["commands"].append(json.loads(await connection.recv()))
        await connection.close(4000, "you left the space")

    url = await fake_server(room)
    client = SpaceClient(url, token="secret-key")
    snapshot = await client.connect(3)
    await client.send_command("hand.raise", request_id="r1")
    role_changed = await client.next_event("role.changed")
    await client.wait_on_stage(timeout=5)
    was_publishing = client.publishing
    await client.send_command("mute.set", muted=False)
    await client.wait_publishing(timeout=5)
    await client.leave()

    assert snapshot["you"]["user_id"] == client.user_id == 7
    assert seen == {
        "authorization": "Token secret-key",
        "commands": [
            {"type": "hand.raise", "request_id": "r1"},
            {"type": "mute.set", "muted": False},
            {"type": "leave"},
        ],
    }
    assert role_changed["role"] == "speaker"
    assert not was_publishing
    assert client.role == "speaker" and not client.is_muted
    assert client.closed.code == 4000 and client.closed.normal
    assert client.receiver.stats.frames == 50
    assert abs(dominant_frequency(client.recorded_pcm()[10 * FRAME_SAMPLES :]) - 440) < 5


async def test_a_server_close_ends_waiting_for_events(fake_server):
    """Events already delivered are still read; then next_event raises the close."""

    async def room(connection):
        await connection.send(json.dumps(SNAPSHOT))
        await connection.send(json.dumps({"type": "space.ended", "reason": "ended", "by": 1}))
        await connection.close(4410, "the space has ended")

    client = SpaceClient(await fake_server(room), token="k")
    await client.connect(3)
    ended = await client.next_event()
    with pytest.raises(ClientClosed) as closed:
        await client.next_event()
    with pytest.raises(ClientClosed):
        await client.send_command("hand.raise")

    assert ended["type"] == "space.ended"
    assert (closed.value.code, closed.value.reason) == (4410, "the space has ended")


async def test_commands_are_checked_before_they_go_out():
    """Unknown commands and missing fields fail locally with a clear message."""
    client = SpaceClient("http://127.0.0.1:1", token="k")
    with pytest.raises(ValueError, match="unknown command"):
        await client.send_command("hand.wave")
    with pytest.raises(ValueError, match="needs user_id"):
        await client.send_command("hand.approve")


@pytest.mark.django_db(transaction=True)
def test_login_exchanges_a_password_for_the_members_token(live_server):
    """fetch_token uses the real token endpoint; a wrong password is a LoginFailed."""
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    user = get_user_model().objects.create_user(username="bot", password="x-pass-12345")

    token = fetch_token(live_server.url, "bot", "x-pass-12345")
    with pytest.raises(LoginFailed) as failed:
        fetch_token(live_server.url, "bot", "wrong")

    assert token == Token.objects.get(user=user).key
    assert failed.value.status == 400


def test_command_prints_events_records_the_room_and_reports_the_close(tmp_path, tone_packets):
    """manage.py space_client: events printed, the mix recorded, an ended space is an error."""

    def room(connection):
        connection.send(
            json.dumps({**SNAPSHOT, "space": {"id": 3, "title": "Bots", "state": "live"}})
        )
        for sequence in range(50):
            connection.send(
                pack(FrameKind.ROOM_MIX, sequence, sequence * 960, tone_packets[sequence])
            )
        connection.send(json.dumps({"type": "reaction", "user_id": 1, "emoji": "👏"}))
        connection.send(json.dumps({"type": "space.ended", "reason": "ended", "by": 1}))
        connection.close(4410, "the space has ended")

    with serve_in_thread(room, "127.0.0.1", 0) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.socket.getsockname()[1]}"
        out = tmp_path / "out.txt"
        with out.open("w") as stdout, pytest.raises(CommandError, match="4410 the space has ended"):
            call_command(
                "space_client", "--url", url, "--token", "k", "--space", "3",
                "--record", str(tmp_path / "heard.wav"), "--seconds", "10", stdout=stdout,
            )  # fmt: skip
        server.shutdown()

    printed = out.read_text()
    assert "joined 'Bots' (space 3, live) as listener (muted)" in printed
    assert 'reaction {"user_id": 1, "emoji": "👏"}' in printed
    assert "closed by the server: 4410 the space has ended" in printed
    assert "recorded 1.00 s" in printed
    with wave.open(str(tmp_path / "heard.wav"), "rb") as heard:
        pcm = np.frombuffer(heard.readframes(heard.getnframes()), dtype="<i2")
    assert abs(dominant_frequency(pcm[10 * FRAME_SAMPLES :]) - 440) < 5


# --- reconnecting ------------------------------------------------------------------------------

SPEAKER = {**SNAPSHOT, "you": {"user_id": 7, "role": "speaker", "is_muted": False,
                               "muted_by_moderator": False}}  # fmt: skip


async def until(condition, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


async def test_a_dropped_speaker_reconnects_and_goes_on_streaming(fake_server, tmp_path):
    """The network drops (no close frame) while a file streams: the client opens a new socket,
    rejoins, and the rest of the file arrives on it, numbered on; frames due while it was
    away are counted, not sent in a burst. The server's 4410 then ends it for good."""
    connections: list[list] = []

    async def room(connection):
        frames = []
        connections.append(frames)
        await connection.send(json.dumps(SPEAKER))
        async for message in connection:
            frames.append(unpack(message))
            if len(connections) == 1 and len(frames) == 20:
                connection.transport.abort()  # the network is gone: no close handshake
                return
            if len(connections) == 2 and len(frames) == 20:
                await connection.close(4410, "the space has ended")
                return

    changes = []
    client = SpaceClient(await fake_server(room), token="k", on_connection_change=changes.append)
    await client.connect(3)
    tone = write_tone(tmp_path / "tone.wav", seconds=2.0)
    with pytest.raises(ClientClosed) as closed:
        await client.stream_wav(tone)
        await client.wait_closed(timeout=10)

    first, second = connections
    assert closed.value.code == 4410 and client.reconnects == 1
    assert [f.kind for f in first + second] == [FrameKind.SPEAKER_AUDIO] * 40
    assert [f.sequence for f in first] == list(range(20))
    # Numbered on after the frames that fell due while it was away.
    assert second[0].sequence == 20 + client.streamer.stats.offline
    assert [f.sequence for f in second] == list(range(second[0].sequence, second[0].sequence + 20))
    assert (
        changes[0].startswith("connection lost (1006)") and changes[1] == "reconnected as speaker"
    )


@pytest.mark.parametrize("code", [4000, 4001, 4002, 4403, 4410, 1008])
async def test_a_deliberate_close_is_not_retried(fake_server, code):
    """Left, removed, banned, forbidden, ended, flooding: the client stays closed."""
    opened = []

    async def room(connection):
        opened.append(connection)
        await connection.send(json.dumps(SNAPSHOT))
        await connection.close(code, "meant")

    client = SpaceClient(await fake_server(room), token="k")
    await client.connect(3)
    closed = await client.wait_closed(timeout=10)
    await asyncio.sleep(1.0)  # longer than the first back-off: no second socket came

    assert closed.code == code and len(opened) == 1 and client.reconnects == 0


async def test_presence_lost_rejoins_and_unmutes_again(fake_server):
    """4408 (the server lost track of the member) is retried; the member came back muted on
    stage (the host after a sweep), and it was speaking: it unmutes itself."""
    commands = []

    async def room(connection):
        if not commands:
            commands.append(None)
            await connection.send(json.dumps(SPEAKER))
            await connection.close(4408, "no longer in the space; reconnect")
            return
        muted = {**SPEAKER, "you": {**SPEAKER["you"], "is_muted": True}}
        await connection.send(json.dumps(muted))
        commands.append(json.loads(await connection.recv()))
        await connection.close(4410, "the space has ended")

    client = SpaceClient(await fake_server(room), token="k")
    await client.connect(3)
    await client.wait_closed(timeout=10)

    assert client.reconnects == 1
    assert commands[1:] == [{"type": "mute.set", "muted": False}]


async def test_close_while_reconnecting_stops_at_once(fake_server):
    """The server is gone for good; close() does not wait for the next attempt."""

    async def room(connection):
        await connection.send(json.dumps(SNAPSHOT))
        connection.transport.abort()

    changes = []
    client = SpaceClient(await fake_server(room), token="k", on_connection_change=changes.append)
    await client.connect(3)
    await until(lambda: changes)
    async with asyncio.timeout(2):
        await client.close()

    assert client.closed is not None


async def test_the_uplink_follows_the_spaces_audio_mode(fake_server, tmp_path):
    """Snapshot says music: frames are music-rate (~240 bytes); audio_mode.changed to speech
    brings them down to speech-rate (~80 bytes); an unknown mode is ignored."""
    from spaces.audio.codec import AUDIO_MODES

    got: list[int] = []

    async def room(connection):
        await connection.send(json.dumps(SNAPSHOT | {"space": {"id": 3, "audio_mode": "music"}}))
        while len(got) < 50:
            got.append(len(unpack(await connection.recv()).payload))
        for mode in ("x", "speech"):
            await connection.send(
                json.dumps({"type": "audio_mode.changed", "audio_mode": mode, "by": 1})
            )
        while len(got) < 100:
            got.append(len(unpack(await connection.recv()).payload))
        await connection.close(4000, "bye")

    path = tmp_path / "tone.wav"
    write_tone(path, seconds=1.0)
    url = await fake_server(room)
    client = SpaceClient(url, token="k", clock=FakeClock())
    await client.connect(3)
    assert client.streamer.settings == AUDIO_MODES["music"]
    await client.stream_wav(path)
    await client.next_event("audio_mode.changed", audio_mode="speech")
    assert client.streamer.settings == AUDIO_MODES["speech"]
    await client.stream_wav(path)
    await client.wait_closed(timeout=10)
    assert client.audio_mode == "speech"
    assert min(got[5:50]) > 160 and max(got[55:]) < 120


async def test_in_music_stereo_the_client_sends_its_mono_file_as_centred_stereo(
    fake_server, tmp_path
):
    """Snapshot says music_stereo: every uplink packet is stereo Opus (TOC s bit), and it
    decodes to the file's tone on both sides."""
    from spaces.audio.codec import AUDIO_MODES, packet_is_stereo

    from .audio import signals

    payloads: list[bytes] = []

    async def room(connection):
        snapshot = SNAPSHOT | {"space": {"id": 3, "audio_mode": "music_stereo"}}
        await connection.send(json.dumps(snapshot))
        while len(payloads) < 50:
            payloads.append(unpack(await connection.recv()).payload)
        await connection.close(4000, "bye")

    path = tmp_path / "tone.wav"
    write_tone(path, seconds=1.0)
    client = SpaceClient(await fake_server(room), token="k", clock=FakeClock())
    await client.connect(3)
    assert client.streamer.settings == AUDIO_MODES["music_stereo"]
    await client.stream_wav(path)
    await client.wait_closed(timeout=10)
    assert all(packet_is_stereo(payload) for payload in payloads)
    pcm = signals.decode(payloads, channels=2)[20 * 960 :]
    left, right = (signals.amplitude_at(pcm[:, side], 440) for side in (0, 1))
    assert left > 6000 and abs(left - right) < 0.02 * left


async def test_a_loss_report_turns_in_band_fec_on_and_off(tmp_path):
    """After ``expect_loss(20)`` the streamer's packets carry in-band FEC for the frame
    before them; after ``expect_loss(0)`` none does; a new connection starts without."""
    path = write_tone(tmp_path / "tone.wav", seconds=1)
    probe = OpusDecoder()
    streamer = AudioStreamer(clock=FakeClock())
    sent: list[bytes] = []

    async def send(message: bytes) -> None:
        sent.append(message)

    async def with_fec() -> int:
        sent.clear()
        await streamer.stream(audio_frames(path), send)
        return sum(probe.has_fec(unpack(message).payload) for message in sent)

    assert await with_fec() == 0
    streamer.expect_loss(20)
    assert await with_fec() > 10
    streamer.expect_loss(0)
    assert await with_fec() == 0
    streamer.expect_loss(20)
    streamer.new_connection()
    assert await with_fec() == 0
