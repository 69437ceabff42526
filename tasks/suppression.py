"""Disclosure control: hide small cells, and enough other cells that none can be recovered.

Published cells are tied together by sums (a län is the sum of its kommuner, a composite group
the sum of its enkäter, T the sum of K, M and unknown gender). Each such tie is a *family*: a
parent cell and its parts. If exactly one member of a family is hidden, it can be recovered by
subtraction, so a second member is hidden too: the smallest visible one, which is always a part
unless no part is left. Hiding may create new singly-hidden families elsewhere, so the rule is
applied until nothing changes.

The mechanism knows nothing of kommuner or genders: callers describe each hierarchy as
"these rows are parts; their parent is the row whose key differs in these columns".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pandas as pd


@dataclass(frozen=True)
class Hierarchy:
    """Parts that add up to a parent cell.

    ``parts`` marks the part rows of the cell frame. ``parent`` gives, for the key columns in
    which a parent differs from its parts, the parent's value: one value for all parts or a
    Series aligned with the cell frame. Parts sharing a parent form one family. With
    ``with_parent=False`` the parent is not a member, so the parts protect each other whether
    or not the parent is shown (K and M are hidden together, whatever T shows).
    """

    parts: pd.Series
    parent: Mapping[str, pd.Series | str] = field(default_factory=dict)
    with_parent: bool = True


@dataclass(frozen=True)
class _Families:
    """Membership edges: member row ``member[i]`` belongs to family ``family[i]``.

    ``parent_of[f]`` is the row of family ``f``'s parent, or -1 when the parent is no member.
    """

    family: npt.NDArray[np.intp]
    member: npt.NDArray[np.intp]
    is_parent: npt.NDArray[np.bool_]
    parent_of: npt.NDArray[np.intp]


def suppress(
    cells: pd.DataFrame,
    counts: pd.Series,
    *,
    keys: Sequence[str],
    hierarchies: Sequence[Hierarchy],
    threshold: int,
) -> pd.Series:
    """Which cells to hide: those below ``threshold`` and their complements, on true counts.

    ``keys`` identify a cell uniquely; ties between equally small candidates go to the cell
    that comes first in ``cells``, so the outcome depends only on the data and its order.
    """
    families = _families(cells, keys, hierarchies)
    hidden = (counts < threshold).to_numpy(copy=True)
    sizes = counts.to_numpy(dtype=np.int64)
    while _hide_complements(hidden, sizes, families):
        pass
    return pd.Series(hidden, index=cells.index, name="suppressed")


def _families(
    cells: pd.DataFrame, keys: Sequence[str], hierarchies: Sequence[Hierarchy]
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
        families.append(family)
        members.append(part_rows.index.to_numpy(dtype=np.intp))
        parents.append(np.zeros(len(part_rows), dtype=np.bool_))
        if hierarchy.with_parent:
            unique_family, first = np.unique(family, return_index=True)
            families.append(unique_family)
            members.append(parent_row[first].astype(np.intp))
            parents.append(np.ones(len(unique_family), dtype=np.bool_))
    if not families:
        empty = np.zeros(0, dtype=np.intp)
        return _Families(empty, empty, np.zeros(0, dtype=np.bool_), empty)
    family_codes = pd.factorize(np.concatenate(families))[0].astype(np.intp)
    member = np.concatenate(members)
    is_parent = np.concatenate(parents)
    parent_of = np.full(family_codes.max(initial=-1) + 1, -1, dtype=np.intp)
    parent_of[family_codes[is_parent]] = member[is_parent]
    # A family of one cell cannot leak anything by subtraction and has no complement to hide.
    alone = np.bincount(family_codes)[family_codes] < 2
    return _Families(family_codes[~alone], member[~alone], is_parent[~alone], parent_of)


def _hide_complements(
    hidden: npt.NDArray[np.bool_], sizes: npt.NDArray[np.int64], families: _Families
) -> bool:
    """One pass: in every family with exactly one hidden member, hide the smallest visible one.

    A family whose parent is being hidden in the same pass waits for the next pass, where the
    hidden parent may already be the second unknown it needs (fewer cells hidden than if every
    family acted at once). Returns whether anything new was hidden (``hidden`` is updated in
    place).
    """
    member_hidden = hidden[families.member]
    hidden_per_family = np.bincount(families.family, weights=member_hidden)
    candidate = (hidden_per_family[families.family] == 1) & ~member_hidden
    if not candidate.any():
        return False
    family = families.family[candidate]
    member = families.member[candidate]
    # np.lexsort sorts by the last key first: per family, smallest size, parts before the
    # parent, then row order.
    order = np.lexsort((member, families.is_parent[candidate], sizes[member], family))
    _, first = np.unique(family[order], return_index=True)
    chosen, chosen_for = member[order][first], family[order][first]
    waits = np.isin(families.parent_of[chosen_for], chosen)
    hidden[chosen if waits.all() else chosen[~waits]] = True
    return True
