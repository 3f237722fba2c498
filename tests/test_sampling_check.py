"""tools/check_samples.py: the acceptance check of an output folder."""

import importlib.util
import json
from pathlib import Path

import numpy as np

from symmcd.sampling.unfold import AsymmetricUnits, unfold
from symmcd.sampling.writers import staged_dir, write_samples
from symmcd.symmetry import tables
from symmcd.symmetry.lattice import lattice_to_k

SCRIPT = Path(__file__).resolve().parents[1] / "tools" / "check_samples.py"


def load_script():
    spec = importlib.util.spec_from_file_location("check_samples", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def rock_salts(count: int) -> list:
    site = [tables.space_group(225).wyckoff(letter).site_symmetry for letter in "ab"]
    units = AsymmetricUnits(
        spacegroup=np.full(count, 225),
        num_nodes=np.full(count, 2),
        k=np.stack([lattice_to_k(np.eye(3) * (5.0 + 0.1 * i)) for i in range(count)]),
        atom_types=np.tile([10, 16], count),
        site_symmetry=np.concatenate([np.stack(site)] * count),
        frac_coords=np.tile([[0.0, 0.0, 0.0], [0.5, 0.5, 0.5]], (count, 1)),
    )
    return unfold(units)


def test_template_multiplicities():
    check = load_script()
    assert check.template_multiplicities("Fm-3m: Na 4a, Cl 4b") == [4, 4]
    assert check.template_multiplicities("P6_3/mmc: Ti 2a, O 12k, O 6h") == [2, 6, 12]


def test_passes_good_folder_and_fails_a_mislabelled_one(tmp_path, capsys):
    check = load_script()
    out = tmp_path / "ok"
    with staged_dir(out) as folder:
        write_samples(folder, rock_salts(3), ("cif",))
        (folder / "summary.json").write_text(
            json.dumps({"conditions": {"spacegroups": [225], "formula": "NaCl"}})
        )
    assert check.main([str(out)]) == 0
    assert "3/3" in capsys.readouterr().out

    crystals = rock_salts(2)
    crystals[1].metadata["spacegroup"] = 221  # claims a group the file does not have
    bad = tmp_path / "bad"
    with staged_dir(bad) as folder:
        write_samples(folder, crystals, ("cif",))
    assert check.main([str(bad)]) == 1
    assert check.main([str(out), "--formula", "KCl"]) == 1
    assert check.main([str(tmp_path / "missing")]) == 2
