"""The parts a jurisdiction rule is built of: what starts a clock, how long it runs, caps and reliefs,
and the conditions (entity types, thresholds, determinations) under which a rule or clock applies.

:mod:`engine.legal.jurisdictions` assembles them into rules and files.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "ANCHORS",
    "Cap",
    "Clock",
    "Code",
    "Condition",
    "CountKind",
    "Frozen",
    "Ident",
    "Relief",
    "RuleId",
    "Start",
    "Text",
    "Threshold",
]

# The moments an operator records (``incident facts ID --set determined_at=...``) that start clocks.
ANCHORS: dict[str, str] = {
    "aware_at": "awareness (the controller or entity became aware, or knew)",
    "discovered_at": "discovery",
    "determined_at": "determination that a breach occurred",
    "assessed_at": "assessment that the breach is notifiable",
    "suspected_at": "reasonable grounds to suspect a breach",
}
Code = Annotated[str, Field(pattern=r"^[A-Z]{2}(-[A-Z0-9]{1,3})?$")]
RuleId = Annotated[str, Field(pattern=r"^[A-Z]{2}(-[A-Z0-9]+)+$", max_length=48)]
Ident = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=48)]
Text = Annotated[str, Field(min_length=1, max_length=600)]
CountKind = Literal["people", "residents", "residents_per_state"]


class Frozen(BaseModel):
    """Rule data: unknown keys refused (a misspelt key must not pass silently), immutable once read."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Threshold(Frozen):
    """A count breach can decide itself: people affected overall, residents here, or per state."""

    count: CountKind
    at_least: Annotated[int, Field(gt=0)] | None = None
    over: Annotated[int, Field(ge=0)] | None = None
    below: Annotated[int, Field(gt=0)] | None = None  # the counterpart of at_least (HIPAA's yearly log)

    @model_validator(mode="after")
    def _one_bound(self) -> Threshold:
        if sum(bound is not None for bound in (self.at_least, self.over, self.below)) != 1:
            raise ValueError("a threshold gives exactly one of at_least, over or below")
        return self

    def holds(self, count: int) -> bool:
        """Whether ``count`` passes the threshold."""
        if self.at_least is not None:
            return count >= self.at_least
        if self.below is not None:
            return count < self.below
        return count > (self.over or 0)

    def describe(self) -> str:
        """The threshold in words: "residents ≥ 500", "people > 1,000", "people < 500"."""
        if self.at_least is not None:
            return f"{self.count} ≥ {self.at_least:,}"
        if self.below is not None:
            return f"{self.count} < {self.below:,}"
        return f"{self.count} > {self.over:,}"


class Condition(Frozen):
    """When a rule or clock applies: every given part must hold (``any_of``: at least one of them)."""

    entity_types: list[Ident] = []
    any_of: list[Condition] = []
    threshold: Threshold | None = None
    determined: Ident | None = None  # the operator recorded this determination as "yes"
    unless_determined: list[Ident] = []  # void while any of these is recorded as "no"
    unless_yes: list[Ident] = []  # void while any of these is recorded as "yes"
    unless_entity_types: list[Ident] = []

    @model_validator(mode="after")
    def _something(self) -> Condition:
        if not any((self.entity_types, self.any_of, self.threshold, self.determined)) and not (
            self.unless_determined or self.unless_yes or self.unless_entity_types
        ):
            raise ValueError("an empty condition: name entity_types, any_of, threshold or determined")
        return self

    def determinations(self) -> set[str]:
        """Every determination this condition reads."""
        found = set(self.unless_determined) | set(self.unless_yes)
        found |= {self.determined} if self.determined else set()
        for part in self.any_of:
            found |= part.determinations()
        return found


class Start(Frozen):
    """What starts a clock: the first recorded anchor, a determination, or an earlier clock's filing."""

    anchor: list[Ident] = []
    determination: Ident | None = None
    after: Ident | None = None  # another clock of the same rule: starts when that one is filed
    # The period runs from the end of the anchor's calendar year instead of the anchor itself: HIPAA's
    # yearly log of small breaches is due 60 days after the year in which they were discovered ends.
    at_end_of: Literal["year"] | None = None

    @field_validator("anchor", mode="before")
    @classmethod
    def _listify(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @model_validator(mode="after")
    def _one(self) -> Start:
        given = [n for n, v in (("anchor", self.anchor), ("determination", self.determination)) if v]
        given += ["after"] if self.after else []
        if len(given) != 1:
            raise ValueError(f"a clock starts from exactly one of anchor, determination or after ({given})")
        if self.at_end_of and not self.anchor:
            raise ValueError("at_end_of counts from the end of an anchor's year: give anchor too")
        unknown = [a for a in self.anchor if a not in ANCHORS]
        if unknown:
            raise ValueError(f"unknown anchor {', '.join(unknown)}: use one of {', '.join(ANCHORS)}")
        return self

    def describe(self) -> str:
        """What starts the clock, in words."""
        if self.determination:
            return f"determination {self.determination} recorded as yes"
        if self.after:
            return f"filing of the {self.after} clock (an earlier report)"
        moments = " / ".join(ANCHORS[a] for a in self.anchor)
        return f"end of the calendar year of {moments}" if self.at_end_of else moments


class Cap(Frozen):
    """A second limit counted from another anchor; the earlier of the two due times wins."""

    anchor: list[Ident]
    duration: str

    @field_validator("anchor", mode="before")
    @classmethod
    def _listify(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


class Relief(Frozen):
    """A due time on a rest day moves to a set hour of the next working day (DORA's weekend relief).

    The rest days are those of the state the entity is established in (the ``established_in`` fact),
    in that state's own zone; entity types in ``unless_entity_types`` never get the relief.
    """

    by: Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]
    unless_entity_types: list[Ident] = []
    article: Text
    wording: Text
    verified: bool


class Clock(Frozen):
    """One clock of a rule, e.g. NIS2's 24 h early warning.

    Durations and warnings are checked by :func:`engine.clocks.intl.load_rules`, which owns their syntax.
    """

    id: Ident
    label: Text
    starts: Start
    duration: str
    # entity type -> another duration (LGPD doubles the periods of small processing agents)
    duration_for: dict[Ident, str] = {}
    calendar: str = "none"
    cap: Cap | None = None
    relief: Relief | None = None
    kind: Literal["law", "guideline", "target"] = "law"
    wording: Text
    recipient: Text
    when: Condition | None = None
    warnings: list[str] = ["50%", "90%"]
    verified: bool | None = None  # a clock less certain than its rule says so here

    @field_validator("calendar")
    @classmethod
    def _calendar(cls, value: str) -> str:
        if not re.fullmatch(r"none|[A-Z]{2}", value):
            raise ValueError(f"calendar {value!r}: use none or a country code such as US or BR")
        return value
