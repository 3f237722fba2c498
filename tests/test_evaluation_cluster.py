"""`symmcd evaluate --cluster`: the per-crystal work on a Dask cluster, the same metrics."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from symmcd.errors import InputError
from symmcd.evaluation import evaluate, workers
from symmcd.sampling import sample_to_dir

pytest.importorskip("dask.distributed")
MP20 = Path(__file__).resolve().parents[1] / "symmcd" / "data" / "mp20"


def evaluated(tmp_path: Path, samples: Path, name: str, monkeypatch) -> dict:
    """Metrics of ``samples`` against 32 MP-20 test crystals, with a cache of its own."""
    monkeypatch.setenv("SYMMCD_CACHE", str(tmp_path / f"cache-{name}"))
    metrics = evaluate(
        samples,
        tmp_path / "ref.csv",
        [tmp_path / "train.csv"],
        tmp_path / f"eval-{name}",
        workers=1,
        progress=False,
    )
    return {k: v for k, v in metrics.items() if "seconds" not in k}


def test_metrics_on_a_local_cluster_equal_those_of_one_process(tmp_path, monkeypatch):
    pd.read_csv(MP20 / "test.csv.gz", nrows=32).to_csv(tmp_path / "ref.csv", index=False)
    pd.read_csv(MP20 / "train.csv.gz", nrows=32).to_csv(tmp_path / "train.csv", index=False)
    samples = tmp_path / "samples"
    sample_to_dir(samples, 32, steps=5, seed=0, progress=False)
    alone = evaluated(tmp_path, samples, "alone", monkeypatch)
    batches = []
    real_map = workers._cluster_map
    monkeypatch.setattr(workers, "_cluster_map", lambda *a: batches.append(a[0]) or real_map(*a))
    with workers.dask_cluster("local", 2):
        assert workers.cluster_workers() == 2
        on_cluster = evaluated(tmp_path, samples, "cluster", monkeypatch)
    assert batches, "no per-crystal work went to the cluster"
    assert json.dumps(on_cluster, sort_keys=True) == json.dumps(alone, sort_keys=True)
    assert workers.cluster_workers() is None  # the cluster is gone with the block


def test_an_unreachable_scheduler_is_a_one_line_error():
    with pytest.raises(InputError, match="cluster: no Dask scheduler at tcp://127.0.0.1:9"):
        with workers.dask_cluster("tcp://127.0.0.1:9", timeout=1):
            pass
