"""Codebooks: data files that map an export layout's header and labels onto the canonical form.

A codebook names, for each canonical column, the header spellings a supplier used, how question
columns are named (by question id or by question text) and how gender is written. The header
of an export decides which codebook reads it; a header no codebook explains is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from schemas.catalogue import Catalogue

CODEBOOK_DIR = Path(__file__).with_name("codebooks")
REQUIRED_COLUMNS: tuple[str, ...] = ("kommun_kod", "verksamhet", "svar_id", "kon")
OPTIONAL_COLUMNS: tuple[str, ...] = ("enhet_id",)


def header_key(name: str) -> str:
    """How header cells are compared: trimmed, case-insensitive, inner white space folded."""
    return " ".join(str(name).split()).casefold()


class HeaderError(ValueError):
    """The header cannot be mapped onto the canonical columns."""


@dataclass(frozen=True)
class Codebook:
    name: str
    surveys: tuple[str, ...]
    first_year: int
    last_year: int | None
    columns: dict[str, tuple[str, ...]]
    question_columns: str  # "question_id" or "text_sv": the catalogue column naming them
    gender: dict[str, tuple[str, ...]]

    @classmethod
    def from_file(cls, path: Path) -> Codebook:
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
        return cls(
            name=spec["name"],
            surveys=tuple(spec["surveys"]),
            first_year=int(spec["first_year"]),
            last_year=int(spec["last_year"]) if spec.get("last_year") else None,
            columns={col: tuple(names) for col, names in spec["columns"].items()},
            question_columns=spec["question_columns"],
            gender={
                code: tuple(str(s) for s in spellings) for code, spellings in spec["gender"].items()
            },
        )

    def applies_to(self, survey: str, year: int) -> bool:
        return survey in self.surveys and self.first_year <= year <= (self.last_year or 9999)

    def header_map(self, survey: str, catalogue: Catalogue) -> dict[str, str]:
        """Header key → canonical column name (question ids for question columns)."""
        mapping = {header_key(s): col for col, spellings in self.columns.items() for s in spellings}
        questions = catalogue.questions[catalogue.questions["survey"] == survey]
        for question_id, header in zip(
            questions["question_id"], questions[self.question_columns], strict=True
        ):
            mapping[header_key(header)] = question_id
        return mapping

    @property
    def gender_lookup(self) -> dict[str, str]:
        """Spelling (lower case) → K, M or X."""
        return {s.casefold(): code for code, spellings in self.gender.items() for s in spellings}

    def map_header(self, header: list[str], survey: str, catalogue: Catalogue) -> list[str]:
        """Canonical names for ``header``, or HeaderError naming what does not fit."""
        mapping = self.header_map(survey, catalogue)
        keys = [header_key(h) for h in header]
        unknown = [h for h, k in zip(header, keys, strict=True) if k not in mapping]
        if unknown:
            raise HeaderError(f"unknown column(s) {', '.join(repr(u) for u in unknown)}")
        canonical = [mapping[k] for k in keys]
        repeated = sorted({c for c in canonical if canonical.count(c) > 1})
        if repeated:
            raise HeaderError(f"column(s) given more than once: {', '.join(repeated)}")
        missing = [c for c in REQUIRED_COLUMNS if c not in canonical]
        if missing:
            raise HeaderError(f"missing required column(s) {', '.join(missing)}")
        return canonical


@lru_cache(maxsize=1)
def codebooks(directory: Path = CODEBOOK_DIR) -> tuple[Codebook, ...]:
    """Every codebook shipped, in file-name order."""
    return tuple(Codebook.from_file(p) for p in sorted(directory.glob("*.yaml")))


def match_codebook(
    header: list[str], survey: str, year: int, catalogue: Catalogue
) -> tuple[Codebook, list[str]]:
    """The one codebook that explains ``header``, with the canonical column names.

    Raises HeaderError when none does, naming the closest codebook's complaint, so the user
    sees what is wrong with the header rather than a list of every layout tried.
    """
    complaints: list[str] = []
    for book in codebooks():
        if not book.applies_to(survey, year):
            continue
        try:
            return book, book.map_header(header, survey, catalogue)
        except HeaderError as err:
            complaints.append(str(err))
    if not complaints:
        raise HeaderError(f"no codebook covers {survey} {year}")
    raise HeaderError(min(complaints, key=len))
