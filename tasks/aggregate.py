"""The statistics step: SKR's method for every published cell, with disclosure control.

Answers are counted once, at the finest grain (kommun, enhet, enkät, gender, question, answer);
every published figure is a sum of those counts, so genders, composite groups, län and riket
are roll-ups of small count tables rather than passes over the respondents. Suppression is
decided on the true counts of all cells together, and only then are figures blanked. Key
columns are categoricals while the figures are worked out (see ``_Codes``) and text again
once they are published.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt
import pandas as pd
import pandera.pandas as pa
from prefect import task
from prefect.cache_policies import NO_CACHE

from schemas.catalogue import RIKET_CODE, Catalogue
from schemas.frames import GENDERS, LEVELS, AnswerDistribution, ResponseCounts, Results
from tasks.statistics import wilson_interval
from tasks.suppression import Hierarchy, suppress

# Respondents of unknown gender ("X") and FH respondents without a unit are cells of their own
# while suppression decides (an analyst reads them as T - K - M and kommun - units), and are
# never published.
UNKNOWN_GENDER = "X"
NO_UNIT = ""
REMAINDER_MARK = "-"  # "ALL-BOU": the members of ALL that are not in BOU, never published

# A respondent's place at the finest grain; every cell is a union of such strata.
STRATUM = ["kommun_kod", "lan_kod", "enhet_id", "verksamhet", "gender"]
GEOGRAPHY = ["kommun_kod", "lan_kod", "enhet_id"]
CELL = ["level", "area_code", "kommun_kod", "lan_kod", "verksamhet", "gender"]
CELL_KEY = ["level", "area_code", "verksamhet", "gender"]
QUESTION_KEY = [*CELL_KEY, "question_id"]
RANKED = {"level": LEVELS, "gender": (*GENDERS, UNKNOWN_GENDER)}  # sorted in this order
Texts = TypeVar("Texts", pd.Series, pd.Index)


@dataclass(frozen=True)
class Aggregates:
    """The published figures of one survey-year."""

    results: pd.DataFrame  # schemas.frames.Results
    distribution: pd.DataFrame  # schemas.frames.AnswerDistribution
    response_counts: pd.DataFrame  # schemas.frames.ResponseCounts


def aggregate(
    respondents: pd.DataFrame,
    answers: pd.DataFrame,
    distributed: pd.DataFrame | None,
    *,
    survey: str,
    year: int,
    catalogue: Catalogue,
    threshold: int = 5,
    confidence: float = 0.95,
) -> Aggregates:
    """Every cell's figures for one survey-year, suppressed where they could identify someone.

    ``respondents`` and ``answers`` follow ``schemas.frames.Respondents`` and ``Answers``;
    ``distributed`` follows ``schemas.frames.Distributed``, or is None when the year has no
    ``utdelade.csv``.
    """
    enkater = catalogue.enkater(survey, year)
    _require_enkater(respondents["verksamhet"], enkater, "respondents")
    composites = _with_remainder_groups(catalogue.composites(survey, year))
    stratum, strata = _strata(respondents)
    codes = _Codes.of(strata, enkater, composites, catalogue, answers["question_id"])
    strata = codes.encode(strata)
    rollup = _RollUp(composites, with_enhet=survey in catalogue.surveys_with_units, codes=codes)
    hierarchies = _Hierarchies(composites)
    roles = codes.encode(catalogue.roles)

    counts = rollup.apply(_answer_counts(answers, respondents, stratum, strata, roles), ["n"])
    results, distribution = _question_figures(counts, roles, confidence)
    results["suppression_reason"] = suppress(
        results,
        results[["n_valid", "n_answered"]],
        keys=QUESTION_KEY,
        hierarchies=hierarchies.of(results),
        threshold=threshold,
        unpublished=_unpublished(results),
    )
    distribution["suppression_reason"] = results["suppression_reason"].array.take(
        distribution["cell"].to_numpy()
    )

    respondent_strata = strata.assign(n_respondents=np.bincount(stratum, minlength=len(strata)))
    response_counts = _with_distributed(
        rollup.apply(respondent_strata, ["n_respondents"]),
        distributed,
        respondent_strata=respondent_strata,
        rollup=rollup,
        catalogue=catalogue,
        enkater=enkater,
    )
    response_counts["suppression_reason"] = suppress(
        response_counts,
        response_counts[["n_respondents", "n_distributed", "n_covered"]],
        keys=CELL_KEY,
        hierarchies=hierarchies.of(response_counts),
        threshold=threshold,
        unpublished=_unpublished(response_counts),
    )
    return Aggregates(
        results=_publish(
            results, Results, ["n_valid", "n_positive", "pct_positive", "ci_low", "ci_high"]
        ),
        distribution=_publish(distribution, AnswerDistribution, ["n", "pct"]),
        response_counts=_publish(
            response_counts,
            ResponseCounts,
            ["n_respondents", "n_distributed", "n_covered", "response_rate"],
        ),
    )


# Pure computation on its inputs: nothing to retry, and DataFrame inputs make caching unsafe.
aggregate_task = task(name="aggregate", cache_policy=NO_CACHE)(aggregate)


def _require_enkater(verksamheter: pd.Series, enkater: Sequence[str], what: str) -> None:
    """Refuse enkäter the catalogue does not know for the year, rather than drop them silently."""
    unknown = sorted(set(verksamheter.unique()) - set(enkater))
    if unknown:
        raise ValueError(f"{what}: verksamhet not an enkät of this survey-year: {unknown}")


def _strata(respondents: pd.DataFrame) -> tuple[npt.NDArray[np.intp], pd.DataFrame]:
    """Each respondent's stratum number, and the strata (one row per number)."""
    strata = respondents[STRATUM].drop_duplicates(ignore_index=True)
    places = pd.MultiIndex.from_frame(respondents[STRATUM])
    return pd.MultiIndex.from_frame(strata).get_indexer(places), strata


@dataclass(frozen=True)
class _Codes:
    """One categorical dtype per key column, shared by every frame of one aggregation.

    Roll-ups, joins and sorts then work on small integer codes rather than Arrow text; frames
    concatenate without losing the dtype; and as the categories are in order (levels and
    genders by rank, the rest as text), sorting by code sorts as the text would.
    """

    dtypes: Mapping[str, pd.CategoricalDtype]

    @classmethod
    def of(
        cls,
        strata: pd.DataFrame,
        enkater: Sequence[str],
        composites: Mapping[str, Sequence[str]],
        catalogue: Catalogue,
        question_ids: pd.Series,
    ) -> _Codes:
        """Every value a key column can take: those of ``strata`` (as text) and the catalogue's,
        the year's enkäter and groups, and every area a cell can have."""
        kommuner = pd.Index(sorted({*catalogue.lan_of, *strata["kommun_kod"]}), dtype="str")
        lan = {*catalogue.lan_of.values(), *strata["lan_kod"]}
        units = _unit_area(strata["kommun_kod"], strata["enhet_id"])
        members = {member for group in composites.values() for member in group}
        texts = {
            "area_code": {*kommuner, *lan, RIKET_CODE, *units, *_unit_area(kommuner, NO_UNIT)},
            "kommun_kod": set(kommuner),
            "lan_kod": lan,
            "enhet_id": {*strata["enhet_id"], NO_UNIT},
            "verksamhet": {*enkater, *composites, *members},
            "question_id": {*catalogue.roles["question_id"], *question_ids.unique()},
        }
        orders = {column: sorted(values) for column, values in texts.items()}
        orders |= {column: list(order) for column, order in RANKED.items()}
        return cls(
            {column: pd.CategoricalDtype(order, ordered=True) for column, order in orders.items()}
        )

    def encode(self, frame: pd.DataFrame) -> pd.DataFrame:
        """``frame`` with its key columns in their categorical dtype."""
        return frame.astype({c: dtype for c, dtype in self.dtypes.items() if c in frame.columns})

    def columns(self, frame: pd.DataFrame, **values: pd.Series | str | None) -> dict[str, Any]:
        """Key columns for ``frame``: a Series recoded, a value (None: no value) repeated."""

        def column(name: str, value: pd.Series | str | None) -> pd.Series:
            dtype = self.dtypes[name]
            if isinstance(value, pd.Series):
                return value.astype(dtype)
            code = -1 if value is None else dtype.categories.get_loc(value)
            repeated = pd.Categorical.from_codes(np.full(len(frame), code), dtype=dtype)
            return pd.Series(repeated, index=frame.index)

        return {name: column(name, value) for name, value in values.items()}

    def unit_areas(self, frame: pd.DataFrame) -> pd.Series:
        """Each row's unit area code, spelt out once per distinct (kommun, unit) pair."""
        kommun, enhet = frame["kommun_kod"].cat, frame["enhet_id"].cat
        width = len(enhet.categories)
        which, pairs = pd.factorize(kommun.codes.to_numpy(np.int64) * width + enhet.codes)
        text = _unit_area(kommun.categories[pairs // width], enhet.categories[pairs % width])
        area = self.dtypes["area_code"]
        codes = area.categories.get_indexer(text)[which]
        return pd.Series(pd.Categorical.from_codes(codes, dtype=area), index=frame.index)


def _answer_counts(
    answers: pd.DataFrame,
    respondents: pd.DataFrame,
    stratum: npt.NDArray[np.intp],
    strata: pd.DataFrame,
    roles: pd.DataFrame,
) -> pd.DataFrame:
    """Answers counted per stratum, question and answer code: the one pass over the answers."""
    position = pd.Index(respondents["respondent_id"]).get_indexer(answers["respondent_id"])
    if (position < 0).any():
        unknown = answers.loc[position < 0, "respondent_id"].unique()[:5].tolist()
        raise ValueError(f"answers of respondents that are not in respondents, e.g. {unknown}")
    counts = (
        pd.DataFrame(
            {
                "stratum": stratum[position],
                "question_id": answers["question_id"].astype(roles["question_id"].dtype),
                "answer_code": answers["answer_code"].array,
            }
        )
        .groupby(["stratum", "question_id", "answer_code"], sort=False, observed=True)
        .size()
        .reset_index(name="n")
    )
    options = pd.MultiIndex.from_frame(roles[["question_id", "answer_code"]])
    given = pd.MultiIndex.from_frame(counts[["question_id", "answer_code"]])
    outside = counts.loc[~given.isin(options), ["question_id", "answer_code"]]
    if len(outside):
        raise ValueError(f"answers outside their scale, e.g. {outside.head(5).to_dict('records')}")
    place = strata.iloc[counts["stratum"].to_numpy()].reset_index(drop=True)
    return pd.concat([place, counts.drop(columns="stratum")], axis=1)


@dataclass(frozen=True)
class _RollUp:
    """Sums counts held per stratum up to every published cell.

    A frame to roll up has the ``STRATUM`` columns (its ``gender`` K, M or X, or already T as
    well), possibly further key columns, and the value columns named in ``apply``. The result
    has the ``CELL`` columns, the further keys and the summed values.
    """

    composites: Mapping[str, Sequence[str]]
    with_enhet: bool
    codes: _Codes

    def apply(
        self, frame: pd.DataFrame, values: list[str], *, with_total: bool = True
    ) -> pd.DataFrame:
        if with_total:
            frame = self._by_gender(frame, values)
        return self._by_level(self._by_verksamhet(frame, values), values)

    def _by_gender(self, frame: pd.DataFrame, values: list[str]) -> pd.DataFrame:
        """Gender T pools everyone (unknown gender included); K, M and X (unknown) stand alone."""
        everyone = _sum(frame, _keys(frame, [*values, "gender"]), values)
        everyone = everyone.assign(**self.codes.columns(everyone, gender="T"))
        return pd.concat([everyone, frame[everyone.columns]], ignore_index=True)

    def _by_verksamhet(self, frame: pd.DataFrame, values: list[str]) -> pd.DataFrame:
        """Each enkät as it is, plus each composite group as the sum of its member enkäter.

        Every respondent answers exactly one enkät, so the sum counts them once per group.
        """
        membership = pd.DataFrame(
            [(member, group) for group, members in self.composites.items() for member in members],
            columns=["verksamhet", "group"],
        ).astype(self.codes.dtypes["verksamhet"])
        in_groups = (
            frame.merge(membership, on="verksamhet")
            .drop(columns="verksamhet")
            .rename(columns={"group": "verksamhet"})
        )
        groups = _sum(in_groups, _keys(in_groups, values), values)
        return pd.concat([frame, groups[frame.columns]], ignore_index=True)

    def _by_level(self, frame: pd.DataFrame, values: list[str]) -> pd.DataFrame:
        """kommun, län (its kommuner pooled), riket (every kommun) and, where kept, enhet (the
        respondents without a unit as one more, unpublished, unit of their kommun)."""
        keys = [key for key in _keys(frame, values) if key not in GEOGRAPHY]
        kommun = _sum(frame, ["kommun_kod", "lan_kod", *keys], values)
        lan = _sum(kommun, ["lan_kod", *keys], values)
        riket = _sum(lan, keys, values)
        columns = self.codes.columns
        levels = [
            kommun.assign(**columns(kommun, level="kommun", area_code=kommun["kommun_kod"])),
            lan.assign(**columns(lan, level="lan", area_code=lan["lan_kod"], kommun_kod=None)),
            riket.assign(
                **columns(riket, level="riket", area_code=RIKET_CODE, kommun_kod=None, lan_kod=None)
            ),
        ]
        if self.with_enhet:
            enhet = _sum(frame, ["kommun_kod", "lan_kod", "enhet_id", *keys], values)
            area = self.codes.unit_areas(enhet)
            levels.insert(0, enhet.assign(**columns(enhet, level="enhet"), area_code=area))
        order = [*CELL, *(key for key in keys if key not in CELL), *values]
        return pd.concat([level[order] for level in levels], ignore_index=True)


def _keys(frame: pd.DataFrame, not_keys: list[str]) -> list[str]:
    return [column for column in frame.columns if column not in not_keys]


def _sum(frame: pd.DataFrame, by: list[str], values: list[str]) -> pd.DataFrame:
    return frame.groupby(by, sort=False, dropna=False, observed=True)[values].sum().reset_index()


def _question_figures(
    counts: pd.DataFrame, roles: pd.DataFrame, confidence: float
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Each cell's share of positive answers, and every answer option's count in every cell.

    A cell exists where someone answered the question (an excluded answer too); it then lists
    every option of the question's scale, unchosen ones with n = 0, so every share is present.
    The distribution's ``cell`` column is the row number of its cell in the results.
    """
    # cells numbered in their order (see _in_order), so options join on two integers, not keys
    counted = counts.assign(cell=counts.groupby(QUESTION_KEY, observed=True).ngroup())
    first = np.unique(counted["cell"].to_numpy(), return_index=True)[1]
    results = counts[[*CELL, "question_id"]].take(first).reset_index(drop=True)
    options = results.reset_index(names="cell").merge(roles, on="question_id")
    given = counted[["cell", "answer_code", "n"]]
    distribution = options.merge(given, on=["cell", "answer_code"], how="left")
    order = np.lexsort((distribution["answer_code"], distribution["cell"]))
    distribution = distribution.take(order).reset_index(drop=True)
    distribution["n"] = distribution["n"].fillna(0).astype("int64")
    cell = distribution["cell"].to_numpy()
    valid = (distribution["role"] != "excluded").to_numpy()
    positive = (distribution["role"] == "positive").to_numpy()
    n = distribution["n"].to_numpy()
    n_valid = np.bincount(cell, weights=n * valid, minlength=len(results)).astype("int64")
    n_positive = np.bincount(cell, weights=n * positive, minlength=len(results)).astype("int64")
    results["n_valid"], results["n_positive"] = n_valid, n_positive
    results["n_answered"] = np.bincount(cell, weights=n, minlength=len(results)).astype("int64")
    results["pct_positive"] = 100 * results["n_positive"] / results["n_valid"].where(n_valid > 0)
    results["ci_low"], results["ci_high"] = wilson_interval(
        results["n_positive"], results["n_valid"], confidence
    )
    cell_n_valid = pd.Series(n_valid[cell]).where(valid & (n_valid[cell] > 0))
    distribution["pct"] = 100 * distribution["n"] / cell_n_valid
    return results, distribution


def _with_distributed(
    response_counts: pd.DataFrame,
    distributed: pd.DataFrame | None,
    *,
    respondent_strata: pd.DataFrame,
    rollup: _RollUp,
    catalogue: Catalogue,
    enkater: Sequence[str],
) -> pd.DataFrame:
    """Questionnaires handed out, the respondents they cover, and the response rate, of gender
    T cells.

    A roll-up sums only the (kommun, enkät) parts that have a count of questionnaires handed
    out, and its rate uses the respondents of those same parts (``n_covered``), so a rate never
    mixes parts with and without a count.
    """
    figures = ["n_distributed", "n_covered"]
    if distributed is None:
        rolled = pd.DataFrame(
            {key: pd.Series(dtype=rollup.codes.dtypes[key]) for key in CELL_KEY}
            | {figure: pd.Series(dtype="int64") for figure in figures}
        )
    else:
        _require_enkater(distributed["verksamhet"], enkater, "distributed")
        parts = distributed.rename(columns={"antal_utdelade": "n_distributed"})
        parts["lan_kod"] = parts["kommun_kod"].map(catalogue.lan_of)
        if parts["lan_kod"].isna().any():
            unknown = sorted(parts.loc[parts["lan_kod"].isna(), "kommun_kod"].unique())
            raise ValueError(f"distributed: kommun_kod not in the catalogue: {unknown}")
        parts = rollup.codes.encode(parts)
        returned = respondent_strata.groupby(["kommun_kod", "verksamhet"], observed=True)[
            "n_respondents"
        ].sum()
        covered = parts.join(returned.rename("n_covered"), on=["kommun_kod", "verksamhet"])
        parts["n_covered"] = covered["n_covered"].fillna(0).astype("int64")
        # counted per kommun: no unit of their own
        parts = parts.assign(**rollup.codes.columns(parts, enhet_id=NO_UNIT, gender="T"))
        rolled = rollup.apply(
            parts[[*GEOGRAPHY, "verksamhet", "gender", *figures]], figures, with_total=False
        )
    merged = response_counts.merge(rolled[[*CELL_KEY, *figures]], on=CELL_KEY, how="left")
    n_distributed = merged["n_distributed"].astype("Int64")
    rate = 100 * merged["n_covered"] / n_distributed.where(n_distributed > 0)
    merged["response_rate"] = rate.astype("float64")
    merged["n_distributed"] = n_distributed
    return _in_order(merged, CELL_KEY)


def _in_order(frame: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Rows in a fixed order (levels and genders by rank, the rest as text: the order of their
    categories), numbered from 0.

    Suppression breaks ties by row order, so the order must depend on the data alone.
    """
    return frame.sort_values(by, ignore_index=True)


@dataclass(frozen=True)
class _Hierarchies:
    """Which published cells add up to which: the sums an attacker could subtract from."""

    composites: Mapping[str, Sequence[str]]

    def of(self, cells: pd.DataFrame) -> list[Hierarchy]:
        level, gender = cells["level"], cells["gender"]
        by_gender = gender != "T"
        return [
            Hierarchy(level == "enhet", {"level": "kommun", "area_code": cells["kommun_kod"]}),
            Hierarchy(level == "kommun", {"level": "lan", "area_code": cells["lan_kod"]}),
            Hierarchy(level == "lan", {"level": "riket", "area_code": RIKET_CODE}),
            Hierarchy(by_gender, {"gender": "T"}),  # T = K + M + unknown gender
            *(
                Hierarchy(cells["verksamhet"].isin(parts), {"verksamhet": group})
                for group, parts in self.group_sums()
            ),
        ]

    def group_sums(self) -> list[tuple[str, list[str]]]:
        """Each group with its parts: its member enkäter, and, for every smaller group within
        it, that group together with the rest (ALL = BOU + the group of EKB and MOB)."""
        sums = []
        for group, members in self.composites.items():
            sums.append((group, list(members)))
            for inner, rest in _inner_groups(self.composites, group):
                others = [_remainder_group(group, inner)] if len(rest) > 1 else rest
                sums.append((group, [inner, *others]))
        return sums


def _inner_groups(
    composites: Mapping[str, Sequence[str]], group: str
) -> list[tuple[str, list[str]]]:
    """(group within ``group``, the other members of ``group``) for every published group."""
    members = composites[group]
    return [
        (inner, [member for member in members if member not in inner_members])
        for inner, inner_members in composites.items()
        if inner != group
        and REMAINDER_MARK not in inner
        and inner_members
        and set(inner_members) <= set(members)
    ]


def _remainder_group(group: str, inner: str) -> str:
    return f"{group}{REMAINDER_MARK}{inner}"


def _with_remainder_groups(composites: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    """The composites, and for each group within another the group of the other members.

    ALL − BOU is EKB + MOB: whoever reads ALL and BOU reads that sum, so it is a cell of its
    own while suppression decides (with its kommuner, genders …), never published.
    """
    remainders = {
        _remainder_group(group, inner): rest
        for group in composites
        for inner, rest in _inner_groups(composites, group)
        if len(rest) > 1
    }
    return {**{group: list(members) for group, members in composites.items()}, **remainders}


def _unpublished(cells: pd.DataFrame) -> pd.Series:
    """Cells that take part in suppression but are never published: unknown gender, no unit,
    the rest of a group beside a group within it."""
    # a unit's area is its kommun's code, "-" and its id: the kommun code and "-" is no unit
    no_units = _unit_area(cells["kommun_kod"].cat.categories, NO_UNIT)
    no_unit = (cells["level"] == "enhet") & cells["area_code"].isin(no_units)
    remainder = cells["verksamhet"].str.contains(REMAINDER_MARK, regex=False)
    return (cells["gender"] == UNKNOWN_GENDER) | no_unit | remainder


def _unit_area(kommun_kod: Texts, enhet_id: Texts | str) -> Texts:
    """A unit's area code: its kommun and its id within the kommun."""
    return kommun_kod + "-" + enhet_id


def _as_text(column: pd.Series) -> pd.Series:
    """A categorical column as text, taken from its categories (``astype`` goes through Python
    objects, row by row)."""
    text = column.cat.categories.array.take(column.cat.codes.to_numpy(), allow_fill=True)
    return pd.Series(text, index=column.index, name=column.name)


def _publish(
    frame: pd.DataFrame, model: type[pa.DataFrameModel], figures: list[str]
) -> pd.DataFrame:
    """Drop the cells never published, blank the figures of suppressed ones, keys as text, keep
    the model's columns in order, validate."""
    schema = model.to_schema()
    frame = frame[~_unpublished(frame)].reset_index(drop=True)
    keys = {str(key): _as_text(frame[key]) for key in frame.select_dtypes("category")}
    frame["suppressed"] = frame["suppression_reason"].notna()
    hidden = frame["suppressed"].to_numpy()
    blanked = {
        figure: frame[figure].astype(schema.columns[figure].dtype.type).mask(hidden)
        for figure in figures
    }
    return schema.validate(frame.assign(**keys, **blanked)[list(schema.columns)])
