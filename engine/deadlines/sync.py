"""An incident's deadlines in the database: created, recomputed and met inside the flow's transaction.

:class:`DeadlineHook` is registered in :mod:`engine.wiring`, so every flow change (opening, a trigger, a
task done, a fact changed) brings the incident's deadline rows in line with its playbook's rules, in
the same transaction: a refused change leaves them untouched too. The lifecycle of a row::

    pending -> warned -> met | missed | waived      (void: its condition stopped holding, e.g. a waiver)

- created when its rule applies and its anchor is recorded, with ``due_at`` computed once and stored
  with the calendar version used and whether it is provisional;
- recomputed when what it depends on changes (facts, grade, anchors, calendar data, policy settings),
  unless it is met or waived; a new due time is audited with the old one and starts a new alert round;
- met when its task is done, its trigger fires or its record is closed: ``met_at`` and the lateness are
  frozen, even if it was missed before (missed ones stay visible through ``missed_at``);
- waived by an operator with a rationale and a different approver
  (:func:`engine.deadlines.waiver.waive`), audited.

Warnings and escalations are the checker's business (:mod:`engine.deadlines.checker`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlmodel import Session, col, select

from engine.clocks.plan import IncidentView, Plan, PlanContext
from engine.clocks.rules import DeadlineRule
from engine.deadlines.planning import all_plans, deadline_context, rules_not_running, touches_places
from engine.deadlines.tables import Deadline
from engine.errors import BadInput, IncidentNotFound
from engine.incidents.audit import append_event
from engine.incidents.hooks import Step
from engine.incidents.rows import load_tasks, open_early_tasks
from engine.incidents.shape import IncidentShape
from engine.incidents.tables import Event, Incident, Task
from engine.legal.data import LegalData
from engine.playbooks.model import Playbook
from engine.store.db import Store
from engine.workspace import Workspace

__all__ = [
    "ACTIVE",
    "DeadlineHook",
    "LateStart",
    "all_plans",
    "deadline_context",
    "locked_rows",
    "recompute_deadlines",
    "rules_not_running",
    "sync_deadlines",
    "touches_places",
]

ACTIVE = ("pending", "warned", "missed")
SYSTEM_ACTOR = "breach:deadlines"


@dataclass(frozen=True)
class LateStart:
    """A clock that started already due or overdue: e.g. the grade reached 较大 hours after awareness."""

    incident_id: str
    rule: str
    due_at: datetime
    met_by: list[str]

    def advice(self, zone: str) -> str:
        """One line for the operator: which clock, since when it is due, and what to do now."""
        from engine.clocks.durations import format_instant

        todo = []
        for met in self.met_by:
            kind, _, name = met.partition(":")
            if kind == "task":
                todo.append(
                    f"breach task done {self.incident_id} {name} (with --at TIME if it was done earlier)"
                )
            elif kind == "trigger":
                todo.append(f"breach incident advance {self.incident_id} {name}")
        # A task is what can be done now; a trigger may wait for its phase, so it is named only alone.
        tasks = [t for t in todo if t.startswith("breach task")]
        action = " or ".join(tasks or todo) or f"breach deadlines list --incident {self.incident_id}"
        return (
            f"warning: {self.incident_id}: clock {self.rule} started already overdue (due "
            f"{format_instant(self.due_at, zone)}): act now: {action}; "
            "a late report must state why it is late (CN-CAC-RPT-10): --late-reason TEXT, or "
            f"breach incident report-data {self.incident_id} --set late_reason=TEXT"
        )


class DeadlineHook:
    """The ``Hooks.after_change`` callable of a workspace; reads legal data and settings on first use."""

    def __init__(self, workspace: Workspace, legal: Callable[[], LegalData] | None = None) -> None:
        self.workspace = workspace
        self.legal = legal
        self._context: PlanContext | None = None
        self._schema_checked = False
        # Clocks this command started already due or overdue, for the command to say out loud.
        self.late_starts: list[LateStart] = []

    def context(self) -> PlanContext:
        """The planning context, built once per hook (so once per command)."""
        if self._context is None:
            self._context = deadline_context(self.workspace, self.legal)
        return self._context

    def __call__(self, step: Step) -> None:
        """Bring the incident's deadlines in line with its rules (see :func:`sync_deadlines`)."""
        session = step.session
        rules = step.playbook.playbook.deadlines
        facts = step.incident.facts or {}
        if not rules and not facts.get("countries") and not facts.get("residents"):
            return  # no clock can apply: skip loading the legal data
        if not self._schema_checked:
            # A database from before this release would fail mid-transaction with a driver error.
            from sqlalchemy import inspect

            if not inspect(session.connection()).has_table("deadline"):
                raise BadInput("the database has no deadline table yet: run 'breach db upgrade'")
            self._schema_checked = True
        report = sync_deadlines(
            session,
            step.incident,
            rules,
            at=step.at,
            cause=step.cause,
            ctx=self.context(),
            playbook=step.playbook.playbook,
            happened_at=step.occurred_at,
        )
        self.late_starts += [LateStart(step.incident.id, name, due, met) for name, due, met in report.late]


def _first_trigger_at(session: Session, incident_id: str, trigger: str) -> datetime | None:
    """When ``trigger`` first fired on the incident (its real time if entered), from its audit events."""
    row = session.exec(
        select(Event.occurred_at, Event.at)
        .where(Event.incident_id == incident_id, Event.trigger == trigger)
        .order_by(Event.seq)  # type: ignore[arg-type]
        .limit(1)
    ).first()
    return None if row is None else (row[0] or row[1])


def _met(
    session: Session,
    incident: IncidentShape,
    plan: Plan,
    rule: DeadlineRule,
    tasks: dict[str, Task],
    at: datetime,
    cause: str,
    happened_at: datetime | None = None,
) -> tuple[datetime, str] | None:
    """When and by what the deadline was fulfilled, or None while it is not.

    ``happened_at`` is the real time of the step being recorded, when the operator entered one.
    """
    if plan.entry is not None:
        if plan.entry.get("status") == "closed":
            closed = plan.entry.get("closed_at")
            return (datetime.fromisoformat(closed) if closed else at), f"{plan.subject} closed"
        return None
    for met in rule.met_by:
        if met.filing:
            filing = (incident.facts or {}).get("filings", {}).get(met.filing)
            if isinstance(filing, dict) and filing.get("at"):
                return datetime.fromisoformat(str(filing["at"])), str(met)
        elif met.task:
            task = tasks.get(met.task)
            if task is not None and task.status == "done" and task.done_at is not None:
                return task.done_at, str(met)
        elif met.trigger:
            # The flow's own event is not flushed yet, so the cause names it; history covers the rest.
            fired = (
                (happened_at or at)
                if cause == met.trigger
                else _first_trigger_at(session, incident.id, met.trigger)
            )
            if fired is not None:
                return fired, str(met)
    return None


def _next_check(due_at: datetime, warnings: list[tuple[str, datetime]]) -> datetime:
    """The first moment the checker must look: the earliest warning point, else the due time."""
    return min([at for _, at in warnings] + [due_at])


def _fill(row: Deadline, plan: Plan) -> None:
    """Copy a plan's computed values onto a row (status and alert bookkeeping are left alone)."""
    assert plan.due is not None
    row.anchor, row.start_at, row.duration = plan.anchor, plan.start_at, plan.duration
    row.calendar, row.calendar_version = plan.due.calendar, plan.calendar_version
    row.due_at, row.provisional, row.explain = plan.due.due_at, plan.due.provisional, plan.explain
    row.basis = dict(plan.basis)
    row.warnings = [{"kind": kind, "at": when.isoformat()} for kind, when in plan.warnings]
    row.labels = dict(plan.rule.labels)


def _mark_met(row: Deadline, when: datetime, by: str, at: datetime) -> None:
    """Settle a deadline as met at ``when`` by ``by``; it leaves the checker's range for good."""
    row.status, row.met_at, row.met_by, row.next_check_at = "met", when, by, None
    # Lateness is frozen here: it never changes again, whatever happens to the rules later.
    row.lateness_seconds = max(0, int((when - row.due_at).total_seconds()))
    row.updated_at = at


@dataclass
class SyncReport:
    """What one synchronisation did, for tests and callers that report it."""

    created: list[str] = field(default_factory=list)
    recomputed: list[str] = field(default_factory=list)
    met: list[str] = field(default_factory=list)
    voided: list[str] = field(default_factory=list)
    opened: list[str] = field(default_factory=list)
    # Clocks that started already due or overdue (the facts came late): name, due time, what meets it.
    late: list[tuple[str, datetime, list[str]]] = field(default_factory=list)


def locked_rows(session: Session, incident_id: str) -> dict[tuple[str, str], Deadline]:
    """The incident's deadline rows; on PostgreSQL locked, so a checker skips them until we commit."""
    query = select(Deadline).where(Deadline.incident_id == incident_id)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    return {(r.rule_id, r.subject): r for r in session.exec(query)}


def _recompute(
    session: Session, incident: IncidentShape, row: Deadline, plan: Plan, at: datetime, cause: str
) -> bool:
    """Refresh a row that is not met or waived from its plan; True when its due time or status moved."""
    assert plan.due is not None
    old_due, old_status, old_provisional = row.due_at, row.status, row.provisional
    _fill(row, plan)
    moved = row.due_at != old_due
    if not moved and old_status != "void" and row.provisional == old_provisional:
        return False  # e.g. only the calendar data's version changed: nothing the operator must see
    if moved or old_status == "void":
        # A new due time is a new window: its warnings and escalation form a new alert round, and a
        # deadline missed under the old due time is judged again under the new one.
        row.alert_round += int(moved)
        row.status, row.void_reason, row.missed_at = "pending", None, None
        row.acknowledged_at, row.acknowledged_by = None, None  # an acknowledgement was of the old miss
        row.next_check_at = _next_check(plan.due.due_at, plan.warnings)
    row.updated_at = at
    append_event(
        session,
        incident,
        kind="deadline_recomputed",
        actor=SYSTEM_ACTOR,
        at=at,
        from_state=incident.state,
        to_state=incident.state,
        inputs={
            "rule": plan.rule.id,
            "subject": plan.subject,
            "cause": cause,
            "old_due_at": old_due.isoformat(),
            "new_due_at": row.due_at.isoformat(),
            "old_status": old_status,
            "provisional": row.provisional,
        },
    )
    return True


def _create(incident: IncidentShape, plan: Plan, at: datetime) -> Deadline:
    """A new pending row for a plan, due to be looked at from its first warning point."""
    assert plan.due is not None
    row = Deadline(
        incident_id=incident.id,
        rule_id=plan.rule.id,
        subject=plan.subject,
        kind=plan.rule.kind,
        status="pending",
        created_at=at,
        updated_at=at,
        due_at=plan.due.due_at,
        calendar=plan.due.calendar,
    )
    _fill(row, plan)
    row.next_check_at = _next_check(plan.due.due_at, plan.warnings)
    return row


def sync_deadlines(
    session: Session,
    incident: IncidentShape,
    rules: list[DeadlineRule],
    *,
    at: datetime,
    cause: str,
    ctx: PlanContext,
    playbook: Playbook | None = None,
    happened_at: datetime | None = None,
) -> SyncReport:
    """Create, recompute, meet or void the incident's deadlines so they match ``rules`` now.

    Runs inside the caller's transaction; recomputed due times are appended to the audit trail. With
    ``playbook``, a clock that starts opens the tasks that open with it (``opens: {clock: ...}``), as
    open since the moment the clock runs from.
    """
    plans = all_plans(rules, IncidentView.of(incident), ctx)
    rows = locked_rows(session, incident.id)
    tasks = {t.key: t for t in session.exec(select(Task).where(Task.incident_id == incident.id))}
    report = SyncReport()
    started: dict[str, datetime] = {}
    for plan in plans:
        row = rows.get(plan.key)
        name = plan.rule.id + (f" {plan.subject}" if plan.subject else "")
        if not plan.applies:
            # Only a deadline still running lapses; a missed one stays visible as missed.
            if row is not None and row.status in ("pending", "warned"):
                row.status, row.void_reason, row.next_check_at, row.updated_at = (
                    "void",
                    plan.why_not,
                    None,
                    at,
                )
                report.voided.append(name)
            elif row is not None and row.status == "missed" and row.next_check_at is not None:
                row.next_check_at = None  # it stays visible as missed, but no longer repeats its alert
            continue
        if row is None:
            row = _create(incident, plan, at)
            session.add(row)
            report.created.append(name)
            if plan.start_at is not None:
                started.setdefault(plan.rule.id, plan.start_at)
            if (
                row.due_at <= at
                and _met(session, incident, plan, plan.rule, tasks, at, cause, happened_at) is None
            ):
                report.late.append((name, row.due_at, [str(m) for m in plan.rule.met_by]))
        elif row.status in ("met", "waived"):
            continue
        elif _recompute(session, incident, row, plan, at, cause):
            report.recomputed.append(name)
        met = _met(session, incident, plan, plan.rule, tasks, at, cause, happened_at)
        if met is not None and row.status in ACTIVE:
            _mark_met(row, met[0], met[1], at)
            report.met.append(name)
    if playbook is not None and started:
        opened = open_early_tasks(
            session, incident.id, load_tasks(session, incident.id), playbook, clocks=started
        )
        report.opened.extend(opened)
    return report


def recompute_deadlines(
    store: Store, ctx: PlanContext, *, actor: str, incident_ids: list[str] | None = None
) -> dict[str, SyncReport]:
    """Bring deadlines in line with today's data, e.g. after a year's official schedule was added.

    Nothing else changes deadlines between two steps of an incident, yet a new ``CN-<year>.toml``,
    corrected legal data or a new policy target changes what they should be. Every open incident (or
    those named) is synchronised in its own transaction, each moved deadline audited with its old and
    new due time. Named incidents are checked first: one unknown id changes nothing.
    """
    from engine.incidents.repository import flush_or_conflict, get_incident, incident_playbook

    with store.read() as session:
        if incident_ids:
            wanted = list(dict.fromkeys(incident_ids))
            known = set(session.exec(select(Incident.id).where(col(Incident.id).in_(wanted))))
            unknown = [i for i in wanted if i not in known]
            if unknown:
                raise IncidentNotFound(", ".join(unknown))
        else:
            wanted = list(
                session.exec(
                    select(Incident.id).where(col(Incident.closed_at).is_(None)).order_by(Incident.id)
                )
            )
    reports: dict[str, SyncReport] = {}
    for incident_id in wanted:
        with store.write() as session:
            incident = get_incident(session, incident_id)
            at = store.db_now(session)
            playbook = incident_playbook(session, incident).playbook
            reports[incident_id] = sync_deadlines(
                session,
                incident,
                playbook.deadlines,
                at=at,
                cause=f"recompute by {actor}",
                ctx=ctx,
                playbook=playbook,
            )
            flush_or_conflict(session, incident_id)
    return reports
