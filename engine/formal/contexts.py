"""The contexts of the formal documents, built from what the incident records and nothing else.

Sources: the incident (facts, grade, anchors, records), its notice content (``breach notices content``),
the workspace's ``[firm]`` and ``[documents]`` settings, the responsible persons, and the tasks a rule's
``sections`` name (their notes, who did them, whether they are done). A fact not recorded stays null and
prints as 待补报 / "to follow"; a required text that is not known is given as those words, never
guessed. The shapes follow ``templates/contexts.yaml`` (the producer checks each context against it).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlmodel import Session

from engine.access import RoleMap
from engine.documents.filters import datetime_local, to_follow
from engine.formal.responsible import RESPONSIBILITY, RESPONSIBLE, SANCTION, compensation_text, word
from engine.incidents.shape import IncidentShape
from engine.incidents.tables import Task
from engine.notices.contexts import FirmSettings, IncidentStats, NoticeContent, base_context, report_block
from engine.playbooks.document_rules import SECTIONS, DocumentRule
from engine.store.db import table_of

__all__ = ["REGULATOR_KINDS", "Sources", "formal_context", "read_sources", "stated_items"]

REGULATOR_KINDS = ("regulator_initial_report", "regulator_supplementary_report", "regulator_summary_report")
# The CN-CAC-RPT-7 items a regulator report states, with the words a supplement names them by. A
# supplement compares what the last report stated with what is known now, item by item.
ITEMS: tuple[tuple[str, str, str], ...] = (
    ("system", "（一）涉事系统或设施", "(1) System or facility involved"),
    ("occurred_at", "（二）发生时间", "(2) When it happened"),
    ("found_how", "（二）发现方式", "(2) How it was found"),
    ("place", "（二）发生或发现地点", "(2) Place"),
    ("type_label", "（二）事件类型", "(2) Type of incident"),
    ("grade_label", "（二）事件级别", "(2) Grade"),
    ("categories", "（二）涉及的个人信息类别", "(2) Categories of personal information"),
    ("people_count", "（二）涉及人数", "(2) People affected"),
    ("record_count", "（二）涉及记录数", "(2) Records involved"),
    ("client_count", "（二）涉及客户单位数", "(2) Client companies involved"),
    ("possible_harm", "（二）影响和危害", "(2) Impact and harm"),
    ("measures", "（二）已采取的措施", "(2) Measures taken"),
    ("measures_effect", "（二）措施效果", "(2) Effect of the measures"),
    ("outlook", "（三）发展趋势及可能的进一步影响", "(3) Outlook and possible further harm"),
    ("cause", "（四）事件原因", "(4) Cause"),
    ("leads", "（五）追查溯源线索", "(5) Leads for tracing"),
    ("next_steps", "（六）拟进一步采取的措施", "(6) Further measures planned"),
    ("support_requested", "（六）请求支持事项", "(6) Support requested"),
    ("scene_protection", "（七）现场保护情况", "(7) Protection of the scene"),
    ("other_matters", "（八）其他需要报告的事项", "(8) Other matters"),
)
# Items whose absence means "none", not "to follow": they are never listed as pending.
_NONE_WHEN_EMPTY = ("support_requested", "other_matters")


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
    )


def _zh(locale: str) -> bool:
    """Whether the document is in Chinese (else English)."""
    return locale.startswith("zh")


def _item_text(value: Any, locale: str, zone: str) -> str | None:
    """What an item says, as one text (a moment in the reader's zone, lists joined); None when unknown."""
    if value is None or value == [] or value == "":
        return None
    if isinstance(value, datetime):
        return datetime_local(value, zone, locale)
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, list):
        return ("；" if _zh(locale) else "; ").join(str(v) for v in value)
    return str(value)


def stated_items(incident_block: dict[str, Any], locale: str, zone: str) -> dict[str, str | None]:
    """What a regulator report states for each CN-CAC-RPT-7 item (None: to follow)."""
    return {key: _item_text(incident_block.get(key), locale, zone) for key, _zh_label, _en in ITEMS}


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
        ctx["supplement"] = _supplement(incident, supplement, src)
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


def _supplement(incident: dict[str, Any], supplement: dict[str, Any], src: Sources) -> dict[str, Any]:
    """What changed since the report this supplement follows, and what is still to follow."""
    previous, entry = supplement["previous"], supplement["entry"]
    before = previous["stated"] or {}
    now = stated_items(incident, src.locale, src.zone)
    zh = _zh(src.locale)
    changes = []
    for key, zh_label, en_label in ITEMS:
        if now[key] is not None and now[key] != before.get(key):
            changes.append({"item": zh_label if zh else en_label, "before": before.get(key), "now": now[key]})
    if entry.get("reason"):  # the operator's own statement of what this supplement reports
        changes.append(
            {"item": "补充说明" if zh else "Supplementary statement", "before": None, "now": entry["reason"]}
        )
    pending = [
        zh_label if zh else en_label
        for key, zh_label, en_label in ITEMS
        if now[key] is None and key not in _NONE_WHEN_EMPTY
    ]
    previous_day: date = previous["issued_on"]
    return {
        "sequence": supplement["sequence"],
        "previous_number": previous["number"],
        "previous_date": previous_day,
        "changes": changes,
        "pending": pending,
    }
