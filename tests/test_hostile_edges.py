"""A full disk, NUL characters and templates whose loops no bound holds: refused with one line, exit 2.

The full disk is played with a file-size limit (``ulimit -f``, RLIMIT_FSIZE) on the breach process:
writes past it fail as they would on a full device, without root or a mounted file system. On SQLite
the database file is what hits it first; on PostgreSQL the database lives in the server, so the
evidence bundle breach writes itself does.
"""

from __future__ import annotations

import os
import resource
import subprocess
from pathlib import Path

import pytest
from conftest import BREACH, Cli, assert_one_line_error


def limited(cli: Cli, limit: int, *args: str) -> subprocess.CompletedProcess[str]:
    """Run breach with files limited to ``limit`` bytes, as a nearly full disk would leave it."""

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    env = {**os.environ, "BREACH_HOME": str(cli.home), "COLUMNS": "200"}
    env.pop("BREACH_DATABASE_URL", None)
    if cli.db_url:
        env["BREACH_DATABASE_URL"] = cli.db_url
    return subprocess.run(
        [BREACH, *args], capture_output=True, text=True, env=env, cwd=cli.home, preexec_fn=cap, timeout=120
    )


def people_count(cli: Cli) -> int:
    """How many recipients the workspace's database holds, read directly."""
    from sqlalchemy import create_engine, text

    engine = create_engine(cli.db_url or f"sqlite:///{cli.home / 'breach.db'}")
    try:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT COUNT(*) FROM person")).scalar_one())
    finally:
        engine.dispose()


def people_file(folder: Path, rows: int, name: str = "张三") -> Path:
    path = folder / "people.csv"
    lines = ["customer_id,name,phone,channel,categories"]
    lines += [f"S-{i},{name}{i},138{i:08d},sms,name" for i in range(rows)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


class TestFullDisk:
    def test_sqlite_database_that_cannot_grow_changes_nothing(self, tmp_path):
        """Importing 20,000 people into a database that cannot grow: one line saying what to free or
        raise, exit 2, and the database as it was (no person, no event, the trail intact)."""
        home = tmp_path / "ws"
        home.mkdir()
        cli = Cli(home, None)
        cli("init", str(home), check=True)
        incident = cli.open_incident()
        before = cli.json("incident", "show", incident)
        path = people_file(tmp_path, 20_000)
        database = home / "breach.db"
        result = limited(cli, database.stat().st_size + 65536, "people", "import", incident, str(path))
        assert_one_line_error(result, "could not be written", "disk may be full", "nothing changed")
        after = cli.json("incident", "show", incident)
        assert after["version"] == before["version"] and after["events"] == before["events"]
        assert people_count(cli) == 0
        assert cli("audit", "verify", "--all").returncode == 0

    @pytest.mark.pg
    def test_postgresql_bundle_on_a_full_disk_leaves_no_file_and_no_event(self, tmp_path, pg_schema_url):
        """An evidence bundle that cannot be written: one line naming it and the limit, exit 2, no
        bundle or temporary file left, and no "exported" event in the trail."""
        home = tmp_path / "ws"
        home.mkdir()
        cli = Cli(home, pg_schema_url)
        cli("init", str(home), check=True)
        incident = cli.open_incident()
        events = len(cli.json("incident", "show", incident)["events"])
        bundle = home / "out" / "bundle.zip"
        result = limited(cli, 2048, "incident", "export", incident, "--out", str(bundle))
        assert_one_line_error(result, "ulimit -f")
        assert not bundle.exists() and not list((home / "out").rglob("*.tmp"))
        shown = cli.json("incident", "show", incident)
        assert len(shown["events"]) == events and "exported" not in [e.get("kind") for e in shown["events"]]
        assert cli("incident", "export", incident, "--out", str(bundle)).returncode == 0


class TestNulCharacters:
    def test_a_nul_in_a_facts_file_is_refused(self, cli, tmp_path):
        """A facts file with a NUL in a text value (PostgreSQL cannot store it): exit 2 on both
        databases, one line naming the file, and the facts unchanged."""
        incident = cli.open_incident()
        before = cli.json("incident", "show", incident)
        facts = tmp_path / "facts.yaml"
        facts.write_text('people_affected: 10\nrecorded_grade_reason: "a\\0b"\n', encoding="utf-8")
        assert_one_line_error(cli("incident", "facts", incident, "--file", str(facts)), str(facts), "NUL")
        after = cli.json("incident", "show", incident)
        assert after["facts"] == before["facts"] and after["version"] == before["version"]

    def test_a_nul_in_a_people_file_cell_is_refused(self, cli, tmp_path):
        """A recipient whose name holds a NUL: the import is refused whole (exit 2), nobody stored."""
        incident = cli.open_incident()
        path = people_file(tmp_path, 3)
        path.write_text(path.read_text(encoding="utf-8").replace("张三1", "张\x00三1"), encoding="utf-8")
        result = cli("people", "import", incident, str(path))
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        assert "row 3" in result.stderr or "line 3" in result.stderr, result.stderr
        assert people_count(cli) == 0
        path.write_text(path.read_text(encoding="utf-8").replace("\x00", ""), encoding="utf-8")
        cli("people", "import", incident, str(path), check=True)
        assert people_count(cli) == 3


class TestTemplateLoops:
    def test_templates_check_flags_loops_no_bound_holds(self, cli):
        """Nested range() loops past the iteration bound, and a computed range inside a range loop, are
        named with their file and line; a loop over the notice's own data is not."""
        folder = cli.home / "templates" / "zh-CN"
        folder.mkdir(parents=True, exist_ok=True)
        builtin = Path(__file__).resolve().parent.parent / "templates" / "zh-CN" / "client_notice.md.j2"
        text = builtin.read_text(encoding="utf-8")
        start = text.count("\n") + 1
        text += (
            "{% for i in range(100000) %}\n{% for j in range(100000) %}x{% endfor %}{% endfor %}\n"
            "{% for i in range(10) %}{% for j in range(i * 1000) %}{% endfor %}{% endfor %}\n"
            "{% for m in incident.measures %}{% for i in range(10) %}{{ m }}{% endfor %}{% endfor %}\n"
        )
        (folder / "client_notice.md.j2").write_text(text, encoding="utf-8")
        result = cli("templates", "check")
        assert result.returncode == 2, result.stdout + result.stderr
        lines = [line for line in result.stdout.splitlines() if "client_notice.md.j2" in line]
        assert len(lines) == 2, result.stdout
        assert f":{start + 1}: nested loops take 10,000,000,000 iterations" in lines[0]
        assert "template_iterations" in lines[0]
        assert f":{start + 2}: a loop over range() of a computed size" in lines[1]
        (folder / "client_notice.md.j2").unlink()
        assert cli("templates", "check").returncode == 0
