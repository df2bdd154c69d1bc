"""The database: column types every table shares, and how sessions are opened on SQLite and PostgreSQL.

Writes that belong together run in one ``Store.write()`` transaction. On SQLite that transaction begins
``IMMEDIATE`` so two writers queue on the busy timeout instead of failing half-way; reads stay deferred.
Every time is stored as UTC; the columns hand back aware datetimes on both databases.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from sqlalchemy import JSON, Column, DateTime, Table, create_engine, event, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import CursorResult, Engine, Result
from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlalchemy.ext.mutable import MutableDict
from sqlalchemy.orm import class_mapper
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, Session, SQLModel

from engine.errors import BadInput

__all__ = [
    "DISK_ADVICE",
    "JSONType",
    "Store",
    "UTCDateTime",
    "changed_rows",
    "create_private_sqlite",
    "json_column",
    "json_list_column",
    "table_of",
    "time_column",
    "utcnow",
]

DISK_ADVICE = (
    "the disk may be full, the file larger than this process may write (ulimit -f), or the device "
    "failing; free space or raise the limit and run the command again (nothing changed)"
)
"""What to do when SQLite cannot write its files: it reports a full disk only for ENOSPC."""

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


def table_of(model: type[SQLModel]) -> Table:
    """The Core table behind a SQLModel class, typed (SQLModel sets ``__table__`` without declaring it)."""
    table = class_mapper(model).local_table
    if not isinstance(table, Table):  # pragma: no cover - every breach model maps one plain table
        raise TypeError(f"{model.__name__} is not mapped to a single table")
    return table


def changed_rows(result: Result[Any]) -> int:
    """How many rows an UPDATE, INSERT or DELETE changed.

    ``Session.execute`` is typed as returning a plain ``Result``; for those statements it is a
    ``CursorResult``, the one that carries the count.
    """
    return cast("CursorResult[Any]", result).rowcount


def json_column() -> Any:
    """A JSON object column whose in-place changes are tracked (JSONB on PostgreSQL)."""
    return Field(default_factory=dict, sa_column=Column(MutableDict.as_mutable(JSONType), nullable=False))


def time_column(nullable: bool = False, index: bool = False) -> Any:
    """A UTC time column."""
    return Field(default=None, sa_column=Column(UTCDateTime(), nullable=nullable, index=index))


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

    def do_begin(dbapi_connection: Any) -> None:
        dbapi_connection.execute(statement)

    # Replacing a method of the dialect object is the point here; mypy flags any such assignment.
    engine.dialect.do_begin = do_begin  # type: ignore[method-assign]
    return engine


def create_private_sqlite(url: str) -> Path | None:
    """Create the SQLite file of ``url`` empty and 0600 (its missing folders 0700) if it does not exist.

    SQLite would create it through the umask (0644 under the usual 022, 0666 under 000), and gives
    its ``-wal`` and ``-shm`` files the mode of the database file: making the file private first keeps
    all three private. An existing file is left as it is. Returns the file's path (None in memory).

    :raises BadInput: when the file cannot be created (a link in its place, a full disk, no access).
    """
    from sqlalchemy.engine import make_url

    from engine.files import make_private_dirs, os_error

    try:
        database = make_url(url).database
    except Exception as exc:
        raise BadInput(f"cannot use database URL: {exc}") from None
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    path = Path(os.path.abspath(database))
    if os.path.lexists(path):
        return path
    make_private_dirs(path.parent, root=path.parent)  # only folders that are missing are made (0700)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        return path  # created meanwhile by another run
    except OSError as exc:
        raise os_error(path, exc, "cannot create database") from None
    try:
        os.fchmod(fd, 0o600)  # the umask may have removed bits: exactly rw for the owner
    finally:
        os.close(fd)
    return path


def locked_message(url: str) -> str:
    """Why a write waited out the busy timeout: which processes hold the SQLite file, and what to do."""
    from sqlalchemy.engine import make_url

    database = make_url(url).database or ""
    holders = _processes_holding(Path(database)) if database else []
    who = ", ".join(f"process {pid} ({command})" for pid, command in holders[:3]) or "another process"
    return (
        f"the SQLite database {database} stayed locked by {who} past the 30 s busy timeout: "
        "nothing was changed; run the command again when it has finished"
    )


def _processes_holding(path: Path) -> list[tuple[int, str]]:
    """The processes (of this account: others' are not readable) with ``path`` open, but this one."""
    try:
        target = os.stat(path)
    except OSError:
        return []
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        pid = int(entry.name)
        if pid == os.getpid():
            continue
        try:
            for fd in (entry / "fd").iterdir():
                info = os.stat(fd)
                if (info.st_dev, info.st_ino) == (target.st_dev, target.st_ino):
                    raw = (entry / "cmdline").read_bytes().replace(b"\0", b" ").strip()
                    found.append((pid, raw.decode("utf-8", "replace")[:80] or "?"))
                    break
        except OSError:
            continue  # gone meanwhile, or not ours to read
    return found


_SQLITE_NOW = text("SELECT strftime('%Y-%m-%d %H:%M:%f', 'now')")
_POSTGRES_NOW = text("SELECT now()")


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
        if self.is_sqlite:
            create_private_sqlite(url)  # before the first connection creates it through the umask

    @contextmanager
    def write(self) -> Iterator[Session]:
        """One transaction for writes that belong together: committed on success, rolled back on error."""
        with Session(self._write_engine, expire_on_commit=False) as session:
            try:
                yield session
                session.commit()
            except OperationalError as exc:
                session.rollback()
                if self.is_sqlite and "database is locked" in str(exc.orig):
                    raise BadInput(locked_message(self.url)) from None
                raise
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
            raw: str = session.connection().execute(_SQLITE_NOW).one()[0]
            return datetime.fromisoformat(raw).replace(tzinfo=UTC)
        value: datetime = session.connection().execute(_POSTGRES_NOW).one()[0]
        return value.astimezone(UTC)

    def check_ready(self) -> None:
        """Fail with a clear line when the database is unreachable or not initialised."""
        try:
            with self.engine.connect() as conn:
                conn.exec_driver_sql("SELECT 1 FROM incident LIMIT 1")
        except (OperationalError, ProgrammingError) as exc:
            detail = str(exc.orig).splitlines()[0] if exc.orig else str(exc)
            if "disk i/o error" in detail.lower() or "disk is full" in detail.lower():
                # Not an uninitialised database: the file could not be written (its -shm or -wal).
                raise BadInput(f"the database cannot be written ({detail}): {DISK_ADVICE}") from None
            raise BadInput(
                f"database not ready ({detail}): run 'breach init' or 'breach db upgrade' first"
            ) from None

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()
        if self._write_engine is not self.engine:
            self._write_engine.dispose()


def json_list_column() -> Any:
    """A JSON list column, always replaced whole."""
    # Lists are always replaced whole (never changed in place), so a plain JSON column suffices. It needs
    # its own type instance: MutableDict.as_mutable(JSONType) claims every column of that instance.
    column = Column(JSON().with_variant(JSONB(), "postgresql"), nullable=False)
    return Field(default_factory=list, sa_column=column)
