"""The dashboard and the status report: server time per page against a bare query of the same rows.

1. **Index with 1,000 incidents** (``--incidents``): ``GET /`` through the whole ASGI app in process
   (token guard, routing, filters, template, security headers) against the bare ``sqlite3`` queries of
   the same rows (the incidents, every running clock in due order, the playbook summaries), in the same
   process, alternating. Target: within 3x.
2. **Incident page with 100,000 people** (``--people``): one incident whose recipients were all
   delivered over several hours (rows bulk-inserted with raw SQL), ``GET /incidents/ID`` against the
   bare queries the page runs (incident, tasks, clocks, recipients per channel, deliveries by outcome
   and per minute, formal documents). The clock chart is drawn again each new minute and the progress
   chart when deliveries change: "cold" times a page whose charts must be drawn, "warm" a reload
   within the minute. Target: within 3x.
3. **``breach report ID``** for that incident, HTML and PDF, as the operator runs it (a new process),
   beside ``python -c pass``. Target: within 2 s.

Usage: ``python bench/web.py [--incidents 1000] [--people 100000] [--rounds 15]``
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from _common import ZONE, builtin_source, median, open_store


def build(folder: Path, incidents: int, people: int) -> str:
    """A workspace with ``incidents`` incidents (a third of them ten days old) and one with ``people``."""
    from engine.incidents.opening import open_incident
    from engine.wiring import hooks_for
    from engine.workspace import Workspace

    store = open_store(folder / "breach.db")
    ws = Workspace.resolve(folder)
    hooks = hooks_for(ws)
    source = builtin_source()
    now = datetime.now(UTC)
    for i in range(incidents):
        open_incident(
            store,
            source=source,
            title=f"事件 {i}",
            actor="bench",
            zone=ZONE,
            drill=i % 10 == 0,
            discovered_at=now - timedelta(days=10 if i % 3 == 0 else 0.1),
            facts={"people_affected": 1000 + i, "records": {"property": 1000 + i}},
            hooks=hooks,
        )
    big = open_incident(
        store,
        source=source,
        title="十万人",
        actor="bench",
        zone=ZONE,
        discovered_at=now - timedelta(hours=8),
        facts={"people_affected": people, "records": {"property": people}},
        hooks=hooks,
    ).id
    store.dispose()
    stamp = now.replace(tzinfo=None)
    with sqlite3.connect(folder / "breach.db") as db:
        db.executemany(
            "INSERT INTO person (id, incident_id, customer_id, type, name, email, locale, channel, "
            "categories, identifiers, imported_at, import_sha256) "
            "VALUES (?, ?, ?, 'person', ?, ?, 'zh-CN', ?, 'name', '[]', ?, ?)",
            (
                (
                    i + 1,
                    big,
                    f"P-{i:07d}",
                    f"用户{i}",
                    f"u{i}@example.com",
                    "email" if i % 10 else "sms",
                    stamp.isoformat(sep=" "),
                    "0" * 64,
                )
                for i in range(people)
            ),
        )
        db.executemany(
            "INSERT INTO document (id, incident_id, kind, fmt, subject, person_id, person_ref, path, sha256, "
            "template, template_sha256, created_at, created_by) VALUES (?, ?, 'customer_notice', ?, ?, ?, ?, "
            "?, ?, 't', ?, ?, 'bench')",
            (
                (
                    i + 1,
                    big,
                    "eml" if i % 10 else "sms",
                    f"P-{i:07d}",
                    i + 1,
                    f"P-{i:07d}",
                    f"/x/{i}",
                    "0" * 64,
                    "0" * 64,
                    stamp.isoformat(sep=" "),
                )
                for i in range(people)
            ),
        )
        # Delivered over seven hours, a few failed or held in doubt.
        db.executemany(
            "INSERT INTO delivery (incident_id, person_id, document_id, kind, channel, message_id, "
            "status, attempts, in_doubt, next_attempt_at, sent_at, created_at) "
            "VALUES (?, ?, ?, 'customer_notice', ?, ?, ?, 1, 0, ?, ?, ?)",
            (
                (
                    big,
                    i + 1,
                    i + 1,
                    "email" if i % 10 else "sms",
                    f"<{i}@bench>",
                    "failed" if i % 997 == 0 else "sent",
                    stamp.isoformat(sep=" "),
                    (stamp - timedelta(hours=7) + timedelta(seconds=i * 0.25)).isoformat(sep=" "),
                    stamp.isoformat(sep=" "),
                )
                for i in range(people)
            ),
        )
    return big


async def served(app: object, path: str) -> float:
    """Server time of one GET: the ASGI app called directly (guard, routing, worker thread, template,
    headers), no HTTP client or socket in the way."""
    target, _, query = path.partition("?")
    scope = {
        "type": "http",
        "method": "GET",
        "path": target,
        "raw_path": target.encode(),
        "query_string": query.encode(),
        "headers": [(b"host", b"127.0.0.1")],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 8470),
        "scheme": "http",
        "http_version": "1.1",
        "root_path": "",
    }
    status: list[int] = []

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, object]) -> None:
        if message["type"] == "http.response.start":
            status.append(int(message["status"]))  # type: ignore[call-overload]

    start = time.perf_counter()
    await app(scope, receive, send)  # type: ignore[operator]
    elapsed = time.perf_counter() - start
    assert status == [200], (path, status)
    return elapsed


async def statements(app: object, path: str) -> list[tuple[str, tuple[object, ...]]]:
    """The SQL statements (and parameters) one request of ``path`` runs, recorded from the read model."""
    from engine.store import readmodel

    recorded: list[tuple[str, tuple[object, ...]]] = []
    original = readmodel.Reader.rows

    def recording(
        self: readmodel.Reader, sql: str, params: tuple[object, ...] = ()
    ) -> list[dict[str, object]]:
        recorded.append((sql, tuple(params)))
        return original(self, sql, params)

    readmodel.Reader.rows = recording  # type: ignore[method-assign]
    try:
        await served(app, path)
    finally:
        readmodel.Reader.rows = original  # type: ignore[method-assign]
    return recorded


def bare(db: sqlite3.Connection, recorded: list[tuple[str, tuple[object, ...]]]) -> float:
    """The same statements straight through ``sqlite3``, every row fetched, nothing else."""
    start = time.perf_counter()
    for sql, params in recorded:
        db.execute(sql, params).fetchall()
    return time.perf_counter() - start


def cold_charts() -> None:
    """Forget every drawn chart, as a new minute or new deliveries would."""
    from engine.report import charts

    charts._clock_svg.cache_clear()
    charts._progress_svg.cache_clear()


async def pages(app: object, db: sqlite3.Connection, big: str, rounds: int) -> dict[str, list[float]]:
    """Index and incident page against their bare queries, alternating round by round."""
    index_sql = await statements(app, "/")
    page_sql = await statements(app, f"/incidents/{big}")
    times: dict[str, list[float]] = {k: [] for k in ("index", "index_bare", "cold", "warm", "page_bare")}
    for _ in range(rounds):
        times["index_bare"].append(bare(db, index_sql))
        times["index"].append(await served(app, "/"))
        times["page_bare"].append(bare(db, page_sql))
        cold_charts()
        times["cold"].append(await served(app, f"/incidents/{big}"))
        times["warm"].append(await served(app, f"/incidents/{big}"))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--incidents", type=int, default=1000)
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    import asyncio

    from engine.web.app import create_app
    from engine.workspace import Workspace

    with tempfile.TemporaryDirectory(prefix="breach-bench-web-") as tmp:
        folder = Path(tmp)
        t0 = time.perf_counter()
        big = build(folder, args.incidents, args.people)
        took = time.perf_counter() - t0
        print(f"built {args.incidents} incidents and one with {args.people:,} people in {took:.0f}s")
        db = sqlite3.connect(f"file:{folder / 'breach.db'}?mode=ro", uri=True)
        app = create_app(Workspace.resolve(folder), always_required=False)
        t = asyncio.run(pages(app, db, big, args.rounds))
        ms = lambda values: median(values) * 1000  # noqa: E731
        ratio = lambda a, b: median(t[a]) / median(t[b])  # noqa: E731
        print(
            f"index, {args.incidents} incidents: {ms(t['index']):.1f} ms, "
            f"bare queries {ms(t['index_bare']):.1f} ms, "
            f"ratio {ratio('index', 'index_bare'):.2f}x (target <= 3x)"
        )
        print(
            f"incident page, {args.people:,} people: warm {ms(t['warm']):.1f} ms, cold (charts drawn) "
            f"{ms(t['cold']):.1f} ms, bare queries {ms(t['page_bare']):.1f} ms, ratio warm "
            f"{ratio('warm', 'page_bare'):.2f}x, cold {ratio('cold', 'page_bare'):.2f}x (target <= 3x)"
        )
        env = {**os.environ, "BREACH_HOME": str(folder)}
        env.pop("BREACH_DATABASE_URL", None)
        breach = str(Path(sys.executable).with_name("breach"))
        for fmt in ("html", "pdf"):
            times, base = [], []
            for _ in range(3):
                start = time.perf_counter()
                subprocess.run(
                    [breach, "report", big, "--format", fmt], env=env, check=True, capture_output=True
                )
                times.append(time.perf_counter() - start)
                start = time.perf_counter()
                subprocess.run([sys.executable, "-c", "pass"], check=True)
                base.append(time.perf_counter() - start)
            print(
                f"breach report --format {fmt}: {median(times):.2f} s, "
                f"python -c pass {median(base) * 1000:.0f} ms "
                "(target <= 2 s)"
            )


if __name__ == "__main__":
    main()
