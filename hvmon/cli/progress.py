"""A ``[####    ] 40%`` progress bar on a stream, for long copies."""

from __future__ import annotations

from typing import TextIO


class ProgressBar:
    """A ``progress(done, total)`` callback that redraws only when the bar changes."""

    def __init__(self, stream: TextIO, label: str = "", width: int = 40) -> None:
        self._stream = stream
        self._label = label
        self._width = width
        self._last: str | None = None

    def render(self, done: int, total: int) -> str:
        fraction = 1.0 if total <= 0 else min(max(done / total, 0.0), 1.0)
        filled = int(fraction * self._width)
        bar = "#" * filled + " " * (self._width - filled)
        prefix = f"{self._label} " if self._label else ""
        return f"{prefix}[{bar}] {int(fraction * 100):3d}%"

    def __call__(self, done: int, total: int) -> None:
        line = self.render(done, total)
        if line != self._last:
            self._stream.write("\r" + line)
            self._stream.flush()
            self._last = line

    def finish(self) -> None:
        """End the bar's line (only if something was drawn)."""
        if self._last is not None:
            self._stream.write("\n")
            self._stream.flush()
