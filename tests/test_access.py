"""Roles: only the right people take the steps the law puts on them; refusals are kept."""

from __future__ import annotations

import json
import tomllib
from datetime import UTC, datetime, timedelta

import pytest
from conftest import Cli, assert_one_line_error, lift_append_only, restore_append_only
from sqlalchemy import text
from sqlmodel import select

from engine.access import RoleMap
from engine.errors import GuardFailed, NotAllowed
from engine.incidents import flow
from engine.incidents.hooks import Hooks
from engine.incidents.opening import open_incident
from engine.incidents.tables import Incident
from engine.incidents.tasks import complete_task
from engine.incidents.worklog import WorkspaceLog, verify_log

ZONE = "Asia/Shanghai"
TEAM = RoleMap.from_settings({"roles": {"members": {"wang.dpo": ["dpo"], "li.sec": ["security_lead"]}}})
STEPS = [
    (
        ["stop_transfer", "preserve_evidence", "establish_scope", "start_investigation", "grade_incident"],
        "contain",
    ),
    (["notify_client_companies", "notify_individuals", "offer_remedies", "keep_notice_records"], "notify"),
]


def to_regulator_report(store, source, hooks):
    inc = open_incident(
        store,
        source=source,
        title="t",
        actor="li.sec",
        zone=ZONE,
        hooks=hooks,
        discovered_at=datetime.now(UTC) - timedelta(hours=1),
    )
    for tasks, trigger in STEPS:
        for task in tasks:
            complete_task(store, inc.id, task, actor="li.sec", hooks=hooks)
        flow.advance(store, inc.id, trigger, actor="li.sec", zone=ZONE, hooks=hooks)
    for task in ("submit_initial_report", "cooperate_with_authorities"):
        complete_task(store, inc.id, task, actor="li.sec", hooks=hooks)
    return inc


class TestRoleMap:
    def test_no_member_means_no_one_holds_a_role(self):
        """With no member named, no account holds any role, and the refusal says how to name one."""
        empty = RoleMap.from_settings({})
        assert not empty.named and not empty.holds("anyone", "dpo")
        assert empty.roles_of("anyone") == frozenset()
        hint = empty.how_to_grant("root", ["dpo"])
        assert "names no member, so no one holds a role" in hint
        assert hint.endswith("breach config set members.root.roles dpo")

    def test_a_step_entered_for_someone_needs_the_enterer_granted(self):
        """--as never lends roles: the grant a refusal suggests is for the account that entered it."""
        hint = TEAM.how_to_grant("wang.dpo (entered by li.sec)", ["dpo"])
        assert hint.endswith("breach config set members.li.sec.roles dpo,security_lead"), hint
        assert not TEAM.holds("wang.dpo (entered by li.sec)", "dpo")

    def test_a_member_without_roles_holds_none(self):
        """Naming a member without roles grants nothing, to them or to an account the settings do not name."""
        named = RoleMap.from_settings({"members": {"li.sec": {"name": "李"}}})
        assert named.named
        assert not named.holds("stranger", "dpo") and not named.holds("li.sec", "dpo")
        assert named.roles_of("stranger") == frozenset()
        assert "stranger is not a member" in named.how_to_grant("stranger", ["dpo"])

    def test_names_compare_case_insensitively(self):
        """Operator names match regardless of case; unmapped operators hold no role."""
        assert TEAM.holds("Wang.DPO", "dpo") and not TEAM.holds("li.sec", "dpo")
        assert TEAM.roles_of("stranger") == frozenset()

    def test_members_carry_names_departments_and_roles(self):
        """A [members.<account>] table names the person documents show, and grants the roles listed."""
        team = RoleMap.from_settings(
            {
                "members": {
                    "wang": {
                        "name": "王芳",
                        "department": "法务部",
                        "position": "数据保护负责人",
                        "roles": ["dpo"],
                    }
                },
                "roles": {"members": {"li": ["security_lead"]}},
            }
        )
        wang = team.member("WANG")
        assert wang is not None and wang.described == "王芳（法务部 数据保护负责人）"
        assert team.holds("wang", "dpo") and not team.holds("wang", "security_lead")
        assert team.holds("li", "security_lead") and team.member("li").name == "li"
        assert team.member("nobody") is None


class TestRolesInFlow:
    def test_only_dpo_submits_the_report_and_refusal_is_logged(self, store, builtin_source):
        """A non-DPO 'report' is refused, recorded in the refusal log, and the incident is untouched."""
        hooks = Hooks(roles=TEAM)
        inc = to_regulator_report(store, builtin_source, hooks)
        with store.read() as s:
            before = s.get(Incident, inc.id)
            version, head = before.version, before.audit_head
        with pytest.raises(NotAllowed, match="needs the role dpo"):
            flow.advance(store, inc.id, "report", actor="li.sec", zone=ZONE, hooks=hooks)
        with store.read() as s:
            after = s.get(Incident, inc.id)
            assert (after.version, after.audit_head, after.state) == (version, head, "regulator_report")
            refusals = list(s.exec(select(WorkspaceLog)))
            assert [(r.actor, r.kind, r.detail) for r in refusals] == [
                ("li.sec", "refused", "report needs the role dpo")
            ]
            assert verify_log(s) is None
        assert flow.advance(store, inc.id, "report", actor="wang.dpo", zone=ZONE, hooks=hooks).to_state == (
            "accountability"
        )

    def test_waiver_approver_must_be_dpo(self, store, builtin_source):
        """A waiver approved by someone who is not the DPO is blocked by the approver_role guard."""
        hooks = Hooks(roles=TEAM)
        inc = open_incident(
            store,
            source=builtin_source,
            title="t",
            actor="li.sec",
            zone=ZONE,
            hooks=hooks,
            discovered_at=datetime.now(UTC) - timedelta(hours=1),
        )
        for task in STEPS[0][0]:
            complete_task(store, inc.id, task, actor="li.sec", hooks=hooks)
        flow.advance(store, inc.id, "contain", actor="li.sec", zone=ZONE, hooks=hooks)
        with pytest.raises(GuardFailed, match="approver zhao does not hold the role 'dpo'"):
            flow.advance(
                store,
                inc.id,
                "waive_notification",
                actor="li.sec",
                zone=ZONE,
                hooks=hooks,
                reason="加密",
                approver="zhao",
            )
        flow.advance(
            store,
            inc.id,
            "waive_notification",
            actor="li.sec",
            zone=ZONE,
            hooks=hooks,
            reason="加密",
            approver="wang.dpo",
        )

    def test_tampered_refusal_log_is_detected(self, store, builtin_source):
        """Editing a refusal row breaks the refusal log's chain."""
        hooks = Hooks(roles=TEAM)
        inc = to_regulator_report(store, builtin_source, hooks)
        for _ in range(2):
            with pytest.raises(NotAllowed):
                flow.advance(store, inc.id, "report", actor="li.sec", zone=ZONE, hooks=hooks)
        with store.engine.begin() as conn:
            lift_append_only(conn)
            conn.execute(
                text(
                    "UPDATE workspace_log SET actor = 'wang.dpo' WHERE id = (SELECT MIN(id) FROM "
                    "workspace_log)"
                )
            )
            restore_append_only(conn)
        with store.read() as s:
            assert "was changed" in verify_log(s)


# The firm is named: submitting the initial report produces it, and a report names its unit.
FIRM = (
    '[firm]\nname = "示例财税"\naddress = "北京"\ncontact_name = "李静"\ncontact_phone = "400-800-0000"\n'
    'contact_email = "privacy@example-tax.cn"\ncontact_hours = "工作日 9:00–18:00"\n'
)


def team_settings(cli, roles: dict[str, list[str]]) -> None:
    """Write the workspace's settings: the firm, and the members with their roles."""
    members = "".join(
        f'[members."{account}"]\nroles = {json.dumps(held)}\n' for account, held in roles.items()
    )
    (cli.home / "config" / "settings.toml").write_text(FIRM + members, encoding="utf-8")


def test_cli_roles_from_workspace_settings(cli):
    """Roles come from the workspace's settings for the account running breach; --as names someone
    else but never lends their roles; a refused CLI attempt exits 2 and is shown."""
    me = cli.json("whoami")["account"]
    team_settings(cli, {"wang.dpo": ["dpo"], me: ["security_lead"]})
    incident_id = cli(
        "incident",
        "open",
        "--playbook",
        "cn-agency-firm",
        "--title",
        "t",
        "--discovered-at",
        "2026-11-20 09:00",
        check=True,
    ).stdout.strip()
    for tasks, trigger in STEPS:
        for task in tasks:
            cli("task", "done", incident_id, task, check=True)
        cli("incident", "advance", incident_id, trigger, check=True)
    for task in ("submit_initial_report", "cooperate_with_authorities"):
        cli("task", "done", incident_id, task, check=True)
    triggers = {t["trigger"]: t for t in cli.json("incident", "triggers", incident_id)}
    assert (
        triggers["report"]["allowed"] is False
        and "does not hold the role dpo" in triggers["report"]["blocked_by"][0]
    )
    before = cli.json("incident", "show", incident_id)
    assert_one_line_error(cli("incident", "advance", incident_id, "report"), "needs the role dpo")
    # Naming the DPO does not lend their role: the step is entered by this account, which lacks it.
    assert_one_line_error(
        cli("incident", "advance", incident_id, "report", "--as", "wang.dpo"), "needs the role dpo"
    )
    after = cli.json("incident", "show", incident_id)
    assert after["version"] == before["version"] and after["events"] == before["events"]
    assert after["refusals"][0]["actor"] == me and "report" in after["refusals"][0]["detail"]
    assert after["refusals"][1]["actor"] == f"wang.dpo (entered by {me})"
    # Neither do USER or LOGNAME: the account is the real user id's (or the database login).
    assert_one_line_error(
        cli("incident", "advance", incident_id, "report", env={"USER": "wang.dpo", "LOGNAME": "wang.dpo"}),
        "needs the role dpo",
    )
    team_settings(cli, {me: ["dpo", "security_lead"]})
    cli("incident", "advance", incident_id, "report", check=True)
    assert cli("audit", "verify", "--all").returncode == 0


def to_report_by_cli(cli, incident_id: str) -> None:
    """Take an incident opened through the CLI to the step only the DPO may take (report)."""
    for tasks, trigger in STEPS:
        for task in tasks:
            cli("task", "done", incident_id, task, check=True)
        cli("incident", "advance", incident_id, trigger, check=True)
    for task in ("submit_initial_report", "cooperate_with_authorities"):
        cli("task", "done", incident_id, task, check=True)


class TestInitNamesItsAccount:
    def test_init_makes_its_account_a_member_with_every_role(self, tmp_path, db_url):
        """breach init names the account that runs it (OS account on SQLite, database login on
        PostgreSQL) as a member with the roles the built-in playbooks use, says so, and logs the grant."""
        home = tmp_path / "fresh"
        home.mkdir()
        run = Cli(home, None if db_url.startswith("sqlite") else db_url)
        said = run("init", str(home), check=True).stdout
        me = run.json("whoami")["account"]
        assert run.json("whoami")["roles"] == ["dpo"]
        assert f"you are member {me} with roles dpo" in said
        assert "add colleagues with: breach config set members.ACCOUNT.roles dpo" in said
        settings = tomllib.loads((home / "config" / "settings.toml").read_text(encoding="utf-8"))
        assert settings["members"] == {me: {"roles": ["dpo"]}}
        from engine.store.db import Store

        store = Store(run.db_url or f"sqlite:///{home / 'breach.db'}")
        try:
            with store.read() as s:
                entries = list(s.exec(select(WorkspaceLog).where(WorkspaceLog.kind == "config_changed")))
        finally:
            store.dispose()
        assert len(entries) == 1 and entries[0].actor == me
        assert f"role dpo granted to {me}" in json.loads(entries[0].detail)["changed"]
        # Run again, it leaves the team as it is: the settings name a member now.
        again = run("init", str(home), check=True).stdout
        assert "you are member" not in again and run.json("whoami")["roles"] == ["dpo"]

    def test_the_dpo_step_then_works(self, cli):
        """Straight after init, the account that ran it takes the DPO's step."""
        cli.write_settings(FIRM)  # the team init named stays
        incident_id = cli.open_incident()
        to_report_by_cli(cli, incident_id)
        cli("incident", "advance", incident_id, "report", check=True)
        assert cli.json("incident", "show", incident_id)["state"] == "accountability"


class TestNoMembers:
    def test_role_gated_step_refused_with_how_to_add_a_member(self, cli):
        """With no member named, the DPO's step is refused (exit 2, one line naming the role and the
        command that names a member), logged, the incident untouched; that very command then lets it pass."""
        me = cli.json("whoami")["account"]
        team_settings(cli, {})
        incident_id = cli.open_incident()
        to_report_by_cli(cli, incident_id)
        before = cli.json("incident", "show", incident_id)
        refused = cli("incident", "advance", incident_id, "report")
        grant = f"breach config set members.{me}.roles dpo"
        assert_one_line_error(refused, "needs the role dpo", "no one holds a role", grant)
        after = cli.json("incident", "show", incident_id)
        assert after["version"] == before["version"] and after["events"] == before["events"]
        assert [(r["actor"], r["detail"]) for r in after["refusals"]] == [(me, "report needs the role dpo")]
        cli(*grant.split()[1:], check=True)
        cli("incident", "advance", incident_id, "report", check=True)

    def test_screens_say_no_one_holds_a_role(self, cli):
        """whoami, config check and the what-now block say no one holds a role and how to add a member;
        once a member is named, they say it no more."""
        me = cli.json("whoami")["account"]
        team_settings(cli, {})
        incident_id = cli.open_incident()
        assert cli.json("whoami")["roles"] == []
        who = cli("whoami", check=True).stdout
        assert "roles: none" in who and "no one holds a role" in who
        assert f"breach config set members.{me}.roles dpo" in who
        check = cli("config", "check").stdout
        assert "members: warning: config/settings.toml names no member, so no one holds a role" in check
        assert "breach config set members.ACCOUNT.roles dpo" in check
        rows = json.loads(cli("config", "check", "--json").stdout)  # exit 1: [smtp] unset
        assert "no one holds a role" in next(r for r in rows if r["section"] == "members")["warning"]
        shown = cli("incident", "show", incident_id, check=True).stdout
        assert "no one holds a role" in shown and "breach config set members.ACCOUNT.roles dpo" in shown
        assert "single-operator" not in who + check + shown
        team_settings(cli, {"someone.else": []})
        named = cli("config", "check").stdout
        assert "members: ok" in named and "no one holds a role" not in named
        assert "no one holds a role" not in cli("incident", "show", incident_id, check=True).stdout

    def test_an_account_the_settings_do_not_name_holds_no_role(self, cli):
        """Another member holding the DPO's role lends it to no one: this account is refused, told how
        to be added."""
        me = cli.json("whoami")["account"]
        team_settings(cli, {"someone.else": ["dpo"]})
        assert cli.json("whoami")["roles"] == []
        incident_id = cli.open_incident()
        to_report_by_cli(cli, incident_id)
        assert_one_line_error(
            cli("incident", "advance", incident_id, "report"),
            "needs the role dpo",
            f"{me} is not a member",
            f"breach config set members.{me}.roles dpo",
        )

    def test_waiver_approval_refused_and_logged(self, store, builtin_source):
        """With no member named, approving a waiver is refused, says how to name the approver a member,
        and the refusal is kept in the workspace log."""
        from engine.approvals.service import approve, request_trigger

        nobody = Hooks(roles=RoleMap.from_settings({}))
        inc = open_incident(
            store,
            source=builtin_source,
            title="t",
            actor="li.sec",
            zone=ZONE,
            hooks=nobody,
            discovered_at=datetime.now(UTC) - timedelta(hours=1),
        )
        for task in STEPS[0][0]:
            complete_task(store, inc.id, task, actor="li.sec", hooks=nobody)
        flow.advance(store, inc.id, "contain", actor="li.sec", zone=ZONE, hooks=nobody)
        request = request_trigger(
            store,
            inc.id,
            "waive_notification",
            actor="li.sec",
            approver="wang.dpo",
            reason="加密",
            inputs={},
            lifetime=timedelta(hours=1),
        )
        with pytest.raises(NotAllowed, match="no one holds a role") as refused:
            approve(
                store,
                inc.id,
                int(request.id or 0),
                account="wang.dpo",
                roles=nobody.roles or RoleMap({}),
                hooks=nobody,
                zone=ZONE,
                waive=None,
            )
        assert "breach config set members.wang.dpo.roles dpo" in str(refused.value)
        with store.read() as s:
            logged = [(r.actor, r.kind) for r in s.exec(select(WorkspaceLog))]
            assert logged == [("wang.dpo", "approval_refused")]
            assert s.get(Incident, inc.id).state == "customer_notification"


class TestConfigSetMembers:
    def test_members_are_set_one_key_at_a_time(self, tmp_path):
        """config set members.ACCOUNT.FIELD writes [members."ACCOUNT"] (dots and all), roles as a list
        that replaces the member's; a bad field or role name is one line, exit 2, nothing changed."""
        home = tmp_path / "ws"
        home.mkdir()
        run = Cli(home, None)
        run("init", str(home), check=True)
        path = home / "config" / "settings.toml"
        run("config", "set", "members.wang.dpo.roles", "dpo,security_lead", check=True)
        run("config", "set", "members.wang.dpo.name", "王芳", check=True)
        run("config", "set", "members.wang.dpo.roles", "dpo", check=True)
        assert '[members."wang.dpo"]' in path.read_text(encoding="utf-8")
        wang = tomllib.loads(path.read_text(encoding="utf-8"))["members"]["wang.dpo"]
        assert wang == {"name": "王芳", "roles": ["dpo"]}
        before = path.read_bytes()
        assert_one_line_error(run("config", "set", "members.wang.dpo.title", "x"), "members.ACCOUNT.FIELD")
        assert_one_line_error(run("config", "set", "members.wang.dpo.roles", "D P O"), "role names")
        assert path.read_bytes() == before
