"""The facts of an incident that the legal assessment reads, and how an operator sets them.

Facts arrive three ways: ``key=value`` pairs from the command line (:func:`parse_assignments`), a
YAML or JSON file (:func:`load_facts_file`), and the incident's stored facts. Each update is
deep-merged over the current facts and validated as a whole (:func:`merge_facts`), so a bad value
is refused before anything is stored, with one line naming every problem.
"""

from __future__ import annotations

import difflib
import re
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import ErrorDetails

from engine.errors import BadInput
from engine.legal.intl_facts import Determination, Filing, FilingKey, Moment, Place, convert_intl, is_intl_key
from engine.workspace import deep_merge

__all__ = [
    "GRADES",
    "HARMS",
    "OPERATOR_TYPES",
    "RECORD_CATEGORIES",
    "Facts",
    "Records",
    "changed_keys",
    "facts_to_dict",
    "flatten_facts",
    "known_keys",
    "load_facts_file",
    "merge_facts",
    "parse_assignments",
]

# The ids below are part of the JSON contract (facts files, `breach assess --json`); the legal data
# files give them labels and figures and are checked against them when loaded.
Grade = Literal["none", "general", "relatively_major", "major", "especially_major"]
GRADES: tuple[str, ...] = get_args(Grade)  # lowest first
RecordedGrade = Literal["general", "relatively_major", "major", "especially_major"]
OperatorType = Literal["cii", "state_organ", "other"]
OPERATOR_TYPES: tuple[str, ...] = get_args(OperatorType)
Harm = Literal[
    "death_or_serious_injury",
    "mental_disorder",
    "kidnapping",
    "major_economic_loss",
    "bad_social_impact",
    "serious_social_disorder",
]
HARMS: tuple[str, ...] = get_args(Harm)

Count = Annotated[int, Field(ge=0)]
# Money is exact (fen at most) and may come from YAML as int, float or a quoted string.
Amount = Annotated[Decimal, Field(ge=0, decimal_places=2, allow_inf_nan=False, strict=False)]


class Records(BaseModel):
    """Counts of leaked records per category of the criminal interpretations (groups A, B, C)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    whereabouts: Count = 0
    communication_content: Count = 0
    credit: Count = 0
    property: Count = 0
    accommodation: Count = 0
    communication_records: Count = 0
    health: Count = 0
    transaction: Count = 0
    other_safety: Count = 0
    other: Count = 0


RECORD_CATEGORIES: tuple[str, ...] = tuple(Records.model_fields)


class Facts(BaseModel):
    """What is known about an incident, as far as the legal assessment needs it."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    people_affected: Count | None = None
    records: Records = Field(default_factory=Records)
    insider: bool = False
    illegal_gains_rmb: Amount | None = None
    economic_loss_rmb: Amount | None = None
    prior_penalty_within_2y: bool = False
    refused_rectification_order: bool = False
    operator_type: OperatorType = "other"
    harms: list[Harm] = Field(default_factory=list)
    sold_tracks_used_in_crime: bool = False
    knew_buyer_criminal: bool = False
    recorded_grade: RecordedGrade | None = None
    recorded_grade_reason: str | None = None
    # A criminal conviction for this crime at any time (法释〔2017〕10号 Art 5 ¶1 item 9, with the
    # administrative penalty within two years above).
    prior_conviction: bool = False
    # Jurisdiction clocks (engine.legal.intl_facts, config/legal/jurisdictions).
    countries: list[Place] = Field(default_factory=list)
    residents: dict[Place, Count] = Field(default_factory=dict)
    # Where the reporting entity is established: DORA's weekend relief follows that state's holidays.
    established_in: Place | None = None
    entity_types: list[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=48)]] = Field(
        default_factory=list
    )
    aware_at: Moment | None = None
    determined_at: Moment | None = None
    assessed_at: Moment | None = None
    suspected_at: Moment | None = None
    determinations: dict[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")], Determination] = Field(
        default_factory=dict
    )
    filings: dict[FilingKey, Filing] = Field(default_factory=dict)

    @field_validator("harms")
    @classmethod
    def _unique_harms(cls, harms: list[str]) -> list[str]:
        # A harm named twice is the same fact; keep the first mention's order for display.
        return list(dict.fromkeys(harms))

    @model_validator(mode="after")
    def _grade_needs_reason(self) -> Facts:
        # A hand-recorded grade overrides arithmetic, so the audit trail must say why.
        reason = (self.recorded_grade_reason or "").strip()
        if self.recorded_grade is not None and not reason:
            raise ValueError("recorded_grade needs recorded_grade_reason (why the grade is set by hand)")
        if self.recorded_grade is None and reason:
            raise ValueError("recorded_grade_reason is set but recorded_grade is not: set both or clear both")
        return self


_COUNT_KEYS = frozenset({"people_affected", *(f"records.{c}" for c in RECORD_CATEGORIES)})
_AMOUNT_KEYS = frozenset({"illegal_gains_rmb", "economic_loss_rmb"})
_BOOL_KEYS = frozenset(name for name, field in Facts.model_fields.items() if field.annotation is bool)
_LIST_KEYS = frozenset({"harms"})
# Written by their own commands (breach incident determine / filed), with a reason or a reference.
_RECORD_KEYS = frozenset({"determinations", "filings", "residents"})
_TRUE = frozenset({"true", "yes", "1"})
_FALSE = frozenset({"false", "no", "0"})
# Plain ASCII digits, or digits grouped by thousands with commas ("8,000"): Python's int() would
# also take full-width digits and "1_0", which an operator never means as a count.
_WHOLE = re.compile(r"[0-9]+|[0-9]{1,3}(?:,[0-9]{3})+", re.ASCII)
_AMOUNT = re.compile(r"(?:[0-9]+|[0-9]{1,3}(?:,[0-9]{3})+)(?:\.[0-9]{1,2})?", re.ASCII)


def known_keys() -> list[str]:
    """Every settable fact key, dotted, in the model's order."""
    keys: list[str] = []
    for name in Facts.model_fields:
        if name == "records":
            keys.extend(f"records.{c}" for c in RECORD_CATEGORIES)
        elif name == "residents":
            keys.append("residents.<COUNTRY>")
        elif name not in _RECORD_KEYS:
            keys.append(name)
    return keys


def _unknown_key(key: str) -> BadInput:
    close = difflib.get_close_matches(key, known_keys(), n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return BadInput(f"unknown fact '{key}'{hint}: known keys are {', '.join(known_keys())}")


def _convert(key: str, raw: str, zone: str) -> Any:
    """Turn the text of one ``key=value`` into the value the model expects."""
    text = raw.strip()
    if text == "":
        return None  # an empty value clears the key back to its default
    if key in _COUNT_KEYS or key in _AMOUNT_KEYS:
        # More people or yuan than 10**18 is no leak's figure; 5,000 digits would not even convert.
        whole = text.replace(",", "").split(".")[0]
        if len(whole) > 19 or (whole.isdigit() and whole.isascii() and int(whole) > 10**18):
            raise BadInput(f"{key} must be at most 10**18, got a number of {len(whole):,} digits")
    if is_intl_key(key):
        return convert_intl(key, text, zone)
    if key in _COUNT_KEYS:
        if not _WHOLE.fullmatch(text):
            raise BadInput(f"{key} must be a whole number ≥ 0, got {raw!r}")
        return int(text.replace(",", ""))
    if key in _AMOUNT_KEYS:
        if not _AMOUNT.fullmatch(text):
            raise BadInput(f"{key} must be an amount in RMB ≥ 0 with at most 2 decimals, got {raw!r}")
        # JSON-safe like facts_to_dict (the update may go to the audit trail as it is); a float
        # such as 4999.99 reads back exactly, since the model converts floats through their text.
        return _json_value(Decimal(text.replace(",", "")))
    if key in _BOOL_KEYS:
        lowered = text.lower()
        if lowered in _TRUE or lowered in _FALSE:
            return lowered in _TRUE
        raise BadInput(f"{key} must be true/false, yes/no or 1/0, got {raw!r}")
    if key in _LIST_KEYS:
        return [item.strip() for item in text.split(",") if item.strip()]
    return text


def parse_assignments(pairs: list[str], zone: str = "UTC") -> dict[str, Any]:
    """Parse ``key=value`` pairs from the command line into a nested update.

    ``records.property=16000`` nests under ``records`` (``residents.US-CA=600`` under ``residents``);
    ``harms=a,b`` is a list; a time without an offset is read in ``zone``; an empty value
    (``people_affected=``) becomes None, which :func:`merge_facts` reads as "back to the default".
    Names and formats are checked here; ranges and choices are checked by :func:`merge_facts`.

    :raises BadInput: on a pair without ``=``, an unknown key, a key given twice or a bad value.
    """
    update: dict[str, Any] = {}
    seen: set[str] = set()
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise BadInput(f"expected key=value, got {pair!r} (for example people_affected=8000)")
        if key == "records":
            raise BadInput("records is a group: set one category, e.g. records.property=16000")
        if key in _RECORD_KEYS - {"residents"}:
            command = "determine" if key == "determinations" else "filed"
            raise BadInput(f"{key} are recorded with their reason: use breach incident {command}")
        if key not in known_keys() and not key.startswith("residents."):
            raise _unknown_key(key)
        if key in seen:
            raise BadInput(f"fact '{key}' is given twice: give each key once")
        seen.add(key)
        value = _convert(key, raw, zone)
        if key.startswith(("records.", "residents.")):
            group, name = key.split(".", 1)
            update.setdefault(group, {})[name.upper() if group == "residents" else name] = value
        else:
            update[key] = value
    return update


def _problem(error: ErrorDetails) -> str:
    """One error of a validation, in the operator's words: where, what was expected, what came."""
    where = ".".join(str(part) for part in error["loc"] if not isinstance(part, int))
    kind = error["type"]
    got = repr(error.get("input"))
    if len(got) > 40:
        got = got[:37] + "..."
    if kind == "extra_forbidden":
        return str(_unknown_key(where))
    if kind in {"int_type", "int_parsing", "greater_than_equal"} and where in _COUNT_KEYS:
        return f"{where} must be a whole number ≥ 0, got {got}"
    if where in _AMOUNT_KEYS:
        return f"{where} must be an amount in RMB ≥ 0 with at most 2 decimals, got {got}"
    if kind == "bool_type":
        return f"{where} must be true or false, got {got}"
    if kind == "literal_error":
        return f"{where} must be one of {error['ctx']['expected']}, got {got}"
    if kind in {"dict_type", "model_type"}:
        return f"{where or 'facts'} must be a mapping of keys to values, got {got}"
    if kind in {"tuple_type", "list_type"}:
        return f"{where} must be a list, got {got}"
    if kind == "value_error":
        # Raised by the cross-field check, whose message already reads as a sentence.
        return str(error["msg"]).removeprefix("Value error, ")
    return f"{where}: {error['msg']}, got {got}"


def _summary(exc: ValidationError) -> str:
    return "; ".join(dict.fromkeys(_problem(e) for e in exc.errors()))  # dedupe, keep order


def _drop_cleared(data: dict[str, Any]) -> dict[str, Any]:
    """Remove None values so that the model's defaults apply to cleared keys."""
    return {
        key: _drop_cleared(value) if isinstance(value, dict) else value
        for key, value in data.items()
        if value is not None
    }


def merge_facts(current: dict[str, Any], update: dict[str, Any]) -> Facts:
    """Deep-merge ``update`` over ``current`` and validate the result.

    Nested mappings (``records``) merge key by key; lists (``harms``) replace; a None value clears
    the key back to its default.

    :raises BadInput: with one line listing every problem (field path and what was expected).
    """
    merged = _drop_cleared(deep_merge(current, update))
    try:
        return Facts.model_validate(merged)
    except ValidationError as exc:
        raise BadInput(f"invalid facts: {_summary(exc)}") from None


def load_facts_file(path: Path) -> dict[str, Any]:
    """Read a YAML or JSON mapping of facts and check its keys and values.

    Cross-field rules (a recorded grade needs its reason) wait for :func:`merge_facts`, since the
    other half may already be among the incident's facts. An empty file is an empty update.

    :raises BadInput: naming the file, and the line when the YAML or JSON is malformed.
    """
    from engine.files import load_json, load_yaml, read_text

    text = read_text(path, what="facts file")
    data = load_json(text, str(path)) if path.suffix.lower() == ".json" else load_yaml(text, str(path))
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise BadInput(f"{path}: facts must be a mapping of keys to values, got a {type(data).__name__}")
    try:
        Facts.model_validate(_drop_cleared(data))
    except ValidationError as exc:
        # Errors with an empty location come from the cross-field check; merge_facts decides those.
        field_errors = [e for e in exc.errors() if e["loc"]]
        if field_errors:
            problems = "; ".join(dict.fromkeys(_problem(e) for e in field_errors))
            raise BadInput(f"{path}: {problems}") from None
    return data


def _json_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        # Whole yuan stay integers; fen keep their exact decimal reading when read back.
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, list):
        return [_json_value(item) for item in value]
    if isinstance(value, dict):
        return {key: _json_value(item) for key, item in value.items()}
    return value


def facts_to_dict(facts: Facts) -> dict[str, Any]:
    """The facts as a JSON-safe mapping, without optional keys that are not set."""
    result: dict[str, Any] = _json_value(facts.model_dump(exclude_none=True))
    # Facts added after incidents were stored stay absent while unset, so an older incident's next
    # update does not report them as changed.
    return {k: v for k, v in result.items() if k not in _OMIT_WHEN_EMPTY or v}


_OMIT_WHEN_EMPTY = frozenset(
    {"prior_conviction", "countries", "residents", "entity_types", "determinations", "filings"}
)
_MISSING = object()  # tells "key absent" from "key set to None" when diffing


def flatten_facts(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            flat.update(flatten_facts(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def changed_keys(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """Dotted keys whose value differs between two fact mappings, added and removed keys included."""
    old, new = flatten_facts(before), flatten_facts(after)
    return sorted(key for key in old.keys() | new.keys() if old.get(key, _MISSING) != new.get(key, _MISSING))
