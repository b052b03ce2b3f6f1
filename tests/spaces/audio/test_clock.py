import threading

import pytest

from spaces.audio import FRAME_SECONDS, FakeClock, MixerRunner, RoomMixer, TickClock

NEVER = threading.Event()


def test_deadlines_stay_on_the_grid_for_an_hour_of_ticks():
    """Tick n is due at start + n * 20 ms, even after 180,000 ticks and slow ticks."""
    clock = FakeClock(start=5_000.0)
    ticks = TickClock(clock)
    last = None
    for n in range(180_000):
        timing = ticks.wait_next(NEVER)
        assert timing.index == n
        if n % 1000 == 7:
            clock.advance(0.013)  # a slow tick: the next one starts 13 ms late...
        last = timing
    assert last.deadline == pytest.approx(5_000.0 + 179_999 * FRAME_SECONDS, abs=1e-6)
    assert ticks.skipped == 0
    assert -FRAME_SECONDS - 1e-9 <= ticks.drift() <= 1e-9


def test_lateness_is_reported_and_absorbed_without_shifting_later_deadlines():
    """A late tick reports how late it ran; the following deadlines do not move."""
    clock = FakeClock(start=0.0)
    ticks = TickClock(clock)
    ticks.wait_next(NEVER)
    clock.advance(0.035)  # the first tick took 35 ms
    late = ticks.wait_next(NEVER)
    assert late.lateness == pytest.approx(0.015)
    assert late.deadline == pytest.approx(0.020)
    on_time = ticks.wait_next(NEVER)
    assert on_time.lateness == 0.0
    assert on_time.deadline == pytest.approx(0.040)


def test_a_few_ticks_behind_catches_up_back_to_back():
    """Slightly behind (under max_behind_ticks): every tick still runs, lateness shrinking."""
    clock = FakeClock(start=0.0)
    ticks = TickClock(clock, max_behind_ticks=10)
    ticks.wait_next(NEVER)
    clock.advance(0.070)
    lateness = [ticks.wait_next(NEVER).lateness for _ in range(4)]
    assert lateness == pytest.approx([0.050, 0.030, 0.010, 0.0])
    assert ticks.skipped == 0


def test_far_behind_skips_and_counts_instead_of_bursting():
    """A 1 s stall skips the missed ticks in one go rather than running 50 ticks at once."""
    clock = FakeClock(start=0.0)
    ticks = TickClock(clock, max_behind_ticks=10)
    ticks.wait_next(NEVER)
    clock.advance(1.005)
    resumed = ticks.wait_next(NEVER)
    assert resumed.skipped == 49
    assert ticks.skipped == 49
    assert resumed.index == 50
    assert resumed.lateness == pytest.approx(0.005)
    following = ticks.wait_next(NEVER)
    assert (following.index, following.skipped, following.lateness) == (51, 0, 0.0)
    assert -FRAME_SECONDS - 1e-9 <= ticks.drift() <= 1e-9


def test_stop_interrupts_the_wait():
    """A set stop event ends the wait without a tick."""
    stop = threading.Event()
    stop.set()
    assert TickClock(FakeClock()).wait_next(stop) is None


def test_runner_ticks_every_room_on_one_clock():
    """Several rooms share the runner's clock; each tick produces one result per room."""
    results = []
    timings = []
    runner = MixerRunner(
        FakeClock(), on_result=lambda room, result: results.append((room, result.tick))
    )
    runner.on_timing = timings.append
    runner.add_room("room-1", RoomMixer())
    runner.add_room("room-2", RoomMixer())
    runner.run_ticks(3)
    assert results == [(room, tick) for tick in range(3) for room in ("room-1", "room-2")]
    assert [timing.index for timing in timings] == [0, 1, 2]
    runner.remove_room("room-1")
    runner.run_ticks(1)
    assert results[-1] == ("room-2", 3)


def test_one_failing_room_does_not_stop_the_others():
    """A mixer that raises is logged and counted; other rooms keep ticking."""

    class BrokenMixer(RoomMixer):
        def tick(self):
            raise RuntimeError("boom")

    results = []
    runner = MixerRunner(FakeClock(), on_result=lambda room, result: results.append(room))
    runner.add_room("broken", BrokenMixer())
    runner.add_room("fine", RoomMixer())
    runner.run_ticks(2)
    assert results == ["fine", "fine"]
    assert runner.errors == 2


def test_runner_thread_starts_and_stops_cleanly():
    """start() runs the mixer on its own thread; stop() ends it after the current tick."""
    enough = threading.Event()
    ticks = []

    def on_result(room, result):
        ticks.append(result.tick)
        if len(ticks) >= 20:
            enough.set()

    runner = MixerRunner(FakeClock(), on_result=on_result)
    runner.add_room("room", RoomMixer())
    runner.start()
    assert enough.wait(timeout=30)
    runner.stop()
    assert not runner.running
    count = len(ticks)
    assert ticks == list(range(count))
    runner.stop()  # idempotent
    assert len(ticks) == count


def test_push_from_another_thread_reaches_the_mixer_thread():
    """The transport pushes from its own thread; the frames are mixed on the mixer thread."""
    from .signals import encode, sine

    packets = encode(sine(440, 30))
    mixer = RoomMixer()
    mixer.add_speaker("a")
    talking = threading.Event()
    runner = MixerRunner(
        FakeClock(), on_result=lambda room, result: result.talking and talking.set()
    )
    runner.add_room("room", mixer)
    runner.start()
    try:
        for sequence, packet in enumerate(packets):
            mixer.push("a", sequence, packet, sequence * FRAME_SECONDS)
        assert talking.wait(timeout=30)
    finally:
        runner.stop()
