"""Worker processes of the evaluation (fingerprints, relaxations), stopped with their parent.

Python's default reaction to SIGTERM (``kill``, a batch scheduler's time limit) ends the process
at once, without unwinding: the pool's workers would keep running as orphans, for minutes in the
case of CHGNet relaxations. While a pool is open, SIGTERM therefore raises ``SystemExit`` in the
parent, which unwinds through the ``with`` block and terminates the workers.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from multiprocessing.pool import Pool


def default_workers() -> int:
    """Number of worker processes: all cores this process may use."""
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


@contextmanager
def worker_pool(
    workers: int, start_method: str, initializer: Callable[[], None] | None = None
) -> Iterator[Pool]:
    """A ``multiprocessing`` pool whose workers are terminated when the block is left, also on
    SIGTERM to the parent (handled only while the pool is open, and only from the main thread,
    the one place Python lets a handler be set)."""
    context = multiprocessing.get_context(start_method)
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _exit_on_sigterm) if in_main_thread else None
    try:
        with context.Pool(workers, initializer=initializer) as pool:
            yield pool
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)
