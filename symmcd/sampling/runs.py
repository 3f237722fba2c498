"""`sample_to_dir`: a run of `sample` written to a folder, chunk by chunk, so that it resumes
after a stop, splits into shards or worker processes, and merges into the same files however
it was split.

While a run is unfinished its chunks live beside the output folder, in ``OUT.partial/``:
``run.json`` (the settings every part must share) and one ``chunk-NNNNNN/`` per finished chunk
(its CIFs named by their index in the whole run, samples.jsonl, samples.extxyz, chunk.json),
each renamed into place whole, so a stop loses at most the chunk in progress. The run that finds
every chunk present merges them into ``OUT`` (cifs/, samples.jsonl, samples.extxyz,
summary.json) in one rename and removes ``OUT.partial/``. Memory holds one chunk
(``batch_size`` crystals) per process, so n is limited by disk, not memory.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from symmcd.data.io import check_out_dir, check_writable_parent, staged_dir, unlock_out_dir
from symmcd.errors import InputError
from symmcd.sampling import conditions, writers
from symmcd.sampling.config import SamplingConfig, checked_int
from symmcd.sampling.sampler import (
    SAMPLING_THREADS,
    ScreenScores,
    _Run,
    checked_count,
    chunk_sizes,
    sample,
    torch_threads,
)
from symmcd.signals import exit_on_sigterm

MAX_CRYSTALS_PER_DIR = 100_000_000  # about 2 TB of CIFs; memory holds one chunk per process
CHUNK_FILE = "chunk.json"


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count`` (1-based): chunks index-1, index-1+count, ..."""

    index: int
    count: int

    def holds(self, chunk: int) -> bool:
        return chunk % self.count == self.index - 1

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(text: str | Shard | None) -> Shard | None:
    """``"I/K"`` (I in 1..K) as a Shard; None stays None."""
    if text is None or isinstance(text, Shard):
        return text
    index, _, count = str(text).partition("/")
    try:
        shard = Shard(int(index), int(count))
    except ValueError:
        shard = None
    if shard is None or not 1 <= shard.index <= shard.count:
        raise InputError(f"shard: {text!r} is not I/K with 1 <= I <= K, e.g. 1/4")
    return shard


def chunk_dir(partial: Path, index: int) -> Path:
    return partial / f"chunk-{index:06d}"


def sample_to_dir(
    out_dir: str | Path,
    n: int,
    config: SamplingConfig | None = None,
    checkpoint: str | Path | None = None,
    progress: bool = True,
    formats: str | Sequence[str] = ("cif",),
    overwrite: bool = False,
    threads: int | None = None,
    screen_scores: ScreenScores | None = None,
    resume: bool = False,
    shard: str | Shard | None = None,
    workers: int = 1,
    **options,
) -> dict:
    """Sample n crystals into out_dir (cifs/, samples.jsonl, samples.extxyz, summary.json) and
    return the summary; settings as in :func:`symmcd.sampling.sample`, whose crystals these are.

    ``resume`` continues an unfinished run of the same settings from its finished chunks.
    ``shard`` "I/K" makes only every K-th chunk (from the I-th) and returns a progress record:
    shards of one run may run at once, on any machines sharing (or later gathering) the folder
    ``OUT.partial``; the last to finish merges, as does the unsharded command with ``resume``.
    ``workers`` > 1 spreads the chunks over that many processes (one sampling thread each).
    ``threads`` sets torch's CPU threads outside the sampling arithmetic."""
    config = SamplingConfig.from_options(config, **options)
    chosen = writers.parse_formats(formats)
    out, shard = Path(out_dir), parse_shard(shard)
    workers = checked_int("workers", workers, 1, os.cpu_count() or 1)
    if config.screen > 1:
        if resume or shard or workers > 1:
            raise InputError(
                "screen: ranks every candidate of the run at once, so a screened run cannot be "
                "resumed, sharded or spread over workers"
            )
        return _screened_to_dir(
            out, n, config, checkpoint, progress, chosen, overwrite, threads, screen_scores
        )
    n = checked_int("n", n, 1)
    if n > MAX_CRYSTALS_PER_DIR:
        raise InputError(
            f"n: {n:,} crystals in one folder would fill about {n * 20e3 / 1e12:,.0f} TB; write "
            f"at most {MAX_CRYSTALS_PER_DIR:,} per folder (runs with different seeds)"
        )
    if shard and workers > 1:
        raise InputError("workers: a shard runs in one process; start one shard per worker")
    if workers > 1 and checkpoint is not None and not isinstance(checkpoint, (str, Path)):
        raise InputError("workers: an in-memory model cannot go to other processes; save it")
    if config.formula is not None:
        conditions.parse_formula(config.formula)  # refused before the model loads
    settings = {
        "n": n,
        "formats": list(chosen),
        "checkpoint": checkpoint_label(checkpoint),
        **config.to_dict(),
    }
    started = time.perf_counter()
    with torch_threads(threads) as used_threads:
        run = _Run(config, checkpoint)  # loads and checks the model before any folder is made
        run.check_request()
        partial = _prepare(out, settings, overwrite, resume, shard)
        sizes = chunk_sizes(n, config.batch_size)
        todo = [
            (index, size)
            for index, size in enumerate(sizes)
            if (shard is None or shard.holds(index)) and not chunk_dir(partial, index).is_dir()
        ]
        try:
            if workers > 1:
                _spread(partial, todo, config, checkpoint, chosen, workers, progress)
            else:
                _make_chunks(run, partial, todo, chosen, progress)
        except BaseException:
            if not any(partial.glob("chunk-*")):
                shutil.rmtree(partial, ignore_errors=True)  # nothing to resume
            unlock_out_dir(out)
            raise
        done = sum(chunk_dir(partial, i).is_dir() for i in range(len(sizes)))
        if done < len(sizes):
            if progress:
                print(
                    f"shard {shard}: {done} of {len(sizes)} chunks in {partial}; the last shard "
                    f"to finish (or the command without --shard, with --resume) writes {out}"
                )
            return {"out_dir": str(out), "shard": str(shard), "chunks": len(sizes), "done": done}
        conditions_used = {
            "threads": used_threads,
            "sampling_threads": SAMPLING_THREADS,
            "workers": workers,
            "shard": None if shard is None else str(shard),
        }
        summary = _merge(partial, out, len(sizes), settings, conditions_used, started)
    if progress:
        print(
            f"sampled {summary['n']} crystals in {summary['seconds']:.1f} s "
            f"({summary['crystals_per_second']:.2f} crystals/s) -> {out}"
        )
    return summary


def _prepare(out: Path, settings: dict, overwrite: bool, resume: bool, shard: Shard | None) -> Path:
    """``OUT.partial`` for this run: checked against an unfinished run there, else made."""
    whole = out.absolute()  # "" and "." name the current folder, which has a name
    partial = whole.with_name(whole.name + ".partial")
    if shard is None:
        check_out_dir(out, overwrite)  # the output folder's lock, for this whole run
    else:
        if out.is_dir() and any(out.iterdir()) and not overwrite:
            raise InputError(f"out: {out} is not empty (pass --overwrite to replace it)")
        check_writable_parent(out)
    run_file = partial / "run.json"
    if run_file.is_file():
        earlier = json.loads(run_file.read_text())
        if overwrite and shard is None and not resume:
            shutil.rmtree(partial)
        elif earlier != settings:
            other = sorted(
                k for k in settings.keys() | earlier.keys() if earlier.get(k) != settings.get(k)
            )
            raise InputError(
                f"out: {partial} holds an unfinished run with other settings "
                f"({', '.join(other)}); pass --overwrite to start again"
            )
        elif shard is None and not resume:
            done = len(list(partial.glob("chunk-*")))
            raise InputError(
                f"out: {partial} holds an unfinished run of these settings (finished chunks: "
                f"{done}); pass --resume to continue it, or --overwrite to start again"
            )
    partial.mkdir(parents=True, exist_ok=True)
    if not run_file.is_file():
        staged = partial / f".run-{os.getpid()}.json"
        staged.write_text(json.dumps(settings, indent=1) + "\n")
        os.replace(staged, run_file)
    return partial


def _make_chunks(
    run: _Run,
    partial: Path,
    todo: Sequence[tuple[int, int]],
    formats: Sequence[str],
    progress: bool,
) -> None:
    """Sample and write each (index, size) chunk of ``todo`` in this process. Every chunk but
    the last holds ``batch_size`` crystals, so chunk i's first crystal is i x batch_size."""
    total = sum(size for _, size in todo)
    with torch_threads(SAMPLING_THREADS), run.progress_bar(total, progress) as bar:
        for index, size in todo:
            started = time.perf_counter()
            crystals = run.chunk(index, size, bar)
            sampled = time.perf_counter() - started
            staging = partial / f".tmp-chunk-{index:06d}-{os.getpid()}"
            shutil.rmtree(staging, ignore_errors=True)
            staging.mkdir()
            first = index * run.config.batch_size
            writers.write_samples(staging, crystals, formats, first_index=first)
            timing = {"sampling_seconds": sampled, "seconds": time.perf_counter() - started}
            (staging / CHUNK_FILE).write_text(json.dumps(timing) + "\n")
            try:
                staging.rename(chunk_dir(partial, index))
            except OSError:  # another process finished this chunk first: the same crystals
                shutil.rmtree(staging, ignore_errors=True)


_worker_run: dict[str, _Run] = {}  # in a worker process: the run it samples for, loaded once


def _chunk_in_worker(task: tuple) -> int:
    """In a worker process: make one chunk (the model loaded on the first)."""
    partial, chunk, config, checkpoint, formats = task
    key = json.dumps([config.to_dict(), str(checkpoint)], default=str)
    if key not in _worker_run:
        _worker_run.clear()
        _worker_run[key] = _Run(config, checkpoint)
    _make_chunks(_worker_run[key], partial, [chunk], formats, progress=False)
    return chunk[0]


def _spread(partial, todo, config, checkpoint, formats, workers: int, progress: bool):
    """The (index, size) chunks of ``todo`` over ``workers`` processes, one chunk per task,
    with one progress bar. A SIGTERM to this process (a scheduler's time limit) ends the
    workers with it: the pool is terminated as the block unwinds, so no orphan keeps sampling."""
    context = multiprocessing.get_context("spawn")  # no fork of a process holding torch threads
    tasks = [(partial, chunk, config, checkpoint, formats) for chunk in todo]
    bar = tqdm(total=len(todo), disable=not progress, desc="sampling", unit="chunk")
    with exit_on_sigterm(), context.Pool(workers) as pool, bar:
        for _ in pool.imap_unordered(_chunk_in_worker, tasks):
            bar.update()


def _merge(
    partial: Path, out: Path, chunks: int, settings: dict, used: dict, started: float
) -> dict:
    """Every chunk of ``partial`` into ``out`` (one rename), its summary written; then the
    chunks removed. Files are hard-linked (copied where links fail), so a merge that stops
    leaves the chunks whole; records are read back one at a time, so memory stays small."""
    parts = [chunk_dir(partial, i) for i in range(chunks)]
    timings = [json.loads((part / CHUNK_FILE).read_text()) for part in parts]
    with staged_dir(out) as folder:
        with open(folder / writers.JSONL_NAME, "w") as jsonl:
            for part in parts:
                jsonl.write((part / writers.JSONL_NAME).read_text())
                for sub in (writers.CIF_DIR, writers.POSCAR_DIR):
                    if (part / sub).is_dir():
                        (folder / sub).mkdir(exist_ok=True)
                        for file in sorted((part / sub).iterdir()):
                            _link(file, folder / sub / file.name)
                if (part / writers.EXTXYZ_NAME).is_file():
                    with open(folder / writers.EXTXYZ_NAME, "a") as extxyz:
                        extxyz.write((part / writers.EXTXYZ_NAME).read_text())
        with open(folder / writers.JSONL_NAME) as lines:
            records = (json.loads(line) for line in lines if line.strip())
            summary = run_summary(records, timings, settings, used)
        summary["chunks"] = chunks
        summary["wall_seconds"] = round(time.perf_counter() - started, 3)
        summary["out_dir"] = str(out)
        (folder / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    shutil.rmtree(partial, ignore_errors=True)
    return summary


def _link(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def _screened_to_dir(out, n, config, checkpoint, progress, formats, overwrite, threads, scores):
    """A screened run (K x n candidates ranked at once): sampled in memory, written whole."""
    checked_count(n)
    out = check_out_dir(out, overwrite)
    started = time.perf_counter()
    with torch_threads(threads) as used_threads:
        crystals = sample(n, config, checkpoint=checkpoint, progress=progress, screen_scores=scores)
    sampled = time.perf_counter() - started
    with staged_dir(out) as folder:
        records = writers.write_samples(folder, crystals, formats)
        timing = {"sampling_seconds": sampled, "seconds": time.perf_counter() - started}
        settings = {"checkpoint": checkpoint_label(checkpoint), **config.to_dict()}
        used = {"threads": used_threads, "sampling_threads": SAMPLING_THREADS}
        summary = run_summary(records, [timing], settings, used)
        summary["out_dir"] = str(out)
        (folder / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def checkpoint_label(checkpoint) -> str:
    """How summary.json names the model: its path, 'default', or 'in-memory model'."""
    if checkpoint is None:
        return "default"
    return str(checkpoint) if isinstance(checkpoint, (str, Path)) else "in-memory model"


def run_summary(
    records: Iterable[dict], timings: Sequence[dict], settings: dict, used: dict
) -> dict:
    """Counts and timings of a run, in one pass over its records, and its conditions: the
    settings (less n and formats), steps and precision as the crystals record them, and
    ``used`` (threads, workers, shard). A resumed run counts the seconds of every chunk, not
    those of the stop."""
    n = collapsed = redrawn = draws = 0
    groups, first = set(), {}
    for record in records:
        first = first or record
        n += 1
        collapsed += bool(record.get("collapsed"))
        redrawn += record.get("attempts", 1) > 1
        draws += record.get("attempts", 1)
        groups.add(record["spacegroup"])
    seconds = sum(t["seconds"] for t in timings)
    return {
        "n": n,
        "seconds": round(seconds, 3),
        "sampling_seconds": round(sum(t["sampling_seconds"] for t in timings), 3),
        "crystals_per_second": round(n / seconds, 4) if seconds > 0 else None,
        "collapsed": collapsed,
        "redrawn": redrawn,
        # draws per crystal, first draws included (1.0 = nothing redrawn)
        "draws_per_crystal": round(draws / max(n, 1), 4),
        "spacegroups": len(groups),
        "conditions": {
            **{k: v for k, v in settings.items() if k not in ("n", "formats")},
            "steps": first.get("steps", settings.get("steps")),
            "precision": first.get("precision", settings.get("precision")),
            **used,
        },
    }
