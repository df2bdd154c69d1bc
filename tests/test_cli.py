"""The installed ``breach`` command, run in a subprocess as operators and scripts run it."""

from __future__ import annotations

import json
import os
import subprocess

import pytest
from conftest import BREACH, assert_one_line_error, at_rest

CONTAINMENT = [
    "stop_transfer",
    "preserve_evidence",
    "establish_scope",
    "start_investigation",
    "grade_incident",
]


def open_incident(cli, *extra: str) -> str:
    result = cli(
        "incident",
        "open",
        "--playbook",
        "cn-agency-firm",
        "--title",
        "台账泄露",
        "--discovered-at",
        "2026-11-20 09:30",
        *extra,
        check=True,
    )
    return result.stdout.strip()


class TestBasics:
    def test_version_is_fast_path(self, tmp_path):
        """--version prints the version without needing a workspace."""
        result = subprocess.run([BREACH, "--version"], capture_output=True, text=True, cwd=tmp_path)
        assert result.returncode == 0 and result.stdout.startswith("breach ")

    def test_init_creates_workspace(self, tmp_path):
        """init makes the database and the three override folders; out/ is private."""
        home = tmp_path / "new"
        result = subprocess.run([BREACH, "init", str(home)], capture_output=True, text=True, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        for name in ("playbooks", "templates", "config", "breach.db"):
            assert (home / name).exists()
        assert (home / "out").stat().st_mode & 0o777 == 0o700

    def test_no_workspace_is_a_clear_error(self, tmp_path):
        """Commands outside a workspace say so instead of creating a database silently."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("BREACH_")}
        result = subprocess.run(
            [BREACH, "incident", "list"], capture_output=True, text=True, cwd=tmp_path, env=env
        )
        assert_one_line_error(result, "not a breach workspace", "breach init")
        assert not (tmp_path / "breach.db").exists()

    def test_demo_runs_in_a_fresh_temp_workspace(self, tmp_path):
        """breach demo exits 0 and prints the timeline through to closed."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("BREACH_")}
        result = subprocess.run(
            [BREACH, "demo"], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120
        )
        assert result.returncode == 0, result.stderr
        assert "INC-" in result.stdout and "audit trail: intact" in result.stdout
        assert not (tmp_path / "breach.db").exists()


class TestIncidentCommands:
    def test_open_prints_readable_id_and_show_json_contract(self, cli):
        """open prints INC-YYYY-NNNN; show --json has the contract's fields, times with offsets."""
        incident_id = open_incident(cli)
        assert incident_id.startswith("INC-") and len(incident_id) == len("INC-2026-0001")
        data = cli.json("incident", "show", incident_id)
        for key in (
            "id",
            "title",
            "playbook",
            "state",
            "version",
            "facts",
            "tasks",
            "deadlines",
            "documents",
            "events",
        ):
            assert key in data
        assert data["discovered_at"] == "2026-11-20T09:30:00+08:00"
        assert {"id", "state"} <= set(data["tasks"][0])
        assert {"at", "actor", "trigger", "from", "to"} <= set(data["events"][0])
        assert data["events"][0]["at"].endswith("+08:00")

    def test_list_json(self, cli):
        """list --json returns id, title, playbook, state, opened_at for each incident."""
        first, second = open_incident(cli), open_incident(cli)
        rows = cli.json("incident", "list")
        assert {r["id"] for r in rows} == {first, second}
        assert {"id", "title", "playbook", "state", "opened_at"} <= set(rows[0])

    def test_triggers_json_explains_blocks(self, cli):
        """triggers --json lists each trigger with dest, allowed and the failing guards in words."""
        incident_id = open_incident(cli)
        rows = cli.json("incident", "triggers", incident_id)
        assert rows[0]["trigger"] == "contain" and rows[0]["dest"] == "customer_notification"
        assert rows[0]["allowed"] is False and "required tasks not done" in rows[0]["blocked_by"][0]
        for task in CONTAINMENT:
            cli("task", "done", incident_id, task, check=True)
        assert cli.json("incident", "triggers", incident_id)[0]["allowed"] is True

    def test_advance_with_as_records_actor(self, cli):
        """--as names the actor in the audit trail; advance prints the move."""
        incident_id = open_incident(cli)
        for task in CONTAINMENT:
            cli("task", "done", incident_id, task, "--as", "张三", check=True)
        result = cli("incident", "advance", incident_id, "contain", "--as", "李四", check=True)
        assert "containment → customer_notification" in result.stdout
        events = cli.json("incident", "show", incident_id)["events"]
        me = cli.json("whoami")["account"]
        assert events[-1]["actor"] == f"李四 (entered by {me})" and events[-1]["trigger"] == "contain"
        assert cli("audit", "verify", incident_id).returncode == 0

    def test_drill_flag_is_kept(self, cli):
        """An incident opened with --drill says so."""
        incident_id = open_incident(cli, "--drill")
        assert cli.json("incident", "show", incident_id)["drill"] is True


class TestBadInput:
    """Each bad input: one line on stderr, exit 2, and nothing changed."""

    def _unchanged(self, cli, incident_id, before):
        assert at_rest(cli.json("incident", "show", incident_id)) == at_rest(before)

    def test_unknown_incident(self, cli):
        """An unknown id is named."""
        assert_one_line_error(cli("incident", "show", "INC-2000-0009"), "no incident 'INC-2000-0009'")
        assert_one_line_error(cli("incident", "advance", "INC-2000-0009", "contain"), "no incident")

    def test_unknown_playbook(self, cli):
        """An unknown playbook lists the available ones."""
        result = cli(
            "incident", "open", "--playbook", "nope", "--title", "t", "--discovered-at", "2026-11-20"
        )
        assert_one_line_error(result, "unknown playbook 'nope'", "cn-agency-firm")

    def test_unknown_trigger_not_allowed_and_guard(self, cli):
        """Unknown trigger, trigger of another phase, failing guard: each one line, nothing changed."""
        incident_id = open_incident(cli)
        before = cli.json("incident", "show", incident_id)
        assert_one_line_error(cli("incident", "advance", incident_id, "fly"), "unknown trigger 'fly'")
        assert_one_line_error(
            cli("incident", "advance", incident_id, "report"), "not allowed", "allowed now: contain"
        )
        assert_one_line_error(cli("incident", "advance", incident_id, "contain"), "required tasks not done")
        self._unchanged(cli, incident_id, before)

    def test_missing_reason_and_approver(self, cli):
        """A waiver without reason or approver is refused, and nothing changes."""
        incident_id = open_incident(cli)
        for task in CONTAINMENT:
            cli("task", "done", incident_id, task, check=True)
        cli("incident", "advance", incident_id, "contain", check=True)
        before = cli.json("incident", "show", incident_id)
        assert_one_line_error(cli("incident", "advance", incident_id, "waive_notification"), "needs --reason")
        assert_one_line_error(
            cli("incident", "advance", incident_id, "waive_notification", "--reason", "加密"),
            "needs --approver",
        )
        self._unchanged(cli, incident_id, before)

    def test_bad_timestamps_and_types(self, cli):
        """Malformed times, malformed --input, wrong option types are refused in one line."""
        result = cli(
            "incident",
            "open",
            "--playbook",
            "cn-agency-firm",
            "--title",
            "t",
            "--discovered-at",
            "31/12/2026",
        )
        assert_one_line_error(result, "malformed time")
        incident_id = open_incident(cli)
        assert_one_line_error(
            cli("incident", "advance", incident_id, "contain", "--input", "novalue"), "KEY=VALUE"
        )
        assert_one_line_error(
            cli("incident", "advance", incident_id, "contain", "--expect-version", "x"), "--expect-version"
        )
        assert_one_line_error(cli("incident", "open", "--title", "t"), "Missing option")

    def test_stale_expect_version_is_a_conflict(self, cli):
        """--expect-version of an older version is refused as changed meanwhile."""
        incident_id = open_incident(cli)
        cli("task", "done", incident_id, "stop_transfer", check=True)
        assert_one_line_error(
            cli("incident", "advance", incident_id, "contain", "--expect-version", "1"), "changed meanwhile"
        )

    def test_malformed_playbook_file(self, cli):
        """validate prints every error with file and line, exits 2; a good file says ok."""
        bad = cli.home / "playbooks" / "broken.yaml"
        bad.write_text("id: broken\nversion: x\nstates: [\n", encoding="utf-8")
        result = cli("playbook", "validate", str(bad))
        assert result.returncode == 2 and f"{bad}:" in result.stdout and "malformed YAML" in result.stdout
        typed = cli.home / "typed.yaml"
        typed.write_text("id: typed\nversion: x\ntitles: {zh-CN: 甲, en: A}\n", encoding="utf-8")
        result = cli("playbook", "validate", str(typed))
        assert result.returncode == 2 and f"{typed}:2: version:" in result.stdout
        from conftest import REPO

        good = cli("playbook", "validate", str(REPO / "playbooks" / "cn-agency-firm.yaml"))
        assert good.returncode == 0 and "ok" in good.stdout


class TestAuditAndPlaybookCommands:
    def test_audit_verify_exit_codes(self, cli, db_url):
        """verify exits 0 when intact and 1 naming the first bad event after tampering."""
        incident_id = open_incident(cli)
        cli("task", "done", incident_id, "stop_transfer", check=True)
        assert cli("audit", "verify", incident_id).returncode == 0
        from conftest import tamper_url

        url = db_url if not db_url.startswith("sqlite") else f"sqlite:///{cli.home / 'breach.db'}"
        tamper_url(url, "UPDATE event SET actor = 'x' WHERE seq = 2")
        result = cli("audit", "verify", incident_id)
        assert result.returncode == 1 and "event #2" in result.stdout + result.stderr

    def test_playbook_list_show_diagram(self, cli):
        """list/show --json and the Mermaid diagram work from the built-ins."""
        rows = cli.json("playbook", "list")
        assert rows[0]["id"] == "cn-agency-firm" and rows[0]["version"] == 1
        shown = cli.json("playbook", "show", "cn-agency-firm")
        assert shown["states"][0]["id"] == "containment"
        diagram = cli("playbook", "diagram", "cn-agency-firm", check=True).stdout
        assert diagram.lstrip().startswith("---") and "stateDiagram-v2" in diagram

    def test_workspace_playbook_overrides_builtin(self, cli):
        """A playbook file of the same name in the workspace shadows the built-in one."""
        from conftest import REPO

        text = (REPO / "playbooks" / "cn-agency-firm.yaml").read_text(encoding="utf-8")
        (cli.home / "playbooks" / "cn-agency-firm.yaml").write_text(
            text.replace("version: 1", "version: 7"), encoding="utf-8"
        )
        rows = cli.json("playbook", "list")
        assert rows[0]["version"] == 7 and str(cli.home) in rows[0]["path"]


@pytest.mark.parametrize("args", [["--help"], ["incident", "--help"]])
def test_help_works_without_workspace(tmp_path, args):
    """Help needs no workspace and exits 0."""
    result = subprocess.run([BREACH, *args], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0 and "Usage" in result.stdout


def test_json_output_is_utf8_not_escaped(cli):
    """Chinese text in JSON output is readable, not \\u-escaped."""
    incident_id = open_incident(cli)
    out = cli("incident", "show", incident_id, "--json", check=True).stdout
    assert "台账泄露" in out and json.loads(out)["title"] == "台账泄露"
