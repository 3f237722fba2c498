import gzip

import pandas as pd
import pytest

from symmcd.data.io import iter_records, read_structure
from symmcd.data.prepare import mp20_sources
from symmcd.errors import InputError, StructureError


@pytest.fixture(scope="module")
def cifs() -> list[str]:
    return pd.read_csv(mp20_sources()["val"][0], nrows=3).cif.tolist()


def test_csv_gz_without_id_column_gets_row_ids(tmp_path, cifs):
    path = tmp_path / "mine.csv.gz"
    with gzip.open(path, "wt") as handle:
        pd.DataFrame({"cif": cifs}).to_csv(handle, index=False)
    records = list(iter_records(path))
    assert [record_id for record_id, _ in records] == ["mine-0", "mine-1", "mine-2"]
    assert records[1][1] == cifs[1]


def test_folder_and_single_cif(tmp_path, cifs):
    for name, cif in zip(["b", "a", "c"], cifs, strict=True):
        (tmp_path / f"{name}.cif").write_text(cif)
    (tmp_path / "notes.txt").write_text("ignored")
    assert [record_id for record_id, _ in iter_records(tmp_path)] == ["a", "b", "c"]
    assert list(iter_records(tmp_path / "b.cif")) == [("b", cifs[0])]
    structure = read_structure(cifs[0], "b")
    assert structure.is_ordered and len(structure) > 0


def test_missing_inputs_are_named(tmp_path):
    with pytest.raises(InputError, match="nothing.csv"):
        iter_records(tmp_path / "nothing.csv")
    empty = tmp_path / "empty_dir"
    empty.mkdir()
    with pytest.raises(InputError, match="no .cif files"):
        list(iter_records(empty))
    other = tmp_path / "data.json"
    other.write_text("{}")
    with pytest.raises(InputError, match="unsupported input"):
        iter_records(other)


def test_broken_cif_raises_structure_error():
    with pytest.raises(StructureError, match="row-7: unreadable CIF"):
        read_structure("data_broken\n_cell_length_a 3\n", "row-7")
    with pytest.raises(StructureError, match="empty"):
        read_structure("   ", "row-8")
