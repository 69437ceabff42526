"""The reference catalogue: which survey has units is data in surveys.csv, read by every step."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from schemas.catalogue import Catalogue
from schemas.defaults import DEFAULT_REFERENCE_DIR
from tasks.aggregate import aggregate
from tests.tasks.conftest import Person, survey_frames


def _reference_with_surveys(tmp_path: Path, surveys_csv: str) -> Path:
    reference = tmp_path / "reference"
    shutil.copytree(DEFAULT_REFERENCE_DIR, reference)
    (reference / "surveys.csv").write_text(surveys_csv, encoding="utf-8")
    return reference


def test_fh_alone_has_units(catalogue: Catalogue) -> None:
    assert catalogue.surveys_with_units == {"fh"}


def test_a_survey_given_units_in_surveys_csv_gets_figures_per_unit(tmp_path: Path) -> None:
    reference = _reference_with_surveys(
        tmp_path,
        "survey,name_sv,has_units\n"
        "ifo,Individ- och familjeomsorg,true\n"
        "fh,Funktionshinderområdet,true\n",
    )
    catalogue = Catalogue.load(reference)
    people = [Person("0880", "EKB", "K", {"IFO_KONTAKT": 1}, enhet="A") for _ in range(6)]
    respondents, answers = survey_frames(people, catalogue)

    results = aggregate(respondents, answers, None, survey="ifo", year=2024, catalogue=catalogue)

    assert catalogue.surveys_with_units == {"ifo", "fh"}
    assert "0880-A" in set(results.results.loc[results.results["level"] == "enhet", "area_code"])


def test_has_units_is_true_or_false(tmp_path: Path) -> None:
    reference = _reference_with_surveys(
        tmp_path, "survey,name_sv,has_units\nifo,Individ- och familjeomsorg,ja\n"
    )
    with pytest.raises(ValueError, match=r"surveys\.csv: has_units must be true or false"):
        Catalogue.load(reference)
