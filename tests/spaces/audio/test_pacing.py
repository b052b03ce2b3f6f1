"""The speakers' flood limit counts media time (sequence, timestamp) against the wall clock."""

import pytest

from spaces.audio.codec import FRAME_SAMPLES, FRAME_SECONDS
from spaces.audio.pacing import MediaTimeLimit


class Wall:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def limit(wall, **options) -> MediaTimeLimit:
    return MediaTimeLimit(clock=wall, **{"backlog": 10, **options})


def send_paced(limit, wall, first, count, *, speed=1.0, step_samples=FRAME_SAMPLES):
    """``count`` frames from sequence ``first``, ``speed`` times faster than real time;
    True if all were allowed."""
    allowed = True
    for sequence in range(first, first + count):
        allowed &= limit.allow(sequence % 2**32, (sequence * step_samples) % 2**32)
        wall.now += FRAME_SECONDS / speed
    return allowed


def test_real_time_is_allowed_for_ever():
    """An honest speaker at real time for an hour is never refused."""
    wall = Wall()
    pacing = limit(wall)
    assert send_paced(pacing, wall, 0, 50 * 3600)


@pytest.mark.parametrize("stall", [2.0, 5.0, 9.0])
def test_a_stall_delivers_its_backlog_at_once(stall):
    """A network or event-loop stall of a few seconds, then all its frames at once: allowed."""
    wall = Wall()
    pacing = limit(wall)
    assert send_paced(pacing, wall, 0, 500)
    wall.now += stall
    backlog = round(stall / FRAME_SECONDS)
    assert all(pacing.allow(s, s * FRAME_SAMPLES) for s in range(500, 500 + backlog))
    assert send_paced(pacing, wall, 500 + backlog, 500)


def test_repeated_stalls_never_add_up_to_a_flood():
    """Stall, burst, stall, burst (the issue's 0, 0, 15, 16, 0 frames a second): allowed."""
    wall = Wall()
    pacing = limit(wall)
    sequence = 0
    for _ in range(20):
        wall.now += 2.9
        for _ in range(round(2.9 / FRAME_SECONDS)):
            assert pacing.allow(sequence, sequence * FRAME_SAMPLES)
            sequence += 1


@pytest.mark.parametrize(
    ("speed", "step_samples"),
    [(1.2, FRAME_SAMPLES), (2.0, FRAME_SAMPLES), (1.0, 2 * FRAME_SAMPLES), (1.0, 1200)],
    ids=["20% fast by count", "twice real time by count", "timestamps twice as fast",
         "timestamps 25% fast"],
)  # fmt: skip
def test_faster_than_real_time_is_refused(speed, step_samples):
    """A sender whose frames (by count or by their timestamps) outrun the wall clock is refused
    within a minute, however small its burst."""
    wall = Wall()
    pacing = limit(wall)
    assert not send_paced(pacing, wall, 0, 50 * 60, speed=speed, step_samples=step_samples)


def test_a_flood_at_once_is_refused_within_two_seconds_of_audio():
    """Frames as fast as the socket takes them: refused before 1.5 s of audio got through."""
    wall = Wall()
    pacing = limit(wall)
    allowed = 0
    while pacing.allow(allowed, allowed * FRAME_SAMPLES):
        allowed += 1
    assert allowed < 1.5 / FRAME_SECONDS


@pytest.mark.parametrize(
    "numbering",
    [
        lambda i: (i, (i * 3600 * 48_000) % 2**32),  # timestamps an hour ahead each frame
        lambda i: (i * 1000, i * 1000 * FRAME_SAMPLES),  # sequences jumping far ahead
        lambda i: (7, 7 * FRAME_SAMPLES),  # the same frame over and over
        lambda i: (-i % 2**32, -i * FRAME_SAMPLES % 2**32),  # counting backwards
    ],
    ids=["forged timestamps", "forged sequences", "repeated", "backwards"],
)
def test_forged_numbers_cannot_smuggle_a_flood(numbering):
    """Numbers that jump far ahead, repeat or run backwards buy no credit: each frame still
    costs one frame's time, so twice real time by count is refused."""
    wall = Wall()
    pacing = limit(wall)
    refused = False
    for i in range(50 * 60):
        refused |= not pacing.allow(*numbering(i))
        wall.now += FRAME_SECONDS / 2
    assert refused


def test_a_jump_after_a_long_mute_is_a_new_numbering_not_a_flood():
    """A client that resumes with a jump (or from 0) after a long mute is not refused."""
    wall = Wall()
    pacing = limit(wall)
    assert send_paced(pacing, wall, 0, 250)
    wall.now += 600  # ten minutes muted
    assert send_paced(pacing, wall, 250 + 600 * 50, 250)  # resumes where real time is
    wall.now += 60
    assert send_paced(pacing, wall, 0, 250)  # or from 0


def test_a_mute_buys_no_more_than_the_backlog():
    """Credit stops growing at the backlog: after ten silent minutes a sender may burst 10 s
    of audio, not ten minutes of it."""
    wall = Wall()
    pacing = limit(wall)
    assert send_paced(pacing, wall, 0, 50)
    wall.now += 600
    allowed = 0
    while pacing.allow(50 + allowed, (50 + allowed) * FRAME_SAMPLES):
        allowed += 1
    assert allowed * FRAME_SECONDS < 11


def test_frames_without_numbers_cost_one_frame_each():
    """Malformed messages too short to carry numbers still count towards the limit."""
    wall = Wall()
    pacing = limit(wall)
    assert not all(pacing.allow() for _ in range(100))


@pytest.mark.parametrize(
    "options", [{"backlog": 0}, {"max_speed": 0.9}, {"lead": -1}, {"max_jump": 0.001}]
)
def test_nonsense_settings_are_refused(options):
    """A limit that could never let an honest sender through is a configuration error."""
    with pytest.raises(ValueError):
        limit(Wall(), **options)
