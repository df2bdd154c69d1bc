"""Persistence: the SQLModel tables and how sessions are opened on SQLite and PostgreSQL.

Writes that belong together run in one ``Store.write()`` transaction. On SQLite that transaction begins
``IMMEDIATE`` so two writers queue on the busy timeout instead of failing half-way; reads stay deferred.
Every time is stored as UTC; the columns hand back aware datetimes on both databases.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime, Index, Integer, UniqueConstraint, create_engine, event, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlalchemy.ext.mutable import MutableDict
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, Session, SQLModel

from engine.errors import BadInput

__all__ = [
    "Deadline",
    "Escalation",
    "EscalationDelivery",
    "Event",
    "Incident",
    "PlaybookSnapshot",
    "Store",
    "Task",
    "UTCDateTime",
    "utcnow",
]

JSONType = JSON().with_variant(JSONB(), "postgresql")


def utcnow() -> datetime:
    """The current moment, aware, in UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Stores naive UTC, returns aware UTC: the same on SQLite (text) and PostgreSQL (timestamp)."""

    impl = DateTime(timezone=False)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


def _json_column() -> Any:
    return Field(default_factory=dict, sa_column=Column(MutableDict.as_mutable(JSONType), nullable=False))


def _time_column(nullable: bool = False, index: bool = False) -> Any:
    return Field(default=None, sa_column=Column(UTCDateTime(), nullable=nullable, index=index))


class PlaybookSnapshot(SQLModel, table=True):
    """The exact playbook text an incident was opened with, so later edits never change its rules."""

    __tablename__ = "playbook_snapshot"

    sha256: str = Field(primary_key=True, max_length=64)
    playbook_id: str = Field(index=True, max_length=64)
    version: int
    origin: str
    source: str
    # Titles and labels as JSON, so read commands can show them without parsing YAML.
    summary: dict[str, Any] = _json_column()
    stored_at: datetime = _time_column()


# The ORM checks and bumps this column on every UPDATE of an incident (``UPDATE ... WHERE version = ?``),
# so two operators acting on the same version cannot both win.
_incident_version = Column("version", Integer, nullable=False, default=1)


class Incident(SQLModel, table=True):
    """One leak being handled; ``version`` rises with every accepted change (optimistic locking)."""

    __tablename__ = "incident"
    __mapper_args__ = {"version_id_col": _incident_version}

    id: str = Field(primary_key=True, max_length=32)
    title: str
    playbook_id: str = Field(max_length=64)
    playbook_version: int
    playbook_sha256: str = Field(foreign_key="playbook_snapshot.sha256", max_length=64)
    state: str = Field(max_length=64, index=True)
    version: int = Field(default=1, sa_column=_incident_version)
    drill: bool = False
    opened_by: str
    opened_at: datetime = _time_column()
    discovered_at: datetime = _time_column()
    closed_at: datetime | None = _time_column(nullable=True)
    facts: dict[str, Any] = _json_column()
    anchors: dict[str, Any] = _json_column()
    flags: dict[str, Any] = _json_column()
    records: dict[str, Any] = _json_column()
    assessment: dict[str, Any] = _json_column()
    event_count: int = 0
    audit_head: str = Field(default="", max_length=64)


class Task(SQLModel, table=True):
    """A task of a state; entering the state (again) opens it."""

    __tablename__ = "task"
    __table_args__ = (UniqueConstraint("incident_id", "key"),)

    id: int | None = Field(default=None, primary_key=True)
    incident_id: str = Field(foreign_key="incident.id", index=True, max_length=32)
    key: str = Field(max_length=64)
    state_id: str = Field(max_length=64)
    required: bool = True
    status: str = Field(default="open", max_length=16)
    opened_at: datetime = _time_column()
    done_at: datetime | None = _time_column(nullable=True)
    done_by: str | None = None
    note: str | None = None


class Event(SQLModel, table=True):
    """An audit event; ``hash`` chains it to the previous event of the same incident."""

    __tablename__ = "event"
    __table_args__ = (
        UniqueConstraint("incident_id", "seq"),
        Index("ix_event_incident_seq", "incident_id", "seq"),
    )

    id: int | None = Field(default=None, primary_key=True)
    incident_id: str = Field(foreign_key="incident.id", max_length=32)
    seq: int
    at: datetime = _time_column()
    actor: str
    kind: str = Field(max_length=32)
    trigger: str | None = None
    from_state: str | None = None
    to_state: str | None = None
    reason: str | None = None
    inputs: dict[str, Any] = _json_column()
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)


class IncidentCounter(SQLModel, table=True):
    """The last incident number used per year, for readable ids such as INC-2026-0001."""

    __tablename__ = "incident_counter"

    year: int = Field(primary_key=True)
    last: int = 0


def _sqlite_engine(url: str, begin: str, synchronous: str) -> Engine:
    """An engine whose transactions start with ``BEGIN <begin>``; WAL and a busy timeout let several
    processes share one file.

    pysqlite's own transaction handling is switched off so that we choose the mode: IMMEDIATE for
    writers (the write lock is taken up front, so two writers queue instead of failing mid-way), DEFERRED
    for readers. The BEGIN is issued from the dialect rather than from a "begin" event listener: any
    connection listener makes SQLAlchemy dispatch events around every statement, which costs about a
    tenth of a simple write.
    """
    engine = create_engine(url, connect_args={"timeout": 30})

    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.close()

    statement = f"BEGIN {begin}"
    engine.dialect.do_begin = lambda dbapi_conn: dbapi_conn.execute(statement)  # type: ignore[method-assign]
    return engine


class Store:
    """An open database: an engine plus transaction helpers."""

    def __init__(self, url: str, *, echo: bool = False, sqlite_synchronous: str = "NORMAL") -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        if sqlite_synchronous.upper() not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise BadInput(f"unknown SQLite synchronous mode {sqlite_synchronous!r}")
        try:
            if self.is_sqlite:
                # Readers and writers get an engine each (their own small pool) so that each has its
                # BEGIN; an in-memory database exists once per connection, so there both write.
                in_memory = url in ("sqlite://", "sqlite:///:memory:")
                sync = sqlite_synchronous.upper()
                self._write_engine = _sqlite_engine(url, "IMMEDIATE", sync)
                self.engine = self._write_engine if in_memory else _sqlite_engine(url, "DEFERRED", sync)
                self.engine.echo = self._write_engine.echo = echo
            else:
                self.engine = self._write_engine = create_engine(url, echo=echo, pool_pre_ping=True)
        except Exception as exc:  # a malformed URL is the operator's input
            raise BadInput(f"cannot use database URL: {exc}") from None

    def create_all(self) -> None:
        """Create the tables directly (tests and benchmarks; workspaces use migrations)."""
        SQLModel.metadata.create_all(self.engine)

    @contextmanager
    def write(self) -> Iterator[Session]:
        """One transaction for writes that belong together: committed on success, rolled back on error."""
        with Session(self._write_engine, expire_on_commit=False) as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only session."""
        with Session(self.engine, expire_on_commit=False) as session:
            yield session

    def db_now(self, session: Session) -> datetime:
        """The database's clock (several checker machines agree on it), as aware UTC."""
        if self.is_sqlite:
            raw = session.exec(text("SELECT strftime('%Y-%m-%d %H:%M:%f', 'now')")).one()[0]  # type: ignore[call-overload]
            return datetime.fromisoformat(raw).replace(tzinfo=UTC)
        value = session.exec(text("SELECT now()")).one()[0]  # type: ignore[call-overload]
        return value.astimezone(UTC)

    def check_ready(self) -> None:
        """Fail with a clear line when the database is unreachable or not initialised."""
        try:
            with self.engine.connect() as conn:
                conn.exec_driver_sql("SELECT 1 FROM incident LIMIT 1")
        except (OperationalError, ProgrammingError) as exc:
            detail = str(exc.orig).splitlines()[0] if exc.orig else str(exc)
            raise BadInput(
                f"database not ready ({detail}): run 'breach init' or 'breach db upgrade' first"
            ) from None

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()
        if self._write_engine is not self.engine:
            self._write_engine.dispose()


# --- Deadlines and escalations (issue 3) -------------------------------------------------------------


def _json_list_column() -> Any:
    # Lists are always replaced whole (never changed in place), so a plain JSON column suffices. It needs
    # its own type instance: MutableDict.as_mutable(JSONType) claims every column of that instance.
    column = Column(JSON().with_variant(JSONB(), "postgresql"), nullable=False)
    return Field(default_factory=list, sa_column=column)


# Every ORM update of a deadline checks and bumps this column, as for incidents; the checker's own
# compare-and-set UPDATEs bump it too, so a hook and a checker never overwrite each other's change.
_deadline_version = Column("version", Integer, nullable=False, default=1)


class Deadline(SQLModel, table=True):
    """A legal clock or internal target of an incident, with its due time computed once and stored.

    ``next_check_at`` is the next moment the checker must look at the row (a warning point or the due
    time); it is NULL once the deadline is met, waived or void, so the scan reads one index range.
    ``version`` rises with every change: the checker claims a row with ``UPDATE ... WHERE version=?``.
    """

    __tablename__ = "deadline"
    __table_args__ = (
        # Also serves every lookup by incident (its first column), so incident_id needs no index of its own.
        UniqueConstraint("incident_id", "rule_id", "subject"),
        # Missed deadlines leave the next_check_at range, so "what is overdue" finds them here. Partial:
        # inserting and updating the (many) pending rows never touches it.
        Index(
            "ix_deadline_missed",
            "due_at",
            sqlite_where=text("status = 'missed'"),
            postgresql_where=text("status = 'missed'"),
        ),
    )
    __mapper_args__ = {"version_id_col": _deadline_version}

    id: int | None = Field(default=None, primary_key=True)
    incident_id: str = Field(foreign_key="incident.id", max_length=32)
    rule_id: str = Field(max_length=64)
    subject: str = Field(default="", max_length=96)
    kind: str = Field(max_length=16)
    labels: dict[str, Any] = _json_column()
    anchor: str | None = Field(default=None, max_length=96)
    start_at: datetime | None = _time_column(nullable=True)
    duration: str | None = Field(default=None, max_length=64)
    calendar: str = Field(max_length=32)
    calendar_version: str = Field(default="", max_length=400)
    due_at: datetime = _time_column()
    provisional: bool = False
    explain: list[str] = _json_list_column()
    basis: dict[str, Any] = _json_column()
    warnings: list[dict[str, Any]] = _json_list_column()
    status: str = Field(default="pending", max_length=16)
    version: int = Field(default=1, sa_column=_deadline_version)
    alert_round: int = 1
    next_check_at: datetime | None = _time_column(nullable=True, index=True)
    created_at: datetime = _time_column()
    updated_at: datetime = _time_column()
    met_at: datetime | None = _time_column(nullable=True)
    met_by: str | None = Field(default=None, max_length=96)
    lateness_seconds: int | None = None
    missed_at: datetime | None = _time_column(nullable=True)
    waived_at: datetime | None = _time_column(nullable=True)
    waived_by: str | None = None
    waiver_reason: str | None = None
    waiver_approver: str | None = None
    void_reason: str | None = None


class Escalation(SQLModel, table=True):
    """The outbox: one warning or escalation of a deadline, at most one per (deadline, kind) ever.

    ``payload`` is rendered once when the row is written, so every delivery (and any re-send) carries
    the same content.
    """

    __tablename__ = "escalation"
    __table_args__ = (UniqueConstraint("deadline_id", "kind"),)

    id: int | None = Field(default=None, primary_key=True)
    deadline_id: int = Field(foreign_key="deadline.id", index=True)
    incident_id: str = Field(max_length=32)
    kind: str = Field(max_length=32)
    payload: dict[str, Any] = _json_column()
    created_at: datetime = _time_column()


class EscalationDelivery(SQLModel, table=True):
    """One channel's delivery of an escalation: claimed under a lease, marked sent (see engine.escalation)."""

    __tablename__ = "escalation_delivery"
    __table_args__ = (
        UniqueConstraint("escalation_id", "channel"),
        Index("ix_escalation_delivery_due", "status", "next_attempt_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    escalation_id: int = Field(foreign_key="escalation.id")
    channel: str = Field(max_length=16)
    message_id: str = Field(max_length=200, unique=True)
    status: str = Field(default="pending", max_length=16)
    attempts: int = 0
    claim_token: str | None = Field(default=None, max_length=64)
    lease_until: datetime | None = _time_column(nullable=True)
    handed_off_at: datetime | None = _time_column(nullable=True)
    in_doubt: bool = False
    next_attempt_at: datetime = _time_column()
    sent_at: datetime | None = _time_column(nullable=True)
    last_error: str | None = None
