"""prepare on a small MP-20 slice with broken rows; cache round trip; statistics; collate."""

import csv
import json

import numpy as np
import pandas as pd
import pytest
import torch

from symmcd.data.dataset import (
    CACHE_FORMAT_VERSION,
    AsymmetricUnitDataset,
    collate,
    dataset_info,
    load_cache,
)
from symmcd.data.io import iter_records, read_structure
from symmcd.data.prepare import load_statistics, mp20_sources, prepare_dataset
from symmcd.data.statistics import DatasetStatistics
from symmcd.errors import InputError, StructureError
from symmcd.symmetry.lattice import k_mask
from symmcd.symmetry.tables import SG_ENCODING, WP_MULTIPLICITY

NUM_GOOD = 50


def _break_occupancy(cif: str) -> str:
    """Set the occupancy of the first atom site to 0.5."""
    start = cif.index("_atom_site_occupancy")
    line_end = cif.index("\n", cif.index("\n", start) + 1)
    return cif[: line_end - 1] + "0.5" + cif[line_end:]


def _fake_element(cif: str) -> str:
    """Rename every atom of the first element to the made-up symbol 'Xx'."""
    start = cif.index("_atom_site_occupancy")
    first_atom = cif[cif.index("\n", start) + 1 :].split()[0]
    return cif.replace(f"  {first_atom}  {first_atom}", "  Xx  Xx")


@pytest.fixture(scope="module")
def mp20_rows() -> pd.DataFrame:
    return pd.read_csv(mp20_sources()["val"][0]).iloc[:NUM_GOOD]


@pytest.fixture(scope="module")
def prepared(tmp_path_factory, mp20_rows):
    root = tmp_path_factory.mktemp("prepared")
    good = mp20_rows[["material_id", "cif"]]
    broken = pd.DataFrame(
        {
            "material_id": ["bad-text", "bad-occupancy", "bad-element", "bad-empty"],
            "cif": [
                "data_x\nthis is not a crystal\n",
                _break_occupancy(good.cif.iloc[0]),
                _fake_element(good.cif.iloc[1]),
                "",
            ],
        }
    )
    train_csv = root / "train.csv"
    pd.concat([good.iloc[:40], broken], ignore_index=True).to_csv(train_csv, index=False)
    val_dir = root / "val_cifs"
    val_dir.mkdir()
    for record_id, cif in zip(good.material_id.iloc[40:], good.cif.iloc[40:], strict=True):
        (val_dir / f"{record_id}.cif").write_text(cif)
    out = root / "out"
    summary = prepare_dataset({"train": [train_csv], "val": [val_dir]}, out, workers=2)
    return out, summary


def test_prepare_keeps_good_rows_and_reports_broken_ones(prepared):
    out, summary = prepared
    assert summary["splits"]["train"]["kept"] == 40
    assert summary["splits"]["train"]["skipped"] == 4
    assert summary["splits"]["val"]["kept"] == NUM_GOOD - 40
    with (out / "train_skipped.csv").open() as handle:
        skipped = {row["id"]: row["reason"] for row in csv.DictReader(handle)}
    assert set(skipped) == {"bad-text", "bad-occupancy", "bad-element", "bad-empty"}
    assert "occupancy" in skipped["bad-occupancy"]
    assert "Xx" in skipped["bad-element"]
    assert all("\n" not in reason and reason for reason in skipped.values())
    assert json.loads((out / "prepare.json").read_text())["splits"]["val"]["kept"] == 10


def test_cache_round_trip_matches_inputs(prepared, mp20_rows):
    out, _ = prepared
    cache = load_cache(out / "train.npz")
    assert list(cache.ids) == list(mp20_rows.material_id.iloc[:40])
    num_orbits = np.diff(cache.orbit_offset)
    num_atoms = np.diff(cache.atom_offset)
    assert np.all(num_orbits >= 1) and np.all(num_orbits <= num_atoms)
    multiplicity_sum = np.add.reduceat(
        cache.orbit_multiplicity.astype(int), cache.orbit_offset[:-1]
    )
    assert np.array_equal(multiplicity_sum, num_atoms)
    assert np.array_equal(cache.orbit_multiplicity, WP_MULTIPLICITY[cache.orbit_wyckoff])
    assert cache.orbit_frac_coords.min() >= 0 and cache.orbit_frac_coords.max() < 1
    for index in (0, 7):
        record = cache.record(index)
        structure = read_structure(mp20_rows.cif.iloc[index])
        # the conventional cell holds the primitive cell's composition an integer number of times
        ratio = record.num_atoms / len(structure)
        assert ratio == int(ratio)
        elements = np.sort(np.array(structure.atomic_numbers) - 1)
        assert np.array_equal(np.sort(record.atom_element), np.sort(np.tile(elements, int(ratio))))
        assert set(record.orbit_element) == set(elements)


def test_reuse_and_stale_cache(prepared, tmp_path):
    out, _ = prepared
    stale = tmp_path / "train.npz"
    with np.load(out / "train.npz") as npz:
        arrays = {key: npz[key] for key in npz.files}
    arrays["format_version"] = np.int64(CACHE_FORMAT_VERSION - 1)
    np.savez(stale, **arrays)
    with pytest.raises(InputError, match="format version"):
        load_cache(stale)
    (tmp_path / "junk.npz").write_text("not a cache")
    with pytest.raises(InputError, match="rerun"):
        load_cache(tmp_path / "junk.npz")
    with pytest.raises(InputError, match="not found"):
        load_cache(tmp_path / "missing.npz")


def test_statistics_sums(prepared):
    out, _ = prepared
    stats = load_statistics(out / "statistics.json")
    cache = load_cache(out / "train.npz")
    num_orbits = int(cache.orbit_offset[-1])
    assert stats.num_crystals == 40
    assert stats.spacegroup_counts.sum() == 40
    assert stats.num_orbits_counts.sum() == 40 and stats.num_atoms_counts.sum() == 40
    assert stats.element_counts.sum() == num_orbits
    assert np.all(
        stats.site_symmetry_counts.sum(axis=2) == stats.site_symmetry_counts[:, :1].sum(axis=2)
    )
    assert stats.site_symmetry_counts.sum() == num_orbits * 15
    assert np.all(stats.k_std >= 1e-3)
    assert np.isclose(stats.spacegroup_distribution().sum(), 1)
    marginals = stats.site_symmetry_marginals()
    assert marginals.shape == (230, 15, 13)
    assert np.allclose(marginals.sum(axis=2), 1)
    used = stats.site_symmetry_counts > 0
    assert np.all(marginals[used] > 0)
    for sg in (1, 225):
        assert np.isclose(stats.num_orbits_distribution(sg).sum(), 1)
    restored = DatasetStatistics.from_dict(json.loads(json.dumps(stats.to_dict())))
    assert np.array_equal(restored.site_symmetry_counts, stats.site_symmetry_counts)
    assert np.allclose(restored.k_mean, stats.k_mean)


@pytest.mark.parametrize("representation", ["asymmetric_unit", "full_cell"])
def test_collate_shapes(prepared, representation):
    out, _ = prepared
    dataset = AsymmetricUnitDataset(out / "train.npz", representation=representation)
    cache = dataset.cache
    batch = collate([dataset[i] for i in range(5)])
    offsets = cache.orbit_offset if representation == "asymmetric_unit" else cache.atom_offset
    sizes = torch.from_numpy(np.diff(offsets[:6]))
    n = int(sizes.sum())
    assert batch.num_graphs == 5 and batch.ids == list(cache.ids[:5])
    assert torch.equal(batch.num_nodes, sizes)
    assert batch.frac_coords.shape == (n, 3) and batch.frac_coords.dtype == torch.float32
    assert batch.atom_types.shape == (n,) and batch.atom_types.dtype == torch.long
    assert batch.site_symmetry.shape == (n, 15) and batch.multiplicity.shape == (n,)
    assert batch.edge_index.shape == (2, int((sizes * (sizes - 1)).sum()))
    assert batch.sg_encoding.shape == (5, 397)
    assert torch.equal(batch.sg_encoding[0], torch.from_numpy(SG_ENCODING[cache.spacegroup[0] - 1]))
    assert batch.k.shape == (5, 6) and batch.k_mask.dtype == torch.bool
    assert np.array_equal(batch.k_mask[3].numpy(), k_mask(int(cache.spacegroup[3])))
    if representation == "full_cell":
        assert torch.all(batch.site_symmetry == 0) and torch.all(batch.multiplicity == 1)
    else:
        assert int(batch.multiplicity.sum()) == int(np.diff(cache.atom_offset[:6]).sum())


def test_dataset_info_and_bad_inputs(prepared, tmp_path):
    out, _ = prepared
    info = dataset_info(out)
    assert "train: 40 crystals" in info and "val: 10 crystals" in info
    with pytest.raises(InputError, match="representation"):
        AsymmetricUnitDataset(out / "train.npz", representation="graph")
    with pytest.raises(InputError, match="nowhere.csv"):
        prepare_dataset({"train": [tmp_path / "nowhere.csv"]}, tmp_path / "o")
    no_cif = tmp_path / "no_cif.csv"
    no_cif.write_text("material_id,structure\nmp-1,x\n")
    with pytest.raises(InputError, match="'cif' column"):
        list(iter_records(no_cif))
    with pytest.raises(StructureError, match="bad"):
        read_structure("garbage", "bad")


def test_prepare_reuses_current_cache_and_rebuilds_stale_one(prepared, capsys):
    out, summary = prepared
    sources = {"val": summary["splits"]["val"]["sources"]}
    again = prepare_dataset(sources, out, workers=1)
    assert "reusing" in capsys.readouterr().out
    assert again["splits"]["val"]["kept"] == 10
    with np.load(out / "val.npz") as npz:
        arrays = {key: npz[key] for key in npz.files}
    arrays["format_version"] = np.int64(0)
    np.savez(out / "val.npz", **arrays)
    rebuilt = prepare_dataset(sources, out, workers=1)
    assert "reusing" not in capsys.readouterr().out
    assert rebuilt["splits"]["val"]["kept"] == 10
    assert len(load_cache(out / "val.npz")) == 10
