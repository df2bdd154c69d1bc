"""Whether a jurisdiction rule or clock applies to an incident, and why not: the conditions in words.

Pure functions over an incident's facts (``countries``, ``residents``, ``entity_types``,
``people_affected``, ``determinations``): entity types it declares, count thresholds breach decides
itself (an unknown count is undecidable, never "not met"), and the operator's recorded determinations.
"""

from __future__ import annotations

from typing import Any

from engine.legal.jurisdictions import Condition, matches

__all__ = ["describe_condition", "incident_countries", "why_not"]


def describe_condition(condition: Condition) -> list[str]:
    """A condition in words, one line per part."""
    lines = [f"entity type {', '.join(condition.entity_types)}"] if condition.entity_types else []
    lines += [f"{condition.threshold.describe()}"] if condition.threshold else []
    lines += [f"determination {condition.determined} = yes"] if condition.determined else []
    lines += [f"not while {d} = no" for d in condition.unless_determined]
    lines += [f"not while {d} = yes" for d in condition.unless_yes]
    if condition.any_of:
        parts = [" and ".join(describe_condition(part)) for part in condition.any_of]
        lines.append("any of: " + "; ".join(parts))
    return lines


def incident_countries(facts: dict[str, Any]) -> list[str]:
    """The places an incident touches: ``countries`` as given, then every place with residents counted."""
    places = [str(c).upper() for c in facts.get("countries") or []]
    residents = facts.get("residents") or {}
    places += [str(code).upper() for code, count in residents.items() if count]
    return list(dict.fromkeys(places))


def _count(kind: str, covers: list[str], facts: dict[str, Any]) -> tuple[int | None, str]:
    """The count a threshold reads, and where it came from."""
    residents: dict[str, int] = {str(k).upper(): int(v) for k, v in (facts.get("residents") or {}).items()}
    if kind == "people":
        if facts.get("people_affected") is not None:
            return int(facts["people_affected"]), "people_affected"
        if residents:
            return sum(residents.values()), "residents of every place imported"
        return None, "people_affected not recorded"
    here = {code: n for code, n in residents.items() if matches(covers, code)}
    if kind == "residents":
        return (sum(here.values()), "residents here") if here else (None, "no residents recorded here")
    states = {code: n for code, n in here.items() if "-" in code}
    if not states:
        return None, "no residents per state recorded"
    top = max(states, key=lambda code: states[code])
    return states[top], f"residents of {top}, the most of any state"


def _determination(facts: dict[str, Any], name: str) -> bool | None:
    entry = (facts.get("determinations") or {}).get(name)
    return bool(entry.get("value")) if isinstance(entry, dict) and "value" in entry else None


def why_not(condition: Condition, covers: list[str], facts: dict[str, Any]) -> str | None:
    """Why ``condition`` does not hold for the incident's facts, or None when it holds."""
    declared = list(facts.get("entity_types") or [])
    missing = [e for e in condition.entity_types if e not in declared]
    if missing:
        return f"entity_types lacks {', '.join(missing)}"
    for name in condition.unless_determined:
        if _determination(facts, name) is False:
            return f"{name} determined no"
    for name in condition.unless_yes:
        if _determination(facts, name) is True:
            return f"{name} determined yes"
    if condition.determined and _determination(facts, condition.determined) is not True:
        recorded = _determination(facts, condition.determined)
        return f"{condition.determined} {'determined no' if recorded is False else 'not determined yet'}"
    if condition.threshold is not None:
        t = condition.threshold
        count, origin = _count(t.count, covers, facts)
        if count is None:
            return f"{t.describe()} cannot be decided: {origin}"
        if not t.holds(count):
            return f"{t.describe()} not met ({origin}: {count:,})"
    if condition.any_of:
        reasons = [why_not(part, covers, facts) for part in condition.any_of]
        if all(reasons):
            return "none of: " + "; ".join(str(r) for r in reasons)
    return None
