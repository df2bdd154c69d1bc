"""Accepted changes per second through the engine on SQLite, beside raw SQL writing the same rows.

Each of ``--incidents`` incidents is opened and walked along the built-in playbook's happy path to closed:
every required task completed (``complete_task``), then the phase's trigger (``advance``). Every change is
its own committed transaction, as an operator's command is. In the same run, alternating incident by
incident with the engine, the baseline writes the same rows with plain ``sqlite3`` (one
``BEGIN IMMEDIATE`` … ``COMMIT`` per change: the incident UPDATE with its version check, the event
INSERT, the task rows), reusing the engine's pure functions for hashes and effects so that the ratio
isolates what the ORM, the session and the state machine cost. Both databases use the
engine's pragmas (WAL, ``synchronous=NORMAL``; ``--synchronous FULL`` fsyncs every commit).

Then the memory a process needs per 10,000 loaded incidents, through the ORM and through the read model,
measured in child processes (tracemalloc and RSS delta).

Usage: ``python bench/advance.py [--incidents 40] [--synchronous FULL] [--profile] [--no-memory]``
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from _common import ZONE, Step, builtin_source, fmt_rate, open_store, rss_kib, walk

TARGET_RATE = 500
TARGET_RATIO = 5.0
MEMORY_INCIDENTS = 10_000


@dataclass
class Timings:
    """Seconds spent per kind of accepted change, and how many of each."""

    seconds: dict[str, float] = field(default_factory=lambda: {"open": 0.0, "task": 0.0, "trigger": 0.0})
    counts: dict[str, int] = field(default_factory=lambda: {"open": 0, "task": 0, "trigger": 0})

    def add(self, kind: str, started: float) -> None:
        """Count one change of ``kind`` that started at ``started`` (``perf_counter``)."""
        self.seconds[kind] += time.perf_counter() - started
        self.counts[kind] += 1

    @property
    def changes(self) -> int:
        """All accepted changes: opens, tasks done and triggers."""
        return sum(self.counts.values())

    @property
    def total(self) -> float:
        """Seconds spent in all accepted changes."""
        return sum(self.seconds.values())


class EngineWalker:
    """Opens incidents and walks each to closed through ``engine.incidents`` (opening, tasks, flow), one
    committed change at a time."""

    def __init__(self, db: Path, synchronous: str) -> None:
        self.source = builtin_source()
        self.steps = walk(self.source)
        self.store = open_store(db, synchronous=synchronous)
        self.discovered = datetime.now(UTC) - timedelta(hours=2)

    def walk_once(self, timings: Timings) -> None:
        """One incident from opening to closed, each change timed into ``timings``."""
        from engine.incidents import flow
        from engine.incidents.opening import open_incident
        from engine.incidents.tasks import complete_task

        started = time.perf_counter()
        incident = open_incident(
            self.store,
            source=self.source,
            title="台账泄露",
            discovered_at=self.discovered,
            actor="alice",
            zone=ZONE,
        )
        timings.add("open", started)
        for step in self.steps:
            for key in step.tasks:
                started = time.perf_counter()
                complete_task(self.store, incident.id, key, actor="alice")
                timings.add("task", started)
            started = time.perf_counter()
            flow.advance(self.store, incident.id, step.trigger, actor="alice", zone=ZONE)
            timings.add("trigger", started)

    def close(self) -> None:
        """Release the database."""
        self.store.dispose()


def _sql_time(at: datetime) -> str:
    """A UTC moment as SQLAlchemy stores it in SQLite."""
    return at.astimezone(UTC).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")


class RawWriter:
    """Writes what the engine writes, with plain sqlite3 and hand-written SQL."""

    def __init__(self, db: Path, synchronous: str) -> None:
        from engine.incidents.repository import playbook_summary

        self.source = builtin_source()
        self.playbook = self.source.playbook
        open_store(db, synchronous=synchronous).dispose()  # the same tables and indexes
        self.conn = sqlite3.connect(db, isolation_level=None)
        for pragma in ("journal_mode=WAL", "busy_timeout=30000", "foreign_keys=ON"):
            self.conn.execute(f"PRAGMA {pragma}")
        self.conn.execute(f"PRAGMA synchronous={synchronous}")
        self.conn.execute(
            "INSERT INTO playbook_snapshot (sha256, playbook_id, version, origin, source, summary, "
            "stored_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                self.source.sha256,
                self.playbook.id,
                self.playbook.version,
                self.source.origin,
                self.source.text,
                json.dumps(playbook_summary(self.playbook), ensure_ascii=False),
                _sql_time(datetime.now(UTC)),
            ),
        )
        self.live: dict[str, dict[str, Any]] = {}

    def _event(self, inc: dict[str, Any], at: datetime, kind: str, **fields: Any) -> tuple[Any, ...]:
        """The next event's row, hashed onto the chain; moves the incident's count and head."""
        from engine.incidents.audit import GENESIS, canonical_json, event_hash

        seq, prev = inc["event_count"] + 1, inc["audit_head"] or GENESIS
        inputs = json.loads(canonical_json(fields.pop("inputs", {})))
        row = {"trigger": None, "from_state": None, "to_state": None, "reason": None, **fields}
        digest = event_hash(
            incident_id=inc["id"],
            seq=seq,
            at=at,
            actor="alice",
            kind=kind,
            inputs=inputs,
            prev_hash=prev,
            **row,
        )
        inc["event_count"], inc["audit_head"] = seq, digest
        return (
            inc["id"],
            seq,
            _sql_time(at),
            "alice",
            kind,
            row["trigger"],
            row["from_state"],
            row["to_state"],
            row["reason"],
            json.dumps(inputs, ensure_ascii=False),
            prev,
            digest,
        )

    def _insert_event(self, row: tuple[Any, ...]) -> None:
        self.conn.execute(
            'INSERT INTO event (incident_id, seq, at, actor, kind, "trigger", from_state, to_state, reason, '
            "inputs, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            row,
        )

    def _open_tasks(self, inc: dict[str, Any], state_id: str, at: datetime) -> None:
        rows = [
            (inc["id"], t.id, state_id, t.required, "open", _sql_time(at))
            for t in self.playbook.state(state_id).tasks
        ]
        self.conn.executemany(
            "INSERT INTO task (incident_id, key, state_id, required, status, opened_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            rows,
        )

    def _bump(self, inc: dict[str, Any], extra: str = "", params: tuple[Any, ...] = ()) -> None:
        cursor = self.conn.execute(
            f"UPDATE incident SET version = version + 1, event_count = ?, audit_head = ?{extra} "
            "WHERE id = ? AND version = ?",
            (inc["event_count"], inc["audit_head"], *params, inc["id"], inc["version"]),
        )
        if cursor.rowcount != 1:
            raise RuntimeError(f"{inc['id']} changed meanwhile")
        inc["version"] += 1

    def open(self, discovered: datetime) -> str:
        """Open an incident: counter, incident row, its first event, the first phase's tasks."""
        now = datetime.now(UTC)
        self.conn.execute("BEGIN IMMEDIATE")
        year = now.year
        self.conn.execute(
            "INSERT INTO incident_counter (year, last) VALUES (?, 0) ON CONFLICT (year) DO NOTHING", (year,)
        )
        number = self.conn.execute(
            "UPDATE incident_counter SET last = last + 1 WHERE year = ? RETURNING last", (year,)
        ).fetchone()[0]
        inc: dict[str, Any] = {
            "id": f"INC-{year}-{number:04d}",
            "state": self.playbook.initial,
            "version": 1,
            "event_count": 0,
            "audit_head": "",
            "flags": {},
            "anchors": {"discovered_at": discovered.isoformat(), "opened_at": now.isoformat()},
            "records": {},
        }
        opened = self._event(
            inc,
            now,
            "opened",
            to_state=inc["state"],
            inputs={
                "title": "台账泄露",
                "playbook": self.playbook.id,
                "playbook_version": self.playbook.version,
                "discovered_at": discovered.isoformat(),
                "drill": False,
            },
        )
        self.conn.execute(
            "INSERT INTO incident (id, title, playbook_id, playbook_version, playbook_sha256, state, "
            "version, drill, opened_by, opened_at, discovered_at, facts, anchors, flags, records, "
            "assessment, event_count, audit_head) "
            "VALUES (?, ?, ?, ?, ?, ?, 1, 0, ?, ?, ?, '{}', ?, '{}', '{}', '{}', ?, ?)",
            (
                inc["id"],
                "台账泄露",
                self.playbook.id,
                self.playbook.version,
                self.source.sha256,
                inc["state"],
                "alice",
                _sql_time(now),
                _sql_time(discovered),
                json.dumps(inc["anchors"]),
                inc["event_count"],
                inc["audit_head"],
            ),
        )
        self._insert_event(opened)
        self._open_tasks(inc, inc["state"], now)
        self.conn.execute("COMMIT")
        self.live[inc["id"]] = inc
        return str(inc["id"])

    def task_done(self, incident_id: str, key: str) -> None:
        """Mark a task done: the task row, the incident's version and chain head, the event."""
        inc, now = self.live[incident_id], datetime.now(UTC)
        self.conn.execute("BEGIN IMMEDIATE")
        cursor = self.conn.execute(
            "UPDATE task SET status = 'done', done_at = ?, done_by = ? "
            "WHERE incident_id = ? AND key = ? AND status = 'open'",
            (_sql_time(now), "alice", incident_id, key),
        )
        if cursor.rowcount != 1:
            raise RuntimeError(f"task {key} of {incident_id} is not open")
        event = self._event(
            inc, now, "task_done", from_state=inc["state"], to_state=inc["state"], inputs={"task": key}
        )
        self._insert_event(event)
        self._bump(inc)
        self.conn.execute("COMMIT")

    def trigger(self, incident_id: str, trigger: str) -> None:
        """Fire a trigger: state and bookkeeping UPDATE with version check, event, next phase's tasks."""
        from engine.playbooks.effects import Mutable, apply_effects

        inc, now = self.live[incident_id], datetime.now(UTC)
        spec = self.playbook.transition(trigger, inc["state"])
        assert spec is not None
        mutable = Mutable(inc["flags"], inc["anchors"], inc["records"], now, "alice", {}, None)
        effects = apply_effects(spec.effects, mutable)
        before = inc["state"]
        inc["state"] = before if spec.internal else str(spec.dest)
        self.conn.execute("BEGIN IMMEDIATE")
        if not spec.internal:
            self._open_tasks(inc, inc["state"], now)
        event = self._event(
            inc,
            now,
            "trigger",
            trigger=trigger,
            from_state=before,
            to_state=inc["state"],
            inputs={"effects": effects} if effects else {},
        )
        self._insert_event(event)
        closed = _sql_time(now) if self.playbook.state(inc["state"]).final else None
        self._bump(
            inc,
            ", state = ?, flags = ?, anchors = ?, records = ?, closed_at = ?",
            (
                inc["state"],
                json.dumps(inc["flags"]),
                json.dumps(inc["anchors"]),
                json.dumps(inc["records"]),
                closed,
            ),
        )
        self.conn.execute("COMMIT")


class RawWalker:
    """The baseline: the same walks written with plain sqlite3."""

    def __init__(self, db: Path, synchronous: str) -> None:
        self.writer = RawWriter(db, synchronous)
        self.steps: list[Step] = walk(self.writer.source)
        self.discovered = datetime.now(UTC) - timedelta(hours=2)

    def walk_once(self, timings: Timings) -> None:
        """One incident from opening to closed, each change timed into ``timings``."""
        started = time.perf_counter()
        incident_id = self.writer.open(self.discovered)
        timings.add("open", started)
        for step in self.steps:
            for key in step.tasks:
                started = time.perf_counter()
                self.writer.task_done(incident_id, key)
                timings.add("task", started)
            started = time.perf_counter()
            self.writer.trigger(incident_id, step.trigger)
            timings.add("trigger", started)

    def close(self) -> None:
        """Release the database."""
        self.writer.conn.close()


def interleaved(
    folder: Path, n: int, synchronous: str, profiler: cProfile.Profile | None = None
) -> tuple[Timings, Timings]:
    """Walk ``n`` incidents through the engine and ``n`` through raw SQL, alternating one by one.

    Alternating (and swapping who goes first each round) spreads whatever else the machine is doing
    over both sides alike, so the ratio stays steady on a busy machine. One untimed walk each first
    warms caches (SQL compilation, the state machine).
    """
    engine, raw = EngineWalker(folder / "engine.db", synchronous), RawWalker(folder / "raw.db", synchronous)
    engine.walk_once(Timings())
    raw.walk_once(Timings())
    engine_t, raw_t = Timings(), Timings()
    for round_ in range(n):
        sides = [(engine, engine_t), (raw, raw_t)]
        for walker, timings in sides if round_ % 2 == 0 else reversed(sides):
            if profiler is not None and walker is engine:
                profiler.runcall(walker.walk_once, timings)
            else:
                walker.walk_once(timings)
    engine.close()
    raw.close()
    return engine_t, raw_t


def same_rows(engine_db: Path, raw_db: Path) -> str:
    """Check the baseline wrote what the engine wrote: row counts, states, versions, an intact chain."""
    from sqlmodel import select

    from engine.incidents.audit import verify_chain
    from engine.incidents.tables import Incident
    from engine.store.db import Store

    def shape(db: Path) -> list[Any]:
        with sqlite3.connect(db) as conn:
            return [
                conn.execute("SELECT state, version, event_count FROM incident ORDER BY id").fetchall(),
                conn.execute("SELECT count(*), sum(status = 'done') FROM task").fetchall(),
                conn.execute("SELECT kind, count(*) FROM event GROUP BY kind ORDER BY kind").fetchall(),
            ]

    if shape(engine_db) != shape(raw_db):
        return "MISMATCH: the baseline's rows differ from the engine's"
    store = Store(f"sqlite:///{raw_db}")
    with store.read() as session:
        incidents = list(session.exec(select(Incident)))
        broken = [r.incident_id for r in (verify_chain(session, i) for i in incidents) if not r.ok]
    store.dispose()
    if broken:
        return f"MISMATCH: the baseline's audit chains do not verify ({', '.join(broken[:3])})"
    return f"same rows (counts, states, versions), {len(incidents)} audit chains intact"


def report(engine: Timings, raw: Timings) -> bool:
    """Print rates and ratios; True when both targets are met."""
    print(f"{'':24}{'engine':>14}{'raw sqlite3':>14}{'ratio':>8}")
    for kind, label in (
        ("trigger", "triggers (advance)"),
        ("task", "tasks done"),
        ("open", "incidents opened"),
    ):
        n, e, r = engine.counts[kind], engine.seconds[kind], raw.seconds[kind]
        print(f"{label + f' ×{n}':24}{fmt_rate(n, e):>14}{fmt_rate(n, r):>14}{e / r:>7.1f}x")
    e, r, n = engine.total, raw.total, engine.changes
    print(f"{'all accepted changes':24}{fmt_rate(n, e):>14}{fmt_rate(n, r):>14}{e / r:>7.1f}x")
    rate = engine.counts["trigger"] / engine.seconds["trigger"]
    ratio = engine.seconds["trigger"] / raw.seconds["trigger"]
    ok = rate >= TARGET_RATE and ratio <= TARGET_RATIO
    print(
        f"target: ≥{TARGET_RATE} advances/s and within {TARGET_RATIO:.0f}x of raw SQL: "
        f"{rate:,.0f}/s at {ratio:.1f}x -> {'MET' if ok else 'MISSED'}"
    )
    return ok


# -- memory per 10,000 loaded incidents ------------------------------------------------------------


def memory_db(engine_db: Path, target: Path) -> int:
    """Copy ``engine_db`` and clone its last (closed, fully recorded) incident up to 10,000 incidents."""
    with sqlite3.connect(engine_db) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    with sqlite3.connect(target) as conn:
        have = conn.execute("SELECT count(*) FROM incident").fetchone()[0]
        columns = [r[1] for r in conn.execute("PRAGMA table_info(incident)")]
        rest = ", ".join(c for c in columns if c != "id")
        template = conn.execute("SELECT id FROM incident ORDER BY id DESC LIMIT 1").fetchone()[0]
        conn.execute(
            f"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) "
            f"INSERT INTO incident (id, {rest}) SELECT printf('MEM-%05d', i), {rest} "
            "FROM n, incident WHERE incident.id = ?",
            (MEMORY_INCIDENTS - have, template),
        )
        return int(conn.execute("SELECT count(*) FROM incident").fetchone()[0])


def memory_child(how: str, db: Path, traced: bool) -> None:
    """In a child process: load every incident ``how`` (orm or readmodel) and print what it cost."""
    import gc
    import tracemalloc

    url = f"sqlite:///{db}"
    if how == "orm":
        from sqlmodel import Session, select

        from engine.incidents.tables import Incident
        from engine.store.db import Store

        session = Session(Store(url).engine)
        session.exec(select(Incident).limit(1)).all()  # compile and cache the query first

        def load() -> Any:
            return session.exec(select(Incident)).all()
    else:
        from engine.store.readmodel import Reader

        reader = Reader(url)
        reader.rows("SELECT id FROM incident LIMIT 1")

        def load() -> Any:
            if how == "readmodel":
                return reader.incidents()
            rows = reader.rows("SELECT * FROM incident")  # every column, JSON decoded as the ORM does
            for row in rows:
                for key in ("facts", "anchors", "flags", "records", "assessment"):
                    row[key] = json.loads(row[key])
            return rows

    gc.collect()
    if traced:
        tracemalloc.start()
    before = rss_kib()
    rows = load()
    gc.collect()
    after = rss_kib()
    held = tracemalloc.get_traced_memory()[0] if traced else 0
    print(json.dumps({"rows": len(rows), "rss_kib": after - before, "traced_bytes": held}))


def memory(engine_db: Path, folder: Path) -> None:
    """Print MiB per 10,000 incidents for each way of loading them."""
    db = folder / "memory.db"
    count = memory_db(engine_db, db)
    print(f"\nmemory per {MEMORY_INCIDENTS:,} loaded incidents (database of {count:,}; child processes):")
    for how, label in (
        ("orm", "ORM: select(Incident)"),
        ("readmodel", "read model: Reader.incidents()"),
        ("readmodel-full", "read model: every column as dicts"),
    ):
        figures = {}
        for traced in (False, True):
            out = subprocess.run(
                [sys.executable, __file__, "--memory-child", how, str(db)] + (["--traced"] if traced else []),
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            figures[traced] = json.loads(out)
        scale = MEMORY_INCIDENTS / figures[True]["rows"]
        traced_mib = figures[True]["traced_bytes"] * scale / 2**20
        rss_mib = figures[False]["rss_kib"] * scale / 1024
        print(f"  {label:36} tracemalloc {traced_mib:6.1f} MiB   RSS delta {rss_mib:6.1f} MiB")


def main() -> None:
    """Run the engine and the baseline, compare them, then measure memory."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--incidents", type=int, default=40, help="incidents walked to closed (default 40)")
    parser.add_argument("--synchronous", default="NORMAL", choices=["NORMAL", "FULL"], help="SQLite pragma")
    parser.add_argument("--profile", action="store_true", help="profile the engine run, print the hotspots")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory measurement")
    parser.add_argument("--memory-child", nargs=2, metavar=("HOW", "DB"), help=argparse.SUPPRESS)
    parser.add_argument("--traced", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        memory_child(args.memory_child[0], Path(args.memory_child[1]), args.traced)
        return
    with tempfile.TemporaryDirectory(prefix="breach-bench-") as tmp:
        folder = Path(tmp)
        print(f"{args.incidents} incidents walked open → closed, synchronous={args.synchronous}")
        profiler = cProfile.Profile() if args.profile else None
        engine, raw = interleaved(folder, args.incidents, args.synchronous, profiler)
        print(f"baseline check: {same_rows(folder / 'engine.db', folder / 'raw.db')}\n")
        report(engine, raw)
        if profiler is not None:
            print("\nengine hotspots (cumulative):")
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)
            print("engine hotspots (own time):")
            pstats.Stats(profiler).sort_stats("tottime").print_stats(20)
        if not args.no_memory:
            memory(folder / "engine.db", folder)


if __name__ == "__main__":
    main()
