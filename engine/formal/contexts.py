"""The contexts of the formal documents, built from what the incident records and nothing else.

Sources: the incident (facts, grade, anchors, records), its notice content (``breach notices content``),
the workspace's ``[firm]`` and ``[documents]`` settings, the responsible persons, and the tasks a rule's
``sections`` name (their notes, who did them, whether they are done). A fact not recorded stays null and
prints as 待补报 / "to follow"; a required text that is not known is given as those words, never
guessed. The shapes follow ``templates/contexts.yaml`` (the producer checks each context against it).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlmodel import Session

from engine.access import RoleMap
from engine.documents.filters import datetime_local, to_follow
from engine.formal.report_data import (
    Supplied,
    apply_report_data,
    current_report_data,
    initial_report_lateness,
)
from engine.formal.report_items import LATE_ITEM, supplement_block
from engine.formal.responsible import RESPONSIBILITY, RESPONSIBLE, SANCTION, compensation_text, word
from engine.incidents.shape import IncidentShape
from engine.incidents.tables import Task
from engine.notices.contexts import IncidentStats, NoticeContent, base_context, report_block
from engine.notices.firm import FirmSettings
from engine.playbooks.document_rules import SECTIONS, DocumentRule
from engine.store.db import table_of, utcnow

__all__ = ["REGULATOR_KINDS", "Sources", "formal_context", "read_sources"]

REGULATOR_KINDS = ("regulator_initial_report", "regulator_supplementary_report", "regulator_summary_report")


@dataclass(frozen=True)
class Sources:
    """Everything a formal context is built from, read once per step."""

    incident: IncidentShape  # the incident row (IncidentRecord or Incident)
    playbook: Any
    firm: FirmSettings
    settings: Any  # engine.formal.service.DocumentSettings
    content: NoticeContent
    stats: IncidentStats
    tasks: dict[str, dict[str, Any]]  # key -> task row (status, done_at, done_by, note)
    persons: list[dict[str, Any]]
    locale: str
    zone: str
    team: RoleMap  # the workspace's members: documents name who acted from here, never the OS account
    report_data: dict[str, Supplied]  # items supplied with breach incident report-data: they win
    late: dict[str, Any] | None  # the initial report's clock, when it was due before the report (迟报)


def read_sources(
    session: Session,
    workspace: Any,
    incident: IncidentShape,
    playbook: Any,
    firm: FirmSettings,
    settings: Any,
) -> Sources:
    """Everything the contexts are read from, once per step (``settings``: the ``[documents]`` table)."""
    from engine.notices.content import CONTENT
    from engine.notices.passes import recipient_stats

    raw = session.execute(select(CONTENT.c.content).where(CONTENT.c.incident_id == incident.id)).scalar()
    task = table_of(Task).c
    tasks = {
        r["key"]: dict(r)
        for r in session.execute(
            select(task.key, task.status, task.done_at, task.done_by, task.note).where(
                task.incident_id == incident.id
            )
        ).mappings()
    }
    persons = [
        dict(r._mapping)
        for r in session.execute(
            select(RESPONSIBLE).where(RESPONSIBLE.c.incident_id == incident.id).order_by(RESPONSIBLE.c.id)
        )
    ]
    locale = settings.locale or str(workspace.settings.get("workspace", {}).get("locale", "zh-CN"))
    supplied = current_report_data(session, incident.id)
    late = initial_report_lateness(session, incident, playbook, utcnow())
    if late is not None:
        reason = supplied.get(LATE_ITEM[0])
        late["reason"] = None if reason is None else str(reason.value)
    return Sources(
        incident=incident,
        playbook=playbook,
        firm=firm,
        settings=settings,
        content=NoticeContent.parse(raw or {}, "notice content"),
        stats=recipient_stats(session, incident.id),
        tasks=tasks,
        persons=persons,
        locale=locale,
        zone=workspace.timezone,
        team=RoleMap.from_settings(workspace.settings),
        report_data=supplied,
        late=late,
    )


def _zh(locale: str) -> bool:
    """Whether the document is in Chinese (else English)."""
    return locale.startswith("zh")


def _record_lines(src: Sources) -> list[str]:
    """Lines for the orders, waivers and suggestions the incident's records hold, labelled with the
    playbook's words for the step that recorded them (the lists documents number are left out)."""
    numbered = {r.record for r in src.playbook.documents if r.record}
    zh, lines = _zh(src.locale), []
    for t in src.playbook.transitions:
        for effect, name in t.effects:
            if effect not in ("append_record", "open_record") or name in numbered:
                continue
            for entry in src.incident.records.get(name, []):
                parts = []
                for key, zh_word, en_word in (
                    ("ref", "文号", "ref"),
                    ("reason", "理由", "reason"),
                    ("approver", "批准人", "approved by"),
                ):
                    if entry.get(key):
                        parts.append(f"{zh_word if zh else en_word} {entry[key]}")
                if entry.get("due_at"):
                    due = datetime.fromisoformat(str(entry["due_at"]))
                    parts.append(("期限 " if zh else "due ") + _due_text(due, src))
                if entry.get("status"):
                    closed = entry["status"] == "closed"
                    parts.append(("已办结" if closed else "办理中") if zh else ("done" if closed else "open"))
                when = datetime_local(datetime.fromisoformat(str(entry["at"])), src.zone, src.locale)
                detail = ("，".join(parts) if zh else ", ".join(parts)) if parts else ""
                sep = "：" if zh else ": "
                lines.append(f"{when} {t.label(src.locale)}" + (sep + detail if detail else ""))
    return lines


def _due_text(due: datetime, src: Sources) -> str:
    """A due moment as the clock reads it: a date given without a time is due at 24:00 of that day
    (Civil Code Art 203), so it prints as that day's 24:00, never as the midnight that begins it."""
    local = due.astimezone(ZoneInfo(src.zone))
    if (local.hour, local.minute, local.second) != (0, 0, 0):
        return datetime_local(due, src.zone, src.locale)
    shown = datetime_local(due, src.zone, src.locale)  # "2026年12月20日 00:00（北京时间，UTC+08:00）"
    return shown.replace(" 00:00", " 24:00", 1).replace(", 00:00", ", 24:00", 1)


def _incident(src: Sources, generated_at: datetime) -> dict[str, Any]:
    """The shared variables, with the incident block completed from anchors and records."""
    ctx = base_context(
        incident=src.incident,
        firm=src.firm,
        content=src.content,
        locale=src.locale,
        generated_at=generated_at,
        stats=src.stats,
        zone=src.zone,
    )
    block = ctx["incident"]
    apply_report_data(block, src.report_data)
    ended = src.incident.anchors.get("handling_ended_at")
    if block.get("ended_at") is None and ended:
        block["ended_at"] = datetime.fromisoformat(str(ended))
    extra = _record_lines(src)
    if extra:
        sep = "\n" if block.get("other_matters") else ""
        block["other_matters"] = (
            (block.get("other_matters") or "") + sep + ("；" if _zh(src.locale) else "; ").join(extra)
        )
    return ctx


def _person_phrase(p: dict[str, Any], locale: str) -> str:
    """``孙七（信息部系统管理员）`` / ``Sun Qi (IT, administrator)``."""
    if _zh(locale):
        return f"{p['name']}（{p['department']}{p['position']}）"
    return f"{p['name']} ({p['department']}, {p['position']})"


def _responsibility_text(src: Sources) -> str:
    """The finding of responsibility in words, from the persons recorded (to follow when none)."""
    if not src.persons:
        return to_follow(src.locale)
    if _zh(src.locale):
        found = "；".join(
            f"{_person_phrase(p, src.locale)}负有{word(RESPONSIBILITY, p['responsibility'], src.locale)}"
            for p in src.persons
        )
        return f"经调查认定：{found}。"
    found = "; ".join(
        f"{_person_phrase(p, src.locale)} bears {word(RESPONSIBILITY, p['responsibility'], src.locale)} "
        "responsibility"
        for p in src.persons
    )
    return f"The investigation found: {found}."


def _accountability_text(src: Sources) -> str:
    """The sanctions decided, in words (for the summary report)."""
    if not src.persons:
        return to_follow(src.locale)
    parts = []
    for p in src.persons:
        money = compensation_text(p["compensation_fen"], None, src.locale)
        found = word(RESPONSIBILITY, p["responsibility"], src.locale)
        if _zh(src.locale):
            parts.append(
                f"对{_person_phrase(p, src.locale)}认定{found}，"
                f"给予{word(SANCTION, p['sanction'], src.locale)}处分"
                + (f"，并承担经济赔偿{money}" if money else "")
            )
        else:
            parts.append(
                f"{_person_phrase(p, src.locale)}: {word(RESPONSIBILITY, p['responsibility'], src.locale)} "
                f"responsibility, {word(SANCTION, p['sanction'], src.locale)}"
                + (f", compensation of {money}" if money else "")
            )
    return ("；".join(parts) + "。") if _zh(src.locale) else ("; ".join(parts) + ".")


def _who(src: Sources, account: str | None) -> str | None:
    """How a document names the member who acted under ``account``; None when they are not a member
    (the machine's account name is never printed)."""
    member = src.team.member(account or "")
    if member is None:
        return None
    if _zh(src.locale):
        return member.described
    detail = ", ".join(part for part in (member.department, member.position) if part)
    return f"{member.name} ({detail})" if detail else member.name


def _lines(note: str | None) -> list[str]:
    """The non-empty lines of a task's note: each line is one item of a list."""
    return [line.strip() for line in (note or "").splitlines() if line.strip()]


def _sections(rule: DocumentRule | None, kind: str, src: Sources) -> dict[str, list[Any]]:
    """Each section list of ``kind`` filled from the tasks the rule names (empty lists otherwise)."""
    filled: dict[str, list[Any]] = {name: [] for name in SECTIONS[kind]}
    for name, keys in (rule.sections if rule else {}).items():
        for key in keys:
            task = src.tasks.get(key)
            if task is None:  # its state was never entered: nothing to say about it yet
                continue
            done = task["status"] == "done"
            if SECTIONS[kind][name] == "lines":
                filled[name] += _lines(task["note"]) if done else []
                continue
            zh = _zh(src.locale)
            if done:
                day = task["done_at"].astimezone(ZoneInfo(src.zone)).date()
                for text in _lines(task["note"]) or [src.playbook.task(key)[1].label(src.locale)]:
                    status = "已完成" if zh else "done"
                    filled[name].append(
                        {"action": text, "owner": _who(src, task["done_by"]), "due": day, "status": status}
                    )
            else:
                label = src.playbook.task(key)[1].label(src.locale)
                status = "进行中" if zh else "in progress"
                filled[name].append({"action": label, "owner": None, "due": None, "status": status})
    return filled


def _report(kind: str, issue: dict[str, Any], src: Sources) -> dict[str, Any]:
    """The ``report`` block: number and date from the register, addressee and issuer from settings."""
    internal = kind in ("internal_bulletin", "disciplinary_decision")
    if internal:
        addressee = src.settings.bulletin_to if kind == "internal_bulletin" else None
        issuer = src.settings.internal_issuer or src.firm.name
    else:
        addressee, issuer = src.settings.regulator, src.firm.name
    return report_block(
        number=issue["number"],
        day=issue["issued_on"],
        issuer=issuer,
        addressee=addressee or None,
        signatory=src.settings.signatory or src.firm.legal_representative,
        header=src.settings.header or None,
    )


def formal_context(
    kind: str,
    issue: dict[str, Any],
    src: Sources,
    *,
    rule: DocumentRule | None = None,
    person: dict[str, Any] | None = None,
    supplement: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The context of one formal document.

    ``issue`` is its register row (number, issued_on, created_at); ``person`` the responsible person of
    a disciplinary decision; ``supplement`` for a supplementary report: its ``sequence``, the record
    entry (``entry``) and the ``previous`` register row it follows.
    """
    ctx = _incident(src, issue["created_at"])
    ctx["report"] = _report(kind, issue, src)
    sections = _sections(rule, kind, src)
    tbd = to_follow(src.locale)
    incident = ctx["incident"]
    if kind == "regulator_supplementary_report":
        assert supplement is not None
        ctx["supplement"] = supplement_block(incident, supplement, src.locale, src.zone, src.late)
    elif kind == "regulator_initial_report":
        ctx["late"] = src.late
    elif kind == "regulator_summary_report":
        response = list(incident["measures"]) + (
            [incident["measures_effect"]] if incident["measures_effect"] else []
        )
        ctx["summary"] = {
            "causes": incident["cause"] or tbd,
            "response": response,
            "harm": incident["possible_harm"] or tbd,
            "accountability": _accountability_text(src),
            "rectification": sections["rectification"],
            "lessons": sections["lessons"],
        }
    elif kind == "internal_bulletin":
        ctx["bulletin"] = {
            # The notice content's cause: written for the public, so it carries no customer's data.
            "summary": incident["cause"] or tbd,
            "responsibility": _responsibility_text(src),
            "sanctions": [
                {
                    "name": p["name"],
                    "position": f"{p['department']} {p['position']}",
                    "responsibility": p["responsibility"],
                    "sanction": p["sanction"],
                }
                for p in src.persons
            ],
            "requirements": sections["requirements"],
        }
    elif kind == "disciplinary_decision":
        assert person is not None
        ctx["employee"] = {
            "name": person["name"],
            "department": person["department"],
            "position": person["position"],
        }
        days = src.settings.appeal_days
        ctx["draft"] = bool(person.get("draft"))
        ctx["decision"] = {
            "facts": person["facts"] or tbd,
            "rules_broken": list(person["rules"] or []),
            "responsibility": person["responsibility"],
            "sanction": person["sanction"],
            "compensation": compensation_text(
                person["compensation_fen"], person["compensation_basis"], src.locale
            ),
            "appeal_to": src.settings.appeal_to or ctx["report"]["issuer"],
            "appeal_days": days,
            "appeal_deadline": issue["issued_on"] + timedelta(days=days),
        }
    elif kind == "remediation_report":
        ctx["remediation"] = sections
    return ctx
