"""``check_hvmon``: entry point (``run``) and the testable ``main``.

``main(argv)`` returns ``(exit code, output)`` and never raises: bad
arguments, errors of the core, a timeout (``-t``, by SIGALRM through
``setitimer``) and even a bug all become UNKNOWN with one status line.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, NoReturn

from hvmon.plugins.nagios.options import USAGE, UsageExit, parse_args
from hvmon.plugins.nagios.output import render, status_line, timing

if TYPE_CHECKING:
    from hvmon.plugins.nagios.options import Options
    from hvmon.plugins.nagios.source import Connector, Source

UNKNOWN = 3


class _Expired(Exception):
    """Raised in the main thread by the ``-t`` alarm."""


def run() -> NoReturn:
    """Console script ``check_hvmon``: print, then exit with the plugin's code.

    ``os._exit`` skips interpreter teardown: after a timeout a thread may still
    wait on a stalled daemon or driver, and the output is already written.
    """
    code, text = main(sys.argv[1:])
    sys.stdout.write(text)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def main(argv: Sequence[str], *, connect: Connector | None = None,
         environ: Mapping[str, str] | None = None) -> tuple[int, str]:
    """Run one check; ``connect(uri)`` replaces ``hvmon.open_readonly`` (tests)."""
    start = time.perf_counter()
    try:
        options = parse_args(argv, environ)
    except UsageExit as exc:
        return _usage(exc)
    from hvmon.plugins.nagios.source import Source

    source = Source(options.uri, options.max_age, connect)
    code, text, expired = _check(options, source, start)
    if not expired:  # after a timeout the connection may still be busy: leave it
        with contextlib.suppress(Exception):  # the verdict is made; a failed goodbye is moot
            source.close()
    return code, text


def _usage(exc: UsageExit) -> tuple[int, str]:
    if exc.text.startswith(("usage:", "check_hvmon v", "Usage:")) or "\n" in exc.text.strip():
        return exc.code, exc.text if exc.text.endswith("\n") else exc.text + "\n"
    mode = exc.mode or "ARGUMENTS"
    return exc.code, render([status_line(mode, "UNKNOWN", exc.text), f"Usage: {USAGE}"])


def _check(options: Options, source: Source, start: float) -> tuple[int, str, bool]:
    """(exit code, output, whether the timeout expired)."""
    from hvmon.plugins.nagios.modes import build

    try:
        with _alarm(options.timeout):
            check = build(options, source)
            check()
    except _Expired:
        return (*_unknown(options, f"timeout: no result after {options.timeout:g} s",
                          time.perf_counter() - start), True)
    except Exception as exc:  # a bug must still give Nagios one UNKNOWN line
        extra = []
        if options.verbose >= 3:
            import traceback

            extra = traceback.format_exc().splitlines()
        return (*_unknown(options, f"internal error: {type(exc).__name__}: {exc}",
                          time.perf_counter() - start, extra), False)
    elapsed = time.perf_counter() - start
    state = str(check.state)
    perfdata = [*check.perfdata, timing(elapsed)]
    lines = [status_line(options.mode, state, check.summary_str, perfdata)]
    if options.verbose >= 1:
        lines += check.summary.verbose(check.results) or []
    if options.verbose >= 2:
        lines += source.describe()
    if options.verbose >= 3:
        lines += [f"timing: {step} {seconds * 1000:.1f} ms"
                  for step, seconds in source.timings.items()]
        lines.append(f"timing: total {elapsed * 1000:.1f} ms")
    return check.exitcode, render(lines), False


def _unknown(options: Options, text: str, elapsed: float,
             extra: Sequence[str] = ()) -> tuple[int, str]:
    line = status_line(options.mode, "UNKNOWN", text, [timing(elapsed)])
    return UNKNOWN, render([line, *extra])


class _alarm:  # noqa: N801 - used like a function
    """``with _alarm(seconds):`` raises :class:`_Expired` in the block after ``seconds``."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._previous: object = None
        self._armed = False

    def __enter__(self) -> None:
        import signal
        import threading

        if threading.current_thread() is not threading.main_thread():
            return  # signals reach only the main thread: no timeout elsewhere
        self._previous = signal.signal(signal.SIGALRM, self._expire)
        signal.setitimer(signal.ITIMER_REAL, self.seconds)
        self._armed = True

    def __exit__(self, *exc: object) -> None:
        import signal

        if self._armed:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self._previous)  # type: ignore[arg-type]
            self._armed = False

    @staticmethod
    def _expire(signum: int, frame: object) -> None:
        raise _Expired
