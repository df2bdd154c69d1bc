"""Accepted advances per second with 1, 4 and 8 operator processes, on SQLite and PostgreSQL.

Each worker process loops for a fixed time: it picks one of a small pool of incidents (all in
``regulator_report``) and fires the repeatable ``supplementary_report`` trigger through the engine, having
read the incident's version first, as an operator would. A conflict (someone else moved the incident in
between) is counted, not retried. Beside it, the same workers run a raw-SQL baseline doing the same
optimistic write (version-checked UPDATE + event INSERT in one transaction), so the ratio shows what the
engine's guards, machine, audit hashing and ORM cost under contention.

    .venv/bin/python bench/concurrency.py [--seconds 5] [--pool 16] [--db sqlite|postgresql|both]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import random
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

PG_BASE = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
ZONE = "Asia/Shanghai"
PHASES = [
    (
        ["stop_transfer", "preserve_evidence", "establish_scope", "start_investigation", "grade_incident"],
        "contain",
    ),
    (["notify_client_companies", "notify_individuals", "offer_remedies", "keep_notice_records"], "notify"),
]


def _store(url: str):
    from engine.store.db import Store

    return Store(url)


def prepare(url: str, pool: int) -> list[str]:
    """An upgraded database with ``pool`` incidents waiting in regulator_report."""
    from engine.incidents import flow
    from engine.incidents.opening import open_incident
    from engine.incidents.tasks import complete_task
    from engine.migrations.migrate import upgrade
    from engine.playbooks.catalog import PlaybookCatalog
    from engine.workspace import Workspace

    store = _store(url)
    upgrade(store)
    source = PlaybookCatalog(Workspace.resolve(Path(__file__).resolve().parent.parent)).get("cn-agency-firm")
    ids = []
    for _ in range(pool):
        inc = open_incident(
            store,
            source=source,
            title="bench",
            actor="bench",
            zone=ZONE,
            discovered_at=datetime.now(UTC) - timedelta(hours=1),
        )
        for tasks, trigger in PHASES:
            for task in tasks:
                complete_task(store, inc.id, task, actor="bench")
            flow.advance(store, inc.id, trigger, actor="bench", zone=ZONE)
        ids.append(inc.id)
    store.dispose()
    return ids


def engine_worker(url: str, ids: list[str], seconds: float, seed: int, out: mp.Queue) -> None:
    """Fire supplementary_report on random incidents until time is up; report (accepted, conflicts)."""
    from engine.errors import Conflict
    from engine.incidents import flow
    from engine.incidents.tables import Incident

    store = _store(url)
    rng = random.Random(seed)
    accepted = conflicts = 0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        incident_id = rng.choice(ids)
        with store.read() as session:  # what the operator saw
            seen = session.get(Incident, incident_id).version
        try:
            flow.advance(
                store,
                incident_id,
                "supplementary_report",
                actor=f"w{seed}",
                zone=ZONE,
                reason="bench",
                expected_version=seen,
            )
            accepted += 1
        except Conflict:
            conflicts += 1
    store.dispose()
    out.put((accepted, conflicts))


def raw_worker(url: str, ids: list[str], seconds: float, seed: int, out: mp.Queue) -> None:
    """The same optimistic write in raw SQL: read version, UPDATE ... WHERE version = ?, INSERT event."""
    rng = random.Random(seed)
    if url.startswith("sqlite"):
        import sqlite3

        conn = sqlite3.connect(url.split(":///", 1)[1], timeout=30, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        mark, begin = "?", "BEGIN IMMEDIATE"
    else:
        import psycopg

        conn = psycopg.connect("postgresql://" + url.split("://", 1)[1], autocommit=True)
        mark, begin = "%s", "BEGIN"
    accepted = conflicts = 0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        incident_id = rng.choice(ids)
        seen = conn.execute(
            f"SELECT version, event_count FROM incident WHERE id = {mark}", (incident_id,)
        ).fetchone()
        conn.execute(begin)
        cur = conn.execute(
            f"UPDATE incident SET version = version + 1, event_count = event_count + 1, audit_head = {mark} "
            f"WHERE id = {mark} AND version = {mark}",
            (uuid.uuid4().hex, incident_id, seen[0]),
        )
        if cur.rowcount == 1:
            conn.execute(
                'INSERT INTO event (incident_id, seq, at, actor, kind, "trigger", from_state, to_state, '
                "reason, "
                f"inputs, prev_hash, hash) VALUES ({', '.join([mark] * 12)})",
                (
                    incident_id,
                    seen[1] + 1,
                    datetime.now(UTC).replace(tzinfo=None),
                    "raw",
                    "trigger",
                    "supplementary_report",
                    "regulator_report",
                    "regulator_report",
                    "bench",
                    "{}",
                    "0" * 64,
                    uuid.uuid4().hex + uuid.uuid4().hex,
                ),
            )
            conn.execute("COMMIT")
            accepted += 1
        else:
            conn.execute("ROLLBACK")
            conflicts += 1
    conn.close()
    out.put((accepted, conflicts))


def run(url: str, ids: list[str], workers: int, seconds: float, target) -> tuple[float, float]:
    """Start ``workers`` processes at once; return (accepted per second, conflict rate)."""
    ctx = mp.get_context("spawn")
    out: mp.Queue = ctx.Queue()
    procs = [ctx.Process(target=target, args=(url, ids, seconds, i, out)) for i in range(workers)]
    for p in procs:
        p.start()
    totals = [out.get(timeout=seconds + 120) for _ in procs]
    for p in procs:
        p.join()
    accepted = sum(a for a, _ in totals)
    attempts = accepted + sum(c for _, c in totals)
    return accepted / seconds, (attempts - accepted) / attempts if attempts else 0.0


def database(kind: str, tmp: Path) -> tuple[str, object]:
    """A fresh database URL of ``kind`` and a cleanup callable."""
    if kind == "sqlite":
        return f"sqlite:///{tmp / f'bench-{uuid.uuid4().hex[:6]}.db'}", lambda: None
    import psycopg

    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect("postgresql://" + PG_BASE.split("://", 1)[1], autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')

    def drop() -> None:
        with psycopg.connect("postgresql://" + PG_BASE.split("://", 1)[1], autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')

    return f"{PG_BASE}?options=-csearch_path%3D{schema}", drop


def main() -> None:
    """Print advances/s and conflict rates, engine beside raw SQL, per database and worker count."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--pool", type=int, default=16, help="incidents the workers compete for")
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    args = parser.parse_args()
    kinds = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    print(
        f"{'db':<11} {'procs':>5} {'engine/s':>9} {'conflicts':>9} {'raw SQL/s':>9} "
        f"{'raw confl':>9} {'ratio':>6}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for kind in kinds:
            for workers in (1, 4, 8):
                url, cleanup = database(kind, Path(tmp))
                try:
                    ids = prepare(url, args.pool)
                    rate, conflict = run(url, ids, workers, args.seconds, engine_worker)
                    raw_rate, raw_conflict = run(url, ids, workers, args.seconds, raw_worker)
                finally:
                    cleanup()  # type: ignore[operator]
                print(
                    f"{kind:<11} {workers:>5} {rate:>9.0f} {conflict:>9.1%} {raw_rate:>9.0f} "
                    f"{raw_conflict:>9.1%} {raw_rate / rate if rate else float('inf'):>5.1f}x"
                )


if __name__ == "__main__":
    main()
