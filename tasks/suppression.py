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
from functools import cached_property
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from schemas.frames import FEW_ANSWERS, PROTECTS_OTHER

# Recorded with every load, so a reader knows which rule its hidden cells follow.
METHOD = (
    "complementary suppression over families (T = K + M + unknown gender; group = its enkäter; "
    "riket = län = kommuner = units + no unit): no lone hidden member, and a published parent "
    "minus its published parts is 0 or at least the threshold"
)


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

    @cached_property
    def by_family(self) -> _Grouped:
        return _Grouped.of(self.family, len(self.parent_of))

    @cached_property
    def by_member(self) -> _Grouped:
        return _Grouped.of(self.member, int(self.member.max(initial=-1)) + 1)


@dataclass(frozen=True)
class _Grouped:
    """The edges grouped by one of their ends, so that the edges of a few families (or cells)
    are found without a pass over every edge: the rules' passes touch few families each."""

    order: npt.NDArray[np.intp]
    starts: npt.NDArray[np.intp]

    @classmethod
    def of(cls, end: npt.NDArray[np.intp], n: int) -> _Grouped:
        order = np.argsort(end, kind="stable")
        starts = np.searchsorted(end[order], np.arange(n + 1))
        return cls(order, starts)

    def edges(self, ends: npt.NDArray[np.intp]) -> npt.NDArray[np.intp]:
        """The edges of ``ends`` (families or cells), in their order."""
        ends = ends[ends < len(self.starts) - 1]
        low, high = self.starts[ends], self.starts[ends + 1]
        lengths = high - low
        offsets = np.repeat(low - np.cumsum(lengths) + lengths, lengths)
        edges: npt.NDArray[np.intp] = self.order[offsets + np.arange(lengths.sum())]
        return edges


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
    _hide_complements(hidden, sizes, free, families, threshold)
    reason = pd.Series(PROTECTS_OTHER, index=cells.index, name="suppression_reason", dtype="str")
    reason[primary] = FEW_ANSWERS
    return reason.where(hidden)


def _families(
    cells: pd.DataFrame,
    keys: Sequence[str],
    hierarchies: Sequence[Hierarchy],
    sizes: npt.NDArray[np.int64],
) -> _Families:
    """Resolve every hierarchy to membership edges by looking up each part's parent key."""
    if not cells.index.equals(pd.RangeIndex(len(cells))):
        raise ValueError("cells must have a default RangeIndex")
    key = _KeyCodes(cells, keys)
    key_index = pd.Index(key.of_cells())
    if not key_index.is_unique:
        raise ValueError(f"cells are not unique by {list(keys)}")
    families: list[npt.NDArray[np.int64]] = []
    members: list[npt.NDArray[np.intp]] = []
    parents: list[npt.NDArray[np.bool_]] = []
    for number, hierarchy in enumerate(hierarchies):
        is_part = hierarchy.parts.to_numpy(dtype=bool)
        parent_row = key_index.get_indexer(pd.Index(key.of_parents(is_part, hierarchy.parent)))
        part_rows = np.flatnonzero(is_part)
        if (parent_row < 0).any():
            orphans = cells.loc[part_rows[parent_row < 0][:3], list(keys)].to_dict("records")
            raise ValueError(f"cells without the parent they add up to, e.g. {orphans}")
        family = number * len(cells) + parent_row.astype(np.int64)
        unique_family, first = np.unique(family, return_index=True)
        families += [family, unique_family]
        members += [part_rows.astype(np.intp), parent_row[first].astype(np.intp)]
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


class _KeyCodes:
    """A cell key as one integer: each key column's values numbered, the numbers combined.

    A parent's key differs from its parts' in a column or two, so only those are looked up;
    integers are matched in a fraction of the time text tuples take. A value no cell has gets
    a number of its own, so its key matches no cell.
    """

    def __init__(self, cells: pd.DataFrame, keys: Sequence[str]) -> None:
        self.numbers: dict[str, npt.NDArray[np.intp]] = {}
        self.values: dict[str, pd.Index] = {}
        for column in keys:
            numbers, values = pd.factorize(cells[column])
            self.numbers[column], self.values[column] = numbers, pd.Index(values)

    def of_cells(self) -> npt.NDArray[np.int64]:
        return self._combined(self.numbers)

    def of_parents(
        self, is_part: npt.NDArray[np.bool_], parent: Mapping[str, pd.Series | str]
    ) -> npt.NDArray[np.int64]:
        numbers = {}
        for column, own in self.numbers.items():
            value = parent.get(column)
            if value is None:
                numbers[column] = own[is_part]
            elif isinstance(value, pd.Series):
                which, distinct = pd.factorize(value[is_part])
                numbers[column] = self.values[column].get_indexer(distinct)[which]
            else:
                number = self.values[column].get_indexer(pd.Index([value]))[0]
                numbers[column] = np.full(is_part.sum(), number)
        return self._combined(numbers)

    def _combined(self, numbers: Mapping[str, npt.NDArray[np.intp]]) -> npt.NDArray[np.int64]:
        combined = np.zeros(len(next(iter(numbers.values()))), dtype=np.int64)
        for column, number in numbers.items():
            absent = len(self.values[column])
            combined = combined * (absent + 1) + np.where(number < 0, absent, number)
        return combined


def _per_family(
    family: npt.NDArray[np.intp], values: npt.NDArray[Any], n_families: int
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
    expands = hidden[families.parent_of] & families.adds_up.any(axis=1)
    edges = families.parts & expands[families.family]
    if not edges.any():
        return narrowed
    # the expanding families numbered densely in their order (np.unique's, without a sort)
    present = np.bincount(families.family[edges], minlength=len(families.parent_of)) > 0
    family = np.flatnonzero(present)
    which = (np.cumsum(present) - 1)[families.family[edges]]
    member = families.member[edges]
    adds_up = families.adds_up[family]
    # families grouped by their parent, so each parent's least expansion is one reduction
    parent = families.parent_of[family]
    order = np.argsort(parent, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(parent[order]) != 0])
    expanded = parent[order][starts]
    while True:
        sums = _per_family(which, narrowed[member], len(family)).astype(np.float64)
        least = np.minimum.reduceat(np.where(adds_up, sums, np.inf)[order], starts, axis=0)
        updated = np.minimum(narrowed[expanded], least)
        if np.array_equal(updated, narrowed[expanded]):
            return narrowed
        narrowed[expanded] = updated


def _hide_complements(
    hidden: npt.NDArray[np.bool_],
    sizes: npt.NDArray[np.int64],
    free: npt.NDArray[np.bool_],
    families: _Families,
    threshold: int,
) -> None:
    """Apply both rules until every family holds (``hidden`` is updated in place).

    The first rule is cheap and settles most families, so it runs to its end before each pass
    of the second, which has to narrow every hidden cell first.
    """
    while True:
        hidden_members = _hidden_members(hidden, families)
        while len(newly := _hide_one_more(hidden_members == 1, hidden, sizes, free, families)):
            counted = families.family[families.by_member.edges(newly)]
            hidden_members += np.bincount(counted, minlength=len(hidden_members))
        small = _small_remainder(hidden, sizes, families, threshold)
        if not len(_hide_one_more(small, hidden, sizes, free, families, parts_first=True)):
            return


def _hidden_members(hidden: npt.NDArray[np.bool_], families: _Families) -> npt.NDArray[np.int64]:
    """How many members of each family are hidden (a family with one is a lone family)."""
    member_hidden = hidden[families.member]
    n_families = len(families.parent_of)
    counts = np.bincount(families.family, weights=member_hidden, minlength=n_families)
    return counts.astype(np.int64)


def _small_remainder(
    hidden: npt.NDArray[np.bool_],
    sizes: npt.NDArray[np.int64],
    families: _Families,
    threshold: int,
) -> npt.NDArray[np.bool_]:
    """Families with a readable parent whose hidden parts narrow down to 1..threshold - 1."""
    parts = families.parts
    remainder = _per_family(
        families.family[parts],
        _narrowed(hidden, sizes, families)[families.member[parts]],
        len(families.parent_of),
    )
    small = ((remainder > 0) & (remainder < threshold) & families.adds_up).any(axis=1)
    return small & ~hidden[families.parent_of]


def _hide_one_more(
    breaks: npt.NDArray[np.bool_],
    hidden: npt.NDArray[np.bool_],
    sizes: npt.NDArray[np.int64],
    free: npt.NDArray[np.bool_],
    families: _Families,
    *,
    parts_first: bool = False,
) -> npt.NDArray[np.intp]:
    """In every family that ``breaks`` a rule, hide one more member; the cells hidden.

    With ``parts_first`` the parent is chosen only where no part is left to hide. A family
    whose parent is being hidden in the same pass waits for the next pass, where the hidden
    parent may already be what it needs (fewer cells hidden than if every family acted at once).
    """
    edges = families.by_family.edges(np.flatnonzero(breaks))
    edges = edges[~hidden[families.member[edges]]]
    is_parent = families.is_parent[edges]
    if parts_first:
        has_part = np.bincount(families.family[edges[~is_parent]], minlength=len(breaks))
        edges = edges[~(is_parent & (has_part[families.family[edges]] > 0))]
    family, member = families.family[edges], families.member[edges]
    # np.lexsort sorts by the last key first: per family, unpublished cells, then the
    # smallest, parts before the parent, then row order.
    order = np.lexsort((member, families.is_parent[edges], sizes[member, 0], ~free[member], family))
    _, first = np.unique(family[order], return_index=True)
    chosen, chosen_for = member[order][first], family[order][first]
    waits = np.isin(families.parent_of[chosen_for], chosen)
    newly = np.unique(chosen if waits.all() else chosen[~waits])
    hidden[newly] = True
    return newly
