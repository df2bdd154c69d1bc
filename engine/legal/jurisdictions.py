"""Breach-notification rules of jurisdictions beyond China, one YAML file each, as data.

Each file ``config/legal/jurisdictions/<CODE>.yaml`` names the places it covers (ISO 3166-1 codes, or
ISO 3166-2 subdivisions such as ``US-CA``), the zone its day periods are counted in, and its rules. A
rule carries its id, article, source and ``verified``; who is notified; the content items the law
lists; its thresholds in words; and its clocks. A clock says what starts it (an anchor such as
``aware_at``, the moment a determination was recorded, or the filing of an earlier clock), how long it
runs (hours, calendar days or working days under a calendar), and whether the figure is the law's
(``law``), a regulator's guideline (``guideline``) or a firm's own target where the law says only
"without undue delay" (``target``). Conditions decide when a rule or clock applies: entity types the
incident declares, count thresholds breach decides itself, and determinations the operator records.

A workspace file of the same name replaces the built-in file as a whole; a new name adds a
jurisdiction. Every file is validated when loaded, naming the file and the problem.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from engine.errors import BadInput, NotFound
from engine.workspace import builtin_root

__all__ = [
    "ANCHORS",
    "Clock",
    "Condition",
    "Jurisdiction",
    "JurisdictionRule",
    "Jurisdictions",
    "Relief",
    "Start",
    "Threshold",
    "builtin_jurisdictions",
    "load_jurisdictions",
    "matches",
]

JURISDICTIONS_DIR = Path("legal") / "jurisdictions"
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


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Threshold(_Data):
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


class Condition(_Data):
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


class Start(_Data):
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


class Cap(_Data):
    """A second limit counted from another anchor; the earlier of the two due times wins."""

    anchor: list[Ident]
    duration: str

    @field_validator("anchor", mode="before")
    @classmethod
    def _listify(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


class Relief(_Data):
    """A due time on a rest day moves to a set hour of the next working day (DORA's weekend relief).

    The rest days are those of the state the entity is established in (the ``established_in`` fact),
    in that state's own zone; entity types in ``unless_entity_types`` never get the relief.
    """

    by: Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]
    unless_entity_types: list[Ident] = []
    article: Text
    wording: Text
    verified: bool


class Clock(_Data):
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


class JurisdictionRule(_Data):
    """One notification duty: its clocks, recipients, content items, thresholds and legal basis."""

    id: RuleId
    title: Text
    article: Text
    source: Text
    verified: bool
    recipients: list[Text]
    content: list[Text] = []
    thresholds: list[Text] = []
    notes: list[Text] = []
    when: Condition | None = None
    documents: list[Ident] = []
    clocks: Annotated[list[Clock], Field(min_length=1)]

    @model_validator(mode="after")
    def _chain(self) -> JurisdictionRule:
        ids = [c.id for c in self.clocks]
        if len(set(ids)) != len(ids):
            raise ValueError(f"rule {self.id}: a clock id is used twice ({', '.join(ids)})")
        for index, clock in enumerate(self.clocks):
            if clock.starts.after and clock.starts.after not in ids[:index]:
                raise ValueError(
                    f"rule {self.id}: clock {clock.id} starts after {clock.starts.after!r}, "
                    "which must be an earlier clock of the same rule"
                )
        return self

    def clock_verified(self, clock: Clock) -> bool:
        """A clock is verified only when its rule is and it does not say otherwise."""
        return self.verified and clock.verified is not False

    def determinations(self) -> set[str]:
        """Every determination the rule's conditions and clocks read."""
        found = self.when.determinations() if self.when else set()
        for clock in self.clocks:
            found |= clock.when.determinations() if clock.when else set()
            found |= {clock.starts.determination} if clock.starts.determination else set()
        return found


class Determination(_Data):
    """A judgement the operator records with a reason; ``aid`` names a structured aid breach offers."""

    id: Ident
    question: Text
    aid: Literal["enisa"] | None = None


def _known_zone(value: str) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r}: use an IANA name such as Europe/Berlin") from None
    return value


class Jurisdiction(_Data):
    """One file: the places it covers, the zone its days are counted in, its determinations and rules."""

    jurisdiction: Code
    name: Text
    covers: Annotated[list[Code], Field(min_length=1)]
    zone: str
    # The zone of a covered place whose clock differs from ``zone`` (e.g. PT, FI against Brussels).
    zones: dict[Code, str] = {}
    authority_language: Text
    determinations: list[Determination] = []
    rules: Annotated[list[JurisdictionRule], Field(min_length=1)]

    @field_validator("zone")
    @classmethod
    def _zone(cls, value: str) -> str:
        return _known_zone(value)

    @field_validator("zones")
    @classmethod
    def _zones(cls, value: dict[str, str]) -> dict[str, str]:
        return {place: _known_zone(zone) for place, zone in value.items()}

    def zone_of(self, place: str) -> str:
        """The zone a covered place keeps its clocks in (its own, else the file's)."""
        return self.zones.get(place.upper(), self.zone)

    @model_validator(mode="after")
    def _determinations_declared(self) -> Jurisdiction:
        declared = {d.id for d in self.determinations}
        for rule in self.rules:
            missing = sorted(rule.determinations() - declared)
            if missing:
                raise ValueError(f"rule {rule.id} reads undeclared determination(s) {', '.join(missing)}")
        return self


def matches(covered: Iterable[str], country: str) -> bool:
    """Whether a place code (``DE``, ``US-CA``) falls under a file covering ``covered``.

    A country-wide code covers its subdivisions (US covers US-CA); a subdivision covers only itself.
    """
    country = country.upper()
    return any(country == code or (len(code) == 2 and country.startswith(code + "-")) for code in covered)


class Jurisdictions(_Data):
    """Every jurisdiction file in force, with the path each was read from."""

    files: dict[str, Jurisdiction]
    paths: dict[str, Path]

    def rules(self, jurisdiction: str | None = None) -> list[tuple[Jurisdiction, JurisdictionRule]]:
        """Each rule with its file, by jurisdiction code (US before US-CA).

        ``jurisdiction`` keeps one file, or a country and its subdivisions.

        :raises NotFound: for a jurisdiction no file names.
        """
        wanted = jurisdiction.upper() if jurisdiction else None
        found = [
            (j, r)
            for j in sorted(self.files.values(), key=lambda item: item.jurisdiction)
            if wanted is None or j.jurisdiction == wanted or matches([wanted], j.jurisdiction)
            for r in j.rules
        ]
        if wanted is not None and not found:
            known = ", ".join(sorted(j.jurisdiction for j in self.files.values()))
            raise NotFound(f"no rules for jurisdiction {jurisdiction!r}: known are {known}")
        return found

    def rule(self, rule_id: str) -> tuple[Jurisdiction, JurisdictionRule]:
        """The rule with this id and its file.

        :raises NotFound: naming the ids that exist.
        """
        for jurisdiction, rule in self.rules():
            if rule.id == rule_id.upper():
                return jurisdiction, rule
        known = ", ".join(r.id for _, r in self.rules())
        raise NotFound(f"unknown rule {rule_id!r}: known rules are {known}")

    def applicable(self, countries: Iterable[str]) -> list[tuple[Jurisdiction, JurisdictionRule]]:
        """The rules of every file covering one of ``countries``."""
        places = list(countries)
        return [(j, r) for j, r in self.rules() if any(matches(j.covers, c) for c in places)]

    def determination(self, determination_id: str) -> Determination:
        """A determination some file declares.

        :raises NotFound: naming the ones that exist.
        """
        for jurisdiction in self.files.values():
            for item in jurisdiction.determinations:
                if item.id == determination_id:
                    return item
        known = sorted({d.id for j in self.files.values() for d in j.determinations})
        raise NotFound(f"unknown determination {determination_id!r}: known are {', '.join(known)}")


def _read(path: Path) -> Jurisdiction:
    from engine.files import load_yaml, read_text

    # Bounded: a workspace file is input like any other (size, aliases, depth).
    raw: Any = load_yaml(read_text(path, what="jurisdiction file"), str(path))
    if not isinstance(raw, dict):
        raise BadInput(f"{path}: a jurisdiction file is a mapping, got {type(raw).__name__}")
    try:
        data = Jurisdiction.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'file'}: {str(e['msg']).removeprefix('Value error, ')}"
            for e in exc.errors()[:5]
        )
        raise BadInput(f"{path}: invalid jurisdiction data: {problems}") from None
    if path.stem.upper() != data.jurisdiction:
        raise BadInput(f"{path}: jurisdiction {data.jurisdiction} belongs in {data.jurisdiction}.yaml")
    return data


def load_jurisdictions(config_dirs: list[Path]) -> Jurisdictions:
    """Every ``legal/jurisdictions/*.yaml`` in the config folders; the first folder holding a name wins.

    :raises BadInput: naming the file and the problem; or two files defining one rule id.
    """
    paths: dict[str, Path] = {}
    for folder in config_dirs:
        directory = Path(folder) / JURISDICTIONS_DIR
        if directory.is_dir():
            for path in sorted(directory.glob("*.yaml")):
                if path.is_file() and not path.is_symlink():
                    paths.setdefault(path.name, path)
    files = {name: _read(path) for name, path in paths.items()}
    seen: dict[str, str] = {}
    for name, data in sorted(files.items()):
        for rule in data.rules:
            if rule.id in seen:
                raise BadInput(f"{paths[name]}: rule {rule.id} is also defined in {seen[rule.id]}")
            seen[rule.id] = name
    return Jurisdictions(files=files, paths=paths)


@lru_cache(maxsize=1)
def builtin_jurisdictions() -> Jurisdictions:
    """The jurisdiction files shipped with the package, loaded once."""
    return load_jurisdictions([builtin_root() / "config"])
