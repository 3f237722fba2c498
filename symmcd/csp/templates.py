"""Template retrieval: known structures of a composition's stoichiometry, elements substituted.

A *template pool* holds the asymmetric units of known crystals (space group, k, and per orbit its
element, Wyckoff position and representative coordinates). For a query composition, every pool
crystal with the same stoichiometry (the sorted atom counts of the reduced formula, e.g. ABC2 ->
(1, 1, 2)) is a candidate template: the query's elements replace the template's, each on the
sites of an element with the same count, assigned to maximise the learned substitution
likelihood (:mod:`symmcd.csp.substitution`).

Templates are grouped into *prototypes* (space group + which Wyckoff positions each element
fills, element identities ignored). A prototype's score is a mixture over its members,
``log sum_c p(query | c)``: a prototype that many similar compositions take scores high. Each
retrieved template is the best-scoring member of its prototype, with its geometry and the cell
volume scaled by the substituted elements' volumes per atom (fitted on the pool's cells).
"""

from __future__ import annotations

import functools
import math
from collections import defaultdict
from dataclasses import dataclass, fields
from importlib import resources
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.special import logsumexp

from symmcd.csp.substitution import SubstitutionTable
from symmcd.data.dataset import CrystalCache
from symmcd.errors import InputError
from symmcd.symmetry import tables
from symmcd.symmetry.lattice import k_to_lattices, lattices_to_k

POOL_FORMAT_VERSION = 1
SHIPPED_POOL = "templates.npz"  # in symmcd/data/mp20/: the shipped train + val splits
# p(query | template) ** (1 / T) in the prototype mixture; 0.5 ranked the right prototype first
# for 60.0 % of 1,000 pool crystals left out in turn (1.0: 57.7 %, 0.25: 58.8 %)
PROTOTYPE_TEMPERATURE = 0.5


@dataclass
class TemplatePool:
    """Asymmetric units of known crystals as flat arrays (orbits of crystal i at
    ``orbit_offset[i]:orbit_offset[i + 1]``)."""

    ids: np.ndarray  # (P,) str
    spacegroup: np.ndarray  # (P,) int
    k: np.ndarray  # (P, 6) float
    orbit_offset: np.ndarray  # (P + 1,) int
    orbit_element: np.ndarray  # (O,) int, Z - 1
    orbit_wyckoff: np.ndarray  # (O,) global Wyckoff index
    orbit_frac_coords: np.ndarray  # (O, 3)
    source: str = ""
    # (100,) fitted volume per atom of each element, stored with a built pool (element_volumes)
    element_volumes: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def from_caches(cls, caches: list[CrystalCache], source: str) -> TemplatePool:
        """A pool of prepared crystals (``symmcd prepare`` caches), concatenated."""
        offsets, total = [np.zeros(1, dtype=np.int64)], 0
        for cache in caches:
            offsets.append(cache.orbit_offset[1:] + total)
            total += int(cache.orbit_offset[-1])
        return cls(
            ids=np.concatenate([c.ids for c in caches]).astype(str),
            spacegroup=np.concatenate([c.spacegroup for c in caches]).astype(np.int16),
            k=np.concatenate([c.k for c in caches]).astype(np.float32),
            orbit_offset=np.concatenate(offsets),
            orbit_element=np.concatenate([c.orbit_element for c in caches]).astype(np.int8),
            orbit_wyckoff=np.concatenate([c.orbit_wyckoff for c in caches]).astype(np.int16),
            orbit_frac_coords=np.concatenate([c.orbit_frac_coords for c in caches]).astype(
                np.float32
            ),
            source=source,
        )

    def save(self, path: Path | str) -> Path:
        path = Path(path)
        arrays = {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if f.name != "source" and getattr(self, f.name) is not None
        }
        np.savez_compressed(
            path,
            format_version=np.int64(POOL_FORMAT_VERSION),
            source=np.array(self.source, dtype=str),
            **arrays,
        )
        return path

    @classmethod
    def load(cls, path: Path | str) -> TemplatePool:
        """A pool written by :meth:`save`; InputError for a missing or foreign file."""
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as npz:
                if int(npz["format_version"]) != POOL_FORMAT_VERSION:
                    raise InputError(f"template pool {path}: unsupported format version")
                arrays = {f.name: npz[f.name] for f in fields(cls) if f.name in npz.files}
        except (OSError, ValueError, KeyError) as error:
            raise InputError(f"cannot read template pool {path} ({type(error).__name__})") from None
        arrays["source"] = str(arrays["source"])
        return cls(**arrays)

    def without(self, ids: set[str]) -> TemplatePool:
        """The pool less the crystals with these ids (leave-one-out checks)."""
        keep = np.array([i not in ids for i in self.ids.tolist()], dtype=bool)
        return self.subset(np.flatnonzero(keep))

    def subset(self, indices: np.ndarray) -> TemplatePool:
        sizes = np.diff(self.orbit_offset)[indices]
        orbits = np.concatenate(
            [np.arange(self.orbit_offset[i], self.orbit_offset[i + 1]) for i in indices]
            or [np.zeros(0, dtype=np.int64)]
        )
        return TemplatePool(
            ids=self.ids[indices],
            spacegroup=self.spacegroup[indices],
            k=self.k[indices],
            orbit_offset=np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64),
            orbit_element=self.orbit_element[orbits],
            orbit_wyckoff=self.orbit_wyckoff[orbits],
            orbit_frac_coords=self.orbit_frac_coords[orbits],
            source=self.source,
        )

    def orbits(self, i: int) -> slice:
        return slice(int(self.orbit_offset[i]), int(self.orbit_offset[i + 1]))

    def element_counts(self, i: int) -> dict[int, int]:
        """Atoms per element (Z - 1) in the conventional cell of crystal ``i``."""
        part = self.orbits(i)
        counts: dict[int, int] = defaultdict(int)
        multiplicity = tables.WP_MULTIPLICITY[self.orbit_wyckoff[part]]
        for element, m in zip(
            self.orbit_element[part].tolist(), multiplicity.tolist(), strict=True
        ):
            counts[int(element)] += int(m)
        return dict(counts)

    @functools.cached_property
    def reduced_counts(self) -> list[dict[int, int]]:
        """Per crystal, atoms per element of its reduced formula."""
        return [reduce_counts(self.element_counts(i)) for i in range(len(self))]

    @functools.cached_property
    def by_stoichiometry(self) -> dict[tuple[int, ...], list[int]]:
        """Pool indices grouped by stoichiometry key (sorted reduced counts)."""
        index: dict[tuple[int, ...], list[int]] = defaultdict(list)
        for i, counts in enumerate(self.reduced_counts):
            index[stoichiometry(counts)].append(i)
        return dict(index)

    @functools.cached_property
    def prototype(self) -> list[tuple]:
        """Per crystal, its prototype key: space group and, per element, the sorted types of
        the Wyckoff positions it fills (the elements themselves left out)."""
        types = orbit_types()
        keys = []
        for i in range(len(self)):
            part = self.orbits(i)
            sites: dict[int, list[int]] = defaultdict(list)
            for e, w in zip(
                self.orbit_element[part].tolist(), self.orbit_wyckoff[part].tolist(), strict=True
            ):
                sites[e].append(int(types[w]))
            pattern = tuple(sorted(tuple(sorted(ws)) for ws in sites.values()))
            keys.append((int(self.spacegroup[i]), pattern))
        return keys


@functools.cache
def orbit_types() -> np.ndarray:
    """(1731,) per global Wyckoff index, the first position of its group with the same
    multiplicity, site symmetry and degrees of freedom: positions an origin shift can exchange
    (1a and 1b of Pm-3m) get one type, so one structure type gets one prototype key."""
    first: dict[tuple, int] = {}
    out = np.zeros(len(tables.WP_SPACEGROUP), dtype=np.int64)
    for g in range(len(out)):
        key = (
            int(tables.WP_SPACEGROUP[g]),
            int(tables.WP_MULTIPLICITY[g]),
            tuple(tables.WP_SITE_SYMMETRY[g].tolist()),
            int(tables.WP_DOF[g]),
        )
        out[g] = first.setdefault(key, g)
    return out


def reduce_counts(
    counts: dict,
) -> dict:
    """Counts divided by their greatest common divisor."""
    divisor = functools.reduce(math.gcd, counts.values())
    return {e: n // divisor for e, n in counts.items()}


def stoichiometry(counts: dict) -> tuple[int, ...]:
    """The anonymous formula of reduced counts as a key: (1, 1, 2) for ABC2."""
    return tuple(sorted(counts.values()))


@functools.cache
def shipped_pool() -> TemplatePool:
    """The pool of the shipped MP-20 train and validation splits (never the test split)."""
    path = Path(str(resources.files("symmcd.data") / "mp20" / SHIPPED_POOL))
    if not path.is_file():
        raise InputError(f"no shipped template pool at {path}; pass templates=PATH")
    return TemplatePool.load(path)


@dataclass
class Template:
    """A retrieved template with the query's elements on its sites."""

    pool_index: int
    material_id: str
    spacegroup: int
    k: np.ndarray  # (6,), volume-scaled to the new elements
    wyckoff: np.ndarray  # (n,) global Wyckoff indices
    elements: np.ndarray  # (n,) Z - 1 of the query's elements
    frac_coords: np.ndarray  # (n, 3)
    score: float  # log p(query | prototype) up to a constant
    member_score: float  # log p(query | this template)
    prototype_rank: int  # 1 = best prototype
    substitution: str  # e.g. "Na->Li, Cl->F" ("" for the same elements)


def assign_elements(
    template_counts: dict[int, int], query_counts: dict[int, int], table: SubstitutionTable
) -> tuple[dict[int, int], float] | None:
    """The most likely mapping template element -> query element among those that keep every
    element's count, and its log-likelihood; None when the stoichiometries differ."""
    by_count_t: dict[int, list[int]] = defaultdict(list)
    by_count_q: dict[int, list[int]] = defaultdict(list)
    for e, n in template_counts.items():
        by_count_t[n].append(e)
    for e, n in query_counts.items():
        by_count_q[n].append(e)
    if {n: len(v) for n, v in by_count_t.items()} != {n: len(v) for n, v in by_count_q.items()}:
        return None
    mapping, total = {}, 0.0
    for n, olds in by_count_t.items():
        news = by_count_q[n]
        scores = table.log_prob[np.ix_(olds, news)]
        rows, cols = linear_sum_assignment(scores, maximize=True)
        for r, c in zip(rows, cols, strict=True):
            mapping[olds[r]] = news[c]
            total += float(scores[r, c])
    return mapping, total


def retrieve(
    query_counts: dict[int, int],
    pool: TemplatePool,
    table: SubstitutionTable,
    limit: int = 20,
    per_prototype: int = 1,
    exclude: frozenset[int] = frozenset(),
    spacegroups: frozenset[int] = frozenset(),
    second_members: int = 0,
) -> list[Template]:
    """Templates for a composition (``query_counts``: Z - 1 -> atoms), best prototype first:
    the best ``per_prototype`` members of up to ``limit`` prototypes (all first members before
    any second one, ``limit`` templates in all), then the next member of each of the first
    ``second_members`` prototypes (another geometry of the likeliest structure types). Pool
    indices in ``exclude`` are left out; with ``spacegroups`` only those groups are used."""
    reduced = reduce_counts(query_counts)
    members = pool.by_stoichiometry.get(stoichiometry(reduced), [])
    by_prototype: dict[tuple, list[tuple[float, int, dict]]] = defaultdict(list)
    for i in members:
        if i in exclude or (spacegroups and int(pool.spacegroup[i]) not in spacegroups):
            continue
        found = assign_elements(pool.reduced_counts[i], reduced, table)
        if found is None:
            continue
        mapping, log_p = found
        by_prototype[pool.prototype[i]].append((log_p, i, mapping))
    groups = []
    for group in by_prototype.values():
        score = float(logsumexp([m[0] / PROTOTYPE_TEMPERATURE for m in group]))
        groups.append((score, sorted(group, key=lambda m: (-m[0], pool.ids[m[1]]))))
    groups.sort(key=lambda g: -g[0])
    picks = [(rank, depth) for depth in range(per_prototype) for rank in range(len(groups))]
    picks = [p for p in picks if p[1] < len(groups[p[0]][1])][:limit]
    picks += [(rank, per_prototype) for rank in range(min(second_members, len(groups)))]
    out = []
    for rank, depth in picks:
        score, group = groups[rank]
        if depth < len(group):
            log_p, i, mapping = group[depth]
            out.append(make_template(pool, i, mapping, score, log_p, rank + 1))
    return out


def make_template(
    pool: TemplatePool, i: int, mapping: dict[int, int], score: float, log_p: float, rank: int
) -> Template:
    part = pool.orbits(i)
    old = pool.orbit_element[part].astype(np.int64)
    new = np.array([mapping[int(e)] for e in old], dtype=np.int64)
    multiplicity = tables.WP_MULTIPLICITY[pool.orbit_wyckoff[part]]
    ratio = np.clip(
        atomic_volume(new, multiplicity) / atomic_volume(old, multiplicity), *VOLUME_RATIO_RANGE
    )
    lattice = k_to_lattices(pool.k[i][None].astype(float))[0] * ratio ** (1 / 3)
    changed = sorted({(int(a), int(b)) for a, b in zip(old, new, strict=True) if a != b})
    return Template(
        pool_index=i,
        material_id=str(pool.ids[i]),
        spacegroup=int(pool.spacegroup[i]),
        k=lattices_to_k(lattice[None])[0],
        wyckoff=pool.orbit_wyckoff[part].astype(np.int64),
        elements=new,
        frac_coords=pool.orbit_frac_coords[part].astype(float),
        score=score,
        member_score=log_p,
        prototype_rank=rank,
        substitution=", ".join(f"{symbol(a)}->{symbol(b)}" for a, b in changed),
    )


VOLUME_RATIO_RANGE = (0.2, 5.0)  # bounds on how much a substitution may scale a cell


@functools.cache
def element_volumes() -> np.ndarray:
    """(100,) volume per atom of each element (A^3), stored in the shipped pool when it was
    built (:func:`fit_element_volumes`)."""
    pool = shipped_pool()
    if pool.element_volumes is not None:
        return pool.element_volumes
    return fit_element_volumes(pool)


def fit_element_volumes(pool: TemplatePool) -> np.ndarray:
    """(100,) volume per atom of each element (A^3) as a pool's cells add them up:
    non-negative least squares of cell volume on atom counts. Elements the pool lacks get
    4/3 pi r^3 of pymatgen's atomic radius, scaled to the fitted volumes."""
    from pymatgen.core import Element
    from scipy.optimize import nnls

    counts = np.zeros((len(pool), 100))
    for i in range(len(pool)):
        for element, n in pool.element_counts(i).items():
            counts[i, element] = n
    volumes = np.abs(np.linalg.det(k_to_lattices(pool.k.astype(float))))
    fitted, _ = nnls(counts, volumes)
    radius = np.array(
        [Element.from_Z(z).atomic_radius or np.nan for z in range(1, 101)], dtype=float
    )
    geometric = 4 / 3 * math.pi * radius**3
    seen = (counts.sum(axis=0) > 0) & (fitted > 0) & np.isfinite(geometric)
    scale = np.median(fitted[seen] / geometric[seen])
    fallback = np.where(np.isfinite(geometric), geometric * scale, np.median(fitted[seen]))
    return np.where((counts.sum(axis=0) > 0) & (fitted > 0), fitted, fallback)


def atomic_volume(elements: np.ndarray, multiplicity: np.ndarray) -> float:
    return float((element_volumes()[elements] * multiplicity).sum())


def symbol(index: int) -> str:
    from pymatgen.core import Element

    return Element.from_Z(int(index) + 1).symbol
