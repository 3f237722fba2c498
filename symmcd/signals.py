"""SIGTERM that unwinds: ``kill``, or a batch scheduler's time limit, stops a run cleanly.

Python's default reaction to SIGTERM ends the process at once, without unwinding: worker
processes would keep running as orphans, staging folders and semaphores would be left behind.
Inside :func:`exit_on_sigterm`, SIGTERM raises :class:`Terminated` instead, so every ``with``
block and ``finally`` runs: pools are terminated, half-written folders removed, locks given back.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class Terminated(SystemExit):
    """Raised by SIGTERM inside :func:`exit_on_sigterm`; a ``SystemExit`` (status 143), so an
    ``except Exception`` does not swallow it."""


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated(128 + signum)


@contextmanager
def exit_on_sigterm() -> Iterator[None]:
    """While the block runs, SIGTERM raises :class:`Terminated`; the previous handler comes back
    after. Only from the main thread, the one place Python lets a handler be set (elsewhere the
    block runs unchanged)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)
