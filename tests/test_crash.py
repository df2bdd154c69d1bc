"""Crash battery: SIGKILL the real commands at random points, run them again, nothing missing or twice.

For each of ``breach notices render``, ``breach notices send`` and ``breach deadlines check``, every trial
runs the command in its own process against a prepared workspace, SIGKILLs it at a random point (one to
three kills, each in a new run), then runs it again to completion and checks what it left:

- **render** (400 recipients, one notice each in its channel's format, pages of 25): exactly one
  ``document`` row per expected (kind, format, recipient) and none other; every file's sha256 is the
  recorded one; the folder holds exactly the recorded files (no temporaries, no orphans); the audit
  chain verifies.
- **send** (the same 400, 200 of them by email, to a real SMTP server on loopback counting raw arrivals):
  one ``delivery`` per email recipient, all ``sent``; every Message-ID arrived, addressed to its person;
  an id arrived more than once only if the engine marked its delivery in doubt, and every repeat carries
  the ``X-Breach-Delivery`` marker; in-doubt deliveries and repeats are each at most one per kill (a
  sender has one message in its hand-off window at a time), which is the documented window's bound.
- **check** (40 incidents: 64 warnings and missed-deadline alerts, each to the log, an SMTP server and a
  webhook on loopback): each (incident, rule, kind) decided once and as the clock says; each delivery
  arrived on its channel; repeats only for in-doubt deliveries, marked (``X-Breach-Delivery``,
  ``X-Breach-In-Doubt``, ``in-doubt-resend``), at most one per kill; deadline statuses as expected.

Trials: ``BREACH_CRASH_TRIALS`` (default 20) per command on SQLite, each on a copy of one template
database prepared per module; ``BREACH_CRASH_PG_TRIALS`` (default 4) per command on PostgreSQL, each in a
fresh schema prepared in-process. Trials run in ``BREACH_CRASH_WORKERS`` (default 2) lanes, each with its
own receivers. The whole file took 2.5 to 3.5 minutes on this 2-core machine while other test suites
shared it (load average 2.5 to 5); ``-s`` prints one line per trial and a summary per battery.

Processes: in every fifth trial each run, killed or final, is the installed ``breach`` (kills then also
land in interpreter start-up and imports). The other trials start their runs from a fork server that has
imported the CLI once: each run is still its own process, forked, calling ``engine.cli.main`` (what the
``breach`` script calls) with its own environment, folder and output files; it only skips the second of
start-up, which would otherwise be most of the battery's time.

Kill points: three kills in four wait until the run's progress (files written, messages arrived) reaches a
random point of the work left, plus up to 20 ms; the others wait a random time from the start (0.6-2.2 s
for the installed command, 0-1 s for a forked run: start-up, freezing the content, deciding alerts, the
render inside ``send``). ``BREACH_CRASH_SEED`` fixes every trial's plan (kill count, kinds of kill
points, fractions, delays, jitter); the instants still depend on the machine. Any failure names the seed,
the trial and its kill points.

Leases: a killed ``notices send`` is taken over at once (its claims name a dead process of this host). A
killed ``deadlines check`` keeps its claims until its lease (3.2 s) runs out: trials with the installed
command wait for that in real time; the others move the dead process's ``lease_until`` into the past first,
which is exactly what waiting does (the killed process is reaped before, so nobody else held those claims).

The last test pins a bug found on the way: a render killed after its documents were recorded but before
its audit event left them unaudited; the next run's event now covers them.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import BREACH, PG_BASE, REPO, _pg_conninfo, pg_enabled
from escalation_servers import HookServer, SmtpServer, settings_toml
from sqlalchemy import func, select, update
from test_people import DATA, do_import, give_content, open_incident

from engine.deadlines.escalation import DEADLINE, ESCALATION
from engine.deadlines.escalation import DELIVERY as ESC_DELIVERY
from engine.documents.registry import DOCUMENT
from engine.incidents import opening
from engine.incidents.audit import verify_chain
from engine.incidents.tables import Incident
from engine.migrations.migrate import upgrade
from engine.notices.delivery import DELIVERY as NOTICE_DELIVERY
from engine.notices.people import PERSON
from engine.store.db import Store
from engine.wiring import hooks_for
from engine.workspace import Workspace

pytestmark = pytest.mark.slow

SEED = int(os.environ.get("BREACH_CRASH_SEED", "20260611"))
TRIALS = int(os.environ.get("BREACH_CRASH_TRIALS", "20"))
PG_TRIALS = int(os.environ.get("BREACH_CRASH_PG_TRIALS", "4"))
WORKERS = max(1, int(os.environ.get("BREACH_CRASH_WORKERS", "2")))
ZONE = "Asia/Shanghai"
COPIES = 50  # of tests/data/people/agency.csv: 400 recipients, 200 of them by email
FORMAT_OF = {"email": "eml", "sms": "sms", "post": "html"}
FIRM = """[firm]
name = "示例财税咨询有限公司"
address = "北京市海淀区示例路88号"
legal_representative = "周明"
contact_name = "李静"
contact_phone = "400-800-0000"
contact_email = "privacy@example-tax.cn"
contact_hours = "工作日 9:00–18:00"
protection_officer = "法务部 周宁（个人信息保护负责人）"
"""
# Hours since discovery, and the alerts the first scan owes (24 h client target, 72 h regulator and
# individuals targets, warnings at 50 % and 90 %); none is within an hour of changing.
HOURS = (80, 40, 23, 18, 5)
OWED = {
    80: {
        "POLICY-CLIENT-NOTICE": "missed",
        "POLICY-PIPL57-REGULATOR": "missed",
        "POLICY-PIPL57-INDIVIDUALS": "missed",
    },
    40: {
        "POLICY-CLIENT-NOTICE": "missed",
        "POLICY-PIPL57-REGULATOR": "warn:50%",
        "POLICY-PIPL57-INDIVIDUALS": "warn:50%",
    },
    23: {"POLICY-CLIENT-NOTICE": "warn:90%"},
    18: {"POLICY-CLIENT-NOTICE": "warn:50%"},
    5: {},
}
STATUS_OF = {"missed": "missed", "warn:50%": "warned", "warn:90%": "warned"}
GROUPS = 8  # of HOURS: 40 incidents, 64 alerts, 192 deliveries
LEASE = 3.2  # longer than the SMTP channel's 6 x 0.5 s budget
_LOG_LINE = re.compile(r"^escalation .* id=(<[^>]+>)( in-doubt-resend)?$")


# --- preparing workspaces ------------------------------------------------------------------------------


def recipients_csv(folder: Path) -> tuple[Path, set[tuple[str, str, str]], dict[str, str]]:
    """``COPIES`` renamed copies of agency.csv; the notices they need and the email recipients."""
    rows = list(csv.DictReader(io.StringIO((DATA / "agency.csv").read_text(encoding="utf-8"))))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    expected: set[tuple[str, str, str]] = set()
    emails: dict[str, str] = {}
    for copy in range(COPIES):
        for original in rows:
            row = dict(original)
            row["customer_id"] = f"{row['customer_id']}-{copy:02d}"
            if row["employer"]:
                row["employer"] = f"{row['employer']}-{copy:02d}"
            if row["email"]:
                user, domain = row["email"].split("@")
                row["email"] = f"{user}.{copy}@{domain}"
            writer.writerow(row)
            if row["channel"] == "public":
                # Those reached only by announcement share one public statement, in Markdown and HTML.
                expected |= {("public_notice", "md", "v1-zh-CN"), ("public_notice", "html", "v1-zh-CN")}
                continue
            kind = "client_notice" if row["type"] == "company" else "customer_notice"
            expected.add((kind, FORMAT_OF[row["channel"]], row["customer_id"]))
            if row["channel"] == "email":
                emails[row["customer_id"]] = row["email"]
    path = folder / "recipients.csv"
    path.write_text(out.getvalue(), encoding="utf-8")
    return path, expected, emails


# Alembic runs migrations through module-level proxies (alembic.context, alembic.op): two upgrades at
# once in one process would mix up their connections, so the in-process preparation takes turns.
PREPARING = threading.Lock()


def prepare_people(db_url: str, source: Any, people: Path) -> str:
    """An incident with the recipient list imported; its id."""
    store = Store(db_url)
    try:
        with PREPARING:
            upgrade(store)
        incident = opening.open_incident(
            store,
            source=source,
            title="客户账套泄露",
            actor="alice",
            zone=ZONE,
            discovered_at=datetime.now(UTC) - timedelta(hours=2),
        ).id
        do_import(store, incident, people)
        give_content(store, incident)
        return incident
    finally:
        store.dispose()


def prepare_deadlines(db_url: str, home: Path, source: Any) -> dict[tuple[str, str], str]:
    """``GROUPS`` x ``HOURS`` incidents with their deadlines; the alert owed per (incident, rule)."""
    store = Store(db_url)
    try:
        with PREPARING:
            upgrade(store)
        hooks = hooks_for(Workspace.resolve(home, db_url))
        owed: dict[tuple[str, str], str] = {}
        for _group in range(GROUPS):
            for hours in HOURS:
                incident = opening.open_incident(
                    store,
                    source=source,
                    title="工资表泄露",
                    actor="alice",
                    zone=ZONE,
                    discovered_at=datetime.now(UTC) - timedelta(hours=hours),
                    hooks=hooks,
                ).id
                for rule in OWED[80]:
                    owed[(incident, rule)] = OWED[hours].get(rule, "")
        return owed
    finally:
        store.dispose()


def clone_sqlite(template: Path, target: Path) -> None:
    """A consistent copy of a SQLite database (the backup API, so a WAL never gets lost)."""
    src, dst = sqlite3.connect(template), sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()


@contextmanager
def pg_schema() -> Iterator[str]:
    """A fresh PostgreSQL schema, dropped afterwards; its URL pins the search_path to it."""
    import psycopg

    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_pg_conninfo(PG_BASE), autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{name}"')
    try:
        yield f"{PG_BASE}?options=-csearch_path%3D{name}"
    finally:
        with psycopg.connect(_pg_conninfo(PG_BASE), autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{name}" CASCADE')


# --- running and killing -------------------------------------------------------------------------------

# A fork server: one Python process per lane that has imported the CLI once and forks a child per run.
# The child sets the run's environment, folder and output files and calls engine.cli.main, the function
# the installed ``breach`` script calls; it skips only the second of interpreter start-up and imports.
FORK_SERVER = r"""
import json, os, sys, traceback
import engine.deadlines.checker, engine.cli.app, engine.notices.delivery
import engine.deadlines.escalation, engine.notices.send, engine.notices.render
from engine.cli import main

for line in sys.stdin:
    request = json.loads(line)
    if request["op"] == "start":
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            code = 70
            try:
                os.chdir(request["cwd"])
                os.environ.clear()
                os.environ.update(request["env"])
                flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
                os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
                os.dup2(os.open(request["stdout"], flags, 0o600), 1)
                os.dup2(os.open(request["stderr"], flags, 0o600), 2)
                sys.argv = ["breach", *request["argv"]]
                try:
                    main()
                    code = 0
                except SystemExit as exc:
                    code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
                except BaseException:
                    traceback.print_exc()
                    code = 1
                sys.stdout.flush()
                sys.stderr.flush()
            finally:
                os._exit(code)
        reply = {"pid": pid}
    else:
        done, status = os.waitpid(request["pid"], os.WNOHANG if request["op"] == "poll" else 0)
        reply = {"code": os.waitstatus_to_exitcode(status) if done else None}
    sys.stdout.write(json.dumps(reply) + "\n")
    sys.stdout.flush()
"""


class ForkServer:
    """Starts runs as children of a warmed-up fork server (see ``FORK_SERVER``)."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", FORK_SERVER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=REPO,
        )

    def ask(self, **request: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        assert line, "the fork server died"
        return json.loads(line)

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class Forked:
    """A run started by the fork server, with the part of ``Popen``'s interface the trials use."""

    def __init__(
        self, server: ForkServer, argv: list[str], env: dict[str, str], cwd: Path, err: Path, out: Any = None
    ) -> None:
        self.server = server
        self.returncode: int | None = None
        where = {"cwd": str(cwd), "stdout": str(out or os.devnull), "stderr": str(err)}
        self.pid = server.ask(op="start", argv=argv, env=env, **where)["pid"]

    def poll(self) -> int | None:
        if self.returncode is None:
            self.returncode = self.server.ask(op="poll", pid=self.pid)["code"]
        return self.returncode

    def wait(self) -> int:
        if self.returncode is None:
            self.returncode = self.server.ask(op="wait", pid=self.pid)["code"]
        return self.returncode

    def kill(self) -> None:
        if self.returncode is None:
            os.kill(self.pid, signal.SIGKILL)


@dataclass
class Trial:
    """One trial's workspace, its kill plan and what happened.

    Runs go through the fork server, except in every fifth trial (``real``), where every run, killed or
    final, is the installed ``breach`` (so kills also land in interpreter start-up and imports).
    """

    command: str
    number: int
    home: Path
    db_url: str
    external: bool  # the database is named by BREACH_DATABASE_URL (PostgreSQL)
    rng: random.Random
    server: ForkServer
    started: float = field(default_factory=time.monotonic)
    points: list[str] = field(default_factory=list)
    killed: int = 0
    logs: list[Path] = field(default_factory=list)

    @property
    def real(self) -> bool:
        return self.number % 5 == 0

    def env(self) -> dict[str, str]:
        env = {**os.environ, "BREACH_HOME": str(self.home), "COLUMNS": "200"}
        env.pop("BREACH_DATABASE_URL", None)
        env.pop("BREACH_FAILPOINT", None)
        if self.external:
            env["BREACH_DATABASE_URL"] = self.db_url
        return env

    def _log(self) -> Path:
        path = self.home / f"run-{len(self.logs)}.err"
        self.logs.append(path)
        return path

    def interrupt(self, argv: list[str], progress: Callable[[], int], total: int) -> None:
        """Start ``argv`` and SIGKILL it at a random point of its work (see the module docstring)."""
        by_time = self.rng.random() < 0.25
        # A real start spends its first second importing; a forked one starts working at once.
        delay = self.rng.uniform(0.6, 2.2) if self.real else self.rng.uniform(0.0, 1.0)
        fraction, jitter = self.rng.random(), self.rng.uniform(0, 0.02)
        log = self._log()
        proc: Any
        if self.real:
            with log.open("wb") as err:
                proc = subprocess.Popen(
                    [BREACH, *argv], env=self.env(), cwd=self.home, stdout=subprocess.DEVNULL, stderr=err
                )
        else:
            proc = Forked(self.server, argv, self.env(), self.home, log)
        started = time.monotonic()
        if by_time:
            point = f"{delay:.2f}s after start"

            def reached() -> bool:
                return time.monotonic() - started >= delay
        else:
            base = progress()
            target = base + int(fraction * max(0, total - base))
            point = f"progress {target}/{total} +{jitter * 1000:.0f}ms"

            def reached() -> bool:
                return progress() >= target

        try:
            while proc.poll() is None and not reached():
                assert time.monotonic() - started < 120, f"{self.command} made no progress for 120 s"
                time.sleep(0.002)
            if not by_time:
                time.sleep(jitter)
            if proc.poll() is None:
                proc.kill()
                self.killed += 1
            else:
                point += " (it finished first)"
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        self.points.append(point)

    def run(self, argv: list[str]) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` to its end (the same way as the trial's killed runs); keep its stderr."""
        log = self._log()
        if self.real:
            result = subprocess.run(
                [BREACH, *argv], env=self.env(), cwd=self.home, capture_output=True, text=True, timeout=180
            )
            log.write_text(result.stderr, encoding="utf-8")
        else:
            out = log.with_suffix(".out")
            code = Forked(self.server, argv, self.env(), self.home, log, out).wait()
            result = subprocess.CompletedProcess(
                argv, code, out.read_text(encoding="utf-8"), log.read_text(encoding="utf-8")
            )
        assert "Traceback" not in result.stderr, result.stderr
        return result

    def describe(self) -> str:
        mode = "installed breach" if self.real else "forked runs"
        return (
            f"{self.command} trial {self.number} (BREACH_CRASH_SEED={SEED}; {mode}; "
            f"kills: {'; '.join(self.points) or 'none'})"
        )


@dataclass
class Tally:
    """A battery's totals, for the summary line."""

    trials: int = 0
    kills: int = 0
    doubtful: int = 0
    repeats: int = 0

    def add(self, trial: Trial, doubtful: int = 0, repeats: int = 0) -> None:
        self.trials += 1
        self.kills += trial.killed
        self.doubtful += doubtful
        self.repeats += repeats


def battery(
    command: str,
    backend: str,
    servers: Callable[[], Any],
    one_trial: Callable[[int, random.Random, Any, ForkServer], tuple[Trial, int, int]],
) -> None:
    """Run the trials of a battery in ``WORKERS`` lanes, each lane with its own receivers.

    Trials are independent (own workspace, database and receivers), so lanes only share the machine.
    A trial's plan comes from its own seeded generator, whatever lane runs it.
    """
    count = TRIALS if backend == "sqlite" else PG_TRIALS
    numbers = list(range(count))
    lanes = [numbers[k::WORKERS] for k in range(min(WORKERS, count))]
    tally = Tally()
    lock = threading.Lock()
    failed = threading.Event()
    started = time.monotonic()

    def lane(assigned: list[int]) -> None:
        forks = ForkServer()
        try:
            with servers() as receivers:
                for number in assigned:
                    if failed.is_set():
                        return
                    rng = random.Random(f"{SEED}:{command}:{backend}:{number}")
                    try:
                        trial, doubtful, repeats = one_trial(number, rng, receivers, forks)
                    except AssertionError as exc:
                        failed.set()
                        if "BREACH_CRASH_SEED" in str(exc):
                            raise
                        where = f"{command} trial {number} ({backend}; BREACH_CRASH_SEED={SEED})"
                        raise AssertionError(f"{where}: {exc}") from exc
                    except BaseException:
                        failed.set()
                        raise
                    with lock:
                        tally.add(trial, doubtful, repeats)
        finally:
            forks.close()

    with ThreadPoolExecutor(len(lanes)) as pool:
        futures = [pool.submit(lane, assigned) for assigned in lanes]
        errors = [f.exception() for f in futures]
    for error in errors:
        if error is not None:
            raise error
    print(
        f"{command} battery ({backend}): {tally.trials} trials, {tally.kills} kills, {tally.doubtful} "
        f"deliveries in doubt, {tally.repeats} repeated arrivals, {time.monotonic() - started:.0f}s"
    )


@contextmanager
def trial_database(backend: str, home: Path, template: Path | None) -> Iterator[tuple[str, bool]]:
    """The trial's database URL: a copy of the SQLite template, or a fresh PostgreSQL schema."""
    if backend == "sqlite":
        assert template is not None
        clone_sqlite(template, home / "breach.db")
        yield f"sqlite:///{home / 'breach.db'}", False
    else:
        with pg_schema() as url:
            yield url, True


def checked(trial: Trial, verify: Callable[[Store], tuple[int, int]]) -> tuple[Trial, int, int]:
    """Run the trial's checks on its database; a failure names the seed, the trial and its kill points."""
    store = Store(trial.db_url)
    try:
        doubtful, repeats = verify(store)
    except AssertionError as exc:
        raise AssertionError(f"{trial.describe()}: {exc}") from exc
    finally:
        store.dispose()
    print(f"{trial.describe()}: ok in {time.monotonic() - trial.started:.1f}s")
    return trial, doubtful, repeats


def kill_plan(trial: Trial, argv: list[str], progress: Callable[[], int], total: int) -> None:
    """One to three killed runs (one more often than not)."""
    for _ in range(trial.rng.choice((1, 1, 2, 3))):
        trial.interrupt(argv, progress, total)


def backend_param() -> Any:
    return pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.pg)])


def skip_without_pg(backend: str) -> None:
    if backend == "postgresql" and not pg_enabled():
        pytest.skip("BREACH_TEST_PG=0")


@contextmanager
def no_servers() -> Iterator[None]:
    yield None


# --- checks --------------------------------------------------------------------------------------------


def check_documents(store: Store, incident: str, folder: Path, expected: set[tuple[str, str, str]]) -> None:
    """One row per expected document and none other; each file intact; no stray file in the folder."""
    with store.read() as s:
        rows = s.execute(
            select(DOCUMENT.c.kind, DOCUMENT.c.fmt, DOCUMENT.c.subject, DOCUMENT.c.path, DOCUMENT.c.sha256)
            .where(DOCUMENT.c.incident_id == incident)
            .order_by(DOCUMENT.c.id)
        ).all()
        chain = verify_chain(s, s.get(Incident, incident))
    keys = Counter((r.kind, r.fmt, r.subject) for r in rows)
    twice = sorted(k for k, n in keys.items() if n > 1)
    assert not twice, f"documents recorded twice: {twice[:5]}"
    assert not expected - set(keys), f"documents missing: {sorted(expected - set(keys))[:5]}"
    assert not set(keys) - expected, f"documents not expected: {sorted(set(keys) - expected)[:5]}"
    for row in rows:
        path = Path(row.path)
        assert path.parent == folder, row.path
        assert hashlib.sha256(path.read_bytes()).hexdigest() == row.sha256, f"{path.name}: hash differs"
    on_disk = sorted(os.listdir(folder))
    assert on_disk == sorted(Path(r.path).name for r in rows), (
        f"stray files: {sorted(set(on_disk) - {Path(r.path).name for r in rows})[:5]}"
    )
    assert chain.ok, chain


def check_arrivals(channel: str, rows: list[Any], arrived: list[tuple[str, bool]]) -> int:
    """Each row's message id arrived; repeats only for in-doubt rows and marked; return the repeats."""
    counts = Counter(mid for mid, _ in arrived)
    marked = Counter(mid for mid, flag in arrived if flag)
    known = {r.message_id for r in rows}
    assert not set(counts) - known, f"{channel}: unknown ids arrived: {sorted(set(counts) - known)[:3]}"
    missing = [r.message_id for r in rows if counts[r.message_id] == 0]
    assert not missing, f"{channel}: {len(missing)} never arrived, e.g. {missing[:3]}"
    doubtful = {r.message_id for r in rows if r.in_doubt}
    for mid, n in counts.items():
        if n > 1:
            assert mid in doubtful, f"{channel}: {mid} arrived {n} times but is not marked in doubt"
            assert marked[mid] >= n - 1, f"{channel}: {mid} repeated without the in-doubt marker"
    assert set(marked) <= doubtful, f"{channel}: marked resends of deliveries not in doubt"
    return sum(n - 1 for n in counts.values())


# --- the batteries -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def people(tmp_path_factory: pytest.TempPathFactory, builtin_source: Any) -> dict[str, Any]:
    """The recipient list, and a SQLite template database with an incident that has it imported."""
    folder = tmp_path_factory.mktemp("people-template")
    path, expected, emails = recipients_csv(folder)
    incident = prepare_people(f"sqlite:///{folder / 'breach.db'}", builtin_source, path)
    return {
        "csv": path,
        "template": folder / "breach.db",
        "incident": incident,
        "expected": expected,
        "emails": emails,
    }


@pytest.fixture(scope="module")
def deadlines(tmp_path_factory: pytest.TempPathFactory, builtin_source: Any) -> dict[str, Any]:
    """A SQLite template database with 40 incidents whose deadlines owe 64 alerts now."""
    folder = tmp_path_factory.mktemp("deadline-template")
    owed = prepare_deadlines(f"sqlite:///{folder / 'breach.db'}", folder, builtin_source)
    return {"template": folder / "breach.db", "owed": owed}


def new_home(root: Path, name: str, settings: str) -> Path:
    home = root / name
    (home / "config").mkdir(parents=True)
    (home / "config" / "settings.toml").write_text(settings, encoding="utf-8")
    return home


def _assert_exit(result: subprocess.CompletedProcess[str], code: int) -> None:
    assert result.returncode == code, (result.returncode, result.stdout[-500:], result.stderr[-2000:])


@backend_param()
def test_render_survives_sigkill(backend: str, people: dict[str, Any], builtin_source: Any, tmp_path: Path):
    """Killed renders, run again: every recipient has exactly one intact document, no stray file."""
    skip_without_pg(backend)
    settings = FIRM + "[notices]\nbatch_size = 25\n"

    def one_trial(
        number: int, rng: random.Random, _receivers: None, forks: ForkServer
    ) -> tuple[Trial, int, int]:
        home = new_home(tmp_path, f"t{number}", settings)
        with trial_database(backend, home, people["template"]) as (url, external):
            incident = people["incident"]
            if external:
                incident = prepare_people(url, builtin_source, people["csv"])
            trial = Trial("notices render", number, home, url, external, rng, forks)
            folder = (home / "out" / incident).resolve()
            argv = ["notices", "render", incident]

            def files() -> int:
                try:
                    return sum(not name.startswith(".") for name in os.listdir(folder))
                except FileNotFoundError:
                    return 0

            kill_plan(trial, argv, files, len(people["expected"]))
            result = trial.run(argv)

            def verify(store: Store) -> tuple[int, int]:
                _assert_exit(result, 0)
                check_documents(store, incident, folder, people["expected"])
                return 0, 0

            return checked(trial, verify)

    battery("notices render", backend, no_servers, one_trial)


@backend_param()
def test_send_survives_sigkill(backend: str, people: dict[str, Any], builtin_source: Any, tmp_path: Path):
    """Killed sends, run again: each email recipient got the notice; repeats only in doubt, bounded."""
    skip_without_pg(backend)
    emails: dict[str, str] = people["emails"]
    expected_docs = {k for k in people["expected"] if k[1] == "eml"}

    def one_trial(
        number: int, rng: random.Random, smtp: SmtpServer, forks: ForkServer
    ) -> tuple[Trial, int, int]:
        settings = FIRM + (
            f'[smtp]\nhost = "127.0.0.1"\nport = {smtp.port}\ntimeout_seconds = 2\n'
            'sender = "bounces@example-tax.cn"\n'
            "[notices]\nrate_per_second = 500\nretry_seconds = 0.1\nmax_wait_seconds = 20\n"
            "lease_seconds = 30\nbatch_size = 50\n"
        )
        home = new_home(tmp_path, f"t{number}", settings)
        with trial_database(backend, home, people["template"]) as (url, external):
            incident = people["incident"]
            if external:
                incident = prepare_people(url, builtin_source, people["csv"])
            trial = Trial("notices send", number, home, url, external, rng, forks)
            start = len(smtp.sink.messages)

            def arrivals() -> int:
                return len(smtp.sink.messages) - start

            argv = ["notices", "send", incident]
            kill_plan(trial, argv, arrivals, len(emails))
            result = trial.run(argv)
            with smtp.sink.lock:
                mails = smtp.sink.messages[start:]

            def verify(store: Store) -> tuple[int, int]:
                _assert_exit(result, 0)
                with store.read() as s:
                    rows = s.execute(
                        select(
                            NOTICE_DELIVERY.c.message_id,
                            NOTICE_DELIVERY.c.status,
                            NOTICE_DELIVERY.c.in_doubt,
                            PERSON.c.customer_id,
                            PERSON.c.email,
                        )
                        .join(PERSON, PERSON.c.id == NOTICE_DELIVERY.c.person_id)
                        .where(NOTICE_DELIVERY.c.incident_id == incident)
                    ).all()
                per_person = Counter(r.customer_id for r in rows)
                assert set(per_person) == set(emails), "not one delivery per email recipient"
                assert set(per_person.values()) == {1}, "a recipient with two deliveries"
                assert {r.status for r in rows} == {"sent"}, Counter(r.status for r in rows)
                arrived = [(str(m["Message-ID"]), m["X-Breach-Delivery"] is not None) for m in mails]
                repeats = check_arrivals("smtp", rows, arrived)
                address = {r.message_id: r.email for r in rows}
                for mail in mails:
                    assert address[str(mail["Message-ID"])] in str(mail["To"]), "sent to someone else"
                doubtful = sum(bool(r.in_doubt) for r in rows)
                assert doubtful <= trial.killed, f"{doubtful} in doubt after {trial.killed} kills"
                assert repeats <= trial.killed, f"{repeats} repeats after {trial.killed} kills"
                check_documents(store, incident, (home / "out" / incident).resolve(), expected_docs)
                return doubtful, repeats

            return checked(trial, verify)

    battery("notices send", backend, SmtpServer, one_trial)


def _release_dead_claims(store: Store, wait: bool) -> None:
    """Let the claims of killed checkers lapse: wait for their lease, or move it into the past."""
    d = ESC_DELIVERY.c
    with store.write() as s:
        now = store.db_now(s)
        until = s.execute(select(func.max(d.lease_until)).where(d.status == "sending")).scalar_one()
        if until is None:
            return
        if not wait:
            s.execute(
                update(ESC_DELIVERY)
                .where(d.status == "sending")
                .values(lease_until=now - timedelta(seconds=1))
            )
            return
    time.sleep(max(0.0, (until - now).total_seconds()) + 0.1)


@contextmanager
def smtp_and_hook() -> Iterator[tuple[SmtpServer, HookServer]]:
    with SmtpServer() as smtp, HookServer() as hook:
        yield smtp, hook


@backend_param()
def test_check_survives_sigkill(backend: str, deadlines: dict[str, Any], builtin_source: Any, tmp_path: Path):
    """Killed checks, run again: each alert decided once and arrived once per channel, repeats bounded."""
    skip_without_pg(backend)

    def one_trial(
        number: int, rng: random.Random, receivers: Any, forks: ForkServer
    ) -> tuple[Trial, int, int]:
        smtp, hook = receivers
        home = new_home(tmp_path, f"t{number}", settings_toml(smtp=smtp, hook=hook, timeout=0.5, lease=LEASE))
        with trial_database(backend, home, deadlines["template"]) as (url, external):
            owed = deadlines["owed"]
            if external:
                owed = prepare_deadlines(url, home, builtin_source)
            expected = {(i, rule, kind) for (i, rule), kind in owed.items() if kind}
            trial = Trial("deadlines check", number, home, url, external, rng, forks)
            s0, h0 = len(smtp.sink.ids()), len(hook.keys())

            def arrivals() -> int:
                return len(smtp.sink.ids()) - s0 + len(hook.keys()) - h0

            argv = ["deadlines", "check"]
            kill_plan(trial, argv, arrivals, 2 * len(expected))
            results = []
            store = Store(url)
            try:
                for _attempt in range(4):
                    _release_dead_claims(store, wait=trial.real)
                    results.append(trial.run(argv))
                    with store.read() as s:
                        unsettled = s.execute(
                            select(func.count()).where(ESC_DELIVERY.c.status != "sent")
                        ).scalar_one()
                    if not unsettled:
                        break
            finally:
                store.dispose()

            def verify(store: Store) -> tuple[int, int]:
                assert all(r.returncode == 1 for r in results), [r.stderr[-500:] for r in results]
                return check_escalations(
                    store, trial, expected, owed, smtp.sink.messages[s0:], hook.requests[h0:]
                )

            return checked(trial, verify)

    battery("deadlines check", backend, smtp_and_hook, one_trial)


def check_escalations(
    store: Store,
    trial: Trial,
    expected: set[tuple[str, str, str]],
    owed: dict[tuple[str, str], str],
    mails: list[Any],
    requests: list[dict[str, Any]],
) -> tuple[int, int]:
    """Decided once each, delivered once per channel (repeats in doubt only); return repeats, in doubt."""
    e, d = ESCALATION.c, ESC_DELIVERY.c
    with store.read() as s:
        decided = s.execute(
            select(e.id, e.kind, DEADLINE.c.incident_id, DEADLINE.c.rule_id).join(
                DEADLINE, DEADLINE.c.id == e.deadline_id
            )
        ).all()
        rows = s.execute(
            select(
                d.escalation_id, d.channel, d.message_id, d.status, d.in_doubt, e.kind, e.deadline_id
            ).join(ESCALATION, ESCALATION.c.id == d.escalation_id)
        ).all()
        statuses = {
            (r.incident_id, r.rule_id): r.status
            for r in s.execute(select(DEADLINE.c.incident_id, DEADLINE.c.rule_id, DEADLINE.c.status))
        }
    keys = Counter((r.incident_id, r.rule_id, r.kind) for r in decided)
    assert set(keys.values()) == {1}, "an alert decided twice"
    assert set(keys) == expected, (
        f"missing alerts {sorted(expected - set(keys))[:3]}, unexpected {sorted(set(keys) - expected)[:3]}"
    )
    for (incident, rule), kind in owed.items():
        want = STATUS_OF.get(kind, "pending")
        assert statuses[(incident, rule)] == want, (incident, rule, statuses[(incident, rule)], want)
    per_alert = Counter(r.escalation_id for r in rows)
    assert set(per_alert.values()) == {3} and len(per_alert) == len(decided), "not one delivery per channel"
    assert {r.status for r in rows} == {"sent"}, Counter(r.status for r in rows)
    logged: list[tuple[str, bool]] = []
    for path in trial.logs:
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            found = _LOG_LINE.match(line)
            if found:
                logged.append((found.group(1), found.group(2) is not None))
    arrived = {
        "smtp": [(str(m["Message-ID"]), m["X-Breach-Delivery"] is not None) for m in mails],
        "webhook": [
            (r["headers"]["Idempotency-Key"], r["headers"].get("X-Breach-In-Doubt") == "1") for r in requests
        ],
        "log": logged,
    }
    by_id = {r.message_id: r for r in rows}
    for request in requests:  # the webhook body is the alert it claims to be
        body, row = request["body"], by_id[request["headers"]["Idempotency-Key"]]
        assert (body["id"], body["kind"], body["deadline_id"]) == (row.message_id, row.kind, row.deadline_id)
    repeats = sum(
        check_arrivals(channel, [r for r in rows if r.channel == channel], arrived[channel])
        for channel in ("log", "smtp", "webhook")
    )
    doubtful = sum(bool(r.in_doubt) for r in rows)
    assert doubtful <= trial.killed, f"{doubtful} deliveries in doubt after {trial.killed} kills"
    assert repeats <= trial.killed, f"{repeats} repeated arrivals after {trial.killed} kills"
    return doubtful, repeats


class Crash(BaseException):
    """Stands for the process dying at this point (nothing after it runs, nothing catches it)."""


def test_render_killed_before_its_audit_event_is_covered_by_the_next(
    store: Store, builtin_source: Any, tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch
):
    """The documents of a render that died before its audit event appear in the next run's event."""
    import engine.notices.render as notices
    from engine.incidents.tables import Event

    incident = open_incident(store, builtin_source)
    do_import(store, incident, DATA / "agency.csv")
    give_content(store, incident)
    home = new_home(tmp_path, "ws", FIRM)
    workspace = Workspace.resolve(home, db_url)

    def die(*_args: Any, **_kwargs: Any) -> None:
        raise Crash

    with monkeypatch.context() as patch:
        patch.setattr(notices, "_audit", die)
        with pytest.raises(Crash):
            notices.render_notices(store, workspace, incident, actor="alice")
    again = notices.render_notices(store, workspace, incident, actor="alice")
    documents = sum(again.already.values())
    # Every document the killed run wrote was recorded: nine for this people file.
    assert again.rendered == {} and documents == 9, again.already
    with store.read() as s:
        events = list(
            s.scalars(
                select(Event)
                .where(Event.incident_id == incident, Event.kind == "notices_rendered")
                .order_by(Event.seq)
            )
        )
    recorded = sum(events[-1].inputs["recorded"].values()) if events else 0
    assert recorded == documents, (
        f"{len(events)} notices_rendered events; the trail covers {recorded} of {documents} documents"
    )
