"""Reading a recipient CSV: rows with the line each starts on, the header's problems, UTF-8 with or
without BOM. Nothing here knows what a valid recipient is (see :mod:`engine.notices.people`)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

from engine.errors import BadInput

__all__ = ["MISMATCH", "Rejected", "decode", "header_problems", "rows"]


class Rejected(BadInput):
    """A file with bad rows: ``problems`` lists each as ``line N: reason``; nothing was written."""

    def __init__(self, message: str, problems: list[str]) -> None:
        super().__init__(message)
        self.problems = problems


MISMATCH = "\x00mismatch"  # marks a row whose cell count differs from the header's


def rows(text: str) -> Iterator[tuple[int, dict[str, str | None]]]:
    """The data rows with the line each starts on (a quoted cell may span lines; blank lines skipped).

    :raises Rejected: at the first line the CSV reader cannot parse (an unclosed quote).
    """
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    names = [cell.strip() for cell in next(reader, [])]
    last = reader.line_num
    try:
        for cells in reader:
            start, last = last + 1, reader.line_num
            if not cells:
                continue
            row: dict[str, str | None] = dict(zip(names, cells, strict=False))
            if len(cells) != len(names):
                row[MISMATCH] = None
            yield start, row
    except csv.Error as exc:
        raise Rejected(
            "the file is not valid CSV; nothing imported", [f"line {last + 1}: not valid CSV ({exc})"]
        ) from None


def header_problems(text: str, required: tuple[str, ...], known: tuple[str, ...]) -> list[str]:
    """Problems of the header row (line 1): empty, missing, unknown or repeated columns."""
    header = next(csv.reader(io.StringIO(text, newline="")), None)
    if not header or not any(cell.strip() for cell in header):
        return ["line 1: the file is empty (expected a header row: " + ", ".join(required) + ", ...)"]
    names = [cell.strip() for cell in header]
    problems = []
    missing = [c for c in required if c not in names]
    if missing:
        problems.append(f"line 1: missing column {', '.join(missing)} (required: {', '.join(required)})")
    unknown = [c for c in names if c not in known]
    if unknown:
        problems.append(f"line 1: unknown column {', '.join(unknown)} (known: {', '.join(known)})")
    duplicated = sorted({c for c in names if names.count(c) > 1})
    if duplicated:
        problems.append(f"line 1: column {', '.join(duplicated)} appears twice")
    return problems


def decode(data: bytes) -> str:
    """The text of ``data``, UTF-8 with or without a BOM.

    :raises Rejected: naming the first line that is not UTF-8.
    """
    try:
        return data.decode("utf-8-sig")  # Excel writes a BOM; other tools do not
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise Rejected(
            "the file is not UTF-8; nothing imported",
            [f"line {line}: bytes that are not UTF-8 (save the file as UTF-8)"],
        ) from None
