"""Codebooks: data files that map an export layout's header and labels onto the canonical form.

A codebook names, for each canonical column, the header spellings a supplier used, how question
columns are named (by question id or by question text), how gender is written, which catalogue
names stand for a kommun or an enkät, and extra spellings of answers. The header of an export
decides which codebook reads it: a header no codebook explains is refused, and so is one that
two codebooks explain, because then the file's meaning would depend on which one was tried first.

Codebooks are read from ``schemas/codebooks/`` (or the folder the ``codebook_dir`` setting names),
so a new supplier layout or year is a new file, never new code.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

import yaml

from schemas.catalogue import Catalogue, remembered
from schemas.defaults import DEFAULT_CODEBOOK_DIR

REQUIRED_COLUMNS: tuple[str, ...] = ("kommun_kod", "verksamhet", "svar_id", "kon")
OPTIONAL_COLUMNS: tuple[str, ...] = ("enhet_id",)
QUESTION_NAMINGS: tuple[str, ...] = ("question_id", "text_sv")
# Cell values a codebook may let a catalogue name stand for: canonical column → (the catalogue
# table, its code column, the text columns allowed as names).
NAMED_VALUES: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "kommun_kod": ("kommuner", "kommun_kod", ("kommun_kod", "kommun_namn")),
    "verksamhet": ("verksamheter", "verksamhet", ("verksamhet", "name_sv")),
}


def header_key(name: str) -> str:
    """How header cells and labels are compared: trimmed, case-insensitive, white space folded."""
    return " ".join(str(name).split()).casefold()


class HeaderError(ValueError):
    """The header cannot be mapped onto the canonical columns; ``misfits`` counts the columns
    at fault, so that the codebook closest to the header is the one whose complaint is shown."""

    def __init__(self, message: str, misfits: int = 1) -> None:
        super().__init__(message)
        self.misfits = misfits


NAMES_LISTED = 5  # header names a message lists before it only counts the rest
NAME_SHOWN = 40  # characters of a header name a message shows


def listed(names: Sequence[str]) -> str:
    """Header names for a one-line message: the first few, each cut short, then a count."""
    shown = [
        repr(name if len(name) <= NAME_SHOWN else name[: NAME_SHOWN - 1] + "…") for name in names
    ]
    rest = len(names) - NAMES_LISTED
    return ", ".join(shown[:NAMES_LISTED]) + (f" and {rest} more" if rest > 0 else "")


class CodebookError(ValueError):
    """A codebook file is not well-formed: a defect of the installation, not of an export."""


def _spellings(values: Any) -> tuple[str, ...]:
    return tuple("" if value is None else str(value) for value in values)


def _yaml_problem(err: yaml.YAMLError) -> str:
    """A YAML error in one line, placed by line and column of the file (counted from 1)."""
    if isinstance(err, yaml.MarkedYAMLError) and err.problem_mark is not None:
        mark = err.problem_mark
        return f"line {mark.line + 1}, column {mark.column + 1}: {err.problem}"
    return " ".join(str(err).split())


@dataclass(frozen=True)
class Codebook:
    name: str
    surveys: tuple[str, ...]
    first_year: int
    last_year: int | None
    columns: dict[str, tuple[str, ...]]
    question_columns: str  # "question_id" or "text_sv": the catalogue column naming them
    gender: dict[str, tuple[str, ...]]
    # canonical column → catalogue columns whose text names a value (see NAMED_VALUES)
    values: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # scale_id → answer code → further spellings beyond the catalogue's code and label
    answers: dict[str, dict[int, tuple[str, ...]]] = field(default_factory=dict)
    description: str = ""
    # look-ups computed once per (survey, catalogue): every file of a run asks for them
    _memo: dict[Hashable, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    @classmethod
    def from_file(cls, path: Path) -> Codebook:
        try:  # safe_load: a tag such as !!python/object is refused, never executed
            spec = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as err:
            raise CodebookError(f"{path.name}: {_yaml_problem(err)}") from err
        try:
            book = cls(
                name=str(spec["name"]),
                description=str(spec.get("description", "")),
                surveys=tuple(spec["surveys"]),
                first_year=int(spec["first_year"]),
                last_year=int(spec["last_year"]) if spec.get("last_year") else None,
                columns={col: _spellings(names) for col, names in spec["columns"].items()},
                question_columns=str(spec["question_columns"]),
                gender={code: _spellings(s) for code, s in spec["gender"].items()},
                values={col: tuple(names) for col, names in (spec.get("values") or {}).items()},
                answers={
                    scale: {int(code): _spellings(s) for code, s in options.items()}
                    for scale, options in (spec.get("answers") or {}).items()
                },
            )
        except (KeyError, TypeError, ValueError) as err:
            raise CodebookError(f"{path.name}: {type(err).__name__}: {err}") from err
        book.check(path.name)
        return book

    def check(self, where: str) -> None:
        """Refuse a codebook that names columns or value sources the pipeline does not know."""
        known = {*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS}
        problems = [f"unknown canonical column {c!r}" for c in self.columns if c not in known]
        problems += [f"no spelling for {c!r}" for c in REQUIRED_COLUMNS if c not in self.columns]
        if self.question_columns not in QUESTION_NAMINGS:
            problems.append(f"question_columns must be one of {', '.join(QUESTION_NAMINGS)}")
        for column, sources in self.values.items():
            allowed = NAMED_VALUES.get(column, ("", "", ()))[2]
            problems += [
                f"values of {column!r} cannot come from {s!r}" for s in sources if s not in allowed
            ]
        if problems:
            raise CodebookError(f"{where}: {'; '.join(problems)}")

    def applies_to(self, survey: str, year: int) -> bool:
        return survey in self.surveys and self.first_year <= year <= (self.last_year or 9999)

    def header_map(self, survey: str, catalogue: Catalogue) -> Mapping[str, str]:
        """Header key → canonical column name (question ids for question columns)."""

        def compute() -> dict[str, str]:
            mapping = {header_key(s): c for c, spellings in self.columns.items() for s in spellings}
            questions = catalogue.questions[catalogue.questions["survey"] == survey]
            headers = [header_key(h) for h in questions[self.question_columns]]
            mapping.update(zip(headers, questions["question_id"], strict=True))
            return mapping

        return remembered(self._memo, ("header_map", survey, catalogue), compute)

    @cached_property
    def gender_lookup(self) -> Mapping[str, str]:
        """Spelling (compared as header_key) → K, M or X."""
        return {header_key(s): code for code, spellings in self.gender.items() for s in spellings}

    def value_lookup(self, column: str, survey: str, catalogue: Catalogue) -> Mapping[str, str]:
        """Spelling (header_key) → code for a column whose values the catalogue names."""

        def compute() -> dict[str, str]:
            table_name, code_column, _ = NAMED_VALUES[column]
            table = getattr(catalogue, table_name)
            if "survey" in table.columns:
                table = table[table["survey"] == survey]
            lookup: dict[str, str] = {}
            for source in self.values.get(column, (code_column,)):
                names = [header_key(n) for n in table[source]]
                lookup.update(zip(names, table[code_column], strict=True))
            return lookup

        return remembered(self._memo, ("value_lookup", column, survey, catalogue), compute)

    def answer_lookup(self, question_id: str, catalogue: Catalogue) -> Mapping[str, str]:
        """Every spelling (header_key) of an answer to ``question_id`` → its code as text."""
        scale_id = catalogue.scale_of[question_id]

        def compute() -> dict[str, str]:
            known = catalogue.answer_lookup(question_id)
            lookup = {header_key(s): str(code) for s, code in known.items()}
            extra = self.answers.get(scale_id, {})
            lookup.update(
                {header_key(s): str(code) for code, spellings in extra.items() for s in spellings}
            )
            return lookup

        return remembered(self._memo, ("answer_lookup", scale_id, catalogue), compute)

    def map_header(self, header: Sequence[str], survey: str, catalogue: Catalogue) -> list[str]:
        """Canonical names for ``header``, or HeaderError naming what does not fit."""
        mapping = self.header_map(survey, catalogue)
        keys = [header_key(h) for h in header]
        unknown = [h for h, k in zip(header, keys, strict=True) if k not in mapping]
        if unknown:
            raise HeaderError(f"unknown column(s) {listed(unknown)}", len(unknown))
        canonical = [mapping[k] for k in keys]
        repeated = sorted({c for c in canonical if canonical.count(c) > 1})
        if repeated:
            raise HeaderError(
                f"column(s) given more than once: {', '.join(repeated)}", len(repeated)
            )
        missing = [c for c in REQUIRED_COLUMNS if c not in canonical]
        if missing:
            raise HeaderError(f"missing required column(s) {', '.join(missing)}", len(missing))
        return canonical


@lru_cache(maxsize=4)
def _codebooks_in(files: tuple[tuple[Path, int], ...]) -> tuple[Codebook, ...]:
    books = tuple(Codebook.from_file(path) for path, _ in files)
    names = [book.name for book in books]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise CodebookError(f"codebook name(s) used twice: {', '.join(repeated)}")
    return books


def codebooks(directory: Path = DEFAULT_CODEBOOK_DIR) -> tuple[Codebook, ...]:
    """Every codebook in ``directory``, in file-name order; re-read when a file is added or
    changed, so a long-running worker sees a codebook installed while it runs."""
    files = sorted(directory.glob("*.yaml"))
    return _codebooks_in(tuple((path, path.stat().st_mtime_ns) for path in files))


def match_codebook(
    header: Sequence[str], survey: str, year: int, catalogue: Catalogue
) -> tuple[Codebook, list[str]]:
    """The one codebook that explains ``header``, with the canonical column names.

    Raises HeaderError when none does, naming the closest codebook's complaint, so the user
    sees what is wrong with the header rather than a list of every layout tried; and when more
    than one does, naming them, since the codebooks themselves then need correcting.
    """
    fits: list[tuple[Codebook, list[str]]] = []
    complaints: list[HeaderError] = []
    for book in codebooks(catalogue.codebook_dir):
        if not book.applies_to(survey, year):
            continue
        try:
            fits.append((book, book.map_header(header, survey, catalogue)))
        except HeaderError as err:
            complaints.append(err)
    if len(fits) > 1:
        names = " and ".join(book.name for book, _ in fits)
        raise HeaderError(f"header fits more than one codebook ({names}): make them distinct")
    if fits:
        return fits[0]
    if not complaints:
        raise HeaderError(f"no codebook covers {survey} {year}")
    raise closest(complaints)


def closest(complaints: Sequence[HeaderError]) -> HeaderError:
    """The complaint about the fewest columns (then the shortest): the layout nearest the file."""
    return min(complaints, key=lambda err: (err.misfits, len(str(err))))
