"""Checking one cell of a recipient row: free text, locale, masked identifiers, the country lived in.

Each checker returns the stored value and appends what is wrong to ``problems`` (the row's list), so a
file is reported row by row with every problem at once (see :mod:`engine.notices.people`).
"""

from __future__ import annotations

import re

__all__ = ["cell_text", "free_text", "masked_identifiers", "residence", "template_locale"]

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def cell_text(row: dict[str, str | None], column: str) -> str:
    """The cell's text, stripped; empty for a missing cell."""
    return (row.get(column) or "").strip()


def free_text(
    row: dict[str, str | None], column: str, problems: list[str], *, limit: int = 200
) -> str | None:
    """A free-text cell: empty is None; control characters and overlong values are refused."""
    value = cell_text(row, column)
    if not value:
        return None
    if _CONTROL.search(value):
        problems.append(f"{column} contains control characters")
    elif len(value) > limit:
        problems.append(f"{column} is longer than {limit} characters")
    return value


def template_locale(value: str, locales: tuple[str, ...], default: str) -> str | None:
    """The template locale a cell names (case and ``_`` forgiven; ``en-GB`` reads ``en``), or None."""
    if not value:
        return default
    tag = value.replace("_", "-").lower()
    by_lower = {known.lower(): known for known in locales}
    return (
        by_lower.get(tag)
        or by_lower.get(tag.split("-")[0])
        or next((known for known in locales if known.lower().split("-")[0] == tag.split("-")[0]), None)
    )


def masked_identifiers(row: dict[str, str | None], problems: list[str]) -> list[dict[str, str]]:
    """Masked ID number and bank account, when the file gives them; the raw values go no further."""
    from engine.documents.templating import mask_account, mask_id

    found: list[dict[str, str]] = []
    id_number = cell_text(row, "id_number").upper()
    if id_number:
        if re.fullmatch(r"\d{15}|\d{17}[\dX]", id_number):
            found.append({"code": "id_number", "masked": mask_id(id_number)})
        else:
            problems.append("id_number must be 15 digits, or 17 digits and a digit or X")
    account = re.sub(r"[\s-]", "", cell_text(row, "bank_account"))
    if account:
        if re.fullmatch(r"\d{8,30}", account):
            found.append({"code": "bank_account", "masked": mask_account(account)})
        else:
            problems.append("bank_account must be 8 to 30 digits")
    return found


def residence(row: dict[str, str | None], problems: list[str]) -> str | None:
    """Where the person lives, as an ISO 3166 code (``DE``, ``US-CA``): it decides which clocks apply."""
    from engine.legal.intl_facts import check_place

    value = cell_text(row, "country")
    if not value:
        return None
    try:
        return check_place(value)
    except ValueError as exc:
        problems.append(str(exc))
        return None
