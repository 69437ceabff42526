"""The HTML report, rendered by headless Chromium: what a reader sees, as text and as a picture."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import Engine

from schemas.catalogue import Catalogue
from schemas.frames import PROTECTS_OTHER
from tasks.report import write_report
from tests.warehouse.test_press_figures import at
from tests.warehouse.test_statistics_views import cell, publish_load, result, write_facts
from warehouse import tables
from warehouse.db import create_warehouse_engine, upgrade
from warehouse.load import sync_dimensions

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium() -> str:
    """The Chromium binary; missing it fails under CI (it must be installed there)."""
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        message = "chromium is not installed (Debian: apt-get install -y chromium)"
        if os.environ.get("CI", "").lower() in ("1", "true"):
            pytest.fail(message)
        pytest.skip(message)
    return binary


def run_chromium(page: Path, tmp_path: Path, *arguments: str) -> str:
    profile = tmp_path / f"profile-{len(list(tmp_path.iterdir()))}"
    completed = subprocess.run(
        [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *arguments, page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return completed.stdout


@pytest.fixture
def published(tmp_path: Path, catalogue: Catalogue) -> Engine:
    """Kalmar and riket, IFO 2023 and 2024 (ALL, everyone); one question suppressed in Kalmar
    (too few answers), loaded with the suppression threshold 6."""
    engine = create_warehouse_engine(f"duckdb:///{tmp_path / 'brukardata.duckdb'}")
    upgrade(engine)
    sync_dimensions(engine, catalogue)
    figures = {
        # question: (Kalmar 2023, Kalmar 2024, riket 2023, riket 2024) as (positive, valid)
        "IFO_KONTAKT": ((60, 100), (75, 100), (700, 1000), (720, 1000)),
        "IFO_NOJD": ((80, 100), (81, 100), (850, 1000), (860, 1000)),
        "IFO_INFO": ((40, 50), (None, 4), (600, 1000), (610, 1000)),
    }
    for year, column in ((2023, 0), (2024, 1)):
        load_id = publish_load(engine, "ifo", year, 0.05, threshold=6)
        rows = []
        for question, counts in figures.items():
            rows.append(result("kommun", "ALL", "T", question, *counts[column]))
            rows.append(result("riket", "ALL", "T", question, *counts[column + 2]))
        write_facts(engine, tables.fct_results, "ifo", year, load_id=load_id, rows=rows)
    return engine


def test_report_renders_figures_charts_and_suppression(published: Engine, tmp_path: Path) -> None:
    page = write_report(published, 2024, tmp_path / "rapport.html", kommun="0880")
    html = page.read_text(encoding="utf-8")
    assert "<script" not in html
    assert "http://" not in html.replace('"http://www.w3.org', "")  # nothing fetched

    screenshot = tmp_path / "rapport.png"
    run_chromium(page, tmp_path, f"--screenshot={screenshot}", "--window-size=1200,2000")
    assert screenshot.stat().st_size > 10_000  # a rendered page, not an empty canvas
    dom = run_chromium(page, tmp_path, "--dump-dom")
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", dom))

    assert "Brukarundersökningar 2024: Kalmar" in text
    assert "Individ- och familjeomsorg" in text
    # få kontakt: 75/100 = 75 %, riket 720/1000 = 72 %; 2023 60 %: +15 pp, z = 2.26 > 1.96
    # Wilson 95 % for 75/100: 65.70 %–82.45 % → "66–82 %"
    assert "få kontakt 75 % 100 66–82 %" in text
    assert "72 %" in text
    assert "+15 procentenheter (signifikant)" in text
    # helhetssyn 81/100 vs 80/100: +1 pp, not significant
    assert "+1 procentenhet" in text
    assert "+1 procentenhet (signifikant)" not in text
    # tydlig information: 4 answers in Kalmar → suppressed, never a number, with the reason and
    # the threshold of the load that published it
    assert "tydlig information Visas ej (färre än 6 svar) – –" in text
    assert "Uppgifter med färre än 6 giltiga svar visas inte" in text
    # the questions in the questionnaire's order (KONTAKT, INFO, …, NOJD), not by their ids
    table = text[text.index("få kontakt 75 %") :]
    assert table.index("tydlig information Visas ej") < table.index("helhetssyn 81 %")
    assert dom.count("<svg") == 1 + 3  # the bar chart and one trend chart per question
    assert dom.count("<polyline") == 3 + 2  # riket's 3 lines, Kalmar's 2 (INFO: one point)


def test_a_complement_says_it_protects_another_figure(
    published: Engine, tmp_path: Path, catalogue: Catalogue
) -> None:
    # FH 2024: Kalmar's trivsel is hidden to protect another cell; its respondents too few
    load_id = publish_load(published, "fh", 2024, 0.05, threshold=6)
    rows = [
        result("kommun", "ALL", "T", "FH_TRIVS", None, 40, reason=PROTECTS_OTHER),
        result("riket", "ALL", "T", "FH_TRIVS", 900, 1000),
    ]
    write_facts(published, tables.fct_results, "fh", 2024, load_id=load_id, rows=rows)
    html = write_report(published, 2024, tmp_path / "rapport.html", kommun="0880").read_text(
        encoding="utf-8"
    )
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))
    assert "Visas ej (skyddar en annan uppgift som har för få svar) – –" in text
    assert "40" not in text.split("Funktionshinder", 1)[1].split("Jämförelse per fråga")[0]


def test_report_of_a_year_without_figures_says_so(published: Engine, tmp_path: Path) -> None:
    with pytest.raises(LookupError, match="kommun 0180 in 2024"):
        write_report(published, 2024, tmp_path / "rapport.html", kommun="0180")


def test_a_report_of_riket_draws_riket_once(published: Engine, tmp_path: Path) -> None:
    html = write_report(published, 2024, tmp_path / "riket.html").read_text(encoding="utf-8")
    assert "Brukarundersökningar 2024: Riket" in html
    # three questions, each one bar and one trend line of riket (2023 and 2024 published)
    assert html.count("<rect") == 3
    assert html.count("<polyline") == 3


@pytest.fixture
def press_published(tmp_path: Path, catalogue: Catalogue) -> Engine:
    """IFO 2024 in five kommuner of län 08: Kalmar's figures of a press release, one hidden."""
    engine = create_warehouse_engine(f"duckdb:///{tmp_path / 'press.duckdb'}")
    upgrade(engine)
    sync_dimensions(engine, catalogue)
    load_id = publish_load(engine, "ifo", 2024, 0.05)
    # helhetssyn (IFO_NOJD), everyone: Kalmar 181/200 = 90.5 % → "91 procent"; the others
    # 95 %, 80 %, 70 % and hidden: Kalmar is 2nd of the 4 published (4 · 2 > 4: middle half)
    others = {"0860": (95, 100), "0861": (80, 100), "0862": (70, 100), "0821": (None, 3)}
    rows = [
        result("kommun", "ALL", "T", "IFO_NOJD", 181, 200),
        *(
            at(result("kommun", "ALL", "T", "IFO_NOJD", *n), kommun, "08")
            for kommun, n in others.items()
        ),
        # the verksamheter: (60 + 87 + 66) / 3 = 71 %
        result("kommun", "EKB", "T", "IFO_NOJD", 60, 100),
        result("kommun", "MOB", "T", "IFO_NOJD", 87, 100),
        result("kommun", "BOU", "T", "IFO_NOJD", 33, 50),
        # women 90/100, men 80/100: z = 1.98030 > 1.95996, significant
        result("kommun", "ALL", "K", "IFO_NOJD", 90, 100),
        result("kommun", "ALL", "M", "IFO_NOJD", 80, 100),
        # a second question of Kalmar's ALL cell: all answers (181 + 140) / (200 + 200) = 80.25 %
        result("kommun", "ALL", "T", "IFO_INFO", 140, 200),
        # the second question is hidden for men: no total of all their answers
        result("kommun", "ALL", "M", "IFO_INFO", None, 2),
    ]
    write_facts(engine, tables.fct_results, "ifo", 2024, load_id=load_id, rows=rows)
    counts = {"0880": (331, 500), "0860": (400, None), "0861": (120, None), "0862": (None, None)}
    write_facts(
        engine,
        tables.fct_response_counts,
        "ifo",
        2024,
        load_id=load_id,
        rows=[
            at(cell("kommun", "ALL", "T"), kommun, "08")
            | {
                "n_respondents": n,
                "n_distributed": handed_out,
                "n_covered": n if handed_out else None,
            }
            | {"response_rate": 100 * n / handed_out if handed_out else None}
            | {"suppressed": n is None}
            for kommun, (n, handed_out) in counts.items()
        ],
    )
    return engine


def test_the_report_opens_with_the_press_release_figures(
    press_published: Engine, tmp_path: Path
) -> None:
    page = write_report(press_published, 2024, tmp_path / "kalmar.html", kommun="0880")
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page.read_text(encoding="utf-8")))
    press = text[text.index("Nyckeltal för pressmeddelandet") : text.index("Konfidensintervallen")]
    assert (
        "91 procent nöjda (n = 200 giltiga svar). Det är plats 2 av 4 kommuner med publicerat "
        "resultat, i den mittersta hälften." in press
    )
    # 331 respondents of 500 handed out: 66.2 % → 66; 2nd of the 3 published counts
    assert (
        "Antal svarande: 331, en svarsfrekvens på 66 procent. Det är "
        "plats 2 av 3 kommuner med publicerat antal." in press
    )
    assert "I genomsnitt över de 3 verksamheterna: 71 procent nöjda" in press
    # 321 of 400 = 80.25 % → 80
    assert "80 procent av alla svar är positiva (321 av 400 giltiga svar på 2 frågor)." in press
    assert "Kvinnor: 90 procent nöjda (n = 100); män: 80 procent (n = 100)." in press
    assert "Skillnaden är statistiskt säkerställd." in press
    # the threshold and confidence level are the load's
    assert "färre än 5 giltiga svar" in text
    assert "95 % konfidensgrad" in text
