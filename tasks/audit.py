"""Audit: the Great Expectations suite a staged load must pass before it is published.

Great Expectations takes seconds to import, so it is imported inside ``audit_load`` only. The
staged rows are read back from the warehouse and validated as pandas frames: that works the same
on DuckDB (where GX's SQL datasources fail) and PostgreSQL. The derived frames (cells that must
respect the threshold, totals per level, movements since last year) are built here with pandas,
so each rule is one plain built-in expectation. Critical expectations decide publication;
warnings are recorded and shown but never block.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE

PERCENT_COLUMNS: dict[str, tuple[str, ...]] = {
    "fct_results": ("pct_positive", "ci_low", "ci_high"),
    "fct_answer_distribution": ("pct",),
    "fct_response_counts": ("response_rate",),
}
MOVEMENT_KEYS = ["area_code", "verksamhet", "gender", "question_id"]
STAGED_SOURCE = "staged"
CRITICAL, WARNING = "critical", "warning"  # the severities GX records, as audit tables do
# What the audit reads of a staged load: table → the columns its checks look at. Respondents
# are only counted, and the raw answers are never needed; at national scale the answer
# distribution alone is a million rows, of which only the percentage is checked.
AUDITED_STAGING: dict[str, tuple[str, ...]] = {
    "respondents": ("respondent_id",),
    "fct_results": (
        "level",
        *MOVEMENT_KEYS,
        *PERCENT_COLUMNS["fct_results"],
        "suppressed",
        "n_valid",
    ),
    "fct_answer_distribution": PERCENT_COLUMNS["fct_answer_distribution"],
    "fct_response_counts": (
        "level",
        "area_code",
        "verksamhet",
        "gender",
        *PERCENT_COLUMNS["fct_response_counts"],
        "suppressed",
        "n_respondents",
    ),
}


@dataclass
class AuditOutcome:
    """The verdict of one load's audit: ``passed``, ``warned`` (warnings only) or ``failed``."""

    status: str
    expectations: pd.DataFrame  # expectation, column_name, severity, success, observed
    data_docs_path: str | None

    @property
    def problems(self) -> list[str]:
        """One line per failed expectation, critical ones first."""
        failed = self.expectations[~self.expectations["success"]].sort_values("severity")
        return [
            f"{row['severity']}: {row['expectation']}"
            + ("" if pd.isna(row["column_name"]) else f"({row['column_name']})")
            + f": {_observed(row['observed'])}"
            for row in failed.to_dict("records")
        ]


def _observed(result_json: str) -> str:
    """What GX saw, in a few words: the observed value, or how many values broke the rule."""
    result = json.loads(result_json)
    if "observed_value" in result:
        return f"observed {result['observed_value']}"
    examples = ", ".join(str(v) for v in result.get("partial_unexpected_list", [])[:3])
    return f"{result.get('unexpected_count', '?')} unexpected value(s), e.g. {examples}"


def level_totals(response_counts: pd.DataFrame) -> pd.DataFrame:
    """Respondents per (verksamhet, gender) at riket, summed over län and over kommuner.

    Only groups where no lan or kommun cell is suppressed can be summed; the others are left
    out (their figures are NULL by design).
    """
    cells = response_counts[response_counts["level"].isin(["riket", "lan", "kommun"])]
    grouped = cells.groupby(["verksamhet", "gender", "level"]).agg(
        total=("n_respondents", "sum"), hidden=("suppressed", "any")
    )
    wide = grouped.unstack("level")
    hidden, total = pd.DataFrame(wide["hidden"]), pd.DataFrame(wide["total"])
    complete = ~hidden.fillna(True).astype(bool).any(axis="columns")
    totals = total.loc[complete].reindex(columns=["riket", "lan", "kommun"])
    return totals.astype("float64").reset_index()


def movements(results: pd.DataFrame, previous: pd.DataFrame) -> pd.DataFrame:
    """Each kommun figure's change in percentage points since the previous year's figure."""
    kommun = results[(results["level"] == "kommun") & results["pct_positive"].notna()]
    before = previous[(previous["level"] == "kommun") & previous["pct_positive"].notna()]
    joined = kommun.merge(before, on=MOVEMENT_KEYS, suffixes=("", "_before"))
    return joined.assign(
        moved_points=(joined["pct_positive"] - joined["pct_positive_before"]).abs()
    )[[*MOVEMENT_KEYS, "moved_points"]]


@dataclass(frozen=True)
class Check:
    """One frame derived from a staged load and the expectations it must meet, each with its
    severity: a failed critical one blocks publication, a failed warning is only reported."""

    name: str
    frame: pd.DataFrame
    expectations: list[Any]


def checks(
    staged: dict[str, pd.DataFrame],
    *,
    rows_loaded: int,
    input_kommuner: list[str],
    threshold: int,
    previous_results: pd.DataFrame,
    max_change_points: float,
) -> list[Check]:
    """The audit's rules as data: what each derived frame of a load must satisfy."""
    import great_expectations as gx

    gxe: Any = gx.expectations  # its classes are not re-exported for type checkers
    results, counts = staged["fct_results"], staged["fct_response_counts"]
    between = gxe.ExpectColumnValuesToBeBetween
    return [
        Check(
            "staged_respondents",
            staged["respondents"],
            [gxe.ExpectTableRowCountToEqual(value=rows_loaded, severity=CRITICAL)],
        ),
        Check(
            "kommun_cells",
            counts.loc[counts["level"] == "kommun", ["area_code"]],
            [
                gxe.ExpectColumnDistinctValuesToContainSet(
                    column="area_code", value_set=sorted(input_kommuner), severity=CRITICAL
                )
            ],
        ),
        *(
            Check(
                f"{table}_percentages",
                staged[table][list(columns)],
                [
                    between(column=column, min_value=0, max_value=100, severity=CRITICAL)
                    for column in columns
                ],
            )
            for table, columns in PERCENT_COLUMNS.items()
        ),
        Check(
            "unsuppressed_results",
            results.loc[~results["suppressed"].astype(bool), ["n_valid"]],
            [between(column="n_valid", min_value=threshold, severity=CRITICAL)],
        ),
        Check(
            "unsuppressed_response_counts",
            counts.loc[~counts["suppressed"].astype(bool), ["n_respondents"]],
            [between(column="n_respondents", min_value=threshold, severity=CRITICAL)],
        ),
        Check(
            "level_totals",
            level_totals(counts),
            [
                gxe.ExpectColumnPairValuesToBeEqual(
                    column_A="riket", column_B=part, severity=CRITICAL
                )
                for part in ("lan", "kommun")
            ],
        ),
        Check(
            "movements_since_last_year",
            movements(results, previous_results),
            [between(column="moved_points", max_value=max_change_points, severity=WARNING)],
        ),
    ]


def _context(load_id: int, data_docs_dir: Path | None) -> tuple[Any, str | None]:
    """An in-memory GX context, with a Data Docs site in ``data_docs_dir/load-<id>`` if given;
    the site's index page, or None."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
    )

    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    # In memory, and without the throwaway docs site GX would otherwise leave in /tmp per audit.
    context = gx.get_context(
        mode="ephemeral",
        project_config=DataContextConfig(
            store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False)
        ),
    )
    context.variables.progress_bars = {"globally": False}  # type: ignore[assignment]
    context.data_sources.add_pandas(STAGED_SOURCE)
    if data_docs_dir is None:
        return context, None
    docs_root = (data_docs_dir / f"load-{load_id}").resolve()  # GX wants it absolute
    context.add_data_docs_site(
        site_name="audit",
        site_config={
            "class_name": "SiteBuilder",
            "store_backend": {
                "class_name": "TupleFilesystemStoreBackend",
                "base_directory": str(docs_root),
            },
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        },
    )
    return context, str(docs_root / "index.html")


def _validate(context: Any, load_id: int, check: Check) -> list[dict[str, Any]]:
    """Run one check's expectations on its frame: one row per expectation."""
    import great_expectations as gx

    source = context.data_sources.get(STAGED_SOURCE)
    batch = source.add_dataframe_asset(check.name).add_batch_definition_whole_dataframe(check.name)
    suite = context.suites.add(gx.ExpectationSuite(name=f"load-{load_id}-{check.name}"))
    for expectation in check.expectations:
        suite.add_expectation(expectation)
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name=f"load-{load_id}-{check.name}", data=batch, suite=suite)
    )
    # Run directly, not through a Checkpoint: it stores its result for Data Docs all the same,
    # and a Checkpoint per frame (each check has its own frame) only adds overhead.
    validation = definition.run(
        batch_parameters={"dataframe": check.frame}, result_format="SUMMARY"
    )
    rows = []
    for result in validation.results:
        config = result.expectation_config
        kwargs = config.kwargs if config is not None else {}
        rows.append(
            {
                "expectation": f"{check.name}: {config.type if config else '?'}",
                "column_name": kwargs.get("column") or kwargs.get("column_A"),
                "severity": config.severity.value if config else CRITICAL,
                "success": bool(result.success),
                "observed": json.dumps(result.result, default=str, sort_keys=True),
            }
        )
    return rows


def verdict(expectations: pd.DataFrame) -> str:
    """``failed`` if a critical expectation failed, ``warned`` if only warnings did, else
    ``passed``."""
    failed = expectations.loc[~expectations["success"], "severity"]
    return "failed" if (failed == CRITICAL).any() else "warned" if len(failed) else "passed"


def audit_load(
    staged: dict[str, pd.DataFrame],
    *,
    load_id: int,
    rows_loaded: int,
    input_kommuner: list[str],
    threshold: int,
    previous_results: pd.DataFrame,
    max_change_points: float,
    data_docs_dir: Path | None,
) -> AuditOutcome:
    """Validate a load's staged rows; build Data Docs in ``data_docs_dir/load-<id>`` if given.

    ``staged`` holds the staging frames by table name (``warehouse.load.read_staged``),
    ``rows_loaded`` the questionnaires the file report accepted, ``input_kommuner`` every kommun
    found in the input, ``previous_results`` the published results of the year before.
    """
    rules = checks(
        staged,
        rows_loaded=rows_loaded,
        input_kommuner=input_kommuner,
        threshold=threshold,
        previous_results=previous_results,
        max_change_points=max_change_points,
    )
    context, docs_path = _context(load_id, data_docs_dir)
    rows = [row for check in rules for row in _validate(context, load_id, check)]
    if docs_path is not None:  # once for all checks: each build renders every stored result
        context.build_data_docs(site_names=["audit"])
    table = pd.DataFrame(rows).astype({"success": bool})
    return AuditOutcome(status=verdict(table), expectations=table, data_docs_path=docs_path)


audit_task = task(name="audit", cache_policy=NO_CACHE)(audit_load)
