"""Shared fixtures: a database per test on SQLite and on PostgreSQL, the built-in playbook, the CLI.

PostgreSQL tests each get their own schema in the ``test`` database (127.0.0.1:5432), so parallel or
repeated runs never see each other's rows. Set ``BREACH_TEST_PG=0`` to skip them on a machine without it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

# breach refuses a workspace that group or others can write (as ssh refuses a loose key). Tests create
# workspace files with plain writes, so they run under the usual umask whatever the machine's default
# (002 on many desktops would make every test workspace group-writable and refused).
os.umask(0o022)
# Parsed playbooks and legal data are cached per account (engine.files.parsed): the tests keep theirs
# apart from the operator's, in one folder for the whole run, so the cached path is what most tests take.
os.environ.setdefault("BREACH_CACHE_DIR", tempfile.mkdtemp(prefix="breach-test-cache-"))
# A daemon the operator left running (breach daemon start) must not serve the tests: their commands look
# for one in a folder of their own, where only tests/test_daemon.py starts any.
os.environ["BREACH_RUN_DIR"] = tempfile.mkdtemp(prefix="breach-test-run-")

PG_BASE = os.environ.get("BREACH_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
BREACH = str(Path(sys.executable).with_name("breach"))
REPO = Path(__file__).resolve().parent.parent


def pg_enabled() -> bool:
    """Whether PostgreSQL tests run (they do unless BREACH_TEST_PG=0)."""
    return os.environ.get("BREACH_TEST_PG", "1") != "0"


def _pg_conninfo(url: str) -> str:
    return "postgresql://" + url.split("://", 1)[1]


@pytest.fixture
def pg_schema_url() -> Iterator[str]:
    """A fresh PostgreSQL schema, dropped afterwards; its URL pins the search_path to it."""
    import psycopg

    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_pg_conninfo(PG_BASE), autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{name}"')
    yield f"{PG_BASE}?options=-csearch_path%3D{name}"
    with psycopg.connect(_pg_conninfo(PG_BASE), autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{name}" CASCADE')


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.pg)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The same behavioural test on the embedded SQLite file and on a shared PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'breach.db'}"
    if not pg_enabled():
        pytest.skip("BREACH_TEST_PG=0")
    return request.getfixturevalue("pg_schema_url")


@pytest.fixture
def store(db_url: str):
    """An upgraded, empty database."""
    from engine.migrations.migrate import upgrade
    from engine.store.db import Store

    s = Store(db_url)
    upgrade(s)
    yield s
    s.dispose()


@pytest.fixture(scope="session")
def builtin_source():
    """The built-in cn-agency-firm playbook."""
    from engine.playbooks.catalog import PlaybookCatalog
    from engine.workspace import Workspace

    return PlaybookCatalog(Workspace.resolve(REPO)).get("cn-agency-firm")


def team_toml(*accounts: str, roles: tuple[str, ...] = ("dpo",)) -> str:
    """``[members."ACCOUNT"]`` tables giving each account ``roles``: what a test workspace whose
    settings are written directly (not through ``breach init``) needs before a role-gated step."""
    import json

    return "".join(f"\n[members.{json.dumps(a)}]\nroles = {json.dumps(list(roles))}\n" for a in accounts)


class Cli:
    """Runs the installed ``breach`` in a subprocess against one workspace."""

    def __init__(self, home: Path, db_url: str | None) -> None:
        self.home = home
        self.db_url = db_url

    def __call__(
        self, *args: str, check: bool = False, input: str | None = None, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        full_env = {**os.environ, "BREACH_HOME": str(self.home), "COLUMNS": "200", **(env or {})}
        full_env.pop("BREACH_DATABASE_URL", None)
        if self.db_url:
            full_env["BREACH_DATABASE_URL"] = self.db_url
        result = subprocess.run(
            [BREACH, *args],
            capture_output=True,
            text=True,
            env=full_env,
            input=input,
            cwd=self.home,
            timeout=120,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"breach {' '.join(args)} exited {result.returncode}: {result.stderr}")
        return result

    def write_settings(self, text: str) -> None:
        """Make ``text`` the workspace's settings.toml, keeping the members it names (the account
        ``breach init`` named holds its roles still)."""
        import tomllib

        path = self.home / "config" / "settings.toml"
        kept = tomllib.loads(path.read_text(encoding="utf-8")).get("members", {}) if path.exists() else {}
        team = "".join(team_toml(name, roles=tuple(held.get("roles", ()))) for name, held in kept.items())
        path.write_text(text + "\n" + team, encoding="utf-8")

    def open_incident(self, *extra: str, discovered_at: str = "2026-01-01 09:00", title: str = "t") -> str:
        """Open an incident under the built-in playbook through the CLI; return its id."""
        return self(
            "incident",
            "open",
            "--playbook",
            "cn-agency-firm",
            "--title",
            title,
            "--discovered-at",
            discovered_at,
            *extra,
            check=True,
        ).stdout.strip()

    def json(self, *args: str):
        """Run a read command with --json and parse its output."""
        import json

        return json.loads(self(*args, "--json", check=True).stdout)


@pytest.fixture
def cli(tmp_path: Path, db_url: str) -> Cli:
    """An initialised workspace and a runner for the installed CLI (SQLite file or PostgreSQL schema)."""
    home = tmp_path / "ws"
    runner = Cli(home, None if db_url.startswith("sqlite") else db_url)
    home.mkdir()
    runner("init", str(home), check=True)
    return runner


def assert_one_line_error(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    """Exit 2, one line on stderr starting with 'error:', no traceback, mentioning each needle."""
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


MOVING = ("remaining_seconds", "countdown", "overdue")
"""Keys of a deadline that follow the clock on the wall: they differ between two reads a second apart."""


def at_rest(shown: dict):
    """``incident show --json`` without the countdowns of its deadlines, to compare two reads of it."""
    return {
        **shown,
        "deadlines": [{k: v for k, v in d.items() if k not in MOVING} for d in shown.get("deadlines", [])],
    }


def lift_append_only(conn) -> None:
    """Lift the append-only triggers for the rest of ``conn``'s transaction, as the database's owner can.

    Tampering tests play an insider who owns the database (a superuser on PostgreSQL, the file's owner
    on SQLite): the triggers stop everyone else, and what remains to catch such an owner is ``audit
    verify`` and the anchors. On SQLite the triggers are dropped here and created again by
    :func:`restore_append_only` before the transaction commits.
    """
    from sqlalchemy import text

    if conn.dialect.name == "postgresql":
        conn.execute(text("SET LOCAL session_replication_role = replica"))
        return
    found = conn.execute(
        text("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND name LIKE '%append_only%'")
    ).all()
    conn.info["append_only"] = [sql for _name, sql in found]
    for name, _sql in found:
        conn.execute(text(f'DROP TRIGGER "{name}"'))


def restore_append_only(conn) -> None:
    """Create again the SQLite triggers :func:`lift_append_only` dropped (PostgreSQL needs nothing)."""
    from sqlalchemy import text

    for sql in conn.info.pop("append_only", []):
        conn.execute(text(sql))


def tamper_url(url: str, *statements: str, **params: object) -> None:
    """Run SQL against a database as its owner would, append-only triggers lifted for the statements."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            lift_append_only(conn)
            for statement in statements:
                conn.execute(text(statement), params)
            restore_append_only(conn)
    finally:
        engine.dispose()
