"""The prepared-data cache, the torch ``Dataset`` over it and ``collate`` into a ``CrystalBatch``.

Cache format (one ``.npz`` per split, written by ``symmcd.data.prepare``): flat arrays over all
crystals, orbits and atoms, with offsets, so that loading is a handful of ``np.load`` calls and
``__getitem__`` only slices. Crystal ``c`` owns orbits ``orbit_offset[c]:orbit_offset[c + 1]``
and conventional-cell atoms ``atom_offset[c]:atom_offset[c + 1]``.

=====================  ==========  =====================================================
key                    shape       meaning
=====================  ==========  =====================================================
format_version         ()          ``CACHE_FORMAT_VERSION``; other versions are refused
symprec                ()          symmetry tolerance used by prepare
ids                    (C,)        crystal ids (unicode)
spacegroup             (C,)        1..230
k                      (C, 6)      lattice k-vector
orbit_offset           (C + 1,)
orbit_element          (O,)        Z - 1
orbit_frac_coords      (O, 3)      representative coordinates, in [0, 1)
orbit_wyckoff          (O,)        global Wyckoff index (0..1730)
orbit_multiplicity     (O,)
orbit_site_symmetry    (O, 15)     site-symmetry class per direction (0..12)
atom_offset            (C + 1,)
atom_element           (A,)        Z - 1, all atoms of the conventional cell
atom_frac_coords       (A, 3)
=====================  ==========  =====================================================
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from symmcd.data.batch import CrystalBatch, fully_connected_edges, node_batch_index
from symmcd.errors import InputError
from symmcd.symmetry.encoding import NUM_DIRECTIONS
from symmcd.symmetry.lattice import k_masks
from symmcd.symmetry.tables import SG_ENCODING

CACHE_FORMAT_VERSION = 1
REPRESENTATIONS = ("asymmetric_unit", "full_cell")
SPLITS = ("train", "val", "test")
K_MASK_TABLE = k_masks(np.arange(1, 231))  # (230, 6) bool, row = space group - 1


def wrap_unit_interval(coords: np.ndarray) -> np.ndarray:
    """Coordinates wrapped into [0, 1) in their own dtype (a value rounding to 1.0 becomes 0)."""
    wrapped = np.mod(coords, coords.dtype.type(1.0))
    return np.where(wrapped >= 1.0, coords.dtype.type(0.0), wrapped)


@dataclass
class CrystalRecord:
    """One prepared crystal: its asymmetric unit and its full conventional cell."""

    id: str
    spacegroup: int
    k: np.ndarray  # (6,)
    orbit_element: np.ndarray  # (n,) Z - 1
    orbit_frac_coords: np.ndarray  # (n, 3)
    orbit_wyckoff: np.ndarray  # (n,) global Wyckoff index
    orbit_multiplicity: np.ndarray  # (n,)
    orbit_site_symmetry: np.ndarray  # (n, 15)
    atom_element: np.ndarray  # (m,) Z - 1
    atom_frac_coords: np.ndarray  # (m, 3)

    @property
    def num_orbits(self) -> int:
        return len(self.orbit_element)

    @property
    def num_atoms(self) -> int:
        return len(self.atom_element)


# per-node arrays of the cache: name -> (dtype on disk, shape of one entry)
_ORBIT_FIELDS = {
    "orbit_element": (np.int8, ()),
    "orbit_frac_coords": (np.float32, (3,)),
    "orbit_wyckoff": (np.int16, ()),
    "orbit_multiplicity": (np.int16, ()),
    "orbit_site_symmetry": (np.int8, (NUM_DIRECTIONS,)),
}
_ATOM_FIELDS = {"atom_element": (np.int8, ()), "atom_frac_coords": (np.float32, (3,))}


def _concatenate(parts: list[np.ndarray], dtype, entry_shape: tuple[int, ...]) -> np.ndarray:
    """Concatenate per-crystal arrays into one flat array (also for zero crystals)."""
    if not parts:
        return np.zeros((0, *entry_shape), dtype=dtype)
    return np.concatenate(parts).astype(dtype).reshape(-1, *entry_shape)


def _offsets(sizes: list[int]) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)


@dataclass
class CrystalCache:
    """All crystals of one split as flat arrays (see the module docstring for the layout)."""

    ids: np.ndarray
    spacegroup: np.ndarray
    k: np.ndarray
    orbit_offset: np.ndarray
    orbit_element: np.ndarray
    orbit_frac_coords: np.ndarray
    orbit_wyckoff: np.ndarray
    orbit_multiplicity: np.ndarray
    orbit_site_symmetry: np.ndarray
    atom_offset: np.ndarray
    atom_element: np.ndarray
    atom_frac_coords: np.ndarray
    symprec: float = 0.1
    source_key: str = ""

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def from_records(
        cls, records: list[CrystalRecord], symprec: float = 0.1, source_key: str = ""
    ) -> CrystalCache:
        """Concatenate records into flat arrays."""
        per_node = {
            name: _concatenate([getattr(r, name) for r in records], dtype, shape)
            for name, (dtype, shape) in {**_ORBIT_FIELDS, **_ATOM_FIELDS}.items()
        }
        for name in ("orbit_frac_coords", "atom_frac_coords"):
            per_node[name] = wrap_unit_interval(per_node[name])
        return cls(
            ids=np.array([r.id for r in records], dtype=str),
            spacegroup=np.array([r.spacegroup for r in records], dtype=np.int16),
            k=np.array([r.k for r in records], dtype=np.float32).reshape(-1, 6),
            orbit_offset=_offsets([r.num_orbits for r in records]),
            atom_offset=_offsets([r.num_atoms for r in records]),
            symprec=symprec,
            source_key=source_key,
            **per_node,
        )

    def record(self, index: int) -> CrystalRecord:
        """The crystal at ``index`` as a ``CrystalRecord`` (views into the flat arrays)."""
        o = slice(self.orbit_offset[index], self.orbit_offset[index + 1])
        a = slice(self.atom_offset[index], self.atom_offset[index + 1])
        return CrystalRecord(
            id=str(self.ids[index]),
            spacegroup=int(self.spacegroup[index]),
            k=self.k[index],
            **{name: getattr(self, name)[o] for name in _ORBIT_FIELDS},
            **{name: getattr(self, name)[a] for name in _ATOM_FIELDS},
        )

    def records(self) -> list[CrystalRecord]:
        return [self.record(i) for i in range(len(self))]

    def save(self, path: Path | str) -> Path:
        """Write the cache as an uncompressed ``.npz`` (fast to load)."""
        path = Path(path)
        arrays = {f.name: getattr(self, f.name) for f in fields(self)}
        arrays["symprec"] = np.float64(self.symprec)
        arrays["source_key"] = np.array(self.source_key, dtype=str)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(tmp, format_version=np.int64(CACHE_FORMAT_VERSION), **arrays)
        tmp.replace(path)
        return path


def cache_version(path: Path | str) -> int | None:
    """Format version stored in a cache file, or None when the file is not a readable cache."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            return int(npz["format_version"]) if "format_version" in npz.files else None
    except (OSError, ValueError, KeyError, EOFError):
        return None


def load_cache(path: Path | str) -> CrystalCache:
    """Load a split cache written by ``prepare``; refuse missing, corrupt or stale files."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"prepared cache not found: {path} (run `symmcd prepare` first)")
    version = cache_version(path)
    if version != CACHE_FORMAT_VERSION:
        found = "no readable format version" if version is None else f"format version {version}"
        raise InputError(
            f"cache {path} has {found}, this symmcd reads version {CACHE_FORMAT_VERSION}: "
            "rerun `symmcd prepare` to rebuild it"
        )
    with np.load(path, allow_pickle=False) as npz:
        try:
            arrays = {f.name: npz[f.name] for f in fields(CrystalCache)}
        except KeyError as error:
            raise InputError(f"cache {path} lacks array {error}: rerun `symmcd prepare`") from None
    arrays["symprec"] = float(arrays["symprec"])
    arrays["source_key"] = str(arrays["source_key"])
    return CrystalCache(**arrays)


def _node_table(cache: CrystalCache, representation: str) -> dict[str, np.ndarray]:
    """Per-node arrays and offsets of the chosen representation, in the dtypes of the batch."""
    if representation == "asymmetric_unit":
        return {
            "offset": cache.orbit_offset,
            "frac_coords": cache.orbit_frac_coords.astype(np.float32),
            "atom_types": cache.orbit_element.astype(np.int64),
            "site_symmetry": cache.orbit_site_symmetry.astype(np.int64),
            "multiplicity": cache.orbit_multiplicity.astype(np.int64),
        }
    num_atoms = len(cache.atom_element)
    return {
        "offset": cache.atom_offset,
        "frac_coords": cache.atom_frac_coords.astype(np.float32),
        "atom_types": cache.atom_element.astype(np.int64),
        "site_symmetry": np.zeros((num_atoms, NUM_DIRECTIONS), dtype=np.int64),
        "multiplicity": np.ones(num_atoms, dtype=np.int64),
    }


class AsymmetricUnitDataset(Dataset):
    """Crystals of a prepared split, one item per crystal, as dicts of tensors for ``collate``.

    ``representation="asymmetric_unit"``: one node per orbit (representative coordinates, site
    symmetry, multiplicity). ``"full_cell"``: one node per atom of the conventional cell, with
    site symmetry class ``1`` on every direction and multiplicity 1 (the baseline without
    symmetry information).
    """

    def __init__(self, cache_path: Path | str, representation: str = "asymmetric_unit"):
        if representation not in REPRESENTATIONS:
            raise InputError(
                f"unknown representation {representation!r}; choose one of {REPRESENTATIONS}"
            )
        self.cache_path = Path(cache_path)
        self.representation = representation
        self.cache = load_cache(self.cache_path)
        table = _node_table(self.cache, representation)
        self._offset = table.pop("offset")
        self._nodes = {name: torch.from_numpy(values) for name, values in table.items()}
        self._spacegroup = torch.from_numpy(self.cache.spacegroup.astype(np.int64))
        self._k = torch.from_numpy(self.cache.k.astype(np.float32))
        self.properties: torch.Tensor | None = None  # (C, P) conditioning labels, NaN = none

    def attach_properties(self, values: np.ndarray) -> None:
        """Give every crystal its conditioning labels, (C, P) aligned with the cache rows
        (NaN = no label; :func:`symmcd.data.labels.label_matrix` builds them by id)."""
        values = np.asarray(values, dtype=np.float32)
        if values.ndim != 2 or values.shape[0] != len(self.cache):
            raise InputError(
                f"{self.cache_path}: labels must have shape ({len(self.cache)}, P), "
                f"got {values.shape}"
            )
        self.properties = torch.from_numpy(values)

    def __len__(self) -> int:
        return len(self.cache)

    def __getitem__(self, index: int) -> dict:
        size = len(self.cache)  # not len(self): subclasses may show a subset
        if not -size <= index < size:
            raise IndexError(f"index {index} out of range for {size} crystals")
        index = index % size
        start, stop = int(self._offset[index]), int(self._offset[index + 1])
        item = {name: values[start:stop] for name, values in self._nodes.items()}
        item["spacegroup"] = self._spacegroup[index]
        item["k"] = self._k[index]
        item["id"] = str(self.cache.ids[index])
        if self.properties is not None:
            item["properties"] = self.properties[index]
        return item


def collate(items: list[dict]) -> CrystalBatch:
    """Stack dataset items into a ``CrystalBatch`` (space-group encodings, k masks, edges)."""
    spacegroup = torch.stack([item["spacegroup"] for item in items]).long()
    num_nodes = torch.tensor([len(item["atom_types"]) for item in items], dtype=torch.long)
    sg_numpy = spacegroup.numpy()
    return CrystalBatch(
        spacegroup=spacegroup,
        sg_encoding=torch.from_numpy(SG_ENCODING[sg_numpy - 1]).float(),
        k=torch.stack([item["k"] for item in items]).float(),
        k_mask=torch.from_numpy(K_MASK_TABLE[sg_numpy - 1]),
        num_nodes=num_nodes,
        node_batch=node_batch_index(num_nodes),
        frac_coords=torch.cat([item["frac_coords"] for item in items]),
        atom_types=torch.cat([item["atom_types"] for item in items]),
        site_symmetry=torch.cat([item["site_symmetry"] for item in items]),
        multiplicity=torch.cat([item["multiplicity"] for item in items]),
        edge_index=fully_connected_edges(num_nodes),
        properties=torch.stack([item["properties"] for item in items])
        if "properties" in items[0]
        else None,
        ids=[item["id"] for item in items],
    )


def _element_symbol(index: int) -> str:
    from pymatgen.core import Element

    return Element.from_Z(int(index) + 1).symbol


def describe_cache(cache: CrystalCache, name: str) -> list[str]:
    """Human-readable summary lines of one split."""
    if len(cache) == 0:
        return [f"{name}: 0 crystals"]
    num_orbits = np.diff(cache.orbit_offset)
    num_atoms = np.diff(cache.atom_offset)
    groups = Counter(cache.spacegroup.tolist()).most_common(10)
    elements = np.bincount(cache.orbit_element.astype(np.int64), minlength=100)
    top_elements = np.argsort(-elements, kind="stable")[:10]
    return [
        f"{name}: {len(cache)} crystals, {len(np.unique(cache.spacegroup))} space groups, "
        f"{int(np.count_nonzero(elements))} elements (symprec {cache.symprec:g})",
        f"  orbits per crystal: mean {num_orbits.mean():.2f}, max {num_orbits.max()}; "
        f"atoms per conventional cell: mean {num_atoms.mean():.2f}, max {num_atoms.max()}",
        "  top space groups: " + ", ".join(f"{sg} ({n})" for sg, n in groups),
        "  top elements (orbits): "
        + ", ".join(f"{_element_symbol(z)} ({elements[z]})" for z in top_elements if elements[z]),
    ]


def dataset_info(path: Path | str) -> str:
    """Summary of a prepared cache file, or of every split cache in a prepared folder."""
    path = Path(path)
    if path.is_dir():
        rank = {split: i for i, split in enumerate(SPLITS)}
        files = sorted(path.glob("*.npz"), key=lambda f: (rank.get(f.stem, len(SPLITS)), f.stem))
        if not files:
            raise InputError(f"no prepared split (.npz cache) in folder {path}")
    elif path.exists():
        files = [path]
    else:
        raise InputError(f"prepared data not found: {path}")
    lines = []
    for file in files:
        lines += describe_cache(load_cache(file), file.stem)
    return "\n".join(lines)
