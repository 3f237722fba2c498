"""Space groups and Wyckoff positions, loaded from the shipped ``data/tables.npz``.

Per group: ``space_group(n)``. For batched code, flat arrays over all 1,731 Wyckoff positions
(the *global* Wyckoff index) are module-level constants: ``WP_SPACEGROUP``, ``WP_LETTER``,
``WP_MULTIPLICITY``, ``WP_SITE_SYMMETRY`` (1731, 15), ``WP_REPRESENTATIVE`` (1731, 3, 4),
``WP_ORBIT_OP`` (1731, 192) indices into ``GENERAL_OPS`` padded with -1, ``SG_FIRST_WYCKOFF``
(231,) and, per orbit point, ``ORBIT_OPS`` / ``ORBIT_OFFSET`` (all orbit operations of all
positions concatenated, position g owning rows ORBIT_OFFSET[g]:ORBIT_OFFSET[g + 1]).
"""

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from symmcd.errors import InputError
from symmcd.symmetry.encoding import site_symmetry_onehot
from symmcd.symmetry.lattice import crystal_system

TABLES_PATH = Path(__file__).parent / "data" / "tables.npz"
NUM_SPACE_GROUPS = 230
NUM_WYCKOFF_POSITIONS = 1731
MAX_MULTIPLICITY = 192

with np.load(TABLES_PATH) as _npz:
    _T = {key: _npz[key] for key in _npz.files}

SG_SYMBOL: np.ndarray = _T["sg_symbol"]
SG_HALL_NUMBER: np.ndarray = _T["sg_hall_number"].astype(np.int64)
SG_ENCODING: np.ndarray = _T["sg_encoding"].astype(np.float32)
SG_FIRST_WYCKOFF: np.ndarray = _T["sg_first_wyckoff"].astype(np.int64)
SG_OP_OFFSET: np.ndarray = _T["sg_op_offset"].astype(np.int64)
GENERAL_OPS: np.ndarray = _T["general_ops"]

WP_SPACEGROUP: np.ndarray = _T["wp_spacegroup"].astype(np.int64)
WP_INDEX: np.ndarray = _T["wp_index"].astype(np.int64)
WP_LETTER: np.ndarray = _T["wp_letter"]
WP_MULTIPLICITY: np.ndarray = _T["wp_multiplicity"].astype(np.int64)
WP_SITE_SYMMETRY: np.ndarray = _T["wp_site_symmetry"].astype(np.int64)
WP_REPRESENTATIVE: np.ndarray = _T["wp_representative"]
WP_DOF: np.ndarray = np.linalg.matrix_rank(WP_REPRESENTATIVE[:, :, :3])

_local_orbit_op = _T["wp_orbit_op"].astype(np.int64)
WP_ORBIT_OP: np.ndarray = np.where(
    _local_orbit_op >= 0, _local_orbit_op + SG_OP_OFFSET[WP_SPACEGROUP - 1][:, None], -1
)
ORBIT_OFFSET: np.ndarray = np.concatenate([[0], np.cumsum(WP_MULTIPLICITY)])
ORBIT_OPS: np.ndarray = GENERAL_OPS[WP_ORBIT_OP[WP_ORBIT_OP >= 0]]


@dataclass(frozen=True)
class WyckoffPosition:
    """One Wyckoff position; ``representative`` (A|b) maps free parameters onto its first
    component, ``orbit_ops`` (m, 3, 4) map that component onto all m orbit points."""

    spacegroup: int
    index: int
    letter: str
    multiplicity: int
    site_symmetry: np.ndarray
    representative: np.ndarray
    dof: int
    orbit_ops: np.ndarray
    global_index: int

    @property
    def label(self) -> str:
        """Multiplicity and letter, e.g. ``4a``."""
        return f"{self.multiplicity}{self.letter}"

    @property
    def site_symmetry_onehot(self) -> np.ndarray:
        """(15, 13) one-hot matrix of the site-symmetry classes."""
        return site_symmetry_onehot(self.site_symmetry)

    def __repr__(self) -> str:
        return f"WyckoffPosition({self.spacegroup}, {self.label}, dof={self.dof})"


@dataclass(frozen=True)
class SpaceGroup:
    """A space group in the ITA standard setting pyxtal uses (see DESIGN.md)."""

    number: int
    symbol: str
    crystal_system: str
    centring: str
    general_ops: np.ndarray
    wyckoff_positions: tuple[WyckoffPosition, ...]
    encoding: np.ndarray
    hall_number: int

    @property
    def first_global_index(self) -> int:
        """Global index of this group's general position."""
        return int(SG_FIRST_WYCKOFF[self.number - 1])

    def wyckoff(self, letter: str) -> WyckoffPosition:
        """The Wyckoff position with this letter (raises ``InputError`` if there is none)."""
        for wp in self.wyckoff_positions:
            if wp.letter == letter:
                return wp
        raise InputError(f"space group {self.number} has no Wyckoff position {letter!r}")

    def __repr__(self) -> str:
        return f"SpaceGroup({self.number}, {self.symbol!r}, {len(self.wyckoff_positions)} WPs)"


def check_spacegroup(number) -> int:
    """``number`` as an int in 1..230, or ``InputError`` naming the value."""
    try:
        as_int = int(number)
    except (TypeError, ValueError):
        raise InputError(f"space group must be an integer in 1..230, got {number!r}") from None
    if as_int != number or not 1 <= as_int <= NUM_SPACE_GROUPS:
        raise InputError(f"space group must be an integer in 1..230, got {number!r}")
    return as_int


def _symbol_key(symbol: str) -> str:
    """A Hermann-Mauguin symbol without spaces, underscores and case: ``P6_3/mmc`` -> ``p63/mmc``
    (unique over the 230 short symbols)."""
    return symbol.replace(" ", "").replace("_", "").lower()


_NUMBER_OF_SYMBOL = {_symbol_key(str(symbol)): n + 1 for n, symbol in enumerate(SG_SYMBOL)}
CUBIC_BARRED = set(range(200, 207)) | set(range(221, 231))  # groups whose "-3" is often "3"
# symbols from before the "e" glide (ITA 2002), still common in the literature and in CIFs
OLD_GLIDE_SYMBOLS = {
    "Abm2": 39, "Aba2": 41, "Cmca": 64, "Ccmb": 64, "Abma": 64, "Acam": 64, "Bbcm": 64,
    "Bmab": 64, "Cmma": 67, "Ccca": 68,
}  # fmt: skip


@cache
def _setting_symbols() -> tuple[dict[str, int], dict[int, frozenset[str]]]:
    """Keys of the other symbols of each group, and the setting suffixes of each group.

    From spglib's 530 Hall settings (offline, ~10 ms): each setting's short, full and
    alternative symbols (``P 1 2_1/n 1``, its short form ``P2_1/n``, ``Pbnm``, ``Cmce``), the
    cubic symbols written without the bar
    (``Fm3m``, ``Pa3``), the symbols from before the ``e`` glide (``Cmca``, ``Aba2``), and per
    group its setting choices (``H``, ``R``, ``1``, ``2``, ``b1``...) that may follow a ``:``.
    A key two groups would share is left out (none does).
    """
    import spglib

    aliases: dict[str, set[int]] = {}

    def add(symbol: str, number: int) -> None:
        aliases.setdefault(_symbol_key(symbol), set()).add(number)

    choices: dict[int, set[str]] = {}
    for hall in range(1, 531):
        kind = spglib.get_spacegroup_type(hall)
        number = int(kind.number)
        symbols = [kind.international_short, kind.international_full]
        symbols += [part.strip() for part in kind.international.split("=")]
        for symbol in symbols:
            add(symbol, number)
            parts = symbol.split()
            if len(parts) == 4 and sum(part == "1" for part in parts[1:]) == 2:  # monoclinic
                add(parts[0] + next(part for part in parts[1:] if part != "1"), number)
        if kind.choice:
            choices.setdefault(number, set()).update({kind.choice, kind.choice[:1]})
    for symbol, number in OLD_GLIDE_SYMBOLS.items():
        add(symbol, number)
    for number in CUBIC_BARRED:
        add(str(SG_SYMBOL[number - 1]).replace("-3", "3"), number)
    numbers = {key: next(iter(found)) for key, found in aliases.items() if len(found) == 1}
    for key, number in _NUMBER_OF_SYMBOL.items():
        numbers[key] = number
    return numbers, {number: frozenset(found) for number, found in choices.items()}


def _number_of_symbol(symbol: str) -> int:
    """The group number of a Hermann-Mauguin symbol in any setting, with or without a setting
    suffix (``R-3m:H``, ``Fd-3m:1``); InputError if it names no group or the suffix no setting
    of it."""
    name, colon, suffix = symbol.partition(":")
    key = _symbol_key(name)
    number = _NUMBER_OF_SYMBOL.get(key)
    if number is None or colon:
        numbers, suffixes = _setting_symbols()
        number = numbers.get(key)
    if number is None:
        raise InputError(
            f"unknown space-group symbol {symbol!r}: give a number in 1..230 or a "
            "Hermann-Mauguin symbol such as Fm-3m, P6_3/mmc, P2_1/n or R-3m:H"
        )
    settings = suffixes.get(number, frozenset()) if colon else frozenset()
    if colon and _symbol_key(suffix) not in {_symbol_key(choice) for choice in settings}:
        known = ", ".join(sorted(settings)) or "none"
        raise InputError(
            f"space-group symbol {symbol!r}: group {number} has no setting {suffix.strip()!r} "
            f"(its settings: {known})"
        )
    return number


def spacegroup_number(symbol_or_number: str | int) -> int:
    """The ITA number of a space group given as a number or a Hermann-Mauguin symbol in any
    setting: ``225``, ``"Fm-3m"``, ``"Fm3m"``, ``"P6_3/mmc"``, ``"p 63/m m c"``, ``"P2_1/n"``
    (group 14), ``"Pbnm"`` (62), ``"R-3m:H"``, ``"Fd-3m:1"``; ``InputError`` otherwise."""
    if isinstance(symbol_or_number, str) and not symbol_or_number.strip().isdigit():
        return _number_of_symbol(symbol_or_number)
    if isinstance(symbol_or_number, str):
        symbol_or_number = int(symbol_or_number)
    return check_spacegroup(symbol_or_number)


def wyckoff_position(global_index: int) -> WyckoffPosition:
    """The Wyckoff position with this global index (0..1730)."""
    g = int(global_index)
    if not 0 <= g < NUM_WYCKOFF_POSITIONS:
        raise InputError(f"global Wyckoff index must be in 0..1730, got {global_index!r}")
    orbit = GENERAL_OPS[WP_ORBIT_OP[g, : WP_MULTIPLICITY[g]]]
    return WyckoffPosition(
        spacegroup=int(WP_SPACEGROUP[g]),
        index=int(WP_INDEX[g]),
        letter=str(WP_LETTER[g]),
        multiplicity=int(WP_MULTIPLICITY[g]),
        site_symmetry=WP_SITE_SYMMETRY[g],
        representative=WP_REPRESENTATIVE[g],
        dof=int(WP_DOF[g]),
        orbit_ops=orbit,
        global_index=g,
    )


@cache
def _space_group(number: int) -> SpaceGroup:
    first, last = SG_FIRST_WYCKOFF[number - 1], SG_FIRST_WYCKOFF[number]
    symbol = str(SG_SYMBOL[number - 1])
    return SpaceGroup(
        number=number,
        symbol=symbol,
        crystal_system=crystal_system(number),
        centring=symbol[0],
        general_ops=GENERAL_OPS[SG_OP_OFFSET[number - 1] : SG_OP_OFFSET[number]],
        wyckoff_positions=tuple(wyckoff_position(g) for g in range(first, last)),
        encoding=SG_ENCODING[number - 1],
        hall_number=int(SG_HALL_NUMBER[number - 1]),
    )


def space_group(number: int) -> SpaceGroup:
    """The space group with this ITA number (cached); ``InputError`` outside 1..230."""
    return _space_group(check_spacegroup(number))


def global_wyckoff_index(spacegroup: int, letter: str) -> int:
    """Global index of Wyckoff position ``letter`` of ``spacegroup``."""
    return space_group(spacegroup).wyckoff(letter).global_index
