"""What each document kind is rendered with, built from the incident row, the workspace's ``[firm]``
settings (:mod:`engine.notices.firm`), the incident's notice content and, for a notice, the person row.

The shapes follow ``templates/contexts.yaml`` exactly (``check_context`` holds a context against it).
Facts the firm has not established yet stay null, so they print as 待补报 / "to follow": nothing here
guesses. Identifiers reach a context only masked. Per-person contexts are built for volume: the parts
shared by every notice of a locale are computed once and each person only adds their own block.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from engine.errors import BadInput
from engine.incidents.shape import IncidentShape
from engine.notices.firm import FirmSettings
from engine.notices.people import CATEGORY_LABELS

__all__ = [
    "NoticeContent",
    "NoticeContexts",
    "base_context",
    "category_label",
    "check_context",
    "localize",
    "report_block",
]

# A text a reader sees: one string for every locale, or one per locale ({"zh-CN": ..., "en": ...}).
Text = str | dict[str, str]
Texts = list[str] | dict[str, list[str]]
_GRADES_EN = {
    "none": "below general",
    "general": "general",
    "relatively_major": "relatively major",
    "major": "major",
    "especially_major": "especially major",
}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class IncidentNarrative(_Model):
    """What the firm states about the incident, in the reader's language; anything left out is null."""

    title: Text | None = None
    occurred_at: datetime | None = None
    found_how: Text | None = None
    place: Text | None = None
    type_label: Text | None = None
    system: Text | None = None
    cause: Text | None = None
    possible_harm: Text | None = None
    measures: Texts = Field(default_factory=list)
    measures_effect: Text | None = None
    outlook: Text | None = None
    leads: Text | None = None
    scene_protection: Text | None = None
    next_steps: Texts = Field(default_factory=list)
    support_requested: Text | None = None
    other_matters: Text | None = None
    ended_at: datetime | None = None


class NoticePart(_Model):
    """The per-person notice's own items."""

    remedies: Texts = Field(default_factory=list)
    url: str | None = None
    reference_prefix: str | None = None  # default: the incident id and "-"


class ClientPart(_Model):
    """The letter to client companies: who signs it and what the firm offers (its number comes from
    the firm's register, like every formal document's)."""

    signatory: str | None = None
    notify_on_behalf: bool = True
    supply_list: bool = True
    reply_by: date | None = None
    list_people: int = Field(default=500, ge=0)  # print the names when a company has at most this many


class NoticeContent(_Model):
    """The notice content file of an incident (``breach notices content ID FILE.yaml``)."""

    incident: IncidentNarrative = Field(default_factory=IncidentNarrative)
    notice: NoticePart = Field(default_factory=NoticePart)
    client: ClientPart = Field(default_factory=ClientPart)

    @classmethod
    def parse(cls, raw: Any, origin: str) -> NoticeContent:
        """Validate ``raw``; an aware datetime is required wherever a moment is given.

        :raises BadInput: naming the field and the problem.
        """
        try:
            content = cls.model_validate(raw or {})
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"])
            raise BadInput(f"{origin}: {where}: {err['msg']}") from None
        for name in ("occurred_at", "ended_at"):
            moment = getattr(content.incident, name)
            if moment is not None and moment.utcoffset() is None:
                raise BadInput(f"{origin}: incident.{name} needs a time zone offset, e.g. +08:00")
        return content


def localize(value: Any, locale: str, fallback: str = "zh-CN") -> Any:
    """A text for ``locale``: the value itself, or its entry for the locale, its language, the fallback."""
    if not isinstance(value, dict):
        return value
    language = locale.split("-")[0]
    for key in (locale, *(k for k in value if k.split("-")[0] == language), fallback):
        if key in value:
            return value[key]
    return next(iter(value.values()), None)


def category_label(code: str, locale: str) -> str:
    """The words for a category code in ``locale`` (an unknown code prints as itself)."""
    labels = CATEGORY_LABELS.get(code)
    if labels is None:
        return code
    return labels[0] if locale.startswith("zh") else labels[1]


@dataclass(frozen=True)
class IncidentStats:
    """Counts the notices state, from the facts and the imported recipient list."""

    people: int | None = None
    records: int | None = None
    clients: int | None = None
    category_codes: tuple[str, ...] = ()


def _incident_block(
    incident: IncidentShape, narrative: IncidentNarrative, stats: IncidentStats, locale: str
) -> dict[str, Any]:
    said = {name: localize(getattr(narrative, name), locale) for name in IncidentNarrative.model_fields}
    facts = dict(incident.facts or {})
    assessment = dict(incident.assessment or {})
    grade = assessment.get("grade")
    people = facts.get("people_affected") if facts.get("people_affected") is not None else stats.people
    records = facts.get("records") or {}
    record_total = sum(v for v in records.values() if isinstance(v, int)) or stats.records
    return {
        **said,
        "id": incident.id,
        "title": said["title"] or incident.title,
        "discovered_at": incident.discovered_at,
        "grade_label": (assessment.get("grade_label") if locale.startswith("zh") else _GRADES_EN.get(grade))
        if grade and grade != "none"
        else None,
        "categories": [category_label(code, locale) for code in stats.category_codes],
        "people_count": people,
        "record_count": record_total or None,
        "client_count": stats.clients,
        "measures": list(said["measures"] or []),
        "next_steps": list(said["next_steps"] or []),
    }


def base_context(
    *,
    incident: IncidentShape,
    firm: FirmSettings,
    content: NoticeContent,
    locale: str,
    generated_at: datetime,
    stats: IncidentStats | None = None,
    zone: str = "Asia/Shanghai",
) -> dict[str, Any]:
    """The variables every kind shares (``firm``, ``incident``, ``drill``, ``generated_at``, ...).

    The lead's formal documents add ``report`` (see :func:`report_block`) and their own block.
    """
    return {
        "drill": bool(incident.drill),
        "draft": False,
        "generated_at": generated_at,
        "locale": locale,
        "timezone": zone,
        "firm": firm.model_dump(),
        "incident": _incident_block(incident, content.incident, stats or IncidentStats(), locale),
    }


def report_block(
    *,
    number: str,
    day: date,
    issuer: str,
    addressee: str | None = None,
    signatory: str | None = None,
    header: str | None = None,
) -> dict[str, Any]:
    """The ``report`` block of a formal document or client letter (``header``: the red issuer mark)."""
    return {
        "number": number,
        "date": day,
        "addressee": addressee,
        "issuer": issuer,
        "signatory": signatory,
        "header": header,
    }


def check_context(kind: str, context: dict[str, Any]) -> None:
    """Refuse a context that does not match ``templates/contexts.yaml`` for ``kind``.

    :raises BadInput: listing every missing, null or mistyped variable.
    """
    from engine.documents.templating import context_problems

    problems = context_problems(kind, context)
    if problems:
        raise BadInput(f"the {kind} context does not match templates/contexts.yaml: " + "; ".join(problems))


@dataclass
class NoticeContexts:
    """Builds the context of each per-person notice of one incident (shared parts cached per locale)."""

    incident: IncidentShape
    firm: FirmSettings
    content: NoticeContent
    generated_at: datetime
    stats: IncidentStats
    zone: str = "Asia/Shanghai"
    _base: dict[str, dict[str, Any]] = field(default_factory=dict)
    _remedies: dict[str, list[str]] = field(default_factory=dict)

    def shared(self, locale: str) -> dict[str, Any]:
        """The variables every notice of ``locale`` shares (built once per locale)."""
        shared = self._base.get(locale)
        if shared is None:
            shared = base_context(
                incident=self.incident,
                firm=self.firm,
                content=self.content,
                locale=locale,
                generated_at=self.generated_at,
                stats=self.stats,
                zone=self.zone,
            )
            self._remedies[locale] = list(localize(self.content.notice.remedies, locale) or [])
            self._base[locale] = shared
        return shared

    def notice_remedies(self, locale: str) -> list[str]:
        """The help the firm offers, in ``locale``."""
        self.shared(locale)
        return self._remedies[locale]

    def person_block(self, person: Mapping[str, Any]) -> dict[str, Any]:
        """The ``person`` block of a person row: this person's categories and masked identifiers."""
        locale = person["locale"]
        codes = [c for c in (person["categories"] or "").split(";") if c]
        identifiers = person["identifiers"] or []
        return {
            "id": person["customer_id"],
            "name": person["name"],
            "locale": locale,
            "email": person["email"],
            "employer": person["employer_name"],
            "address": person["address"],
            "categories": [category_label(c, locale) for c in codes],
            "category_codes": codes,
            "identifiers": [
                {"label": category_label(i["code"], locale), "masked": i["masked"]} for i in identifiers
            ],
        }

    def notice_block(self, person: Mapping[str, Any]) -> dict[str, Any]:
        """The ``notice`` block: the reference the person quotes, the help offered, the web page."""
        return {
            "reference": (self.content.notice.reference_prefix or f"{self.incident.id}-")
            + person["customer_id"],
            "remedies": self.notice_remedies(person["locale"]),
            "url": self.content.notice.url,
        }

    def customer(self, person: Mapping[str, Any]) -> dict[str, Any]:
        """The ``customer_notice`` context for one person row (a mapping of the person columns)."""
        return {
            **self.shared(person["locale"]),
            "person": self.person_block(person),
            "notice": self.notice_block(person),
        }

    def client(
        self, company: Mapping[str, Any], employees: list[Mapping[str, Any]], number: str
    ) -> dict[str, Any]:
        """The ``client_notice`` context for one company row, the person rows naming it as employer,
        and the letter's number from the register.

        The company's own categories are what the letter lists; the people counted against each are
        its employees' rows, or, when the file lists none, the company row's ``people_count``.
        """
        locale = company["locale"]
        shared = self.shared(locale)
        part = self.content.client
        counts: dict[str, int] = {}
        for person in employees:
            for code in (person["categories"] or "").split(";"):
                if code:
                    counts[code] = counts.get(code, 0) + 1
        own = [c for c in (company["categories"] or "").split(";") if c]
        codes = list(dict.fromkeys([*own, *counts]))
        listed = len(employees) <= part.list_people
        day = self.generated_at.astimezone(ZoneInfo(self.zone)).date()
        people = len(employees) if employees else company["people_count"]
        return {
            **shared,
            "report": report_block(
                number=number,
                day=day,
                issuer=self.firm.name,
                addressee=company["name"],
                signatory=part.signatory or self.firm.legal_representative,
            ),
            "client": {
                "name": company["name"],
                "contact_name": company["contact_name"],
                "contact_title": company["contact_title"],
                "email": company["email"] or "",
                "address": company["address"],
                "people_count": people,
                "record_count": None,
                "categories": [
                    {
                        "label": category_label(code, locale),
                        "people": counts.get(code) if employees else None,
                    }
                    for code in codes
                ],
                "people": [
                    {
                        "name": p["name"],
                        "department": p["department"],
                        "categories": [
                            category_label(c, locale) for c in (p["categories"] or "").split(";") if c
                        ],
                    }
                    for p in employees
                ]
                if listed
                else [],
            },
            "offer": {
                "notify_on_behalf": part.notify_on_behalf,
                "supply_list": part.supply_list,
                "reply_by": part.reply_by,
            },
        }
