"""Data pipeline: reading CIFs, preparing asymmetric-unit caches, statistics, batching.

Only the batch type is imported eagerly (the model and sampler need nothing else); the rest,
which pulls in pymatgen, is loaded on first access.
"""

from importlib import import_module

from symmcd.data.batch import CrystalBatch, fully_connected_edges

_LAZY = {
    "AsymmetricUnitDataset": "symmcd.data.dataset",
    "CrystalCache": "symmcd.data.dataset",
    "CrystalRecord": "symmcd.data.dataset",
    "collate": "symmcd.data.dataset",
    "dataset_info": "symmcd.data.dataset",
    "load_cache": "symmcd.data.dataset",
    "DatasetStatistics": "symmcd.data.statistics",
    "compute_statistics": "symmcd.data.statistics",
    "load_statistics": "symmcd.data.prepare",
    "prepare_dataset": "symmcd.data.prepare",
    "prepare_mp20": "symmcd.data.prepare",
    "iter_records": "symmcd.data.io",
    "read_structure": "symmcd.data.io",
}

__all__ = ["CrystalBatch", "fully_connected_edges", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'symmcd.data' has no attribute {name!r}")
