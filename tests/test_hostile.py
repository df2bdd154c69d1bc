"""A hostile file system and hostile input: links refused, files private, input bounded, refusals clean.

Each test is an attack a local adversary (another account on the machine, a crafted file) tried; the
outcome pinned is what the operator sees: one line and exit code 2, nothing outside the workspace touched.
"""

from __future__ import annotations

import os
import shlex
import stat
import subprocess
import time
from pathlib import Path

import pytest
from conftest import BREACH, REPO, Cli, assert_one_line_error
from sqlalchemy import select, text
from test_delivery import smtp  # noqa: F401 - the fixture, used by name
from test_notices import render, workspace
from test_people import DATA, do_import, give_content, open_incident

from engine.deadlines.escalation import load_settings
from engine.errors import BadInput
from engine.incidents.tables import Event
from engine.outbox.channels import LogChannel, Message
from engine.retention.export import export_bundle


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def temporaries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*.tmp"))


def event_kinds(store, incident_id: str) -> list[str]:
    with store.read() as s:
        return list(s.exec(select(Event.kind).where(Event.incident_id == incident_id)).scalars())


@pytest.fixture
def umask_000():
    previous = os.umask(0)
    yield
    os.umask(previous)


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder of another account's, as the attacker would point a link at."""
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "victim.txt").write_text("precious\n")
    folder.chmod(0o755)
    return folder


class TestExportIsNeverRedirected:
    def test_a_link_at_the_old_temporary_name_is_not_followed(self, store, builtin_source, tmp_path, outside):
        """A link planted where earlier releases put the temporary bundle leaves its target untouched."""
        incident = open_incident(store, builtin_source)
        out = tmp_path / "out"
        out.mkdir()
        victim = outside / "victim.txt"
        victim.chmod(0o644)
        planted = out / f".b.zip.{os.getpid()}.tmp"
        os.symlink(victim, planted)
        path, _ = export_bundle(store, incident, out / "b.zip", actor="dpo")
        assert victim.read_text() == "precious\n" and mode(victim) == 0o644
        assert mode(path) == 0o600 and temporaries(out) == [planted.name]

    def test_an_existing_bundle_is_refused_and_nothing_recorded(self, store, builtin_source, tmp_path):
        """Exporting onto an existing file refuses before anything is recorded or written."""
        incident = open_incident(store, builtin_source)
        (tmp_path / "b.zip").write_bytes(b"earlier evidence")
        with pytest.raises(BadInput, match="exists already"):
            export_bundle(store, incident, tmp_path / "b.zip", actor="dpo")
        assert "exported" not in event_kinds(store, incident)
        assert (tmp_path / "b.zip").read_bytes() == b"earlier evidence" and temporaries(tmp_path) == []

    def test_a_failed_write_records_no_event_and_leaves_no_temporary(
        self, store, builtin_source, tmp_path, monkeypatch
    ):
        """A disk filling up mid-bundle: exit-2 message saying so, no "exported" event, no temporary."""
        import errno
        import zipfile

        incident = open_incident(store, builtin_source)

        def full(*_args, **_kwargs):
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(zipfile.ZipFile, "writestr", full)
        with pytest.raises(BadInput, match="no space left"):
            export_bundle(store, incident, tmp_path / "b.zip", actor="dpo")
        assert "exported" not in event_kinds(store, incident)
        assert not (tmp_path / "b.zip").exists() and temporaries(tmp_path) == []

    def test_cli_export_to_an_existing_folder(self, cli):
        """--out naming a folder exits 2 with one line; the audit trail gains no "exported" event."""
        incident = cli.open_incident()
        (cli.home / "bundles").mkdir()
        result = cli("incident", "export", incident, "--out", str(cli.home / "bundles"))
        assert_one_line_error(result, "bundles", "exists already")
        events = [e["kind"] for e in cli.json("incident", "show", incident)["events"]]
        assert "exported" not in events and temporaries(cli.home) == []

    def test_cli_export_through_a_linked_out_folder_is_refused(self, cli, outside):
        """out/ replaced by a link to another folder: exit 2 naming it, nothing written there."""
        incident = cli.open_incident()
        (cli.home / "out").rmdir()
        os.symlink(outside, cli.home / "out")
        result = cli("incident", "export", incident)
        assert_one_line_error(result, str(cli.home / "out"), "symbolic link")
        assert sorted(p.name for p in outside.iterdir()) == ["victim.txt"]
        events = [e["kind"] for e in cli.json("incident", "show", incident)["events"]]
        assert "exported" not in events


class TestNoticesAreNeverRedirected:
    def test_a_link_at_the_incident_folder_is_refused(self, store, builtin_source, tmp_path, db_url, outside):
        """out/<ID> planted as a link to an open folder: the render refuses, naming it; nothing goes there."""
        incident = open_incident(store, builtin_source)
        do_import(store, incident, DATA / "agency.csv")
        give_content(store, incident)
        ws = workspace(tmp_path / "ws", db_url)
        (ws.home / "out").mkdir()
        os.symlink(outside, ws.home / "out" / incident)
        with pytest.raises(BadInput, match="symbolic link"):
            render(store, ws, incident, formats=["md"])
        assert sorted(p.name for p in outside.iterdir()) == ["victim.txt"]

    def test_a_link_at_out_is_refused(self, store, builtin_source, tmp_path, db_url, outside):
        """out/ itself a link: refused too (the workspace is the trusted root, not out/)."""
        incident = open_incident(store, builtin_source)
        do_import(store, incident, DATA / "agency.csv")
        give_content(store, incident)
        ws = workspace(tmp_path / "ws", db_url)
        os.symlink(outside, ws.home / "out")
        with pytest.raises(BadInput, match=r"out is a symbolic link"):
            render(store, ws, incident, formats=["md"])
        assert sorted(p.name for p in outside.iterdir()) == ["victim.txt"]


MESSAGE = Message(
    "m-1", "missed", {"incident_id": "INC-1", "rule": "r", "due_at": "2026-01-01T00:00:00+08:00"}
)


class TestEscalationLog:
    def test_a_linked_log_file_is_refused_at_start(self, tmp_path, outside):
        """[escalation] log_file planted as a link: the settings are refused, naming the link."""
        ws = workspace(tmp_path / "ws", "", '[escalation]\nlog_file = "escalations.log"\n')
        os.symlink(outside / "victim.txt", ws.home / "escalations.log")
        with pytest.raises(BadInput, match=r"escalations\.log is a symbolic link"):
            load_settings(ws)

    def test_a_link_swapped_in_later_is_not_appended_to(self, tmp_path, outside):
        """A link put in place after start is refused by the write itself; the target keeps its bytes."""
        log = tmp_path / "escalations.log"
        os.symlink(outside / "victim.txt", log)
        with pytest.raises(BadInput, match="symbolic link"):
            LogChannel(log, root=tmp_path).send(MESSAGE, lambda: None)
        assert (outside / "victim.txt").read_text() == "precious\n"

    def test_the_log_is_private_under_umask_000(self, tmp_path, umask_000):
        """The escalation log and the folder made for it are 0600 and 0700, whatever the umask."""
        log = tmp_path / "logs" / "escalations.log"
        LogChannel(log, root=tmp_path).send(MESSAGE, lambda: None)
        assert mode(log) == 0o600 and mode(log.parent) == 0o700
        assert "incident=INC-1" in log.read_text()


def under_umask_000(*args: str, home: Path, db_url: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run breach as an operator whose shell has ``umask 000``."""
    env = {**os.environ, "BREACH_HOME": str(home)}
    env.pop("BREACH_DATABASE_URL", None)
    if db_url:
        env["BREACH_DATABASE_URL"] = db_url
    command = "umask 000 && exec " + " ".join(shlex.quote(a) for a in (BREACH, *args))
    return subprocess.run(["sh", "-c", command], capture_output=True, text=True, env=env, timeout=120)


class TestPermissionsUnderAnyUmask:
    def test_init_makes_a_private_workspace_under_umask_000(self, tmp_path):
        """init under umask 000: every folder 0700, the database and its -wal/-shm files 0600."""
        home = tmp_path / "leak"
        result = under_umask_000("init", str(home), home=home)
        assert result.returncode == 0, result.stderr
        under_umask_000("incident", "open", "--playbook", "cn-agency-firm", "--title", "t", home=home)
        for name in ("", "config", "playbooks", "templates", "out"):
            assert mode(home / name) == 0o700, name
        files = [p for p in home.iterdir() if p.name.startswith("breach.db")]
        assert home / "breach.db" in files and all(mode(p) == 0o600 for p in files), files

    def test_a_database_outside_the_workspace_is_private_with_its_wal(self, tmp_path, umask_000):
        """A SQLite file named by --db in a new folder: folder 0700, file, -wal and -shm 0600."""
        from engine.migrations.migrate import upgrade
        from engine.store.db import Store

        db = tmp_path / "elsewhere" / "data" / "leak.db"
        store = Store(f"sqlite:///{db}")
        try:
            upgrade(store)
            with store.read() as session:
                session.execute(text("SELECT COUNT(*) FROM incident")).scalar()
                companions = [db.with_name(db.name + suffix) for suffix in ("-wal", "-shm")]
                assert all(p.exists() for p in companions)
                assert [mode(p) for p in (db, *companions)] == [0o600] * 3
        finally:
            store.dispose()
        assert mode(db.parent) == 0o700 and mode(db.parent.parent) == 0o700


class TestLooseWorkspaceIsRefused:
    @pytest.mark.parametrize(
        ("relative", "loosen"),
        [
            ("", 0o020),
            ("config", 0o002),
            ("config/settings.toml", 0o020),
            ("playbooks/cn-agency-firm.yaml", 0o022),
            ("templates", 0o020),
        ],
    )
    def test_writable_by_group_or_others(self, cli, relative, loosen):
        """Any command refuses, naming the path and the chmod that fixes it; after the fix it runs."""
        incident = cli.open_incident()
        (cli.home / "config" / "settings.toml").write_text('[workspace]\ntimezone = "Asia/Shanghai"\n')
        (cli.home / "playbooks" / "cn-agency-firm.yaml").write_bytes(
            (REPO / "playbooks" / "cn-agency-firm.yaml").read_bytes()
        )
        path = cli.home / relative if relative else cli.home
        path.chmod(stat.S_IMODE(path.stat().st_mode) | loosen)
        result = cli("incident", "show", incident)
        assert_one_line_error(result, str(path), f"chmod go-w {path}")
        path.chmod(stat.S_IMODE(path.stat().st_mode) & ~0o022)
        assert cli("incident", "show", incident).returncode == 0

    @pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another account needs root")
    def test_owned_by_another_account(self, cli):
        """A playbook another account owns is refused, naming it and the chown that fixes it."""
        playbook = cli.home / "playbooks" / "cn-agency-firm.yaml"
        playbook.write_bytes((REPO / "playbooks" / "cn-agency-firm.yaml").read_bytes())
        os.chown(playbook, 4242, 4242)
        result = cli("playbook", "list")
        assert_one_line_error(result, str(playbook), "uid 4242", "chown")


ALIAS_BOMB = "a: &a [x,x,x,x,x,x,x,x,x]\n" + "".join(
    f"{b}: &{b} [{', '.join([f'*{a}'] * 9)}]\n" for a, b in zip("abcdefgh", "bcdefghi", strict=True)
)


@pytest.fixture(scope="module")
def workspace_home(tmp_path_factory) -> Path:
    """One SQLite workspace with an incident, for refusals that touch no database."""
    home = tmp_path_factory.mktemp("bounded") / "ws"
    home.mkdir()
    run = Cli(home, None)
    run("init", str(home), check=True)
    run.open_incident()
    return home


@pytest.fixture
def sqlite_cli(workspace_home: Path) -> Cli:
    return Cli(workspace_home, None)


class TestBoundedInput:
    def test_an_alias_bomb_is_refused_quickly_everywhere(self, sqlite_cli, tmp_path):
        """342 bytes that expand to billions: validate, a facts file and playbooks/ all refuse in seconds."""
        bomb = tmp_path / "bomb.yaml"
        bomb.write_text(ALIAS_BOMB)
        assert len(ALIAS_BOMB) < 400
        started = time.monotonic()
        validate = sqlite_cli("playbook", "validate", str(bomb))
        assert validate.returncode == 2 and "yaml_nodes" in validate.stdout
        assert_one_line_error(sqlite_cli("assess", "--facts", str(bomb)), str(bomb), "yaml_nodes")
        planted = sqlite_cli.home / "playbooks" / "bomb.yaml"
        planted.write_text(ALIAS_BOMB)
        try:
            assert_one_line_error(sqlite_cli("playbook", "list"), str(planted), "yaml_nodes")
        finally:
            planted.unlink()
        assert time.monotonic() - started < 30

    @pytest.mark.parametrize(
        "args",
        [
            ("assess", "--facts", "/dev/zero"),
            ("notices", "content", "INC-2026-0001", "/dev/zero"),
            ("people", "import", "INC-2026-0001", "/dev/zero"),
            ("audit", "verify", "--bundle", "/dev/zero"),
        ],
    )
    def test_a_device_given_as_a_file_is_refused_unread(self, sqlite_cli, args):
        """/dev/zero as facts, people or bundle: refused at once, naming it, not read until killed."""
        result = sqlite_cli(*args)
        assert_one_line_error(result, "/dev/zero", "not a regular file")

    def test_an_oversized_facts_file_names_the_limit(self, sqlite_cli, tmp_path):
        """A facts file over [limits] data_file_bytes is refused, naming the setting to raise."""
        big = tmp_path / "facts.yaml"
        big.write_text("title: x\n" + "#" * (9 * 1024 * 1024) + "\n")
        assert_one_line_error(sqlite_cli("assess", "--facts", str(big)), str(big), "data_file_bytes")

    def test_huge_numbers_are_refused(self, sqlite_cli, tmp_path):
        """A 4,000-digit people_affected in a file, or 5,000 digits on --set: exit 2, one line."""
        facts = tmp_path / "facts.yaml"
        facts.write_text(f"people_affected: {'9' * 4000}\n")
        assert_one_line_error(sqlite_cli("assess", "--facts", str(facts)), str(facts), "40 characters")
        result = sqlite_cli("assess", "--set", "people_affected=" + "9" * 5000)
        assert_one_line_error(result, "people_affected", "10**18")
        result = sqlite_cli("clock", "add", "--from", "2026-01-01 09:00", "--duration", "9" * 130_000 + "h")
        assert_one_line_error(result, "duration", "at most 100")
        assert len(result.stderr) < 200

    def test_a_zip_bomb_bundle_is_refused_unread(self, sqlite_cli, tmp_path):
        """A bundle whose member inflates a thousandfold is refused before it is inflated."""
        import zipfile

        bomb = tmp_path / "bomb.zip"
        with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr("manifest.json", "{}")
            z.writestr("event.json", b"\0" * (16 * 1024 * 1024))
        result = sqlite_cli("audit", "verify", "--bundle", str(bomb))
        assert_one_line_error(result, str(bomb), "bundle_ratio")

    def test_a_malformed_bundle_is_exit_2(self, sqlite_cli, tmp_path):
        """A zip that is not a bundle, or whose manifest is not JSON: one line, exit 2."""
        import zipfile

        junk = tmp_path / "junk.zip"
        junk.write_bytes(b"PK\x03\x04 not really")
        assert_one_line_error(sqlite_cli("audit", "verify", "--bundle", str(junk)), "not an evidence bundle")
        bad = tmp_path / "bad.zip"
        with zipfile.ZipFile(bad, "w") as z:
            z.writestr("manifest.json", "[[[[")
        assert_one_line_error(sqlite_cli("audit", "verify", "--bundle", str(bad)), "invalid JSON")

    def test_limits_are_settable(self, sqlite_cli, tmp_path):
        """[limits] in settings.toml lowers a bound; an unknown limit is refused by name."""
        settings = sqlite_cli.home / "config" / "settings.toml"
        facts = tmp_path / "facts.yaml"
        facts.write_text("people_affected: 10\n" + "#" * 2000 + "\n")
        try:
            settings.write_text("[limits]\ndata_file_bytes = 1000\n")
            assert_one_line_error(sqlite_cli("assess", "--facts", str(facts)), "data_file_bytes")
            settings.write_text("[limits]\nfile_bytes = 1000\n")
            assert_one_line_error(sqlite_cli("incident", "list"), "unknown limit")
        finally:
            settings.unlink()


class TestTerminalIsSafe:
    def test_control_characters_in_a_title_are_shown_escaped(self, cli):
        """An ESC[2J / right-to-left-override title is printed as \\u escapes; --json keeps it exact."""
        title = "客户台账\x1b[2J\x1b]0;owned\x07\u202e泄露"
        incident = cli.open_incident(title=title)
        views = (("incident", "list"), ("incident", "show", incident), ("incident", "triggers", incident))
        for args in views:
            shown = cli(*args, check=True).stdout
            assert "\x1b" not in shown and "\u202e" not in shown and "\x07" not in shown, args
        shown = cli("incident", "show", incident, check=True).stdout
        assert "客户台账\\u001b[2J" in shown and "\\u202e泄露" in shown
        assert cli.json("incident", "show", incident)["title"] == title

    def test_an_error_naming_hostile_input_is_escaped(self, sqlite_cli):
        """An unknown id holding escapes comes back in the error line escaped, still one line."""
        result = sqlite_cli("incident", "show", "INC\x1b[2J\nforged line")
        assert "\x1b" not in result.stderr
        assert_one_line_error(result, "[2J", "forged line")


class TestInDoubtIsVisible:
    def test_status_counts_deliveries_in_doubt_and_names_the_settling_command(self, cli, smtp):  # noqa: F811
        """After a crash past the hand-off, status counts the delivery in doubt, not as "sent"."""
        from test_delivery import TestCrashes

        crashes = TestCrashes()
        incident = crashes.prepare(cli, smtp, 'in_doubt = "hold"\n')
        assert crashes.cli_send(cli, incident, "notices_after_send").returncode == 75
        interrupted = cli.json("notices", "status", incident)["in_doubt"]
        assert interrupted == {"held": 0, "interrupted": 1, "resent": 0, "total": 1}
        assert f"breach notices send {incident}" in cli("notices", "status", incident, check=True).stdout
        crashes.cli_send(cli, incident)  # holds it for a person to check
        status = cli.json("notices", "status", incident)
        assert status["in_doubt"]["held"] == 1 and status["in_doubt"]["total"] == 1
        assert (
            status["deliveries"]["customer_notice"].get("sent", 0)
            + status["deliveries"].get("client_notice", {}).get("sent", 0)
            == 3
        )
        shown = cli("notices", "status", incident, check=True).stdout
        assert "in doubt (held): 1" in shown and f"breach notices resolve {incident}" in shown


class TestExitCodes:
    def test_init_on_an_unwritable_path(self, tmp_path):
        """init where no folder can be made: exit 2 naming the path, not an unexpected error."""
        result = Cli(tmp_path, None)("init", "/proc/breach-workspace")
        assert_one_line_error(result, "/proc/breach-workspace")

    def test_db_upgrade_on_a_file_that_is_no_database(self, tmp_path):
        """A --db naming a text file: exit 2, one line, the file left as it was."""
        junk = tmp_path / "notes.db"
        junk.write_text("meeting notes, not a database\n")
        result = Cli(tmp_path, f"sqlite:///{junk}")("db", "upgrade")
        assert_one_line_error(result, "not a breach SQLite database")
        assert junk.read_text() == "meeting notes, not a database\n"

    def test_filters_naming_nothing_that_exists_are_errors(self, cli):
        """--state and --incident that name nothing are refused; a real state with no match is empty."""
        cli.open_incident()
        assert_one_line_error(cli("incident", "list", "--state", "nope"), "nope", "containment")
        assert cli.json("incident", "list", "--state", "closed") == []
        assert_one_line_error(cli("deadlines", "list", "--incident", "nope"), "no incident 'nope'")

    def test_deep_json_content_is_exit_2(self, sqlite_cli, tmp_path):
        """Notice content nested thousands deep: one line naming the limit, not a RecursionError."""
        deep = tmp_path / "content.json"
        deep.write_text("[" * 5000 + "]" * 5000)
        result = sqlite_cli("notices", "content", "INC-2026-0001", str(deep))
        assert result.returncode == 2 and "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


@pytest.fixture
def small_limits():
    """Lower template bounds for the test (restored after)."""
    from dataclasses import replace

    from engine.files import DEFAULT_LIMITS, configure_limits

    def apply(**changes: int) -> None:
        configure_limits(replace(DEFAULT_LIMITS, **changes))

    yield apply
    configure_limits(DEFAULT_LIMITS)


def render_source(folder: Path, source: str) -> str:
    from engine.documents.templating import get_environment, load_template, render_template

    (folder / "en").mkdir(exist_ok=True)
    (folder / "en" / "evil.md.j2").write_text(source)
    env = get_environment([folder], "en", cached=False)
    return render_template(load_template(env, "evil.md.j2"), {"name": "Li"})


class TestTemplatesCannotExhaustTheMachine:
    @pytest.mark.parametrize(
        "source",
        [
            "ok\n{{ 'a'.ljust(2000000000) }}",
            "ok\n{{ '7'.zfill(2000000000) }}",
            "ok\n{{ '{:>1000000000}'.format(name) }}",
            "ok\n{{ '%01000000000d'|format(1) }}",
            "ok\n{{ '%01000000000d' % 1 }}",
        ],
    )
    def test_huge_padding_is_refused_naming_template_line_and_bound(self, tmp_path, source):
        """Padding a string to a gigabyte is refused before anything is allocated."""
        with pytest.raises(BadInput) as caught:
            render_source(tmp_path, source)
        message = str(caught.value)
        assert "evil.md.j2 line 2" in message and "template_width" in message, message

    def test_nested_loops_are_bounded(self, tmp_path, small_limits):
        """range(100000) inside range(100000): refused at the iteration bound, in well under a second."""
        small_limits(template_iterations=200_000)
        started = time.monotonic()
        with pytest.raises(BadInput, match="template_iterations"):
            render_source(
                tmp_path, "{% for i in range(100000) %}\n{% for j in range(100000) %}{% endfor %}{% endfor %}"
            )
        assert time.monotonic() - started < 5

    def test_time_per_document_is_bounded(self, tmp_path, small_limits):
        """A loop within the iteration bound but slower than the time limit is stopped by the clock."""
        small_limits(template_seconds=1, template_iterations=10**9, template_output_bytes=10**9)
        started = time.monotonic()
        with pytest.raises(BadInput, match="template_seconds"):
            render_source(tmp_path, "{% for i in range(9000000) %}{{ i }}{% endfor %}")
        assert time.monotonic() - started < 10

    def test_output_per_document_is_bounded(self, tmp_path, small_limits):
        """A document over the output bound is refused, not written."""
        small_limits(template_output_bytes=100_000)
        with pytest.raises(BadInput, match="template_output_bytes"):
            render_source(tmp_path, "{% for i in range(100) %}{{ 'x' * 10000 }}{% endfor %}")

    def test_real_templates_stay_within_the_defaults(self, tmp_path):
        """Loops, padding and formatting of a normal notice render as before."""
        text = render_source(
            tmp_path,
            "{% for i in range(3) %}{{ name.ljust(4) }}|{{ '%05.1f'|format(i) }}|"
            "{{ '{:>3}'.format(i) }}\n{% endfor %}",
        )
        assert text.splitlines() == ["Li  |000.0|  0", "Li  |001.0|  1", "Li  |002.0|  2"]


def test_a_locked_database_is_exit_2_and_says_to_retry(tmp_path):
    """A SQLite write lock held past the busy timeout: one line saying to retry; nothing written."""
    import sqlite3

    home = tmp_path / "ws"
    home.mkdir()
    run = Cli(home, None)
    run("init", str(home), check=True)
    holder = sqlite3.connect(home / "breach.db", isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        result = run(
            "incident",
            "open",
            "--playbook",
            "cn-agency-firm",
            "--title",
            "t",
            "--discovered-at",
            "2026-01-01",
        )
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert_one_line_error(result, "locked by process", f"process {os.getpid()}", "run the command again")
    assert run.json("incident", "list") == []
