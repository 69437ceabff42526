"""An analyst's attack on published counts: subtract published parts from published parents.

Written from the published cells and the public definitions alone (which enkäter make a
composite group, which kommuner a län, which units a kommun), independently of how the
pipeline decides suppression. A *group* is what a subtraction leaves: the respondents of the
hidden parts of a family together with those never published (unknown gender, no unit). A
group of 1 to threshold - 1 respondents is exposed.

Three attacks, each stronger than the one before:
- **subtract**: parent minus its published parts, in every family;
- **narrow**: the same, where each hidden part may first be narrowed to what its own published
  parts leave of it (a hidden kommun minus its published units);
- **solve**: every family as a linear equation, every hidden cell and every unpublished
  remainder an unknown: any unknown the equations pin down to 1..threshold - 1 is exposed.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

RIKET = "0000"
CELL = ["level", "area_code", "verksamhet", "gender"]


@dataclass(frozen=True)
class Exposure:
    attack: str
    parent: tuple[str, ...]
    group: int


@dataclass(frozen=True)
class Family:
    """A published relation: ``parent`` = sum of ``parts`` (+ an unpublished remainder)."""

    parent: tuple[str, ...]
    parts: list[tuple[str, ...]]
    remainder: str | None  # what is never published: "unknown gender", "no unit"


class Table:
    """Published cells of one count: ``value`` is NaN where the cell is hidden."""

    def __init__(
        self,
        cells: pd.DataFrame,
        value: str,
        *,
        composites: Mapping[str, Sequence[str]],
        extra_keys: Sequence[str] = (),
    ) -> None:
        self.keys = [*CELL, *extra_keys]
        frame = cells[[*self.keys, "kommun_kod", "lan_kod", value]]
        self.value = {
            tuple(row[: len(self.keys)]): row[-1]
            for row in frame.itertuples(index=False, name=None)
        }
        self.kommun_of = dict(zip(frame["area_code"], frame["kommun_kod"], strict=True))
        self.lan_of = dict(zip(frame["area_code"], frame["lan_kod"], strict=True))
        self.children: dict[tuple[str, ...], list[tuple[str, ...]]] = {}
        self.composites = composites
        for key in self.value:
            level, area, *_ = key
            if level == "enhet":
                self._child(key, "kommun", self.kommun_of[area], key)
            elif level == "kommun":
                self._child(key, "lan", self.lan_of[area], key)
            elif level == "lan":
                self._child(key, "riket", RIKET, key)

    def _child(self, key: tuple[str, ...], level: str, area: str, part: tuple[str, ...]) -> None:
        parent = (level, area, *key[2:])
        self.children.setdefault(parent, []).append(part)

    def hidden(self, key: tuple[str, ...]) -> bool:
        return bool(pd.isna(self.value[key]))

    def families(self, parent: tuple[str, ...]) -> Iterator[Family]:
        """Every sum ``parent`` is the total of, with the parts that exist as cells."""
        level, _, verksamhet, gender, *rest = parent
        if gender == "T":
            parts = [(*parent[:3], g, *rest) for g in ("K", "M")]
            yield Family(parent, [p for p in parts if p in self.value], "unknown gender")
        geography = self.children.get(parent, [])
        if geography or level in ("lan", "riket"):
            yield Family(parent, geography, "no unit" if level == "kommun" else None)
        for members in _group_sums(self.composites).get(verksamhet, []):
            parts = [(*parent[:2], member, *parent[3:]) for member in members]
            yield Family(parent, [p for p in parts if p in self.value], None)

    def residual(self, family: Family) -> float:
        shown = [self.value[p] for p in family.parts if not self.hidden(p)]
        return float(self.value[family.parent] - sum(shown))


def _group_sums(composites: Mapping[str, Sequence[str]]) -> dict[str, list[list[str]]]:
    """Each group as the sum of its members, and of any smaller group and the other members."""
    sums: dict[str, list[list[str]]] = {}
    for group, members in composites.items():
        sums.setdefault(group, []).append(list(members))
        for inner, inner_members in composites.items():
            if inner != group and inner_members and set(inner_members) <= set(members):
                rest = [m for m in members if m not in inner_members]
                sums[group].append([inner, *rest])
    return sums


def attack(table: Table, threshold: int) -> list[Exposure]:
    """The subtract and narrow attacks on every family with a published parent."""
    exposures = []
    for parent in table.value:
        if table.hidden(parent):
            continue
        for family in table.families(parent):
            residual = table.residual(family)
            if 0 < residual < threshold:
                exposures.append(Exposure("subtract", parent, int(residual)))
                continue
            for group in _narrowed(table, family, residual):
                if 0 < group < threshold:
                    exposures.append(Exposure("narrow", parent, int(group)))
                    break
    return exposures


def _narrowed(table: Table, family: Family, residual: float) -> Iterator[float]:
    """What is left when any of the hidden parts is first narrowed by one of its own sums."""
    hidden = [p for p in family.parts if table.hidden(p)]
    if not hidden or len(hidden) > 6:
        return
    options = []
    for part in hidden:
        shown_below = {0.0}
        for below in table.families(part):
            shown_below.add(sum(table.value[p] for p in below.parts if not table.hidden(p)))
        options.append(sorted(shown_below))
    for choice in itertools.islice(itertools.product(*options), 4096):
        yield residual - sum(choice)


def solve(table: Table, threshold: int) -> list[Exposure]:
    """Unknowns the family equations pin down to a small group (dense algebra: small tables)."""
    unknowns: dict[tuple[str, ...], int] = {}
    rows: list[dict[int, float]] = []
    constants: list[float] = []
    for parent in table.value:
        for family in table.families(parent):
            equation: dict[int, float] = {}
            constant = 0.0
            for sign, cell in [(1.0, parent), *((-1.0, p) for p in family.parts)]:
                if table.hidden(cell):
                    column = unknowns.setdefault(cell, len(unknowns))
                    equation[column] = equation.get(column, 0.0) + sign
                else:
                    constant -= sign * table.value[cell]
            if family.remainder:
                remainder = (*parent, family.remainder)
                equation[unknowns.setdefault(remainder, len(unknowns))] = -1.0
            if equation:
                rows.append(equation)
                constants.append(constant)
    if not unknowns:
        return []
    matrix = np.zeros((len(rows), len(unknowns)))
    for i, equation in enumerate(rows):
        for column, coefficient in equation.items():
            matrix[i, column] = coefficient
    # sum(coefficient * unknown) = constant (minus the known cells' sum) for every family
    solution, *_ = np.linalg.lstsq(matrix, np.array(constants), rcond=None)
    _, singular, vt = np.linalg.svd(matrix)
    rank = int((singular > 1e-9).sum())
    free_directions = vt[rank:]
    exposures = []
    for cell, column in unknowns.items():
        pinned = np.allclose(free_directions[:, column], 0, atol=1e-9)
        value = round(float(solution[column]))
        if pinned and 0 < value < threshold:
            exposures.append(Exposure("solve", cell, value))
    return exposures
