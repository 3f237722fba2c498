"""Worker processes of the evaluation (fingerprints, relaxations), stopped with their parent;
or, inside :func:`dask_cluster`, the workers of a Dask cluster.

Python's default reaction to SIGTERM (``kill``, a batch scheduler's time limit) ends the process
at once, without unwinding: the pool's workers would keep running as orphans, for minutes in the
case of CHGNet relaxations. While a pool is open, SIGTERM therefore raises ``SystemExit`` in the
parent (``symmcd.signals``), which unwinds through the ``with`` block and terminates the workers.
"""

from __future__ import annotations

import functools
import logging
import multiprocessing
import os
import signal
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from multiprocessing.pool import Pool

import threadpoolctl

from symmcd.errors import InputError
from symmcd.signals import exit_on_sigterm

_client = None  # the Dask client that per-crystal work goes to (None: this machine's processes)


def default_workers() -> int:
    """Number of worker processes: all cores this process may use."""
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)


def _start_worker(initializer: Callable[[], None] | None) -> None:
    """Give a worker the default SIGTERM action back and one BLAS / OpenMP thread, then run its
    own ``initializer``.

    A Python-level handler inherited from the parent can lose the signal: if SIGTERM lands just
    before the worker blocks on the pool's task-queue lock (which ``Pool.terminate`` holds), the
    handler never runs and the pool waits forever for that worker to exit.

    One thread, because the pool already fills the cores: with OpenBLAS's default of one thread
    per core, its threads wait on each other's busy cores, and the 3x3 matrix functions of ASE's
    cell filter (``expm_frechet``, ``logm``) took 9 and 27 ms instead of 0.5 and 8 ms, most of a
    relaxation step's time."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    threadpoolctl.threadpool_limits(1)
    if initializer is not None:
        initializer()


@contextmanager
def worker_pool(
    workers: int, start_method: str, initializer: Callable[[], None] | None = None
) -> Iterator[Pool]:
    """A ``multiprocessing`` pool whose workers are terminated when the block is left, also on
    SIGTERM to the parent (handled only while the pool is open, and only from the main thread,
    the one place Python lets a handler be set)."""
    context = multiprocessing.get_context(start_method)
    start = functools.partial(_start_worker, initializer)
    with exit_on_sigterm(), context.Pool(workers, initializer=start) as pool:
        yield pool


def ordered_map(
    function: Callable, items: Sequence, workers: int, chunksize: int, min_parallel: int
) -> Iterator:
    """``function`` of every item, yielded in order: in this process when ``workers <= 1`` or
    there are fewer than ``min_parallel`` items (a pool costs ~0.1 s to start), else over a
    forked ``worker_pool`` that closes when the iteration ends."""
    if len(items) >= min_parallel and _client is not None:
        yield from _cluster_map(function, items, chunksize)
        return
    if workers <= 1 or len(items) < min_parallel:
        yield from map(function, items)
        return
    with worker_pool(workers, "fork") as pool:
        yield from pool.imap(function, items, chunksize)


@contextmanager
def dask_cluster(
    address: str = "local", workers: int | None = None, timeout: float = 10.0
) -> Iterator[object]:
    """Send the per-crystal work of the evaluation (parsing, fingerprints, formation energies,
    relaxations) to a Dask cluster while the block runs: a local cluster of ``workers``
    processes with one thread each (default: every core), or the scheduler at ``address``
    (e.g. tcp://host:8786; ``timeout`` seconds to reach it). Results come back in order, so
    the metrics do not depend on where they were computed."""
    global _client
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise InputError("cluster: needs Dask: pip install 'symmcd[cluster]'") from None
    local = None
    if address == "local":
        local = LocalCluster(
            n_workers=workers or default_workers(),
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=logging.ERROR,
        )
        client = Client(local)
    else:
        try:
            client = Client(address, timeout=timeout)
        except (OSError, TimeoutError, ValueError) as error:
            message = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise InputError(f"cluster: no Dask scheduler at {address}: {message}") from None
    previous, _client = _client, client
    try:
        yield client
    finally:
        _client = previous
        client.close()
        if local is not None:
            local.close()


def cluster_workers() -> int | None:
    """Workers of the active Dask cluster (None outside :func:`dask_cluster`)."""
    return None if _client is None else len(_client.scheduler_info()["workers"])


def _apply_to_batch(function: Callable, batch: list) -> list:
    """``function`` of each item of a batch, on one BLAS / torch thread (a cluster worker)."""
    import torch

    torch.set_num_threads(1)
    with threadpoolctl.threadpool_limits(1):
        return [function(item) for item in batch]


def _cluster_map(function: Callable, items: Sequence, chunksize: int) -> Iterator:
    """``function`` of every item over the Dask cluster, in batches of ``chunksize``, in order."""
    batches = [list(items[i : i + chunksize]) for i in range(0, len(items), chunksize)]
    futures = _client.map(_apply_to_batch, [function] * len(batches), batches, pure=False)
    try:
        for future in futures:
            yield from future.result()
    finally:
        _client.cancel(futures)


def cluster_unordered(function: Callable, jobs: Sequence) -> Iterator | None:
    """``function`` of every job over the active Dask cluster as they finish (None: no
    cluster)."""
    if _client is None:
        return None

    def results() -> Iterator:
        from dask.distributed import as_completed

        futures = [_client.submit(_apply_to_batch, function, [job], pure=False) for job in jobs]
        try:
            for future in as_completed(futures):
                yield from future.result()
        finally:
            _client.cancel(futures)

    return results()
