"""The audit suite passes a sound load and names every rule a broken one breaks."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from tasks.audit import AuditOutcome, audit_load
from tests.warehouse.sample import KOMMUN, build_load

CODES = [1, 1, 2, 3, 1, 9]  # 5 valid answers, 3 positive: 60 % for gender T
KON = ["K", "K", "K", "M", "M", "X"]


def _staged() -> dict[str, pd.DataFrame]:
    load = build_load(CODES, KON)
    return {
        "respondents": load.respondents,
        "fct_results": load.results,
        "fct_answer_distribution": load.distribution,
        "fct_response_counts": load.response_counts,
    }


def _audit(staged: dict[str, pd.DataFrame], previous: pd.DataFrame, docs: Path) -> AuditOutcome:
    return audit_load(
        staged,
        load_id=7,
        rows_loaded=len(CODES),
        input_kommuner=[KOMMUN],
        threshold=5,
        previous_results=previous,
        max_change_points=10,
        data_docs_dir=docs,
    )


def test_a_sound_load_passes_and_its_data_docs_are_written(tmp_path: Path) -> None:
    staged = _staged()
    outcome = _audit(staged, staged["fct_results"], tmp_path)
    assert outcome.status == "passed", outcome.problems
    assert outcome.expectations["success"].all()
    assert outcome.data_docs_path == str(tmp_path / "load-7" / "index.html")
    # one page per checked frame, each linked from the index
    checks = {name.split(":")[0] for name in outcome.expectations["expectation"]}
    pages = {page.parts[-4] for page in (tmp_path / "load-7" / "validations").rglob("*.html")}
    assert pages == {f"load-7-{check}" for check in checks}
    index = Path(outcome.data_docs_path).read_text(encoding="utf-8")
    assert all(page in index for page in pages)


def test_a_broken_load_fails_and_a_big_move_only_warns(tmp_path: Path) -> None:
    staged = _staged()
    previous = staged["fct_results"].copy()
    previous["pct_positive"] = previous["pct_positive"] - 25  # 60 % now, 35 % last year
    broken = staged | {
        "respondents": staged["respondents"].iloc[1:],  # one questionnaire lost
        # over 100 %, and the K and M cells (3 and 2 valid answers) shown under the threshold
        "fct_results": staged["fct_results"].assign(
            pct_positive=120.0,
            suppressed=False,
            n_valid=staged["fct_results"]["n_valid"].fillna(3),
        ),
    }
    outcome = _audit(broken, previous, tmp_path)
    assert outcome.status == "failed"
    failed = outcome.expectations[~outcome.expectations["success"]]
    assert set(failed["expectation"]) == {
        "staged_respondents: expect_table_row_count_to_equal",
        "fct_results_percentages: expect_column_values_to_be_between",
        "unsuppressed_results: expect_column_values_to_be_between",
        "movements_since_last_year: expect_column_values_to_be_between",
    }
    assert set(failed.query("expectation.str.startswith('movements')")["severity"]) == {"warning"}
    assert Path(str(outcome.data_docs_path)).is_file()

    warned = _audit(staged, previous, tmp_path)
    assert warned.status == "warned"
