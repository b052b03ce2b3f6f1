import itertools
import random
from dataclasses import dataclass

import numpy as np
import pytest
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
    """Nothing plays until target frames are buffered; then frames come out in sequence order."""
    buffer = JitterBuffer(JitterSettings(initial_target=2))
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


def spike_then_steady(buffer: JitterBuffer, *, inaudible: bool) -> list[int]:
    """8 frames at once after a stall, then one per tick; returns the sequences heard."""
    for sequence in range(8):
        buffer.push(sequence, payload(sequence), 8 * FRAME_SECONDS)
    heard = []
    for sequence in range(8, 200):
        buffer.push(sequence, payload(sequence), sequence * FRAME_SECONDS)
        item = buffer.pop()
        following = buffer.give_back() if inaudible else None
        heard.append(int.from_bytes(following or item, "big"))
    return heard


def test_lasting_surplus_is_trimmed():
    """Latency gained in a jitter spike is given back once the surplus has lasted a while."""
    settings = JitterSettings(trim_after=20, shrink_interval=10, delay_window=16)
    buffer = JitterBuffer(settings)
    spike_then_steady(buffer, inaudible=True)
    assert buffer.stats.trimmed >= 1
    assert buffer.depth <= buffer.target + settings.trim_surplus


def test_lasting_surplus_in_speech_waits_for_an_inaudible_frame():
    """The same spike while the speaker talks on: the surplus is owed, not cut out of speech."""
    settings = JitterSettings(trim_after=20, shrink_interval=10, delay_window=16)
    buffer = JitterBuffer(settings)
    heard = spike_then_steady(buffer, inaudible=False)
    assert heard == list(range(len(heard)))
    assert buffer.frames_to_give_back >= 1
    assert buffer.stats.trimmed == buffer.stats.dropped == 0


@dataclass
class Timeline:
    waits: list[float]  # each heard frame's wait (tick time - arrival), in playout order
    heard: list[int]  # sequence numbers whose audio reached the mix, in order
    given_back: list[int]  # inaudible frames whose slot went to the next frame
    concealed: int  # ticks concealed while the spurt's frames were still coming


def stream(
    buffer: JitterBuffer,
    frames: int,
    *,
    phase: float,
    jitter=lambda index: 0.0,
    quiet=(),
    first_sequence: int = 0,
    first_tick: int = 0,
    lost=(),
) -> Timeline:
    """A talk spurt from a sender 20 ms apart, ``phase`` seconds before the tick that follows
    each frame's slot: its frame i (sequence ``first_sequence + i``) arrives at (first_tick + i)
    x 20 ms - phase + jitter(i); tick k runs at k x 20 ms, in time order, and ten more ticks
    follow the spurt (the sender paused: the buffer goes idle). After a frame whose index is in
    ``quiet`` (silence: inaudible) the harness calls give_back, as the mixer does; the frames
    in ``lost`` never arrive."""
    arrivals = {
        first_sequence + i: (first_tick + i) * FRAME_SECONDS - phase + jitter(i)
        for i in range(frames)
        if i not in lost
    }
    last_tick = first_tick + frames + 10
    events = sorted(
        [(arrival, 0, n) for n, arrival in arrivals.items()]
        + [(k * FRAME_SECONDS, 1, k) for k in range(first_tick, last_tick)]
    )
    quiet = {first_sequence + i for i in quiet}
    timeline = Timeline([], [], [], 0)
    for time, is_tick, n in events:
        if not is_tick:
            buffer.push(n, payload(n), time)
            continue
        item = buffer.pop(time)
        if item is CONCEAL and n < first_tick + frames:
            timeline.concealed += 1
        if not isinstance(item, bytes):
            continue
        sequence = int.from_bytes(item, "big")
        if sequence in quiet:
            following = buffer.give_back(time)
            if following is not None:
                timeline.given_back.append(sequence)
                sequence = int.from_bytes(following, "big")
        timeline.heard.append(sequence)
        timeline.waits.append(time - arrivals[sequence])
    return timeline


def settled_wait(phase: float) -> float:
    """The wait of a steady sender's frames once the delay is what the arrivals need: the
    phase, or a frame more when the phase leaves less than the guard."""
    guard = JitterSettings().slack_guard
    return phase if phase >= guard else phase + FRAME_SECONDS


PHASES = [0.0, 0.004, 0.006, 0.010, 0.015, 0.019]


@pytest.mark.parametrize("phase", PHASES)
def test_first_and_later_talk_spurts_lose_no_frame_and_start_alike(phase):
    """Issue #16: a new stream primed at two frames waited a frame longer than its later spurts
    at the same phase, and a second in, the slack rule skipped a frame of its speech to give
    that back. Now every spurt starts at the delay the arrivals need, so there is nothing to
    give back: every frame is heard, each waits the same from the first one on."""
    buffer = JitterBuffer()
    first = stream(buffer, 150, phase=phase)
    later = stream(buffer, 150, phase=phase, first_sequence=150, first_tick=200)
    assert first.heard == list(range(150))
    assert later.heard == list(range(150, 300))
    for spurt in (first, later):
        assert spurt.waits == pytest.approx([settled_wait(phase)] * 150, abs=1e-9)
        assert spurt.concealed == 0
    assert buffer.stats.trimmed == buffer.stats.dropped == 0


@pytest.mark.parametrize("phase", PHASES)
@pytest.mark.parametrize("seed", [1, 2])
def test_with_small_jitter_no_frame_is_lost_and_no_frame_of_delay_is_kept(phase, seed):
    """Arrivals up to 3 ms late (less than the guard), first and later spurt: nothing starves,
    nothing is skipped, and no second of frames all waited a frame longer than needed."""
    rng = random.Random(seed)
    lateness = [rng.uniform(0, 0.003) for _ in range(300)]
    buffer = JitterBuffer()
    spurts = [
        stream(buffer, 150, phase=phase, jitter=lambda i: lateness[i]),
        stream(
            buffer,
            150,
            phase=phase,
            jitter=lambda i: lateness[150 + i],
            first_sequence=150,
            first_tick=300,
        ),
    ]
    for spurt in spurts:
        assert len(spurt.heard) == 150 and spurt.concealed == 0
        for second in range(0, 150, 50):
            assert min(spurt.waits[second : second + 50]) < FRAME_SECONDS + 0.005
    assert buffer.stats.trimmed == buffer.stats.dropped == 0


@pytest.mark.parametrize("phase", [0.006, 0.010, 0.015, 0.019])
def test_delay_a_late_frame_added_is_given_back_in_a_pause_not_in_speech(phase):
    """Frame 10 arrives 25 ms late: the buffer starves a tick and playout moves a frame later,
    which the arrivals after it do not need. The buffer owes that frame from a second on, but
    speech goes on until frame 120: the frame is given back in the pause (frames 120-134 are
    silence, still sent), on its first quiet frame, and no frame of speech is skipped."""
    pause = range(120, 135)
    buffer = JitterBuffer()
    spurt = stream(
        buffer, 250, phase=phase, jitter=lambda i: 0.025 if i == 10 else 0.0, quiet=pause
    )
    assert spurt.concealed == 1
    assert spurt.given_back == [120]
    assert set(range(250)) - set(spurt.heard) == {120}
    before, after = spurt.heard.index(119), spurt.heard.index(121)
    assert spurt.waits[20:before] == pytest.approx([phase + FRAME_SECONDS] * (before - 20))
    assert spurt.waits[after:] == pytest.approx([phase] * (len(spurt.waits) - after))
    assert buffer.stats.trimmed == 1 and buffer.stats.dropped == 0


def test_speech_is_never_skipped_to_give_delay_back():
    """A stream started a frame late (a start target of 2) and talking without a pause keeps
    the frame: the old rule skipped frame 50 here. A caller that never reports an inaudible
    frame never loses one."""
    buffer = JitterBuffer(JitterSettings(initial_target=2))
    spurt = stream(buffer, 300, phase=0.015)
    assert spurt.heard == list(range(300))
    assert spurt.waits == pytest.approx([0.035] * 300)
    assert buffer.stats.trimmed == buffer.stats.dropped == 0


def test_a_frame_of_delay_nobody_needs_is_given_back():
    """Frames that land 15 ms before a tick wait 35 ms at a starting target of 2; a second of
    that evidence makes the frame owed, the first quiet frame after it gives it back, and from
    then on frames wait 15 ms, without a glitch."""
    buffer = JitterBuffer(JitterSettings(initial_target=2))
    spurt = stream(buffer, 300, phase=0.015, quiet=range(70, 80))
    assert spurt.waits[0] > 0.03
    assert spurt.given_back == [70]
    assert buffer.stats.trimmed == 1
    assert all(abs(wait - 0.015) < 1e-9 for wait in spurt.waits[-200:])
    assert spurt.concealed == 0


def test_an_owed_frame_is_given_back_once_however_long_it_waits():
    """Three seconds of speech, all the while owing the same frame, then a long pause: one
    frame is given back, not one per second of evidence (that would starve the buffer)."""
    buffer = JitterBuffer(JitterSettings(initial_target=2))
    spurt = stream(buffer, 300, phase=0.015, quiet=range(150, 300))
    assert spurt.given_back == [150]
    assert spurt.concealed == 0
    assert all(abs(wait - 0.015) < 1e-9 for wait in spurt.waits[-100:])


def test_a_lost_frames_slot_gives_the_delay_back_in_whole_frame_mode():
    """Whole-frame mode (the bench's baseline): frame 70 never comes while a frame is owed,
    and its slot is skipped instead of concealed."""
    buffer = JitterBuffer(JitterSettings(initial_target=2, skip_lost_slots=True))
    spurt = stream(buffer, 300, phase=0.015, lost={70})
    assert spurt.concealed == 0
    assert set(range(299)) - set(spurt.heard) == {70}
    assert buffer.stats.trimmed == 1
    assert all(abs(wait - 0.015) < 1e-9 for wait in spurt.waits[-200:])


def test_the_guard_keeps_the_frame_when_the_margin_is_thin():
    """Frames 3 ms before a tick wait 23 ms: the first waits for the next tick, and even where
    every frame is silence and could be given back, skipping one would leave 3 ms, less than
    the 5 ms guard, so the buffer keeps it."""
    buffer = JitterBuffer()
    spurt = stream(buffer, 300, phase=0.003, quiet=range(300))
    assert buffer.stats.trimmed == 0
    assert min(spurt.waits) > FRAME_SECONDS
    assert spurt.concealed == 0


def test_the_slowest_arrival_decides_what_is_given_back():
    """Started a frame late (target 2), with 15 ms of phase and arrivals up to 12 ms late once
    a second, the shortest wait in a window is 23 ms: nothing is given back, even in silence,
    and nothing starves."""
    buffer = JitterBuffer(JitterSettings(initial_target=2))
    spurt = stream(
        buffer,
        500,
        phase=0.015,
        jitter=lambda n: 0.012 if n % 50 == 25 else 0.0,
        quiet=range(500),
    )
    assert buffer.stats.trimmed == 0
    assert spurt.concealed == 0
    assert abs(min(spurt.waits) - 0.023) < 1e-9


def test_a_skip_the_stream_proves_wrong_doubles_the_evidence_needed():
    """After a give-back, a frame arriving 18 ms late starves the buffer: the next one needs
    two seconds of evidence instead of one, so a stream that misbehaves now and then is not
    skipped and concealed over and over."""
    late_once = {80}
    settings = JitterSettings(initial_target=2)
    buffer = JitterBuffer(settings)
    spurt = stream(
        buffer,
        160,
        phase=0.015,
        jitter=lambda n: 0.018 if n in late_once else 0.0,
        quiet=range(160),
    )
    assert buffer.stats.trimmed == 1 and spurt.concealed == 1
    assert buffer._slack.needed == 2 * buffer.settings.slack_window

    buffer = JitterBuffer(settings)
    stream(
        buffer,
        300,
        phase=0.015,
        jitter=lambda n: 0.018 if n in late_once else 0.0,
        quiet=range(300),
    )
    assert buffer.stats.trimmed == 2  # given back again, after two clean seconds


def test_a_long_stall_after_a_skip_does_not_slow_the_next_one():
    """Frames 80-84 stuck for 100 ms (a server pause): the buffer starves for several ticks,
    which it would have with or without the give-back before, so the evidence needed stays
    one second and the delay the stall added is given back soon after."""
    buffer = JitterBuffer(JitterSettings(initial_target=2))
    spurt = stream(
        buffer,
        300,
        phase=0.015,
        jitter=lambda n: 0.1 - (n - 80) * 0.02 if 80 <= n <= 84 else 0.0,
        quiet=range(300),
    )
    assert buffer._slack.needed == buffer.settings.slack_window
    assert buffer.stats.trimmed >= 3
    assert all(abs(wait - 0.015) < 1e-9 for wait in spurt.waits[-60:])


def test_a_backlog_is_given_back_a_frame_at_a_time():
    """A stall that queued five extra frames is worked off one frame per 200 ms once a second
    of evidence shows the frames are all early (here every frame is silence)."""
    settings = JitterSettings(trim_after=10_000)  # the frame-count trim stays out of this test
    buffer = JitterBuffer(settings)
    for sequence in range(7):  # arrive together after a 120 ms stall
        buffer.push(sequence, payload(sequence), 0.12)
    waits, given_back_at = [], []
    for tick in range(7, 200):
        arrival = tick * FRAME_SECONDS - 0.015
        buffer.push(tick, payload(tick), arrival)
        item = buffer.pop(tick * FRAME_SECONDS)
        assert item is not CONCEAL and item is not NOTHING
        following = buffer.give_back(tick * FRAME_SECONDS)
        if following is not None:
            item = following
            given_back_at.append(tick)
        sequence = int.from_bytes(item, "big")
        waits.append(tick * FRAME_SECONDS - (0.12 if sequence < 7 else arrival + 0.0))
    assert buffer.stats.trimmed >= 5
    # slack_spacing frames apart: a tick that gives one back plays two.
    assert all(b - a >= settings.slack_spacing - 1 for a, b in itertools.pairwise(given_back_at))
    assert max(waits[-60:]) < FRAME_SECONDS


def test_without_the_tick_time_only_the_frame_count_rules_apply():
    """pop() with no time (tests, tools) never owes a frame for slack."""
    buffer = JitterBuffer(JitterSettings(initial_target=2))
    for tick in range(300):
        buffer.push(tick, payload(tick), tick * FRAME_SECONDS - 0.015)
        buffer.pop()
        buffer.give_back()
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


def test_a_lost_frame_is_concealed_in_its_slot_and_counted_as_loss():
    """By default a lost frame's slot is concealed, never skipped (the playout time-stretches
    owed delay away instead), and the loss shows in ``loss_percent``."""
    buffer = JitterBuffer(JitterSettings(initial_target=2))
    spurt = stream(buffer, 300, phase=0.015, lost={70})
    assert spurt.concealed == 1
    assert buffer.stats.lost == 1
    assert buffer.loss_percent == 1  # 1 of the last 250 slots, rounded up


def test_target_follows_the_jitter_percentile_up_and_down():
    """40 ms of uniform arrival jitter raises the target to cover its 95th percentile
    (3 frames); once arrivals are steady again it comes back down to 1, a frame a second."""
    buffer = JitterBuffer()
    rng = np.random.default_rng(1)
    for n in range(300):
        buffer.push(n, b"x", n * FRAME_SECONDS + rng.uniform(0, 0.040))
        buffer.pop()
    assert buffer.target == 3
    assert 34 <= buffer.jitter_ms <= 40
    for n in range(300, 700):
        buffer.push(n, b"x", n * FRAME_SECONDS + 0.041)
        buffer.pop()
    assert buffer.target == 1
    assert buffer.jitter_ms == 0
