"""The test driver's clock: real time, or a manual clock a test sets."""

from __future__ import annotations

import time


class Clock:
    """Seconds since an arbitrary epoch; manual clocks only move when told."""

    def __init__(self, manual: bool = False, start: float = 0.0) -> None:
        self.manual = manual
        self._origin = time.monotonic() - start
        self._manual_now = start

    def now(self) -> float:
        if self.manual:
            return self._manual_now
        return time.monotonic() - self._origin

    def set(self, value: float) -> None:
        """Set a manual clock (never backwards: counters must stay monotonic)."""
        self.manual = True
        self._manual_now = max(self._manual_now, float(value))

    def advance(self, seconds: float) -> None:
        self.set(self.now() + max(0.0, float(seconds)))
