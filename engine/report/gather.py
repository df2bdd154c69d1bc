"""One incident's status, read through the read model into plain values a report or a page lays out.

Everything here is counts, states, times and legal bases: a notice's recipient is never read, only how
many recipients each channel has and how many of them were reached by when. The queries are the same
on SQLite and PostgreSQL except where a time is cut to the minute (each database has its own function).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from engine.playbooks.labels import label_of
from engine.store.readmodel import Reader

__all__ = [
    "ACTIVE",
    "NOTIFIED",
    "ChannelProgress",
    "Clock",
    "Finding",
    "FormalDocument",
    "Phase",
    "StatusReport",
    "TaskLine",
    "gather",
    "utc",
]

ACTIVE = ("pending", "warned", "missed")
"""Deadline statuses of a clock that is still running (missed: overdue and still owed)."""
NOTIFIED = ("sent", "drill_skipped")
"""Delivery statuses that count a recipient as notified (a drill never mails a real person)."""


def utc(value: Any) -> datetime | None:
    """A stored moment as aware UTC (SQLite hands back text, PostgreSQL naive datetimes)."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return datetime.fromisoformat(str(value)).replace(tzinfo=UTC)


def _json(value: Any) -> Any:
    if value is None:
        return {}
    return json.loads(value) if isinstance(value, str | bytes) else value


@dataclass(frozen=True)
class Clock:
    """A legal clock or internal target: when it started, when it is due, and how it ended."""

    id: int
    rule: str
    subject: str
    kind: str  # "law" or "policy"
    label: str
    status: str
    start_at: datetime
    due_at: datetime
    provisional: bool
    basis: dict[str, Any]
    met_at: datetime | None
    met_by: str | None
    lateness_seconds: int | None
    missed_at: datetime | None
    note: str | None

    @property
    def running(self) -> bool:
        """Whether the clock still runs (pending, warned, or missed and still owed)."""
        return self.status in ACTIVE

    def remaining_seconds(self, now: datetime) -> int | None:
        """Seconds until due (negative when overdue) while running; None once settled."""
        return int((self.due_at - now).total_seconds()) if self.running else None

    def overdue(self, now: datetime) -> bool:
        """Running and past due."""
        return self.running and self.due_at <= now

    @property
    def met_on_time(self) -> bool:
        """Met with no lateness."""
        return self.status == "met" and (self.lateness_seconds or 0) <= 0


@dataclass(frozen=True)
class Finding:
    """One finding of the assessment with its legal basis."""

    rule: str
    title: str
    outcome: str
    outcome_label: str
    basis: str
    source: str
    verified: bool
    explain: list[str]


@dataclass(frozen=True)
class TaskLine:
    """A task: who did it and when, or that it is still open."""

    key: str
    label: str
    required: bool
    status: str
    opened_at: datetime | None
    done_at: datetime | None
    done_by: str | None


@dataclass(frozen=True)
class Phase:
    """A state of the playbook with its tasks, in playbook order."""

    state: str
    label: str
    current: bool
    tasks: list[TaskLine]


@dataclass(frozen=True)
class FormalDocument:
    """A formal document issued for the incident: number, kind, format, file name and SHA-256."""

    number: str
    kind: str
    fmt: str
    filename: str
    sha256: str
    issued_on: str
    created_at: datetime | None


@dataclass
class ChannelProgress:
    """How far notification got on one channel: recipients, reached over time, and problems (counts)."""

    channel: str
    recipients: int = 0
    notified: int = 0
    failed: int = 0
    in_doubt: int = 0
    pending: int = 0
    # (minute, how many were reached in that minute), in time order
    timeline: list[tuple[datetime, int]] = field(default_factory=list)


@dataclass
class StatusReport:
    """Everything the status report and the incident page show, read at ``generated_at``."""

    id: str
    title: str
    playbook: str
    playbook_version: int
    state: str
    state_label: str
    drill: bool
    version: int
    opened_at: datetime
    discovered_at: datetime
    closed_at: datetime | None
    grade: str | None
    grade_label: str | None
    findings: list[Finding]
    clocks: list[Clock]
    phases: list[Phase]
    channels: list[ChannelProgress]
    documents: list[FormalDocument]
    audit_head: str
    event_count: int
    generated_at: datetime
    locale: str

    @property
    def nearest(self) -> Clock | None:
        """The running clock due soonest."""
        running = [c for c in self.clocks if c.running]
        return min(running, key=lambda c: c.due_at) if running else None

    @property
    def overdue(self) -> list[Clock]:
        """Running clocks already past due, soonest first."""
        return sorted((c for c in self.clocks if c.overdue(self.generated_at)), key=lambda c: c.due_at)


def _clocks(reader: Reader, incident_id: str, locale: str) -> list[Clock]:
    rows = reader.rows(
        "SELECT id, rule_id, subject, kind, labels, status, start_at, created_at, due_at, provisional, "
        "basis, met_at, met_by, lateness_seconds, missed_at, waiver_reason, void_reason "
        "FROM deadline WHERE incident_id = ? ORDER BY due_at, id",
        (incident_id,),
    )
    clocks = []
    for r in rows:
        labels = _json(r["labels"])
        due = utc(r["due_at"])
        assert due is not None
        clocks.append(
            Clock(
                id=int(r["id"]),
                rule=str(r["rule_id"]),
                subject=str(r["subject"] or ""),
                kind=str(r["kind"]),
                label=str(labels.get(locale) or labels.get("zh-CN") or r["rule_id"]),
                status=str(r["status"]),
                # A clock set by hand has no anchor: it runs from when it was set.
                start_at=utc(r["start_at"]) or utc(r["created_at"]) or due,
                due_at=due,
                provisional=bool(r["provisional"]),
                basis=_json(r["basis"]),
                met_at=utc(r["met_at"]),
                met_by=r["met_by"],
                lateness_seconds=r["lateness_seconds"],
                missed_at=utc(r["missed_at"]),
                note=r["waiver_reason"] or r["void_reason"],
            )
        )
    return clocks


def _phases(reader: Reader, incident_id: str, labels: dict[str, Any], state: str, locale: str) -> list[Phase]:
    rows = reader.rows(
        "SELECT key, state_id, required, status, opened_at, done_at, done_by FROM task "
        "WHERE incident_id = ? ORDER BY id",
        (incident_id,),
    )
    by_state: dict[str, list[TaskLine]] = {}
    for r in rows:
        by_state.setdefault(str(r["state_id"]), []).append(
            TaskLine(
                key=str(r["key"]),
                label=label_of(labels, "tasks", r["key"], locale),
                required=bool(r["required"]),
                status=str(r["status"]),
                opened_at=utc(r["opened_at"]),
                done_at=utc(r["done_at"]),
                done_by=r["done_by"],
            )
        )
    # Playbook order first (the summary keeps it), then any state only the tasks name.
    order = [s for s in labels.get("states", {}) if s in by_state] + [
        s for s in by_state if s not in labels.get("states", {})
    ]
    return [Phase(s, label_of(labels, "states", s, locale), s == state, by_state[s]) for s in order]


def _minute_sql(reader: Reader) -> str:
    """An expression cutting ``sent_at`` to the minute, as text ``YYYY-MM-DD HH:MM``."""
    if reader.mark == "?":
        return "substr(sent_at, 1, 16)"
    return "to_char(sent_at, 'YYYY-MM-DD HH24:MI')"


def _channels(reader: Reader, incident_id: str) -> list[ChannelProgress]:
    """Recipients per channel and deliveries by outcome; the notified ones counted per minute."""
    found: dict[str, ChannelProgress] = {}

    def channel(name: str) -> ChannelProgress:
        return found.setdefault(name, ChannelProgress(name))

    if not reader.has_table("person"):
        return []
    for r in reader.rows(
        "SELECT channel, COUNT(*) AS n FROM person WHERE incident_id = ? GROUP BY channel", (incident_id,)
    ):
        channel(str(r["channel"])).recipients = int(r["n"])
    for r in reader.rows(
        "SELECT channel, status, in_doubt, COUNT(*) AS n FROM delivery WHERE incident_id = ? "
        "GROUP BY channel, status, in_doubt",
        (incident_id,),
    ):
        progress, n, status = channel(str(r["channel"])), int(r["n"]), str(r["status"])
        if status in NOTIFIED:
            progress.notified += n
        elif status == "failed":
            progress.failed += n
        elif status == "in_doubt" or r["in_doubt"]:
            progress.in_doubt += n
        else:
            progress.pending += n
    marks = ", ".join("?" for _ in NOTIFIED)
    minute = _minute_sql(reader)
    for r in reader.rows(
        f"SELECT channel, {minute} AS minute, COUNT(*) AS n FROM delivery "
        f"WHERE incident_id = ? AND status IN ({marks}) AND sent_at IS NOT NULL "
        "GROUP BY channel, minute ORDER BY minute",
        (incident_id, *NOTIFIED),
    ):
        at = datetime.fromisoformat(f"{r['minute']}:00").replace(tzinfo=UTC)
        channel(str(r["channel"])).timeline.append((at, int(r["n"])))
    return sorted(found.values(), key=lambda p: p.channel)


def _documents(reader: Reader, incident_id: str) -> list[FormalDocument]:
    """Formal documents (never a per-person notice) with the number they were issued under."""
    if not reader.has_table("formal_issue"):
        return []
    rows = reader.rows(
        "SELECT f.number, f.issued_on, d.kind, d.fmt, d.path, d.sha256, d.created_at "
        "FROM document d JOIN formal_issue f ON f.incident_id = d.incident_id AND f.kind = d.kind "
        "AND f.subject = d.subject WHERE d.incident_id = ? AND d.person_ref IS NULL ORDER BY f.seq, d.fmt",
        (incident_id,),
    )
    return [
        FormalDocument(
            number=str(r["number"]),
            kind=str(r["kind"]),
            fmt=str(r["fmt"]),
            # The folder is the operator's; the name is what a reader looks for in the bundle.
            filename=str(r["path"]).replace("\\", "/").rsplit("/", 1)[-1],
            sha256=str(r["sha256"]),
            issued_on=str(r["issued_on"])[:10],
            created_at=utc(r["created_at"]),
        )
        for r in rows
    ]


def _findings(assessment: dict[str, Any], locale: str) -> list[Finding]:
    zh = locale.startswith("zh")
    return [
        Finding(
            rule=str(f.get("rule", "")),
            title=str(f.get("title", "")),
            outcome=str(f.get("outcome", "")),
            outcome_label=str(f.get("outcome_label", "")),
            basis=str(f.get("basis", "")),
            source=str(f.get("source", "")),
            verified=bool(f.get("verified")),
            explain=[str(x) for x in (f.get("explain_zh") if zh else f.get("explain")) or []],
        )
        for f in assessment.get("findings", [])
    ]


def gather(reader: Reader, incident_id: str, *, now: datetime, locale: str = "zh-CN") -> StatusReport:
    """The status of one incident at ``now`` (raises IncidentNotFound for an unknown id)."""
    from engine.errors import IncidentNotFound

    found = reader.rows(
        "SELECT i.id, i.title, i.playbook_id, i.playbook_version, i.state, i.version, i.drill, i.opened_at, "
        "i.discovered_at, i.closed_at, i.assessment, i.audit_head, i.event_count, s.summary "
        "FROM incident i LEFT JOIN playbook_snapshot s ON s.sha256 = i.playbook_sha256 WHERE i.id = ?",
        (incident_id,),
    )
    if not found:
        raise IncidentNotFound(incident_id)
    row = found[0]
    labels = _json(row["summary"])
    assessment = _json(row["assessment"])
    opened, discovered = utc(row["opened_at"]), utc(row["discovered_at"])
    assert opened is not None and discovered is not None
    return StatusReport(
        id=str(row["id"]),
        title=str(row["title"]),
        playbook=str(row["playbook_id"]),
        playbook_version=int(row["playbook_version"]),
        state=str(row["state"]),
        state_label=label_of(labels, "states", row["state"], locale),
        drill=bool(row["drill"]),
        version=int(row["version"]),
        opened_at=opened,
        discovered_at=discovered,
        closed_at=utc(row["closed_at"]),
        grade=assessment.get("grade"),
        grade_label=assessment.get("grade_label"),
        findings=_findings(assessment, locale),
        clocks=_clocks(reader, incident_id, locale) if reader.has_table("deadline") else [],
        phases=_phases(reader, incident_id, labels, str(row["state"]), locale),
        channels=_channels(reader, incident_id),
        documents=_documents(reader, incident_id),
        audit_head=str(row["audit_head"] or ""),
        event_count=int(row["event_count"] or 0),
        generated_at=now,
        locale=locale,
    )
