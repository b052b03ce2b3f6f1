"""The 20 ms room clock: deadline-based, so hours of ticks do not drift.

Tick *n* is due at ``start + n * period``; it is never scheduled relative to the previous
tick's end, so sleep overshoot and tick duration do not accumulate. When the mixer thread
falls further behind than ``max_behind_ticks`` periods (the process was stalled), the missed
ticks are skipped and counted instead of being run back to back: a burst of stale audio
would help no one, and the jitter buffers trim the surplus frames they collected meanwhile.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from typing import Protocol

from .codec import FRAME_SECONDS


class Clock(Protocol):
    def now(self) -> float:
        """Monotonic seconds."""
        ...

    def wait_until(self, deadline: float, stop: threading.Event) -> bool:
        """Block until ``deadline`` or until ``stop`` is set; True if stopped."""
        ...


class MonotonicClock:
    def now(self) -> float:
        return time.monotonic()

    def wait_until(self, deadline: float, stop: threading.Event) -> bool:
        remaining = deadline - time.monotonic()
        if remaining > 0:
            return stop.wait(remaining)
        return stop.is_set()


class FakeClock:
    """Time moves only when told to: ``wait_until`` jumps to the deadline, ``advance`` adds
    time (e.g. from inside a tick, to simulate a slow tick)."""

    def __init__(self, start: float = 1_000.0) -> None:
        self.time = start

    def now(self) -> float:
        return self.time

    def advance(self, seconds: float) -> None:
        self.time += seconds

    def wait_until(self, deadline: float, stop: threading.Event) -> bool:
        if stop.is_set():
            return True
        self.time = max(self.time, deadline)
        return False


@dataclass(frozen=True, slots=True)
class TickTiming:
    index: int  # deadline number since start, counting skipped ones
    deadline: float
    lateness: float  # seconds the tick started after its deadline (>= 0)
    skipped: int  # ticks skipped just before this one


class TickClock:
    def __init__(
        self,
        clock: Clock | None = None,
        *,
        period: float = FRAME_SECONDS,
        max_behind_ticks: int = 10,
    ) -> None:
        self.clock = clock or MonotonicClock()
        self.period = period
        self.max_behind_ticks = max_behind_ticks
        self.start: float | None = None
        self.ticks = 0  # ticks run
        self.skipped = 0  # ticks skipped
        self._next_index = 0

    def wait_next(self, stop: threading.Event) -> TickTiming | None:
        """Wait for the next deadline; returns its timing, or None when ``stop`` was set."""
        clock = self.clock
        if self.start is None:
            self.start = clock.now()
        deadline = self.start + self._next_index * self.period
        if clock.now() < deadline and clock.wait_until(deadline, stop):
            return None
        if stop.is_set():
            return None
        now = clock.now()
        lateness = max(0.0, now - deadline)
        skipped = 0
        if lateness > self.max_behind_ticks * self.period:
            skipped = math.floor(lateness / self.period)
            self._next_index += skipped
            self.skipped += skipped
            deadline = self.start + self._next_index * self.period
            lateness = max(0.0, now - deadline)
        timing = TickTiming(self._next_index, deadline, lateness, skipped)
        self._next_index += 1
        self.ticks += 1
        return timing

    def drift(self) -> float:
        """Wall time elapsed minus the time the ticks so far account for (run + skipped).

        Between ticks an on-time clock reads between -period and 0 (the next tick is not due
        yet); positive means it is behind. It stays there for hours because deadlines are
        absolute: nothing accumulates.
        """
        if self.start is None:
            return 0.0
        return (self.clock.now() - self.start) - self._next_index * self.period
