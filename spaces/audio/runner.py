"""Drives room mixers from one dedicated thread on one clock (one runner per process).

The transport adds a room's mixer when the space goes live and removes it when it ends; it
receives every ``TickResult`` through ``on_result`` on the mixer thread and must hand it off
quickly (e.g. ``loop.call_soon_threadsafe``) rather than do I/O there.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Hashable

from .clock import Clock, TickClock, TickTiming
from .mixer import RoomMixer, TickResult

logger = logging.getLogger(__name__)

RoomId = Hashable


class MixerRunner:
    def __init__(
        self,
        clock: Clock | None = None,
        *,
        on_result: Callable[[RoomId, TickResult], None] | None = None,
        on_timing: Callable[[TickTiming], None] | None = None,
        max_behind_ticks: int = 10,
    ) -> None:
        self.tick_clock = TickClock(clock, max_behind_ticks=max_behind_ticks)
        self.on_result = on_result
        self.on_timing = on_timing
        self.errors = 0
        # Replaced, never mutated, so the mixer thread can iterate it without a lock.
        self._rooms: dict[RoomId, RoomMixer] = {}
        self._rooms_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # start() and stop() may come from different threads (the media loop starts the runner
        # when it takes a room; a shutdown stops it).
        self._lifecycle = threading.Lock()

    @property
    def rooms(self) -> dict[RoomId, RoomMixer]:
        return self._rooms

    def add_room(self, room_id: RoomId, mixer: RoomMixer) -> None:
        with self._rooms_lock:
            self._rooms = {**self._rooms, room_id: mixer}

    def remove_room(self, room_id: RoomId) -> RoomMixer | None:
        with self._rooms_lock:
            rooms = dict(self._rooms)
            mixer = rooms.pop(room_id, None)
            self._rooms = rooms
        return mixer

    def start(self) -> None:
        with self._lifecycle:
            if self._thread is not None:
                raise RuntimeError("MixerRunner already started")
            self._stop.clear()
            thread = threading.Thread(target=self._run, name="salon-audio-mixer", daemon=True)
            thread.start()
            self._thread = thread

    def stop(self, timeout: float | None = 5.0) -> None:
        """Stop after the tick in progress; safe to call twice or before ``start``."""
        with self._lifecycle:
            self._stop.set()
            thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():
                raise RuntimeError("mixer thread did not stop in time")

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def run_ticks(self, count: int) -> None:
        """Run ``count`` ticks on the calling thread (tests, with a fake clock)."""
        for _ in range(count):
            if not self._step():
                return

    def _run(self) -> None:
        while self._step():
            pass

    def _step(self) -> bool:
        timing = self.tick_clock.wait_next(self._stop)
        if timing is None:
            return False
        if self.on_timing is not None:
            self.on_timing(timing)
        now = timing.deadline + timing.lateness
        for room_id, mixer in self._rooms.items():
            try:
                result = mixer.tick(now)
                if self.on_result is not None:
                    self.on_result(room_id, result)
            except Exception:
                # One broken room (or sink) must not stop the others on this clock.
                self.errors += 1
                logger.exception("audio mixer tick failed for room %r", room_id)
        return True
