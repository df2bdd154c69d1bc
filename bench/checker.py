"""Benchmark of the deadline checker against its baselines, measured in the same run.

1. **Scan.** 1,000,000 pending deadlines over 100,000 incidents, of which 1,000 are due. One scan's query for
   the due rows (``engine.deadlines.checker.find_due``, through SQLAlchemy and our column types) is timed
   beside the raw SQL for the same rows through the bare DB-API driver, both on an open connection,
   interleaved, best of ``--repeat``. Target: within 2x. The full decide-and-record pass over the same 1,000
   rows is shown too (compare-and-set per row plus its outbox row), for scale.
2. **Set-up.** 100,000 deadlines in our table against the naive design of one APScheduler job per
   deadline in its ``SQLAlchemyJobStore`` (100,000 ``add_job`` calls), on the same database kind with the
   same pragmas: time, peak Python memory while setting up (tracemalloc, on a 10,000-item sample) and
   bytes on disk. Target: set-up at least 20x faster.

Usage::

    .venv/bin/python bench/checker.py                 # full size on a temporary SQLite file (~2-3 min)
    .venv/bin/python bench/checker.py --scale 0.05    # quick run
    .venv/bin/python bench/checker.py --db postgresql+psycopg://postgres@127.0.0.1:5432/test

With ``--db`` PostgreSQL, everything happens in a temporary schema that is dropped at the end.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.deadlines.checker import find_due
from engine.migrations.migrate import upgrade
from engine.store.db import Store

RULES = 10  # deadlines per incident
NOW = datetime.now(UTC).replace(microsecond=0)
WARNINGS = json.dumps([{"kind": "warn:50%", "at": "2030-01-01T00:00:00+00:00"}])
SQL_DUE = (
    "SELECT id, status, version, alert_round, due_at, next_check_at, warnings FROM deadline "
    "WHERE next_check_at <= {p} ORDER BY next_check_at LIMIT {p}"
)


def file_size(url: str) -> int:
    """Bytes of a SQLite database file with its WAL and shared-memory files."""
    path = Path(url.split(":///", 1)[1])
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


class Db:
    """A benchmark database: our schema (migrated), plus helpers that speak its dialect raw."""

    def __init__(self, url: str) -> None:
        self.base_url = url
        self.schema = None
        if url.startswith("postgresql"):
            import psycopg

            self.schema = f"bench_{uuid.uuid4().hex[:8]}"
            with psycopg.connect("postgresql://" + url.split("://", 1)[1], autocommit=True) as conn:
                conn.execute(f'CREATE SCHEMA "{self.schema}"')
            url = f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{self.schema}"
        self.url = url
        self.sqlite = url.startswith("sqlite")
        self.p = "?" if self.sqlite else "%s"
        self.store = Store(url)
        upgrade(self.store)

    def time(self, moment: datetime) -> Any:
        """A UTC moment as our columns store it (SQLAlchemy's text on SQLite, naive timestamp on PG)."""
        naive = moment.astimezone(UTC).replace(tzinfo=None)
        return naive.isoformat(" ", "microseconds") if self.sqlite else naive

    def raw(self) -> Any:
        return self.store.engine.raw_connection()

    def begin(self, cursor: Any) -> None:
        """Open a transaction: the store runs SQLite connections in autocommit and issues BEGIN itself."""
        if self.sqlite:
            cursor.execute("BEGIN")

    def size(self, tables: list[str]) -> int:
        """Bytes the tables take on disk (SQLite: the file and its WAL)."""
        if self.sqlite:
            return file_size(self.url)
        conn = self.raw()
        try:
            cur = conn.cursor()
            cur.execute(
                "SELECT sum(pg_total_relation_size(quote_ident(%s) || '.' || quote_ident(t))) "
                "FROM unnest(%s::text[]) t",
                (self.schema, tables),
            )
            return int(cur.fetchone()[0] or 0)
        finally:
            conn.close()

    def drop(self) -> None:
        self.store.dispose()
        if self.schema:
            import psycopg

            with psycopg.connect("postgresql://" + self.base_url.split("://", 1)[1], autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA "{self.schema}" CASCADE')


def _incidents(db: Db, count: int) -> None:
    sha = "0" * 64
    conn = db.raw()
    cur = conn.cursor()
    db.begin(cur)
    p = db.p
    cur.execute(
        f"INSERT INTO playbook_snapshot (sha256, playbook_id, version, origin, source, summary, stored_at) "
        f"VALUES ({p}, 'bench', 1, 'bench', '', '{{}}', {p})",
        (sha, db.time(NOW)),
    )
    cols = (
        "id, title, playbook_id, playbook_version, playbook_sha256, state, version, drill, opened_by, "
        "opened_at, discovered_at, facts, anchors, flags, records, assessment, event_count, audit_head"
    )
    marks = ", ".join([p] * 18)
    at = db.time(NOW - timedelta(days=1))
    rows = (
        (
            f"INC-B-{i:07d}",
            "bench",
            "bench",
            1,
            sha,
            "containment",
            1,
            False,
            "bench",
            at,
            at,
            "{}",
            "{}",
            "{}",
            "{}",
            "{}",
            0,
            "",
        )
        for i in range(count)
    )
    cur.executemany(f"INSERT INTO incident ({cols}) VALUES ({marks})", rows)
    conn.commit()
    conn.close()


def _deadline_rows(db: Db, first: int, last: int, due: int, incidents: int) -> Iterator[tuple[Any, ...]]:
    """Deadlines ``first``..``last``: every (total/due)-th is due and missed, the rest in the next 90 days.

    Each row is (incident_id, rule_id, due_at, next_check_at); the columns every synthetic row shares
    are constants of the INSERT (:data:`_INSERT`).
    """
    step = max(1, (incidents * RULES) // max(due, 1))
    # Naive UTC arithmetic and isoformat (both in C) keep the generator cheap; the stored text is
    # exactly what SQLAlchemy writes, so the engine's queries compare it correctly.
    base = NOW.replace(tzinfo=None)
    text = (lambda moment: moment.isoformat(" ", "microseconds")) if db.sqlite else (lambda moment: moment)
    past = text(base - timedelta(minutes=5))
    half_day = timedelta(hours=12)
    for n in range(first, last):
        if due and n % step == 0 and n // step < due:
            yield f"INC-B-{n // RULES:07d}", f"BENCH-R-{n % RULES}", past, past  # missed: owes an alert
        else:
            moment = base + timedelta(seconds=60 + (n * 7919) % (90 * 86400))
            yield f"INC-B-{n // RULES:07d}", f"BENCH-R-{n % RULES}", text(moment + half_day), text(moment)


_INSERT = (
    "INSERT INTO deadline (incident_id, rule_id, due_at, next_check_at, subject, kind, labels, anchor, "
    "start_at, duration, calendar, calendar_version, provisional, explain, basis, warnings, status, "
    "version, alert_round, created_at, updated_at) VALUES ({p}, {p}, {p}, {p}, '', 'law', "
    "'{{\"zh-CN\": \"x\", \"en\": \"x\"}}', 'discovered_at', {p}, '72 hours', 'none', 'none', {false}, "
    "'[]', '{{}}', {p}, 'pending', 1, 1, {p}, {p})"
)


def insert_deadlines(db: Db, first: int, last: int, due: int, incidents: int) -> float:
    """Bulk-insert deadlines with one executemany in one transaction; return the seconds it took."""
    created = db.time(NOW - timedelta(hours=1))
    sql = _INSERT.format(p=db.p, false="0" if db.sqlite else "false")
    conn = db.raw()
    cur = conn.cursor()
    started = time.perf_counter()
    db.begin(cur)
    cur.executemany(
        sql,
        (
            (i, r, d, c, created, WARNINGS, created, created)
            for i, r, d, c in _deadline_rows(db, first, last, due, incidents)
        ),
    )
    conn.commit()
    took = time.perf_counter() - started
    conn.close()
    return took


def insert_deadlines_typed(db: Db, count: int) -> float:
    """The same rows through SQLAlchemy Core and our column types (as the engine writes them)."""
    from sqlalchemy import insert

    from engine.deadlines.escalation import DEADLINE

    created = NOW - timedelta(hours=1)
    rows = (
        {
            "incident_id": f"INC-B-{n // RULES:07d}",
            "rule_id": f"BENCH-T-{n % RULES}",
            "subject": "",
            "kind": "law",
            "labels": {"zh-CN": "x", "en": "x"},
            "anchor": "discovered_at",
            "start_at": created,
            "duration": "72 hours",
            "calendar": "none",
            "calendar_version": "none",
            "due_at": NOW + timedelta(seconds=43260 + n),
            "provisional": False,
            "explain": [],
            "basis": {},
            "warnings": [],
            "status": "pending",
            "version": 1,
            "alert_round": 1,
            "next_check_at": NOW + timedelta(seconds=60 + n),
            "created_at": created,
            "updated_at": created,
        }
        for n in range(count)
    )
    started = time.perf_counter()
    with db.store.engine.begin() as conn:
        conn.execute(insert(DEADLINE), list(rows))
    return time.perf_counter() - started


def _best(paths: dict[str, Callable[[], int]], repeat: int, expect: int) -> dict[str, float]:
    """Best-of-``repeat`` seconds per path, the paths interleaved so both meet the same machine load.

    The minimum is the most reproducible figure on a shared machine (as timeit advises): noise only
    ever adds time.
    """
    times: dict[str, list[float]] = {name: [] for name in paths}
    for _ in range(repeat):
        for name, fn in paths.items():
            started = time.perf_counter()
            found = fn()
            times[name].append(time.perf_counter() - started)
            assert found == expect, (name, found, expect)
    return {name: min(values) for name, values in times.items()}


def bench_scan(db: Db, due: int, repeat: int) -> dict[str, float]:
    """Our scan query against the same SQL through the bare driver, same rows, same run."""
    with db.store.engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE")
    now = NOW
    # Both paths keep one connection open across repetitions: what is timed is the query, not connecting.
    session_scope = db.store.read()
    session = session_scope.__enter__()

    def ours() -> int:
        return len(find_due(session, now, due))

    raw_conn = db.raw()
    sql = SQL_DUE.format(p=db.p)

    def raw() -> int:
        cur = raw_conn.cursor()
        cur.execute(sql, (db.time(now), due))
        rows = cur.fetchall()
        cur.close()
        if not db.sqlite:
            raw_conn.rollback()
        return len(rows)

    ours(), raw()  # warm the statement caches and the pages of both paths alike
    result = _best({"ours": ours, "raw": raw}, repeat, due)
    raw_conn.close()
    session_scope.__exit__(None, None, None)
    return result


def bench_full_scan(db: Db, due: int) -> float:
    """One decide-and-record pass over the due rows (compare-and-set + outbox row each; no channel)."""
    from engine.deadlines.checker import advance_due
    from engine.deadlines.escalation import EscalationSettings

    started = time.perf_counter()
    alerts = advance_due(
        db.store, EscalationSettings(), [], zone="Asia/Shanghai", batch=500, domain="bench.invalid"
    )
    took = time.perf_counter() - started
    assert len(alerts) == due, len(alerts)
    return took


def _aps_engine(url: str) -> Any:
    from sqlalchemy import create_engine, event

    engine = create_engine(url)
    if url.startswith("sqlite"):
        # The same pragmas as our store (WAL, synchronous=NORMAL): the comparison is of designs, not fsyncs.
        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.execute("PRAGMA journal_mode=WAL")
            dbapi_conn.execute("PRAGMA synchronous=NORMAL")

    return engine


def _noop() -> None:
    return None


def aps_setup(url: str, jobs: int) -> float:
    """Add one APScheduler date job per deadline to its SQLAlchemyJobStore; return the seconds."""
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from apscheduler.schedulers.background import BackgroundScheduler

    engine = _aps_engine(url)
    scheduler = BackgroundScheduler(jobstores={"default": SQLAlchemyJobStore(engine=engine)}, timezone=UTC)
    scheduler.start(paused=True)  # jobs go straight to the job store, as in a running service
    base = datetime.now(UTC) + timedelta(days=1)  # never due while we measure
    started = time.perf_counter()
    for n in range(jobs):
        run_at = base + timedelta(seconds=(n * 7919) % (90 * 86400))
        scheduler.add_job(_noop, "date", run_date=run_at, id=f"deadline-{n}", misfire_grace_time=None)
    took = time.perf_counter() - started
    scheduler.shutdown(wait=False)
    engine.dispose()
    return took


def _peak(fn: Callable[[], Any]) -> int:
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def run(args: argparse.Namespace, folder: Path) -> bool:
    """Run every measurement, print the table, and say whether the targets were met."""
    incidents = max(100, int(100_000 * args.scale))
    total = incidents * RULES
    due = min(1000, total // 10)
    jobs = max(1000, int(100_000 * args.scale))
    sample = max(1000, jobs // 10)

    def url(name: str) -> str:
        return args.db or f"sqlite:///{folder / name}"

    print(
        f"breach checker benchmark: {total:,} deadlines over {incidents:,} incidents, {due:,} due; "
        f"{jobs:,} APScheduler jobs; database {'SQLite' if not args.db else args.db.split('://')[0]}"
    )
    db = Db(url("deadlines.db"))
    try:
        started = time.perf_counter()
        _incidents(db, incidents)
        print(f"  set up {incidents:,} incidents in {time.perf_counter() - started:.1f}s", flush=True)
        ours_setup = insert_deadlines(db, 0, jobs, due, incidents)
        rest = insert_deadlines(db, jobs, total, due, incidents)
        print(f"  set up {total:,} deadlines in {ours_setup + rest:.1f}s", flush=True)
        ours_disk = db.size(["deadline"])
        scan = bench_scan(db, due, args.repeat)
        full = bench_full_scan(db, due)
        typed = insert_deadlines_typed(db, jobs)
    finally:
        db.drop()
    aps_db = Db(url("aps.db")) if args.db else None
    aps_url = aps_db.url if aps_db else url("aps.db")
    print(f"  adding {jobs:,} APScheduler jobs ...", flush=True)
    aps_time = aps_setup(aps_url, jobs)
    aps_disk = aps_db.size(["apscheduler_jobs"]) if aps_db else file_size(aps_url)
    if aps_db:
        aps_db.drop()
    # Peak Python memory while setting up the same sample with each design, in fresh databases.
    mem_db = Db(url("mem_deadlines.db"))
    _incidents(mem_db, max(1, sample // RULES))
    ours_mem = _peak(lambda: insert_deadlines(mem_db, 0, sample, 0, max(1, sample // RULES)))
    mem_db.drop()
    mem_aps = Db(url("mem_aps.db")) if args.db else None
    aps_mem = _peak(lambda: aps_setup(mem_aps.url if mem_aps else url("mem_aps.db"), sample))
    if mem_aps:
        mem_aps.drop()
    ours_share = max(ours_disk * jobs / total, 1)
    rows = [
        (
            "scan: query for the due rows",
            f"{scan['ours'] * 1000:.2f} ms",
            f"{scan['raw'] * 1000:.2f} ms (raw SQL)",
            f"{scan['ours'] / scan['raw']:.2f}x raw",
            "<= 2x",
        ),
        ("scan: decide + record all due", f"{full * 1000:.0f} ms", "", "", "info"),
        (
            f"set-up: {jobs:,} deadlines",
            f"{ours_setup:.2f} s",
            f"{aps_time:.1f} s (APScheduler jobs)",
            f"{aps_time / ours_setup:.0f}x faster",
            ">= 20x",
        ),
        (
            "  the same through SQLAlchemy Core, typed",
            f"{typed:.2f} s",
            "",
            f"{aps_time / typed:.0f}x faster",
            "info",
        ),
        (
            f"set-up peak heap, {sample:,} items",
            f"{ours_mem / 1e3:.0f} KB",
            f"{aps_mem / 1e3:.0f} KB",
            f"{aps_mem / max(ours_mem, 1):.0f}x less",
            "info",
        ),
        (
            f"on disk per {jobs:,} (ours: share of {total:,})",
            f"{ours_share / 1e6:.1f} MB",
            f"{aps_disk / 1e6:.1f} MB",
            f"{ours_share / aps_disk:.1f}x larger"
            if ours_share > aps_disk
            else f"{aps_disk / ours_share:.1f}x less",
            "info: our rows carry basis, explain, warnings",
        ),
    ]
    widths = [
        max(len(str(r[i])) for r in [*rows, ("what", "ours", "baseline", "ratio", "target")])
        for i in range(5)
    ]
    header = ("what", "ours", "baseline", "ratio", "target")
    for line in (header, tuple("-" * w for w in widths), *rows):
        print("  ".join(str(cell).ljust(w) for cell, w in zip(line, widths, strict=True)))
    ok = scan["ours"] / scan["raw"] <= 2 and aps_time / ours_setup >= 20
    print("targets met" if ok else "TARGETS MISSED")
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the full sizes (default 1.0)")
    parser.add_argument("--db", default=None, help="SQLAlchemy URL (default: a temporary SQLite file)")
    parser.add_argument("--repeat", type=int, default=25, help="timed repetitions of each query")
    args = parser.parse_args()
    # The temporary folder (SQLite files) goes away however the run ends.
    with tempfile.TemporaryDirectory(prefix="breach-bench-") as folder:
        ok = run(args, Path(folder))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
