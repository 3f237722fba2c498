"""Runs written chunk by chunk: the same crystals however a run is split, stopped or spread."""

from __future__ import annotations

from pathlib import Path

import pytest

from symmcd.errors import InputError
from symmcd.sampling import runs, sample, sampler, writers

SMALL = {"n": 10, "steps": 3, "batch_size": 4, "seed": 0, "progress": False}  # 3 chunks


def files(folder: Path) -> dict[str, bytes]:
    """Every CIF and the samples.jsonl of an output folder, by name."""
    found = {p.name: p.read_bytes() for p in sorted((folder / "cifs").iterdir())}
    return found | {"samples.jsonl": (folder / "samples.jsonl").read_bytes()}


@pytest.fixture(scope="module")
def unsplit(tmp_path_factory) -> dict[str, bytes]:
    out = tmp_path_factory.mktemp("unsplit") / "out"
    summary = runs.sample_to_dir(out, **SMALL)
    assert summary["n"] == 10 and summary["chunks"] == 3
    return files(out)


def test_shards_in_any_order_merge_into_the_unsplit_run(tmp_path, unsplit):
    out = tmp_path / "out"
    for shard in ("3/3", "1/3"):
        progress = runs.sample_to_dir(out, shard=shard, **SMALL)
        assert not out.exists() and progress["chunks"] == 3
    summary = runs.sample_to_dir(out, shard="2/3", **SMALL)  # the last shard merges
    assert summary["n"] == 10
    assert files(out) == unsplit
    assert not out.with_name("out.partial").exists()


def test_the_in_memory_sample_is_the_same_crystals(unsplit):
    crystals = sample(SMALL["n"], **{k: v for k, v in SMALL.items() if k != "n"})
    texts = [writers.cif_text(crystal).encode() for crystal in crystals]
    assert texts == [unsplit[f"{i:06d}.cif"] for i in range(10)]


def test_a_stopped_run_resumes_recomputing_only_its_missing_chunks(tmp_path, monkeypatch, unsplit):
    made, stopped = [], []
    real_chunk = sampler._Run.chunk

    def chunk(self, index, size, bar=None):
        if index == 1 and not stopped:  # stop while the second chunk is being made
            stopped.append(index)
            raise KeyboardInterrupt
        made.append(index)
        return real_chunk(self, index, size, bar)

    monkeypatch.setattr(sampler._Run, "chunk", chunk)
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        runs.sample_to_dir(out, **SMALL)
    assert sorted(p.name for p in out.with_name("out.partial").glob("chunk-*")) == ["chunk-000000"]
    with pytest.raises(InputError, match="pass --resume to continue it"):
        runs.sample_to_dir(out, **SMALL)
    with pytest.raises(InputError, match=r"other settings \(batch_size\)"):
        runs.sample_to_dir(out, resume=True, **(SMALL | {"batch_size": 5}))
    assert made == [0]
    made.clear()
    runs.sample_to_dir(out, resume=True, **SMALL)
    assert made == [1, 2]  # chunk 0 was not made again
    assert files(out) == unsplit


def test_worker_processes_give_the_same_crystals(tmp_path, unsplit):
    out = tmp_path / "out"
    summary = runs.sample_to_dir(out, workers=2, **SMALL)
    assert summary["conditions"]["workers"] == 2
    assert files(out) == unsplit


@pytest.mark.parametrize("text", ["0/4", "5/4", "1/0", "x", "1/", "/4", "1.5/2"])
def test_a_bad_shard_is_refused(text):
    with pytest.raises(InputError, match="shard: .* is not I/K"):
        runs.parse_shard(text)


def test_a_screened_run_cannot_be_split(tmp_path):
    with pytest.raises(InputError, match="screened run cannot be resumed, sharded"):
        runs.sample_to_dir(
            tmp_path / "out",
            10,
            targets={"formation_energy_per_atom": -1.0},
            screen=2,
            shard="1/2",
            progress=False,
        )


def test_the_in_memory_cap_points_to_sample_to_dir():
    with pytest.raises(InputError, match="write them to a folder with sample_to_dir"):
        sampler.checked_count(sampler.MAX_CRYSTALS_PER_RUN + 1)
