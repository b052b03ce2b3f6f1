"""The media plane: frames in, one mix per tick out to every local socket, across processes."""

import asyncio

import av
import numpy as np
import pytest

from spaces.audio import wire
from spaces.audio.clock import FakeClock
from spaces.audio.codec import FRAME_SAMPLES, FRAME_SECONDS, OpusDecoder
from spaces.audio.mixer import RoomMixer
from spaces.audio.runner import MixerRunner
from spaces.live import media
from spaces.live.bus import LocalBus, RedisBus
from spaces.live.fanout import Fanout

from .audio import signals

RATE = 48_000


def tone_pcm(frequency: float, count: int, amplitude: float = 0.3) -> np.ndarray:
    """``count`` frames of a sine at ``amplitude`` of full scale."""
    t = np.arange(count * FRAME_SAMPLES) / RATE
    return (amplitude * 32767 * np.sin(2 * np.pi * frequency * t)).astype(np.int16)


def tone_frames(frequency: float, count: int, amplitude: float = 0.3) -> list[bytes]:
    """``count`` speaker frames (wire format) of a sine at ``amplitude`` of full scale."""
    packets = signals.encode(tone_pcm(frequency, count, amplitude))
    return [
        wire.pack(wire.FrameKind.SPEAKER_AUDIO, seq, seq * FRAME_SAMPLES, packet)
        for seq, packet in enumerate(packets)
    ]


def decode_mix(messages: list[bytes]) -> np.ndarray:
    """What a listener plays for these room-mix messages."""
    return signals.decode([wire.unpack(m).payload for m in messages])


def dominant_frequency(messages: list[bytes]) -> float:
    """Of the last half second of the mix."""
    return signals.dominant_frequency(decode_mix(messages)[-RATE // 2 :])


def energy_near(messages: list[bytes], frequency: float) -> float:
    return signals.magnitude_at(decode_mix(messages), frequency, within=20)


class Socket:
    """An ASGI ``send`` that records the messages it is given: audio and text apart."""

    def __init__(self):
        self.messages: list[bytes] = []
        self.texts: list[str] = []

    async def __call__(self, message):
        if message.get("bytes") is not None:
            self.messages.append(message["bytes"])
        else:
            self.texts.append(message["text"])


async def until(condition, timeout: float = 10.0) -> None:
    """Wait for a condition the event loop makes true (not a timing assertion)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.01)


async def local_plane():
    clock = FakeClock()
    runner = MixerRunner(clock)
    plane = media.MediaPlane(bus=LocalBus(), runner=runner, fanout_registry=Fanout())
    await plane.start()
    return plane, runner, clock


async def feed_and_tick(plane, runner, clock, space_id, key, frames):
    for frame in frames:
        plane.speaker_frame(space_id, key, frame)
        runner.run_ticks(1)
        await asyncio.sleep(0)  # let the loop deliver this tick


async def test_listener_hears_the_speaker_and_speaker_gets_mix_minus():
    """A listener receives the room mix; a talking speaker gets the mix without their voice."""
    plane, runner, _clock = await local_plane()
    speaker, listener, other = Socket(), Socket(), Socket()
    await plane.attach(1, "s", speaker, user_id=10, publishing=True)
    await plane.attach(1, "o", other, user_id=30, publishing=True)
    await plane.attach(1, "l", listener, user_id=20, publishing=False)
    await until(lambda: plane.rooms[1].owner)

    a, b = tone_frames(440, 60), tone_frames(660, 60)
    for frame_a, frame_b in zip(a, b, strict=True):
        plane.speaker_frame(1, "s", frame_a)
        plane.speaker_frame(1, "o", frame_b)
        runner.run_ticks(1)
        await asyncio.sleep(0)
    # The first ticks fill the jitter buffers (silence is not sent); then every tick arrives.
    await until(lambda: len(listener.messages) >= 50)

    assert energy_near(listener.messages[-30:], 440) > 0.3
    assert energy_near(listener.messages[-30:], 660) > 0.3
    assert energy_near(speaker.messages[-30:], 440) < 0.05
    assert dominant_frequency(speaker.messages[-30:]) == pytest.approx(660, abs=15)
    assert all(wire.unpack(m).kind == wire.FrameKind.ROOM_MIX for m in listener.messages)
    await plane.stop()


async def test_a_plane_on_its_media_thread_carries_frames_in_and_the_mix_out():
    """With a MediaLoop the plane runs on its own thread: the consumers' calls (here, this
    loop's) cross over and back, the speaker's frames reach the mixer, and the listener's
    socket on this loop hears the tone, every tick in order."""
    runner = MixerRunner(FakeClock())
    media_loop = media.MediaLoop()
    plane = media.MediaPlane(
        bus=LocalBus(), runner=runner, fanout_registry=Fanout(), media_loop=media_loop
    )
    await plane.start()
    listener = Socket()
    await plane.attach(1, "s", Socket(), user_id=10, publishing=True)
    await plane.attach(1, "l", listener, user_id=20, publishing=False)
    await until(lambda: plane.rooms[1].owner)
    for frame in tone_frames(440, 60):
        plane.speaker_frame(1, "s", frame)
        await plane._on_media(asyncio.sleep(0))  # a round trip: the frame is at the mixer
        runner.run_ticks(1)
    await until(lambda: len(listener.messages) >= 50)

    assert energy_near(listener.messages[-30:], 440) > 0.3
    sequences = [wire.unpack(m).sequence for m in listener.messages]
    assert sequences == sorted(set(sequences))
    await plane.stop()
    assert not media_loop.running


def test_a_tick_handed_to_a_closed_media_loop_goes_nowhere_quietly():
    """At teardown the mixer may tick once more after the media loop has closed: the tick is
    dropped, not a failed tick ("Event loop is closed")."""
    runner = MixerRunner(FakeClock())
    plane = media.MediaPlane(bus=LocalBus(), runner=runner, fanout_registry=Fanout())
    plane.loop = asyncio.new_event_loop()
    plane.loop.close()
    runner.add_room(1, RoomMixer())
    runner.run_ticks(3)
    assert runner.errors == 0


def tone_correlation(heard: np.ndarray, tone: np.ndarray) -> float:
    """Correlation of what a listener heard with the tone sent, at the best alignment near
    where it starts (within a period of 440 Hz): a frame skipped or inserted anywhere shifts
    the rest by 20 ms, 8.8 periods, and the correlation falls far below 0.99."""
    onset = int(np.flatnonzero(np.abs(heard) > 0.1 * np.abs(tone).max())[0])
    sent = tone[2 * FRAME_SAMPLES : len(tone) - 2 * FRAME_SAMPLES].astype(np.float64)
    return max(
        np.corrcoef(heard[lag : lag + len(sent)].astype(np.float64), sent)[0, 1]
        for lag in range(max(0, onset - 110 + 2 * FRAME_SAMPLES), onset + 110 + 2 * FRAME_SAMPLES)
    )


@pytest.mark.parametrize("phase", [0.008, 0.015, 0.019])
async def test_a_first_talk_spurt_reaches_a_listener_whole(phase):
    """Issue #16: a new room's first talk spurt lost a frame about a second in. A speaker
    paced like a real-time client (each frame ``phase`` before a tick) streams 3 s of 440 Hz
    into a new room: the listener's room-mix frames carry every one of them, in one run."""
    plane, runner, clock = await local_plane()
    listener = Socket()
    await plane.attach(1, "s", Socket(), user_id=10, publishing=True)
    await plane.attach(1, "l", listener, user_id=20, publishing=False)
    await until(lambda: plane.rooms[1].owner)
    count = 150
    runner.run_ticks(1)  # the room's clock starts
    start = runner.tick_clock.start
    for tick, frame in enumerate(tone_frames(440, count), start=1):
        clock.time = start + tick * FRAME_SECONDS - phase
        plane.speaker_frame(1, "s", frame)
        runner.run_ticks(1)
        await asyncio.sleep(0)
    runner.run_ticks(20)
    await until(lambda: len(listener.messages) >= count)

    assert tone_correlation(decode_mix(listener.messages), tone_pcm(440, count)) > 0.99
    await plane.stop()


async def test_demotion_stops_the_speaker_at_the_next_tick():
    """Once a speaker may no longer publish, the very next tick carries none of their audio."""
    plane, runner, clock = await local_plane()
    listener = Socket()
    await plane.attach(1, "s", Socket(), user_id=10, publishing=True)
    await plane.attach(1, "l", listener, user_id=20, publishing=False)
    await until(lambda: plane.rooms[1].owner)
    frames = tone_frames(440, 80)
    await feed_and_tick(plane, runner, clock, 1, "s", frames[:50])
    await until(lambda: len(listener.messages) >= 45)

    results = []
    deliver = runner.on_result
    runner.on_result = lambda room, result: (results.append(result), deliver(room, result))
    await plane.set_publishing(1, "s", user_id=10, publishing=False)
    demoted_at = plane.rooms[1].mixer.tick_count  # the first tick without the speaker
    await feed_and_tick(plane, runner, clock, 1, "s", frames[50:])
    await until(lambda: len(results) == 30)
    await asyncio.sleep(0)

    # The mixer takes nothing from the speaker from the very next tick on...
    assert all(10 not in r.levels and not r.talking for r in results)
    assert plane.rooms[1].mixer.stats().dropped_not_publishing == 30
    # ...what listeners decode is silent once Opus's own delay has passed...
    # (counted by the mix frames' sequence, the tick number: ticks mixed before the demotion
    # may still be on their way to the socket when it happens).
    decoder = OpusDecoder()
    frames_by_tick = [wire.unpack(m) for m in listener.messages]
    pcm = {f.sequence: decoder.decode(f.payload) for f in frames_by_tick}
    # Opus's delay (312 samples) carries the last tone into the demotion tick's packet, and
    # the decoder's ring-down of that cut (where it falls in the tone's cycle depends on the
    # playout's delay) into the next one's first milliseconds.
    after = [pcm[t] for t in sorted(pcm) if t >= demoted_at + 2]
    before = [pcm[t] for t in sorted(pcm) if demoted_at - 20 <= t < demoted_at]
    assert len(after) >= 2

    def rms(frames):
        return float(np.sqrt(np.mean(np.concatenate(frames).astype(np.float64) ** 2)))

    assert rms(after) < 0.01 * rms(before)
    # ...and after a short silent tail the room stops sending at all (room-level DTX).
    assert len([t for t in pcm if t >= demoted_at]) <= media.SILENT_TAIL_TICKS + 1
    await plane.stop()


def test_bundle_round_trip_keeps_shared_and_mix_minus():
    """A tick's bundle unpacks to the same packets, as wire messages with its sequence."""
    from spaces.audio.mixer import TickResult

    result = TickResult(
        tick=7, timestamp=7 * 960, shared_packet=b"\x01\x02",
        mix_minus={5: b"\x03", 9: b"\x04\x05"}, levels={}, talking=frozenset({5, 9}),
        decodes=0, concealed=0, encodes=3, dropped=0,
    )  # fmt: skip
    shared, minus = media.unpack_bundle(media.pack_bundle(result))

    assert wire.unpack(shared) == wire.AudioFrame(wire.FrameKind.ROOM_MIX, 7, 6720, b"\x01\x02")
    assert {k: wire.unpack(v).payload for k, v in minus.items()} == {5: b"\x03", 9: b"\x04\x05"}


@pytest.mark.slow
async def test_two_processes_share_one_mixer_through_redis(settings):
    """Speaker on one plane, listener on another: one lease owner mixes, the other hears it."""
    planes = []
    for _ in range(2):
        clock = FakeClock()
        runner = MixerRunner(clock)
        plane = media.MediaPlane(bus=RedisBus(settings.REDIS_URL), runner=runner,
                                 fanout_registry=Fanout())  # fmt: skip
        await plane.start()
        planes.append((plane, runner))
    (plane_a, runner_a), (plane_b, runner_b) = planes
    listener = Socket()
    await plane_a.attach(7, "s", Socket(), user_id=10, publishing=True)
    await plane_b.attach(7, "l", listener, user_id=20, publishing=False)
    await until(lambda: plane_a.rooms[7].owner or plane_b.rooms[7].owner)
    assert not (plane_a.rooms[7].owner and plane_b.rooms[7].owner)
    owner_runner = runner_a if plane_a.rooms[7].owner else runner_b
    # The owner learns about the publisher from its own ``P`` message or the loader.
    await plane_a.set_publishing(7, "s", user_id=10, publishing=True)
    await asyncio.sleep(0.2)

    for frame in tone_frames(440, 60):
        plane_a.speaker_frame(7, "s", frame)
        await asyncio.sleep(0.005)  # let Redis carry the frame before the tick takes it
        owner_runner.run_ticks(1)
    await until(lambda: len(listener.messages) >= 50)

    assert dominant_frequency(listener.messages[-25:]) == pytest.approx(440, abs=15)
    await plane_a.stop()
    await plane_b.stop()


@pytest.mark.slow
async def test_lease_moves_when_the_owner_stops(settings):
    """If the mixing process dies, another process with members takes the room over."""
    planes = []
    for _ in range(2):
        runner = MixerRunner(FakeClock())
        plane = media.MediaPlane(bus=RedisBus(settings.REDIS_URL), runner=runner,
                                 fanout_registry=Fanout())  # fmt: skip
        await plane.start()
        planes.append(plane)
    first, second = planes
    await first.attach(8, "a", Socket(), user_id=1, publishing=False)
    await until(lambda: first.rooms[8].owner)
    await second.attach(8, "b", Socket(), user_id=2, publishing=False)

    first.rooms[8].lease_task.cancel()  # the owner dies without releasing its lease
    await first.bus.stop()

    await until(lambda: second.rooms[8].owner, timeout=media.LEASE_TTL_MS / 1000 + 5)
    await second.stop()


@pytest.mark.slow
async def test_redis_bus_keeps_publish_order(settings):
    """A burst of publishes arrives in the order it was sent (frames of a room stay in order)."""
    received: list[bytes] = []
    sender, receiver = RedisBus(settings.REDIS_URL), RedisBus(settings.REDIS_URL)
    await sender.start()
    await receiver.start()
    await receiver.subscribe("order", received.append)
    await asyncio.sleep(0.2)  # the subscription is live before the burst

    for n in range(2000):
        sender.publish_nowait("order", n.to_bytes(4, "big"))
    await until(lambda: len(received) == 2000)

    assert [int.from_bytes(m, "big") for m in received] == list(range(2000))
    await sender.stop()
    await receiver.stop()


async def test_a_failed_takeover_is_retried(monkeypatch):
    """If taking a room over fails once (database down), the next lease round takes it."""
    monkeypatch.setattr(media, "LEASE_RENEW", 0.01)
    calls = []

    def flaky_loader(space_id):
        calls.append(space_id)
        if len(calls) == 1:
            raise ConnectionError("database unreachable")
        return set()

    plane = media.MediaPlane(
        bus=LocalBus(), runner=MixerRunner(FakeClock()), fanout_registry=Fanout(),
        publishers_loader=flaky_loader,
    )  # fmt: skip
    await plane.start()
    await plane.attach(3, "l", Socket(), user_id=1, publishing=False)

    await until(lambda: plane.rooms[3].owner)
    assert len(calls) >= 2  # the first round failed; a later one took the room
    await plane.stop()


async def test_levels_are_sent_on_change_and_refreshed_while_someone_talks(monkeypatch):
    """Quiet rooms send no levels; talking ones send changes, and a refresh for late joiners."""
    plane, runner, _clock = await local_plane()
    listener = Socket()
    await plane.attach(1, "s", Socket(), user_id=10, publishing=True)
    await plane.attach(1, "l", listener, user_id=20, publishing=False)
    await until(lambda: plane.rooms[1].owner)
    runner.run_ticks(50)  # a second of silence from an unmuted speaker
    await asyncio.sleep(0)
    quiet = [t for t in listener.texts if '"talking":true' in t]

    await feed_and_tick(plane, runner, _clock, 1, "s", tone_frames(440, 50))
    talking = len(listener.texts)
    monkeypatch.setattr(media, "LEVELS_REFRESH_SECONDS", 0.0)
    await feed_and_tick(plane, runner, _clock, 1, "s", tone_frames(440, 100)[50:])

    assert quiet == []
    assert talking >= 1 and '"talking":true' in listener.texts[-1]
    # With the refresh due at once, every levels window of the steady tone is sent again.
    assert len(listener.texts) - talking >= 4
    await plane.stop()


# --- Recording ------------------------------------------------------------------------------


class Segments:
    """The replay services as the media plane sees them: segment files in a folder."""

    def __init__(self, directory, *, recording: bool = True):
        self.directory = directory
        self.recording = recording
        self.started: list = []
        self.closed: list[int] = []

    def start(self, *, space_id: int):
        if not self.recording:
            return None
        path = self.directory / f"{len(self.started)}.ogg"
        self.started.append(path)
        return path

    def close(self, *, space_id: int) -> None:
        self.closed.append(space_id)


def speaker_frames(*tones: tuple[float, int], first_sequence: int = 0) -> list[bytes]:
    """One speaker's frames (wire format, one sequence) playing ``(frequency, frames)`` tones."""
    t = np.arange(sum(count for _, count in tones) * FRAME_SAMPLES) / RATE
    frequencies = np.repeat([f for f, _ in tones], [c * FRAME_SAMPLES for _, c in tones])
    pcm = (0.3 * 32767 * np.sin(2 * np.pi * frequencies * t)).astype(np.int16)
    return [
        wire.pack(wire.FrameKind.SPEAKER_AUDIO, seq, seq * FRAME_SAMPLES, packet)
        for seq, packet in enumerate(signals.encode(pcm), start=first_sequence)
    ]


async def recording_plane(segments: Segments, bus=None):
    runner = MixerRunner(FakeClock())
    plane = media.MediaPlane(
        bus=bus or LocalBus(), runner=runner, fanout_registry=Fanout(),
        segment_start=segments.start, segment_closed=segments.close,
    )  # fmt: skip
    await plane.start()
    return plane, runner


async def test_the_owner_records_the_mix_and_recording_off_cuts_the_gap(tmp_path):
    """On: the mix goes to a segment; off (an R message): those ticks are cut; end: closed."""
    from spaces.audio.replay import segment_is_closed

    segments = Segments(tmp_path)
    plane, runner = await recording_plane(segments)
    await plane.attach(1, "s", Socket(), user_id=10, publishing=True)
    await plane.attach(1, "l", Socket(), user_id=20, publishing=False)
    await until(lambda: plane.rooms[1].recorder is not None)
    frames = speaker_frames((440, 100), (880, 100), (440, 50))

    await feed_and_tick(plane, runner, None, 1, "s", frames[:100])
    await plane.set_recording(1, False)
    await feed_and_tick(plane, runner, None, 1, "s", frames[100:200])
    await plane.set_recording(1, True)
    await feed_and_tick(plane, runner, None, 1, "s", frames[200:])
    await plane.end_room(1)
    await until(lambda: segments.closed == [1])

    [path] = segments.started
    audio = signals.decode([bytes(p) for p in av.open(str(path)).demux(audio=0) if p.size])
    assert len(audio) / RATE == pytest.approx(3.0, abs=0.1)  # 150 of 250 ticks
    assert signals.magnitude_at(audio, 440, within=20) > 0.5
    assert signals.magnitude_at(audio, 880, within=20) < 0.1
    assert segment_is_closed(path)
    await plane.stop()


async def test_recording_switched_on_later_opens_a_segment_then(tmp_path):
    """Not recorded at takeover: no file; the first R message saying on opens one."""
    segments = Segments(tmp_path, recording=False)
    plane, runner = await recording_plane(segments)
    await plane.attach(2, "l", Socket(), user_id=20, publishing=False)
    await until(lambda: plane.rooms[2].owner)
    runner.run_ticks(10)
    assert plane.rooms[2].recorder is None and segments.started == []

    segments.recording = True
    await plane.set_recording(2, True)
    await until(lambda: plane.rooms[2].recorder is not None)
    await plane.stop()

    assert len(segments.started) == 1 and segments.closed == [2]


async def feed_over_redis(plane, runner, space_id, key, frames):
    for frame in frames:
        plane.speaker_frame(space_id, key, frame)
        await asyncio.sleep(0.005)  # let Redis carry the frame before the tick takes it
        runner.run_ticks(1)


@pytest.mark.slow
async def test_a_new_owner_records_a_new_segment_when_the_lease_moves(settings, tmp_path):
    """The owner dies mid-recording: the next owner opens its own segment; both join up."""
    from spaces.audio.replay import join_segments

    segments = Segments(tmp_path)
    first, first_runner = await recording_plane(segments, RedisBus(settings.REDIS_URL))
    second, second_runner = await recording_plane(segments, RedisBus(settings.REDIS_URL))
    await first.attach(9, "s", Socket(), user_id=10, publishing=True)
    await until(lambda: first.rooms[9].recorder is not None)
    await second.attach(9, "l", Socket(), user_id=20, publishing=False)
    frames = speaker_frames((440, 100), (660, 100))
    await feed_over_redis(first, first_runner, 9, "s", frames[:100])
    assert first.rooms[9].recorder.flush()  # what a killed process leaves on disk

    first.rooms[9].lease_task.cancel()  # the owner dies without closing or releasing anything
    await first.bus.stop()
    await until(lambda: second.rooms[9].recorder is not None, timeout=media.LEASE_TTL_MS / 1000 + 5)
    # The speaker reconnects, to the second process.
    await second.attach(9, "s2", Socket(), user_id=10, publishing=True)
    await feed_over_redis(second, second_runner, 9, "s2", frames[100:])
    await second.stop()

    joined = join_segments(segments.started, tmp_path / "replay.ogg")
    packets = av.open(str(tmp_path / "replay.ogg")).demux(audio=0)
    audio = signals.decode([bytes(packet) for packet in packets if packet.size])
    assert len(segments.started) == 2 and segments.closed == [9]
    # At most about a second of the first segment was not on disk yet.
    assert 2.0 <= joined.duration <= 4.1
    assert signals.magnitude_at(audio, 440, within=20) > 0.3
    assert signals.magnitude_at(audio, 660, within=20) > 0.3
    first.rooms[9].recorder.close()


async def test_audio_mode_reaches_the_owner_mixer_through_the_bus():
    """An audio_mode change relayed by a member's process (an A message) switches the owner's
    mix encoders to the music settings: the next ticks' packets are music-rate."""
    from spaces.audio.codec import AUDIO_MODES

    plane, runner, clock = await local_plane()
    listener = Socket()
    await plane.attach(1, "s", Socket(), user_id=10, publishing=True)
    await plane.attach(1, "l", listener, user_id=20, publishing=False)
    await until(lambda: plane.rooms[1].owner)
    mixer = plane.rooms[1].mixer
    assert mixer.opus == AUDIO_MODES["speech"]
    frames = tone_frames(440, 60)
    await feed_and_tick(plane, runner, clock, 1, "s", frames[:30])

    await plane.set_audio_mode(1, "music")
    await plane.set_audio_mode(1, "music")  # a second socket of this process: not relayed again
    await feed_and_tick(plane, runner, clock, 1, "s", frames[30:])
    await until(lambda: len(listener.messages) >= 55)

    assert mixer.opus == AUDIO_MODES["music"]
    assert mixer.stats().settings_changes == 1
    sizes = [len(wire.unpack(m).payload) for m in listener.messages]
    assert max(sizes[5:25]) < 120 < 160 < min(sizes[-10:])  # ~80 bytes at 32 kb/s, ~240 at 96
    await plane.stop()


async def test_a_new_owner_reads_the_audio_mode_once():
    """The process that takes the room over asks the loader for the mode (music here) and
    mixes with its settings."""
    from spaces.audio.codec import AUDIO_MODES

    loads = []

    def loader(space_id):
        loads.append(space_id)
        return "music"

    runner = MixerRunner(FakeClock())
    plane = media.MediaPlane(
        bus=LocalBus(), runner=runner, fanout_registry=Fanout(), audio_mode_loader=loader
    )
    await plane.start()
    await plane.attach(3, "l", Socket(), user_id=20, publishing=False)

    def music_after_a_tick():
        runner.run_ticks(1)
        return plane.rooms[3].mixer.opus == AUDIO_MODES["music"]

    await until(lambda: plane.rooms[3].owner)
    await until(music_after_a_tick)
    assert loads == [3]
    await plane.stop()


async def test_an_audio_mode_message_wins_over_a_slower_load():
    """A change that reaches the new owner while it still reads the mode is the newer one:
    the load's (older) answer is not applied after it."""
    import threading

    from spaces.audio.codec import AUDIO_MODES

    release, loaded = threading.Event(), threading.Event()

    def loader(space_id):
        release.wait(10)
        loaded.set()
        return "music"  # what the database said before the change

    runner = MixerRunner(FakeClock())
    plane = media.MediaPlane(
        bus=LocalBus(), runner=runner, fanout_registry=Fanout(), audio_mode_loader=loader
    )
    await plane.start()
    await plane.attach(4, "l", Socket(), user_id=20, publishing=False)
    await until(lambda: plane.rooms[4].owner)
    await plane.set_audio_mode(4, "music")
    await plane.set_audio_mode(4, "speech")
    release.set()
    await until(loaded.is_set)
    await until(lambda: not plane._tasks)
    runner.run_ticks(1)
    assert plane.rooms[4].mixer.opus == AUDIO_MODES["speech"]
    await plane.stop()
