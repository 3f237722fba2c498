"""Space groups and Wyckoff templates of crystals, detected with spglib (symprec 0.1).

A Wyckoff template is the space group plus the multiset of occupied Wyckoff letters, one letter
per symmetry-distinct site (orbit), elements ignored: e.g. rock salt is ``(225, ("a", "b"))``.
Letters are spglib's, in the ITA standard setting that spglib reports; the same detection is
applied to samples and training data, so templates are comparable between the two.
"""

from __future__ import annotations

from collections.abc import Iterable

from pymatgen.core import Structure

from symmcd.symmetry.detect import symmetry_dataset

SYMPREC = 0.1
# pymatgen's SpacegroupAnalyzer defaults, with which the field's code detects the space groups
# that enter its SG JSD (symmcd's templates and sg_match use SYMPREC)
FIELD_SYMPREC = 0.01
FIELD_ANGLE_TOLERANCE = 5.0
Template = tuple[int, tuple[str, ...]]


def spacegroup_and_template(
    structure: Structure | None, symprec: float = SYMPREC
) -> tuple[int | None, Template | None]:
    """Detected space-group number and Wyckoff template; ``(None, None)`` if undetectable."""
    if structure is None:
        return None, None
    dataset = symmetry_dataset(structure, symprec)
    if dataset is None:
        return None, None
    orbit_representatives = sorted(set(int(i) for i in dataset.equivalent_atoms))
    letters = tuple(sorted(dataset.wyckoffs[i] for i in orbit_representatives))
    number = int(dataset.number)
    return number, (number, letters)


def field_spacegroup(structure: Structure | None) -> int | None:
    """Space-group number at pymatgen's default tolerances (``SpacegroupAnalyzer``: symprec
    0.01 Å, angle tolerance 5°), the detection behind the field's SG JSD; ``None`` if it fails."""
    if structure is None:
        return None
    dataset = symmetry_dataset(structure, FIELD_SYMPREC, FIELD_ANGLE_TOLERANCE)
    return None if dataset is None else int(dataset.number)


def template_to_string(template: Template) -> str:
    """Readable, hashable form used in caches and reports, e.g. ``225:a,b``."""
    number, letters = template
    return f"{number}:{','.join(letters)}"


def template_statistics(
    sample_templates: Iterable[Template | None], train_templates: set[Template]
) -> dict[str, float | int]:
    """``unique_templates`` (count of distinct sample templates), ``templates_in_train`` (share
    of those distinct templates seen in TRAIN, in [0, 1]) and ``new_templates`` (count of distinct
    templates absent from TRAIN)."""
    distinct = {t for t in sample_templates if t is not None}
    in_train = sum(1 for t in distinct if t in train_templates)
    return {
        "unique_templates": len(distinct),
        "templates_in_train": in_train / len(distinct) if distinct else float("nan"),
        "new_templates": len(distinct) - in_train,
    }
