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

from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from engine.errors import BadInput, NotFound
from engine.legal.rule_parts import (
    ANCHORS,
    Clock,
    Code,
    Condition,
    Frozen,
    Ident,
    Relief,
    RuleId,
    Start,
    Text,
    Threshold,
)
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


class JurisdictionRule(Frozen):
    """One notification duty: its clocks, recipients, content items, thresholds and legal basis."""

    id: RuleId
    title: Text
    article: Text
    source: Text
    verified: bool
    recipients: list[Text]
    content: list[Text] = Field(default_factory=list)
    thresholds: list[Text] = Field(default_factory=list)
    notes: list[Text] = Field(default_factory=list)
    when: Condition | None = None
    documents: list[Ident] = Field(default_factory=list)
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


class Determination(Frozen):
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


class Jurisdiction(Frozen):
    """One file: the places it covers, the zone its days are counted in, its determinations and rules."""

    jurisdiction: Code
    name: Text
    covers: Annotated[list[Code], Field(min_length=1)]
    zone: str
    # The zone of a covered place whose clock differs from ``zone`` (e.g. PT, FI against Brussels).
    zones: dict[Code, str] = Field(default_factory=dict)
    authority_language: Text
    determinations: list[Determination] = Field(default_factory=list)
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


class Jurisdictions(Frozen):
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
