"""Disclosure control: hide small cells, and enough other cells that no small group can be read
off what is published.

Published cells are tied together by exact sums (a län is the sum of its kommuner, a composite
group the sum of its enkäter, T the sum of K, M and unknown gender, a kommun the sum of its units
and of its respondents without a unit). Each such tie is a *family*: a parent cell and its parts.
Cells that are never published (unknown gender, no unit) are cells of the table all the same:
an analyst who reads T, K and M reads their difference, so the mechanism treats every cell as
readable unless it hides it, and the caller publishes only what it publishes.

Two rules are applied until nothing changes, always on the true counts:

1. **No lone unknown.** A family with exactly one hidden member gives it away by subtraction:
   a second member is hidden (unpublished cells first, then the smallest; parts before the
   parent).
2. **No small remainder.** Where a family's parent is readable, the parent minus its readable
   parts is the sum of its hidden parts: it must be 0 or at least the threshold. Hidden parts are
   worth what an analyst can narrow them down to: a hidden cell whose own parts are partly
   readable is worth only its hidden parts (recursively), so "hidden kommun minus its readable
   units" counts as what is left of it. Where the sum is smaller, another part is hidden.

Each measure a family adds up (answers, respondents, questionnaires handed out) is checked on
its own. The mechanism knows nothing of kommuner or genders: callers describe each hierarchy as
"these rows are parts; their parent is the row whose key differs in these columns".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pandas as pd

from schemas.frames import FEW_ANSWERS, PROTECTS_OTHER

METHOD = "families: no lone hidden member; parent minus readable parts 0 or >= threshold"


@dataclass(frozen=True)
class Hierarchy:
    """Parts that add up to a parent cell.

    ``parts`` marks the part rows of the cell frame. ``parent`` gives, for the key columns in
    which a parent differs from its parts, the parent's value: one value for all parts or a
    Series aligned with the cell frame. Parts sharing a parent form one family.
    """

    parts: pd.Series
    parent: Mapping[str, pd.Series | str] = field(default_factory=dict)


@dataclass(frozen=True)
class _Families:
    """Membership edges: member row ``member[i]`` belongs to family ``family[i]``.

    ``parent_of[f]`` is the row of family ``f``'s parent; ``adds_up[f, m]`` says whether the
    family's parts add up to its parent in measure ``m`` (a measure a family does not carry,
    such as questionnaires handed out per gender, is not checked there).
    """

    family: npt.NDArray[np.intp]
    member: npt.NDArray[np.intp]
    is_parent: npt.NDArray[np.bool_]
    parent_of: npt.NDArray[np.intp]
    adds_up: npt.NDArray[np.bool_]

    @property
    def parts(self) -> npt.NDArray[np.bool_]:
        return ~self.is_parent


def suppress(
    cells: pd.DataFrame,
    counts: pd.DataFrame,
    *,
    keys: Sequence[str],
    hierarchies: Sequence[Hierarchy],
    threshold: int,
    unpublished: pd.Series | None = None,
) -> pd.Series:
    """Why each cell is hidden: ``few_answers`` (its first count is below ``threshold``),
    ``protects_other`` (a complement), or NA where it is shown.

    ``counts`` holds the measures to protect, aligned with ``cells``; the first one decides
    which cells are too small. ``unpublished`` marks cells the caller never shows: they are
    readable by subtraction like any other, but the cheapest complements. ``keys`` identify a
    cell uniquely; ties go to the cell that comes first in ``cells``, so the outcome depends
    only on the data and its order.
    """
    sizes = counts.fillna(0).to_numpy(dtype=np.int64).reshape(len(cells), counts.shape[1])
    families = _families(cells, keys, hierarchies, sizes)
    primary = sizes[:, 0] < threshold
    hidden = primary.copy()
    free = (
        np.zeros(len(cells), dtype=np.bool_)
        if unpublished is None
        else unpublished.to_numpy(dtype=bool)
    )
    while _hide_complements(hidden, sizes, free, families, threshold):
        pass
    reason = np.where(primary, FEW_ANSWERS, np.where(hidden, PROTECTS_OTHER, None))
    return pd.Series(reason, index=cells.index, name="suppression_reason", dtype="str")


def _families(
    cells: pd.DataFrame,
    keys: Sequence[str],
    hierarchies: Sequence[Hierarchy],
    sizes: npt.NDArray[np.int64],
) -> _Families:
    """Resolve every hierarchy to membership edges by looking up each part's parent key."""
    if not cells.index.equals(pd.RangeIndex(len(cells))):
        raise ValueError("cells must have a default RangeIndex")
    key_index = pd.MultiIndex.from_frame(cells[list(keys)])
    if not key_index.is_unique:
        raise ValueError(f"cells are not unique by {list(keys)}")
    families: list[npt.NDArray[np.int64]] = []
    members: list[npt.NDArray[np.intp]] = []
    parents: list[npt.NDArray[np.bool_]] = []
    for number, hierarchy in enumerate(hierarchies):
        is_part = hierarchy.parts.to_numpy(dtype=bool)
        part_rows = cells.loc[is_part, list(keys)]
        parent_keys = part_rows.copy()
        for column, value in hierarchy.parent.items():
            parent_keys[column] = (
                value[is_part].to_numpy() if isinstance(value, pd.Series) else value
            )
        parent_row = key_index.get_indexer(pd.MultiIndex.from_frame(parent_keys))
        if (parent_row < 0).any():
            orphans = part_rows[parent_row < 0].head(3).to_dict("records")
            raise ValueError(f"cells without the parent they add up to, e.g. {orphans}")
        family = number * len(cells) + parent_row.astype(np.int64)
        unique_family, first = np.unique(family, return_index=True)
        families += [family, unique_family]
        members += [part_rows.index.to_numpy(dtype=np.intp), parent_row[first].astype(np.intp)]
        parents += [np.zeros(len(family), dtype=np.bool_), np.ones(len(first), dtype=np.bool_)]
    if not families:
        empty = np.zeros(0, dtype=np.intp)
        return _Families(empty, empty, np.zeros(0, dtype=np.bool_), empty, np.zeros((0, 1), bool))
    family_codes = pd.factorize(np.concatenate(families))[0].astype(np.intp)
    member = np.concatenate(members)
    is_parent = np.concatenate(parents)
    # A family of one cell cannot leak anything by subtraction and has no complement to hide.
    alone = np.bincount(family_codes)[family_codes] < 2
    family_codes = pd.factorize(family_codes[~alone])[0].astype(np.intp)
    member, is_parent = member[~alone], is_parent[~alone]
    parent_of = np.full(family_codes.max(initial=-1) + 1, -1, dtype=np.intp)
    parent_of[family_codes[is_parent]] = member[is_parent]
    part_sums = _per_family(family_codes[~is_parent], sizes[member[~is_parent]], len(parent_of))
    adds_up = part_sums == sizes[parent_of]
    return _Families(family_codes, member, is_parent, parent_of, adds_up)


def _per_family(
    family: npt.NDArray[np.intp], values: npt.NDArray[np.int64], n_families: int
) -> npt.NDArray[np.int64]:
    """Sum ``values`` (one column per measure) over the members of each family."""
    return np.stack(
        [
            np.bincount(family, weights=column, minlength=n_families).astype(np.int64)
            for column in values.T
        ],
        axis=1,
    ).reshape(n_families, values.shape[1])


def _narrowed(
    hidden: npt.NDArray[np.bool_], sizes: npt.NDArray[np.int64], families: _Families
) -> npt.NDArray[np.float64]:
    """What an analyst can narrow each cell down to: 0 where it is readable; for a hidden cell,
    the least of its count and, for each family it is the parent of, the narrowed sum of that
    family's parts (the rest is read). Families only go down the hierarchies, so a few rounds
    settle it."""
    narrowed = np.where(hidden[:, None], sizes, 0).astype(np.float64)
    parts = families.parts
    part_family, part_member = families.family[parts], families.member[parts]
    parent_hidden = hidden[families.parent_of]
    while True:
        sums = _per_family(part_family, narrowed[part_member], len(families.parent_of))
        sums = np.where(families.adds_up & parent_hidden[:, None], sums, np.inf)
        updated = narrowed.copy()
        np.minimum.at(updated, families.parent_of, sums)
        if np.array_equal(updated, narrowed):
            return narrowed
        narrowed = updated


def _hide_complements(
    hidden: npt.NDArray[np.bool_],
    sizes: npt.NDArray[np.int64],
    free: npt.NDArray[np.bool_],
    families: _Families,
    threshold: int,
) -> bool:
    """One pass of both rules: every family that breaks one hides one more member.

    A family whose parent is being hidden in the same pass waits for the next pass, where the
    hidden parent may already be what it needs (fewer cells hidden than if every family acted
    at once). Returns whether anything new was hidden (``hidden`` is updated in place).
    """
    n_families = len(families.parent_of)
    member_hidden = hidden[families.member]
    lone = np.bincount(families.family, weights=member_hidden, minlength=n_families) == 1
    parts = families.parts
    remainder = _per_family(
        families.family[parts],
        _narrowed(hidden, sizes, families)[families.member[parts]].astype(np.int64),
        n_families,
    )
    small = ((remainder > 0) & (remainder < threshold) & families.adds_up).any(axis=1)
    small &= ~hidden[families.parent_of]
    breaks = lone | small
    candidate = breaks[families.family] & ~member_hidden
    # A small remainder is raised by hiding a part; the parent only where no part is left.
    has_part = np.bincount(families.family[candidate & parts], minlength=n_families) > 0
    candidate &= ~(families.is_parent & small[families.family] & has_part[families.family])
    if not candidate.any():
        return False
    family = families.family[candidate]
    member = families.member[candidate]
    # np.lexsort sorts by the last key first: per family, unpublished cells, then the
    # smallest, parts before the parent, then row order.
    order = np.lexsort(
        (member, families.is_parent[candidate], sizes[member, 0], ~free[member], family)
    )
    _, first = np.unique(family[order], return_index=True)
    chosen, chosen_for = member[order][first], family[order][first]
    waits = np.isin(families.parent_of[chosen_for], chosen)
    hidden[chosen if waits.all() else chosen[~waits]] = True
    return True
