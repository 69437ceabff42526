"""What a run shows in the Prefect UI: a markdown summary and a table of refused files."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prefect.artifacts import create_markdown_artifact, create_table_artifact

if TYPE_CHECKING:
    from flows.annual import RunSummary


def _table(header: list[str], rows: list[list[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += [
        "| " + " | ".join(str(cell).replace("|", "\\|") for cell in row) + " |" for row in rows
    ]
    return "\n".join(lines)


def summary_markdown(summary: RunSummary) -> str:
    """Files, rows, quarantine by reason, suppressed cells, headline figures and audit reports."""
    outcomes = summary.outcomes
    parts = [
        "# brukardata run",
        _table(
            list(outcomes[0].summary_row()) if outcomes else [],
            [list(o.summary_row().values()) for o in outcomes],
        ),
    ]
    reasons = [
        [o.survey, o.year, reason, count]
        for o in outcomes
        for reason, count in sorted(o.quarantine_reasons.items(), key=lambda item: -item[1])
    ]
    if reasons:
        parts += ["## Quarantine by reason", _table(["survey", "year", "reason", "rows"], reasons)]
    headlines = [f"- {line}" for o in outcomes for line in o.headline]
    if headlines:
        parts += ["## Headline figures", "\n".join(headlines)]
    audits = [
        f"- {o.survey} {o.year}: {o.audit.status}, Data Docs: {o.audit.data_docs_path}"
        for o in outcomes
        if o.audit is not None
    ]
    if audits:
        parts += ["## Audit reports", "\n".join(audits)]
    if summary.problems:
        parts += ["## Problems", "\n".join(f"- {line}" for line in summary.problems)]
    parts.append(f"Warehouse: `{summary.warehouse}`")
    return "\n\n".join(parts)


def publish_run_artifacts(summary: RunSummary) -> None:
    """The run's summary and its refused files, keyed by year so runs of a year line up."""
    year = "-".join(sorted({str(o.year) for o in summary.outcomes})) or "none"
    create_markdown_artifact(
        summary_markdown(summary), key=f"run-summary-{year}", description=f"brukardata {year}"
    )
    refused = [
        {"survey": o.survey, "year": o.year, "file": name, "error": error}
        for o in summary.outcomes
        for name, error in zip(
            o.files.get("source_file", []), o.files.get("error", []), strict=True
        )
        if isinstance(error, str) and error
    ]
    create_table_artifact(
        refused, key=f"refused-files-{year}", description=f"Files refused in {year}"
    )
