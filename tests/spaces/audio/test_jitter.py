from hypothesis import given
from hypothesis import strategies as st

from spaces.audio import FRAME_SECONDS, JitterBuffer, JitterSettings, Playout

CONCEAL = Playout.CONCEAL
NOTHING = Playout.NOTHING


def payload(sequence: int) -> bytes:
    return sequence.to_bytes(4, "big")


def feed(buffer: JitterBuffer, sequences) -> None:
    """Push frames as if each arrived exactly on time for its sequence number (no jitter)."""
    for sequence in sequences:
        buffer.push(sequence % 2**32, payload(sequence % 2**32), sequence * FRAME_SECONDS)


def test_primes_at_the_target_then_plays_in_order():
    """Nothing plays until two frames are buffered; then frames come out in sequence order."""
    buffer = JitterBuffer()
    buffer.push(10, payload(10), 0.0)
    assert buffer.pop() is NOTHING
    buffer.push(11, payload(11), 0.02)
    assert [buffer.pop(), buffer.pop()] == [payload(10), payload(11)]


def test_reordered_frames_come_out_in_order():
    """Arrival order does not matter within the buffer."""
    buffer = JitterBuffer()
    feed(buffer, [1, 0, 3, 2])
    assert [buffer.pop() for _ in range(4)] == [payload(n) for n in range(4)]


def test_duplicates_are_dropped_and_counted():
    """A frame already buffered, or already played, is a duplicate."""
    buffer = JitterBuffer()
    feed(buffer, [0, 1, 1])
    assert buffer.pop() == payload(0)
    assert buffer.push(0, payload(0), 0.0) is False
    assert buffer.stats.duplicate == 2
    assert buffer.pop() == payload(1)
    assert buffer.pop() is CONCEAL  # nothing left: the stream is late, not duplicated


def test_late_frame_is_dropped_and_counted():
    """A frame whose slot was already concealed cannot play any more."""
    buffer = JitterBuffer()
    feed(buffer, [0, 2, 3])
    assert buffer.pop() == payload(0)
    assert buffer.pop() is CONCEAL  # 1 missing while 2 is here: lost
    assert buffer.push(1, payload(1), 0.05) is False
    assert buffer.stats.late == 1
    assert buffer.stats.concealed == 1
    assert [buffer.pop(), buffer.pop()] == [payload(2), payload(3)]


def test_starved_buffer_conceals_without_skipping_the_late_frame():
    """When nothing is buffered the frame is late, not lost: it still plays when it arrives."""
    buffer = JitterBuffer()
    feed(buffer, [0, 1])
    assert [buffer.pop(), buffer.pop()] == [payload(0), payload(1)]
    assert buffer.pop() is CONCEAL
    feed(buffer, [2, 3])
    assert [buffer.pop(), buffer.pop()] == [payload(2), payload(3)]
    assert buffer.stats.late == 0


def test_speaker_who_stops_goes_idle_after_bounded_concealment():
    """Mute (no more frames): a few concealed frames, then nothing at all."""
    settings = JitterSettings(max_conceal=3)
    buffer = JitterBuffer(settings)
    feed(buffer, [0, 1])
    buffer.pop(), buffer.pop()
    outcomes = [buffer.pop() for _ in range(6)]
    assert outcomes == [CONCEAL] * 3 + [NOTHING] * 3
    assert not buffer.playing


def test_resume_after_mute_with_a_sequence_jump_reprimes():
    """Frames after a jump start a new talk spurt; the gap is not concealed frame by frame."""
    buffer = JitterBuffer()
    feed(buffer, [0, 1])
    buffer.pop(), buffer.pop()
    for _ in range(10):
        buffer.pop()
    concealed_before = buffer.stats.concealed
    feed(buffer, [500, 501, 502])
    assert [buffer.pop() for _ in range(3)] == [payload(500), payload(501), payload(502)]
    assert buffer.stats.concealed == concealed_before


def test_sequence_jump_while_still_playing_reprimes_too():
    """A jump arriving during concealment skips straight to the new frames."""
    buffer = JitterBuffer()
    feed(buffer, [0, 1])
    buffer.pop(), buffer.pop()
    assert buffer.pop() is CONCEAL
    feed(buffer, [1000, 1001])
    assert [buffer.pop(), buffer.pop()] == [payload(1000), payload(1001)]
    assert buffer.stats.resyncs == 1


def test_sequence_numbers_wrap_around_uint32():
    """2**32 - 2, 2**32 - 1, 0, 1 are consecutive, even when reordered across the wrap."""
    top = 2**32
    buffer = JitterBuffer()
    feed(buffer, [top - 2, top - 1, top + 1, top, top + 2])
    assert [buffer.pop() for _ in range(5)] == [payload(s) for s in [top - 2, top - 1, 0, 1, 2]]
    assert buffer.push(top - 1, payload(top - 1), 0.1) is False  # an old frame, not a new one
    assert buffer.stats.duplicate + buffer.stats.late == 1


def test_counter_restart_is_accepted_as_a_new_stream():
    """A sender that restarts its counter (far backwards) is not dropped as late forever."""
    buffer = JitterBuffer()
    feed(buffer, range(5000, 5002))
    buffer.pop(), buffer.pop()
    feed(buffer, [0, 1])
    assert [buffer.pop(), buffer.pop()] == [payload(0), payload(1)]
    assert buffer.stats.resyncs == 1


def test_overflow_evicts_the_oldest_frames():
    """A flood beyond capacity keeps the newest frames and counts the rest."""
    buffer = JitterBuffer(JitterSettings(capacity=12))
    feed(buffer, range(20))
    assert buffer.depth == 12
    assert buffer.stats.overflow == 8
    assert buffer.pop() == payload(8)


def test_target_grows_with_jitter_and_shrinks_slowly():
    """Jittery arrivals raise the target at once; steady ones lower it one step per interval."""
    settings = JitterSettings(shrink_interval=100)
    buffer = JitterBuffer(settings)
    for sequence in range(50):
        jitter = 0.06 if sequence % 5 == 0 else 0.0
        buffer.push(sequence, payload(sequence), sequence * FRAME_SECONDS + jitter)
        buffer.pop()
    grown = buffer.target
    assert grown >= 4
    for sequence in range(50, 200):
        buffer.push(sequence, payload(sequence), sequence * FRAME_SECONDS)
        buffer.pop()
    assert grown - 2 <= buffer.target < grown
    for sequence in range(200, 1200):
        buffer.push(sequence, payload(sequence), sequence * FRAME_SECONDS)
        buffer.pop()
    assert buffer.target == settings.min_target


def test_target_is_bounded():
    """Even absurd jitter never makes the buffer wait more than max_target frames."""
    buffer = JitterBuffer(JitterSettings(max_target=6))
    for sequence in range(40):
        buffer.push(sequence, payload(sequence), (sequence % 2) * 5.0)
    assert buffer.target == 6


def test_lasting_surplus_is_trimmed():
    """Latency gained in a jitter spike is given back once the surplus has lasted a while."""
    settings = JitterSettings(trim_after=20, shrink_interval=10, delay_window=16)
    buffer = JitterBuffer(settings)
    for sequence in range(8):  # a burst after a stall: 8 frames at once
        buffer.push(sequence, payload(sequence), 8 * FRAME_SECONDS)
    for sequence in range(8, 200):
        buffer.push(sequence, payload(sequence), sequence * FRAME_SECONDS)
        buffer.pop()
    assert buffer.stats.trimmed >= 1
    assert buffer.depth <= buffer.target + settings.trim_surplus


def stream(buffer: JitterBuffer, frames: int, *, phase: float, jitter=lambda sequence: 0.0):
    """A sender 20 ms apart, ``phase`` seconds before the tick that follows each frame's slot:
    frame n arrives at n x 20 ms - phase + jitter(n), tick k runs at k x 20 ms, in time order.
    Returns each played frame's wait (tick time - arrival) and how many ticks concealed."""
    arrivals = {n: n * FRAME_SECONDS - phase + jitter(n) for n in range(frames)}
    events = sorted(
        [(arrival, 0, n) for n, arrival in arrivals.items()]
        + [(k * FRAME_SECONDS, 1, k) for k in range(frames)]
    )
    waits, concealed = [], 0
    for time, is_tick, n in events:
        if not is_tick:
            buffer.push(n, payload(n), time)
            continue
        item = buffer.pop(time)
        if item is CONCEAL:
            concealed += 1
        elif item is not NOTHING:
            waits.append(time - arrivals[int.from_bytes(item, "big")])
    return waits, concealed


def test_a_frame_of_delay_nobody_needs_is_given_back():
    """Frames that land 15 ms before a tick wait 35 ms at the starting target of 2; a second
    of that evidence skips one frame, and from then on they wait 15 ms, without a glitch."""
    buffer = JitterBuffer()
    waits, concealed = stream(buffer, 300, phase=0.015)
    assert waits[0] > 0.03
    assert buffer.stats.trimmed == 1
    assert all(abs(wait - 0.015) < 1e-9 for wait in waits[-200:])
    assert concealed == 0


def test_the_guard_keeps_the_frame_when_the_margin_is_thin():
    """Frames 3 ms before a tick wait 23 ms: skipping one would leave 3 ms, less than the
    5 ms guard, so the buffer keeps it."""
    buffer = JitterBuffer()
    waits, concealed = stream(buffer, 300, phase=0.003)
    assert buffer.stats.trimmed == 0
    assert min(waits) > FRAME_SECONDS
    assert concealed == 0


def test_the_slowest_arrival_decides_what_is_skipped():
    """With 15 ms of phase and arrivals up to 12 ms late once a second, the shortest wait in a
    window is 23 ms: nothing is skipped and nothing starves."""
    buffer = JitterBuffer()
    waits, concealed = stream(
        buffer, 500, phase=0.015, jitter=lambda n: 0.012 if n % 50 == 25 else 0.0
    )
    assert buffer.stats.trimmed == 0
    assert concealed == 0
    assert abs(min(waits) - 0.023) < 1e-9


def test_a_skip_the_stream_proves_wrong_doubles_the_evidence_needed():
    """After a skip, a frame arriving 18 ms late starves the buffer: the next skip needs two
    seconds of evidence instead of one, so a stream that misbehaves now and then is not
    skipped and concealed over and over."""
    late_once = {80}
    buffer = JitterBuffer()
    _, concealed = stream(
        buffer, 160, phase=0.015, jitter=lambda n: 0.018 if n in late_once else 0.0
    )
    assert buffer.stats.trimmed == 1 and concealed == 1
    assert buffer._slack.needed == 2 * buffer.settings.slack_window

    buffer = JitterBuffer()
    stream(buffer, 300, phase=0.015, jitter=lambda n: 0.018 if n in late_once else 0.0)
    assert buffer.stats.trimmed == 2  # skipped again, after two clean seconds


def test_a_long_stall_after_a_skip_does_not_slow_the_next_one():
    """Frames 80-84 stuck for 100 ms (a server pause): the buffer starves for several ticks,
    which it would have with or without the skip before, so the evidence needed stays one
    second and the delay the stall added is given back soon after."""
    buffer = JitterBuffer()
    waits, _ = stream(
        buffer, 300, phase=0.015, jitter=lambda n: 0.1 - (n - 80) * 0.02 if 80 <= n <= 84 else 0.0
    )
    assert buffer._slack.needed == buffer.settings.slack_window
    assert buffer.stats.trimmed >= 3
    assert all(abs(wait - 0.015) < 1e-9 for wait in waits[-60:])


def test_a_backlog_is_given_back_a_frame_at_a_time():
    """A stall that queued five extra frames is worked off one skip per 200 ms once a second
    of evidence shows the frames are all early."""
    settings = JitterSettings(trim_after=10_000)  # the frame-count trim stays out of this test
    buffer = JitterBuffer(settings)
    for sequence in range(7):  # arrive together after a 120 ms stall
        buffer.push(sequence, payload(sequence), 0.12)
    waits = []
    for tick in range(7, 200):
        arrival = tick * FRAME_SECONDS - 0.015
        buffer.push(tick, payload(tick), arrival)
        item = buffer.pop(tick * FRAME_SECONDS)
        assert item is not CONCEAL and item is not NOTHING
        sequence = int.from_bytes(item, "big")
        waits.append(tick * FRAME_SECONDS - (0.12 if sequence < 7 else arrival + 0.0))
    assert buffer.stats.trimmed >= 5
    assert max(waits[-60:]) < FRAME_SECONDS


def test_without_the_tick_time_only_the_frame_count_rules_apply():
    """pop() with no time (tests, tools) never skips for slack."""
    buffer = JitterBuffer()
    for tick in range(300):
        buffer.push(tick, payload(tick), tick * FRAME_SECONDS - 0.015)
        buffer.pop()
    assert buffer.stats.trimmed == 0


def test_clear_drops_buffered_frames():
    """After clear() (mute, demotion) nothing buffered leaks out."""
    buffer = JitterBuffer()
    feed(buffer, range(4))
    buffer.clear()
    assert buffer.pop() is NOTHING


@given(
    order=st.permutations(list(range(30))),
    lost=st.sets(st.integers(0, 29), max_size=5),
    base=st.sampled_from([0, 2**32 - 15, 123456]),
)
def test_plays_each_frame_at_most_once_and_in_order(order, lost, base):
    """Whatever the arrival order and losses, output is increasing and never repeats."""
    buffer = JitterBuffer(JitterSettings(capacity=40, max_target=20, initial_target=20))
    for offset in order:
        if offset not in lost:
            sequence = (base + offset) % 2**32
            buffer.push(sequence, payload(sequence), 0.0)
    played = [item for item in (buffer.pop() for _ in range(40)) if isinstance(item, bytes)]
    offsets = [(int.from_bytes(item, "big") - base) % 2**32 for item in played]
    assert offsets == sorted(set(offsets))
    assert set(offsets) == set(range(30)) - lost
