"""A ``[####    ] 40%`` progress bar on a stream, for long copies."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any, TextIO


class ProgressBar:
    """A ``progress(done, total)`` callback that redraws only when the bar changes."""

    def __init__(self, stream: TextIO, label: str = "", width: int = 40,
                 detail: Callable[[], str] | None = None) -> None:
        self._stream = stream
        self._label = label
        self._width = width
        self._last: str | None = None
        #: more words after the percentage, asked at each redraw (disk bytes copied)
        self.detail = detail

    def render(self, done: int, total: int) -> str:
        fraction = 1.0 if total <= 0 else min(max(done / total, 0.0), 1.0)
        filled = int(fraction * self._width)
        bar = "#" * filled + " " * (self._width - filled)
        prefix = f"{self._label} " if self._label else ""
        extra = self.detail() if self.detail is not None else ""
        return f"{prefix}[{bar}] {int(fraction * 100):3d}%" + (f" {extra}" if extra else "")

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


def add_progress_args(parser: argparse.ArgumentParser) -> None:
    """``--progress`` / ``--no-progress`` (default: a bar when stderr is a terminal)."""
    shown = parser.add_mutually_exclusive_group()
    shown.add_argument("--progress", action="store_true", default=None,
                       help="show a progress bar on stderr even when it is not a terminal")
    shown.add_argument("--no-progress", action="store_false", dest="progress",
                       help="never show a progress bar")


def progress_bar(stream: TextIO, args: argparse.Namespace, label: str) -> ProgressBar | None:
    """A progress bar on ``stream`` when asked for, or by default on a terminal."""
    show = args.progress if args.progress is not None else _is_tty(stream)
    return ProgressBar(stream, label=label) if show else None


def _is_tty(stream: Any) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())
