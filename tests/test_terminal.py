"""The operator's terminal: what now after every write, nothing typed ever cut, at 80 columns or in a pipe."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import struct
import subprocess
import termios

from conftest import BREACH, assert_one_line_error, at_rest

CONTAINMENT = [
    "stop_transfer",
    "preserve_evidence",
    "establish_scope",
    "start_investigation",
    "grade_incident",
]
ANSI = re.compile(r"\x1b\[[0-9;?]*[a-zA-Z]")


def on_terminal(cli, *args: str, columns: int = 80) -> str:
    """Run breach with stdout on a pseudo-terminal ``columns`` wide; return what it showed."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    env = {**os.environ, "BREACH_HOME": str(cli.home), "COLUMNS": str(columns), "TERM": "xterm-256color"}
    env.pop("BREACH_DATABASE_URL", None)
    if cli.db_url:
        env["BREACH_DATABASE_URL"] = cli.db_url
    proc = subprocess.Popen([BREACH, *args], stdout=slave, stderr=subprocess.PIPE, env=env, cwd=cli.home)
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    proc.wait(timeout=60)
    os.close(master)
    assert proc.returncode == 0, proc.stderr.read() if proc.stderr else ""
    return ANSI.sub("", b"".join(chunks).decode()).replace("\r\n", "\n")


class TestWhatNow:
    def test_open_prints_the_id_alone_and_says_what_started(self, cli):
        """open keeps stdout to the id (for ID=$(...)); stderr names the clocks started, the missing facts."""
        result = cli(
            "incident",
            "open",
            "--playbook",
            "cn-agency-firm",
            "--title",
            "t",
            "--discovered-at",
            "2026-11-20 09:30",
        )
        assert result.returncode == 0, result.stderr
        incident_id = result.stdout.strip()
        assert re.fullmatch(r"INC-\d{4}-\d{4}", incident_id)
        assert "clocks started (3):" in result.stderr and "POLICY-CLIENT-NOTICE" in result.stderr
        assert "grade is none because no facts were given" in result.stderr
        assert f"breach incident facts {incident_id} --set people_affected=N" in result.stderr
        assert f"next: breach incident facts {incident_id}" in result.stderr

    def test_open_with_facts_does_not_warn(self, cli):
        """Facts given at opening: no warning about the grade."""
        result = cli(
            "incident",
            "open",
            "--playbook",
            "cn-agency-firm",
            "--title",
            "t",
            "--discovered-at",
            "2026-11-20 09:30",
            "--set",
            "people_affected=8000",
            "--set",
            "records.property=8000",
            check=True,
        )
        assert "because no facts were given" not in result.stderr
        assert "grade: general" in result.stderr

    def test_task_done_says_state_overdue_tasks_and_next(self, cli):
        """After a task, the block gives the state, overdue clocks loudly, the open tasks, what to type."""
        incident_id = cli.open_incident(discovered_at="2026-01-01 09:00")
        out = cli("task", "done", incident_id, "stop_transfer", check=True).stdout
        assert out.startswith(f"{incident_id}: task stop_transfer done")
        assert f"what now  {incident_id}  state: containment" in out
        assert re.search(r"OVERDUE  POLICY-CLIENT-NOTICE  due 2026-01-02 09:00 \+08:00  overdue by \d+d", out)
        assert "required tasks open:" in out and "    preserve_evidence  " in out
        assert "    stop_transfer  " not in out
        assert f"next: breach incident facts {incident_id}" in out
        assert f"breach task done {incident_id} preserve_evidence" in out
        assert f"breach deadlines list --incident {incident_id}" in out

    def test_once_tasks_are_done_next_is_the_step_forward(self, cli):
        """With the phase's tasks done, the next command is the trigger that moves the incident on."""
        incident_id = cli.open_incident(discovered_at="2026-11-30 09:00")
        for task in CONTAINMENT[:-1]:
            cli("task", "done", incident_id, task, check=True)
        out = cli("task", "done", incident_id, CONTAINMENT[-1], check=True).stdout
        # Tasks of later phases the playbook opens early may still be listed; none of this phase is.
        assert not [task for task in CONTAINMENT if f"    {task} " in out], out
        assert f"breach incident advance {incident_id} contain\n" in out
        # Steps that stay in the state are not offered as the way forward.
        assert "procuratorate_suggestion" not in out
        moved = cli("incident", "advance", incident_id, "contain", check=True).stdout
        assert re.search(r"contained_at = \d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+08:00\n", moved), moved
        assert "state: customer_notification" in moved
        assert f"breach task done {incident_id} notify_client_companies" in moved

    def test_facts_change_ends_with_the_block(self, cli):
        """A facts change that raises the grade shows the new grade and the clocks in the block."""
        incident_id = cli.open_incident(discovered_at="2026-11-30 09:00")
        out = cli(
            "incident",
            "facts",
            incident_id,
            "--set",
            "people_affected=8000",
            "--set",
            "records.property=8000",
        ).stdout
        assert "grade: none → general" in out
        assert "grade: general" in out.split("what now", 1)[1]
        assert "next deadline  POLICY-" in out or "OVERDUE  POLICY-" in out
        assert "breach incident facts" not in out.split("what now", 1)[1]

    def test_show_starts_with_the_block(self, cli):
        """show begins with what now; --full keeps the whole timeline, with times in the workspace zone."""
        incident_id = cli.open_incident(discovered_at="2026-11-30 09:00")
        shown = cli("incident", "show", incident_id, check=True).stdout
        assert shown.startswith(f"what now  {incident_id}  state: containment")
        full = cli("incident", "show", incident_id, "--full", check=True).stdout
        assert "│ 1 " in full and "earlier event(s)" not in full
        assert "discovered 2026-11-30 09:00 +08:00" in full

    def test_timeline_is_cut_to_its_latest_events(self, tmp_path, capsys):
        """Without --full the timeline lists its latest events and says how to see the earlier ones."""
        from datetime import UTC, datetime, timedelta

        from engine.cli.context import Ctx
        from engine.cli.views import TIMELINE_TAIL, print_timeline

        start = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)
        events = [
            {
                "seq": n,
                "at": start + timedelta(minutes=n),
                "actor": "张三",
                "kind": "task_done",
                "trigger": None,
                "from_state": "containment",
                "to_state": "containment",
                "reason": None,
                "inputs": {"task": f"task_{n}"},
            }
            for n in range(1, 31)
        ]
        row = {"id": "INC-2026-0007", "labels": {}, "events": events}
        print_timeline(Ctx(home=str(tmp_path)), row, last=TIMELINE_TAIL)
        out = capsys.readouterr().out
        assert f"last {TIMELINE_TAIL} of 30 events" in out
        assert f"{30 - TIMELINE_TAIL} earlier event(s): breach incident show INC-2026-0007 --full" in out
        assert "task_30" in out and "task_1 " not in out and f"task_{30 - TIMELINE_TAIL} " not in out

    def test_closed_incident_says_nothing_left(self):
        """The block of a closed incident says so and points at the audit check (unit of the read model)."""
        from engine.incidents.whatnow import what_now

        row = {
            "id": "INC-2026-0009",
            "state": "closed",
            "labels": {"states": {"closed": {"labels": {"zh-CN": "结案"}, "final": True}}},
            "closed_at": "2026-12-01T00:00:00",
            "deadlines": [],
            "tasks": [],
            "facts": {"people_affected": 3},
            "assessment": {"grade": "general"},
        }
        summary = what_now(row)
        assert summary.final and summary.next_commands == ["breach audit verify INC-2026-0009"]
        assert summary.state_label == "结案"


class TestNothingTypedIsCut:
    def test_pipe_is_not_squeezed(self, cli):
        """Through a pipe, with COLUMNS=80, every deadline line carries the whole incident id."""
        incident_id = cli.open_incident(
            title="一个很长很长的标题，说的是代账公司客户资料泄露的事件", discovered_at="2026-11-30 09:00"
        )
        out = cli("deadlines", "list", "--all", env={"COLUMNS": "80"}, check=True).stdout
        assert out.count(incident_id) == 3
        listing = cli("incident", "list", env={"COLUMNS": "80"}, check=True).stdout
        assert incident_id in listing and "INC-2026-…" not in listing and "…" not in listing
        triggers = cli("incident", "triggers", incident_id, env={"COLUMNS": "80"}, check=True).stdout
        assert "procuratorate_suggestion" in triggers

    def test_80_column_terminal_keeps_ids_and_triggers_whole(self, cli):
        """On an 80-column terminal, ids, rules and trigger names are whole; lines fit; labels wrap."""
        incident_id = cli.open_incident(
            title="一个很长很长的标题，说的是代账公司客户资料泄露的事件", discovered_at="2026-11-30 09:00"
        )
        for args in (
            ("incident", "list"),
            ("incident", "triggers", incident_id),
            ("deadlines", "list", "--all"),
            ("incident", "show", incident_id),
        ):
            shown = on_terminal(cli, *args)
            assert "…" not in shown, args
            assert incident_id in shown, args
            from rich.cells import cell_len

            assert max(cell_len(line) for line in shown.splitlines()) <= 80, args
        assert "procuratorate_suggestion" in on_terminal(cli, "incident", "triggers", incident_id)
        deadlines = on_terminal(cli, "deadlines", "list", "--all")
        assert "POLICY-PIPL57-INDIVIDUALS" in deadlines and "POLICY-PIPL57-REGULATOR" in deadlines


class TestShellConventions:
    def test_completion_offers_ids_triggers_and_tasks(self, cli):
        """The shell's completion asks breach, which answers from the workspace."""
        incident_id = cli.open_incident(discovered_at="2026-11-30 09:00")
        ids = cli(
            env={
                "_BREACH_COMPLETE": "complete_bash",
                "COMP_WORDS": "breach incident show INC",
                "COMP_CWORD": "3",
            },
        )
        assert ids.stdout.split() == [incident_id]
        triggers = cli(
            env={
                "_BREACH_COMPLETE": "complete_zsh",
                "_TYPER_COMPLETE_ARGS": f"breach incident advance {incident_id} co",
            },
        )
        assert '"contain":' in triggers.stdout and "stop_transfer" not in triggers.stdout
        tasks = cli(
            env={
                "_BREACH_COMPLETE": "complete_zsh",
                "_TYPER_COMPLETE_ARGS": f"breach task done {incident_id} ",
            },
        )
        assert '"stop_transfer":' in tasks.stdout and '"notify_individuals"' not in tasks.stdout
        cli("task", "done", incident_id, "stop_transfer", check=True)
        tasks = cli(
            env={
                "_BREACH_COMPLETE": "complete_zsh",
                "_TYPER_COMPLETE_ARGS": f"breach task done {incident_id} ",
            },
        )
        assert '"stop_transfer"' not in tasks.stdout and '"preserve_evidence":' in tasks.stdout

    def test_completion_outside_a_workspace_answers_nothing(self, tmp_path):
        """No workspace: completion offers nothing and prints no error into the line being typed."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("BREACH_")}
        env.update(
            {"_BREACH_COMPLETE": "complete_bash", "COMP_WORDS": "breach incident show I", "COMP_CWORD": "3"}
        )
        result = subprocess.run([BREACH], capture_output=True, text=True, env=env, cwd=tmp_path)
        assert result.returncode == 0 and result.stdout.strip() == "" and result.stderr == ""

    def test_short_h_and_whole_summaries(self, tmp_path):
        """-h is --help, at every level; at 80 columns no command summary is cut with an ellipsis."""
        env = {**os.environ, "COLUMNS": "80"}
        for args in ([], ["incident"], ["incident", "show"], ["notices"], ["documents"]):
            short = subprocess.run(
                [BREACH, *args, "-h"], capture_output=True, text=True, env=env, cwd=tmp_path
            )
            long = subprocess.run(
                [BREACH, *args, "--help"], capture_output=True, text=True, env=env, cwd=tmp_path
            )
            assert short.returncode == 0 and short.stdout == long.stdout, args
            summaries = [line for line in short.stdout.splitlines() if not line.startswith("Usage:")]
            assert not any(line.rstrip().endswith(("...", "…")) for line in summaries), (args, short.stdout)
        listing = subprocess.run(
            [BREACH, "--help"], capture_output=True, text=True, env=env, cwd=tmp_path
        ).stdout
        assert "--install-completion" in listing and "--show-completion" in listing
        assert "config/ overrides." in listing  # the end of init's summary, once cut


class TestSending:
    def test_send_without_smtp_is_refused_at_once(self, cli):
        """No [smtp] in the workspace: exit 2 naming the missing keys and the command, nothing changes."""
        incident_id = cli.open_incident(discovered_at="2026-11-30 09:00")
        before = at_rest(cli.json("incident", "show", incident_id))
        result = cli("notices", "send", incident_id)
        assert_one_line_error(
            result,
            "settings.toml does not name the mail server",
            "missing smtp.host, smtp.sender",
            "breach config set smtp.host",
        )
        assert at_rest(cli.json("incident", "show", incident_id)) == before


FIRM_AND_SMTP = """
[firm]
name = "示例财税服务有限公司"
address = "北京市朝阳区示例路1号"
contact_name = "李静"
contact_phone = "400-800-0000"
contact_email = "privacy@example-tax.cn"
contact_hours = "工作日 9:00–18:00"

[smtp]
host = "mail.example-tax.cn"
port = 587
sender = "privacy@example-tax.cn"
"""


class TestSettings:
    def test_init_writes_every_section_commented(self, cli):
        """init leaves a commented settings.toml (0600) that documents every section and changes nothing
        but the team: the account that ran it, its first member."""
        path = cli.home / "config" / "settings.toml"
        text = path.read_text(encoding="utf-8")
        assert path.stat().st_mode & 0o777 == 0o600
        for table in ("[firm]", "[smtp]", "[documents]", "[roles]", "[deadlines.policy]", "[escalation]"):
            assert f"\n# {table}\n" in text, table
        assert "# contact_email = " in text and "also the From address" in text
        me = cli.json("whoami")["account"]
        shown = cli.json("config", "show")
        own = [(row["key"], row["value"]) for row in shown if row["source"] != "built-in"]
        assert own == [(f"members.{me}.roles", ["dpo"])]

    def test_check_names_what_is_missing_then_passes(self, cli):
        """config check: exit 1 naming [firm] and [smtp] on a fresh workspace, 0 once they are set."""
        fresh = cli("config", "check")
        assert fresh.returncode == 1 and "firm: [firm] is not set" in fresh.stdout
        assert "smtp: " in fresh.stdout and "workspace: ok" in fresh.stdout
        path = cli.home / "config" / "settings.toml"
        path.write_text(path.read_text(encoding="utf-8") + FIRM_AND_SMTP, encoding="utf-8")
        done = cli("config", "check")
        assert done.returncode == 0, done.stdout + done.stderr
        shown = {row["key"]: row for row in cli.json("config", "show")}
        assert shown["smtp.port"] == {"key": "smtp.port", "value": 587, "source": "workspace"}
        assert shown["smtp.timeout_seconds"]["source"] == "built-in"

    def test_bad_files_exit_2_with_file_line_and_fix(self, cli):
        """A table declared twice, an unknown zone: exit 2, one line with the file and line; a typo'd
        table is named by config check."""
        incident_id = cli.open_incident()
        path = cli.home / "config" / "settings.toml"
        path.write_text('[firm]\nname = "a"\n\n[firm]\nname = "b"\n', encoding="utf-8")
        for args in (("incident", "list"), ("config", "check"), ("incident", "show", incident_id)):
            assert_one_line_error(cli(*args), f"{path}:4:", "twice", "breach config check")
        path.write_text('[workspace]\ntimezone = "Mars/Olympus"\n', encoding="utf-8")
        assert_one_line_error(cli("incident", "list"), str(path), "Mars/Olympus", "IANA")
        path.write_text(FIRM_AND_SMTP + "\n[smpt]\nport = 25\n", encoding="utf-8")
        typo = cli("config", "check")
        assert typo.returncode == 1 and "smpt: unknown table [smpt]" in typo.stdout


class TestPeopleFind:
    def test_find_across_incidents_masked(self, cli):
        """A caller's phone, however spelt, finds them in every incident; nothing shown is whole."""
        from pathlib import Path

        people = Path(__file__).parent / "data" / "people" / "agency.csv"
        first = cli.open_incident(title="一月泄露")
        second = cli.open_incident(title="二月泄露")
        for incident in (first, second):
            cli("people", "import", incident, str(people), check=True)
        found = cli.json("people", "find", "+86 138-0000-0001")
        assert [(m["incident_id"], m["customer_id"]) for m in found] == [
            (second, "P-0001"),
            (first, "P-0001"),
        ]
        assert found[0]["name"] == "张*" and found[0]["phone"] == "138****0001"
        assert found[0]["email"] == "z***@example.com" and found[0]["notified"] is False
        shown = cli("people", "find", "zhangsan@example.com", check=True).stdout
        assert "not notified yet" in shown and "一月泄露" in shown
        assert "13800000001" not in shown and "张三" not in shown and "zhangsan@" not in shown
        assert cli.json("people", "find", "CO-1001")[0]["name"] == "北京示例科技有限公司"
        assert (
            cli("people", "find", "nobody-like-this", check=True).stdout.strip()
            == "no one matches in any incident"
        )
        assert_one_line_error(cli("people", "find", "x"), "at least 2 characters")

    def test_config_set_edits_in_place(self, cli):
        """config set puts each key in its table, once, keeps the comments, and refuses unknown keys."""
        path = cli.home / "config" / "settings.toml"
        cli("config", "set", "smtp.host", "mail.example-tax.cn", check=True)
        cli("config", "set", "smtp.port", "587", check=True)
        cli("config", "set", "smtp.port", "2525", check=True)
        cli("config", "set", "deadlines.policy.POLICY-PIPL57-REGULATOR", "48h", check=True)
        cli("config", "set", "firm.contact_phone", "13800000000", check=True)
        text = path.read_text(encoding="utf-8")
        assert text.count("\n[smtp]\n") == 1 and "port = 2525" in text and "port = 587" not in text
        assert "# contact_email = " in text  # the documentation stays
        shown = {row["key"]: row["value"] for row in cli.json("config", "show")}
        assert shown["smtp.port"] == 2525 and shown["smtp.host"] == "mail.example-tax.cn"
        assert shown["deadlines.policy.POLICY-PIPL57-REGULATOR"] == "48h"
        assert shown["firm.contact_phone"] == "13800000000"  # digits stay text where the setting is text
        assert_one_line_error(cli("config", "set", "smtp.hots", "x"), "unknown setting 'smtp.hots'", "host")
        assert path.read_text(encoding="utf-8") == text
