"""Deadline rules of a playbook: which clock a step starts, what stops it, and when it is due.

A rule in a playbook's ``deadlines:`` list (every figure is data, never code)::

    - id: CN-CAC-RPT-4                  # a rule id from docs/law/cn.md, or POLICY-... for an internal target
      kind: law                         # law | policy; policy targets are shown as "internal policy, not law"
      labels: {zh-CN: 初次报告, en: Initial report}
      anchor: [aware_at, discovered_at] # the first anchor of these that is recorded starts the clock
      legal: initial_report             # 1h/2h/4h by facts.operator_type, the minimum grade, article,
                                        # source and verified, from config/legal/reporting.yaml
      # duration: 72h                   # ...or a duration of its own (a policy one can be overridden in
      #                                 # settings.toml [deadlines.policy], by rule id)
      calendar: CN                      # CN | none | a country code; only day-based periods use it
      when: {grade_at_least: relatively_major, operator_type: [cii], flag_clear: notification_waived}
      met_by: [{task: submit_initial_report}, {trigger: report}]
      warnings: ["50%", "90%", "1h before"]
      basis: 第四条                     # article, source and verified: shown with every deadline
      source: 国家网络安全事件报告管理办法
      verified: true

A *per-record* rule starts one deadline per entry of a records list that a transition fills with the
``open_record`` effect, and is met when that entry is closed (``close_record``). Its due time is the
entry's own date (``due_field``; a date given without a time means 24:00 of that day, Civil Code Art
203) or a ``duration`` counted from the entry's ``start_field`` (default ``at``, when it was recorded).
A playbook adds, for example, a procuratorate suggestion whose reply date comes from the document::

    transitions:
      - trigger: procuratorate_suggestion      # internal: true, source: [...]
        inputs: [{name: ref}, {name: due_at, type: datetime}]
        effects: [{open_record: procuratorate_suggestions}]
      - trigger: procuratorate_reply
        inputs: [{name: ref}]
        effects: [{close_record: procuratorate_suggestions}]
    deadlines:
      - id: CN-PROC-SUGGESTION
        kind: law
        record: {list: procuratorate_suggestions, due_field: due_at}
        ...

This module is the schema and its static checks; :mod:`engine.clocks.plan` computes due times.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from engine.clocks.durations import Duration, parse_duration
from engine.errors import BadInput
from engine.legal.facts import Grade, OperatorType

__all__ = [
    "DeadlineRule",
    "MetBy",
    "RecordSpec",
    "RuleWhen",
    "WarningPoint",
    "cross_check",
    "parse_warning",
]

Ident = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]
RuleId = Annotated[str, Field(pattern=r"^[A-Z][A-Z0-9]*(-[A-Z0-9]+)+$", max_length=64)]
LOCALES = ("zh-CN", "en")
POLICY_PREFIX = "POLICY-"
# Calendars whose names are known without importing the holidays package (about 100 ms); any other
# value must look like a country code and is checked against the package when a due time is computed.
_CALENDAR = re.compile(r"^(CN|none|[A-Z]{2,3})$")
_PERCENT = re.compile(r"^(\d{1,2}(?:\.\d+)?)\s*%$")
_LEAD = re.compile(r"^(.+?)\s+before$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WarningPoint(BaseModel):
    """A moment to warn before a deadline: a fraction of its window, or a lead time before it is due."""

    model_config = ConfigDict(frozen=True)

    kind: str  # the outbox key part: "warn:50%", "warn:1h"
    fraction: float | None = None
    lead: Duration | None = None


def parse_warning(text: str) -> WarningPoint:
    """Read "50%", "90 %", "1h before", "30 min before" or "1 day before" into a warning point."""
    raw = str(text).strip()
    percent = _PERCENT.match(raw)
    if percent:
        value = float(percent.group(1))
        if not 0 < value < 100:
            raise ValueError(f"warning {text!r}: a fraction lies strictly between 0% and 100%")
        shown = percent.group(1).rstrip("0").rstrip(".") if "." in percent.group(1) else percent.group(1)
        return WarningPoint(kind=f"warn:{shown}%", fraction=value / 100)
    lead_text = _LEAD.match(raw)
    try:
        lead = parse_duration(lead_text.group(1) if lead_text else raw)
    except BadInput:
        raise ValueError(
            f"warning {text!r}: use a fraction such as 50% or a lead such as '1h before'"
        ) from None
    if lead.unit not in ("minutes", "hours", "days"):
        raise ValueError(f"warning {text!r}: a lead time is in minutes, hours or days")
    short = {"minutes": "m", "hours": "h", "days": "d"}[lead.unit]
    return WarningPoint(kind=f"warn:{lead.amount}{short}", lead=lead)


class MetBy(_Strict):
    """What fulfils a deadline: a task of the playbook being done, a trigger firing, or a filing recorded.

    ``filing`` (``RULE:clock``) is what a jurisdiction clock is met by: the operator records when the
    report went out (``breach incident filed``).
    """

    task: Ident | None = None
    trigger: Ident | None = None
    filing: Annotated[str, Field(pattern=r"^[A-Z][A-Z0-9-]*:[a-z][a-z0-9_]*$", max_length=96)] | None = None

    @model_validator(mode="after")
    def _one(self) -> MetBy:
        if sum(v is not None for v in (self.task, self.trigger, self.filing)) != 1:
            raise ValueError("met_by entries name exactly one of task or trigger")
        return self

    def __str__(self) -> str:
        if self.filing:
            return f"filing:{self.filing}"
        return f"task:{self.task}" if self.task else f"trigger:{self.trigger}"


class RuleWhen(_Strict):
    """Conditions under which a rule applies; every given condition must hold."""

    grade_at_least: Grade | None = None
    operator_type: list[OperatorType] | None = None
    flag_clear: list[Ident] = []
    flag_set: list[Ident] = []

    @field_validator("flag_clear", "flag_set", "operator_type", mode="before")
    @classmethod
    def _listify(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


class RecordSpec(_Strict):
    """A per-record rule: one deadline per entry of ``list``, due at its ``due_field`` or after a duration."""

    list: Ident
    due_field: Ident | None = None
    start_field: Ident = "at"


class DeadlineRule(_Strict):
    """One clock of a playbook (see the module docstring for the YAML)."""

    id: RuleId
    kind: Literal["law", "policy"]
    labels: dict[str, str]
    anchor: list[Ident] = []
    duration: str | None = None
    legal: Literal["initial_report"] | None = None
    calendar: str = "CN"
    when: RuleWhen = RuleWhen()
    met_by: list[MetBy] = []
    warnings: list[WarningPoint] = []
    record: RecordSpec | None = None
    basis: str | None = None
    source: str | None = None
    verified: bool | None = None

    @field_validator("labels")
    @classmethod
    def _labels(cls, value: dict[str, str]) -> dict[str, str]:
        missing = [loc for loc in LOCALES if not str(value.get(loc, "")).strip()]
        if missing:
            raise ValueError(f"needs {', '.join(missing)} (has {', '.join(value) or 'none'})")
        return value

    @field_validator("anchor", "met_by", mode="before")
    @classmethod
    def _listify(cls, value: Any) -> Any:
        return [value] if isinstance(value, str | dict) else value

    @field_validator("warnings", mode="before")
    @classmethod
    def _warnings(cls, value: Any) -> Any:
        if not isinstance(value, list):
            raise ValueError("warnings is a list such as ['50%', '90%', '1h before']")
        points = [v if isinstance(v, WarningPoint) else parse_warning(v) for v in value]
        kinds = [p.kind for p in points]
        if len(set(kinds)) != len(kinds):
            raise ValueError(f"a warning is listed twice: {', '.join(kinds)}")
        return points

    @field_validator("duration")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                parse_duration(value)
            except BadInput as exc:
                raise ValueError(str(exc)) from None
        return value

    @field_validator("calendar")
    @classmethod
    def _calendar(cls, value: str) -> str:
        if not _CALENDAR.match(value):
            raise ValueError(f"unknown calendar {value!r}: use CN, none or a country code such as DE")
        return value

    @model_validator(mode="after")
    def _shape(self) -> DeadlineRule:
        if (self.kind == "policy") != self.id.startswith(POLICY_PREFIX):
            raise ValueError(
                f"rule {self.id}: kind policy goes with an id starting {POLICY_PREFIX} (and only it), "
                "so an internal target is never mistaken for law"
            )
        sources = [n for n, v in (("duration", self.duration), ("legal", self.legal)) if v is not None]
        if self.record is not None and self.record.due_field is not None:
            sources.append("record.due_field")
        if len(sources) != 1:
            raise ValueError(
                f"rule {self.id}: give exactly one of duration, legal or record.due_field "
                f"(got {', '.join(sources) or 'none'})"
            )
        if self.record is not None:
            if self.anchor or self.met_by or self.legal:
                raise ValueError(
                    f"rule {self.id}: a per-record rule starts at its entry and is met when the entry "
                    "is closed: drop anchor, met_by and legal"
                )
        elif not self.anchor or not self.met_by:
            raise ValueError(f"rule {self.id}: needs an anchor and met_by (a task or a trigger)")
        given = [n for n in ("basis", "source", "verified") if getattr(self, n) is not None]
        if self.legal is not None and given:
            raise ValueError(
                f"rule {self.id}: {', '.join(given)} come from the legal data (legal: {self.legal}); "
                "change them in config/legal, not here"
            )
        if self.legal is None and len(given) != 3:
            raise ValueError(f"rule {self.id}: needs basis, source and verified (the legal basis shown)")
        return self

    @property
    def subject_list(self) -> str | None:
        """The records list a per-record rule watches, or None."""
        return self.record.list if self.record else None

    def label(self, locale: str = "zh-CN") -> str:
        """The rule's label in ``locale``, falling back to Chinese."""
        return self.labels.get(locale) or self.labels["zh-CN"]


def cross_check(
    rules: list[DeadlineRule],
    *,
    anchors: list[str],
    triggers: list[str],
    tasks: list[str],
    transitions: list[Any],
) -> None:
    """Check rules against the rest of a playbook; ``ValueError`` names the first thing that is missing.

    ``transitions`` are the playbook's transition specs (``effects`` and ``inputs`` are read).
    """
    ids = [r.id for r in rules]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise ValueError(f"deadline rule ids used twice: {', '.join(dupes)}")
    for rule in rules:
        for name in rule.anchor:
            if name not in anchors:
                raise ValueError(
                    f"deadline {rule.id}: unknown anchor {name!r} (anchors: {', '.join(anchors)})"
                )
        for met in rule.met_by:
            if met.task and met.task not in tasks:
                raise ValueError(f"deadline {rule.id}: met_by names unknown task {met.task!r}")
            if met.trigger and met.trigger not in triggers:
                raise ValueError(f"deadline {rule.id}: met_by names unknown trigger {met.trigger!r}")
        if rule.record is not None:
            _check_record_rule(rule, rule.record, transitions)


def _check_record_rule(rule: DeadlineRule, record: RecordSpec, transitions: list[Any]) -> None:
    """A per-record rule needs a transition opening its entries (with the due date) and one closing them."""
    opening = [t for t in transitions if ("open_record", record.list) in t.effects]
    closing = [t for t in transitions if ("close_record", record.list) in t.effects]
    if not opening or not closing:
        raise ValueError(
            f"deadline {rule.id}: no transition has both {{open_record: {record.list}}} and "
            f"{{close_record: {record.list}}}, so its entries could never start or meet a deadline"
        )
    if record.due_field is not None:
        for t in opening:
            declared = {i.name: i for i in t.inputs}
            item = declared.get(record.due_field)
            if item is None or item.type != "datetime" or not item.required:
                raise ValueError(
                    f"deadline {rule.id}: transition {t.trigger!r} opens {record.list} without a required "
                    f"datetime input {record.due_field!r}"
                )
