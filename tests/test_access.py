"""Roles: only the right people take the steps the law puts on them; refusals are kept."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from conftest import assert_one_line_error, lift_append_only, restore_append_only
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
    def test_single_operator_mode(self):
        """With no member named at all, everyone holds every role, and the map says it is that mode."""
        empty = RoleMap.from_settings({})
        assert empty.single_operator and not empty.enforced and empty.holds("anyone", "dpo")

    def test_a_member_without_roles_ends_single_operator_mode(self):
        """Naming one member, even without roles, leaves every account the settings do not name with none."""
        named = RoleMap.from_settings({"members": {"li.sec": {"name": "李"}}})
        assert named.enforced and not named.single_operator
        assert not named.holds("stranger", "dpo") and not named.holds("li.sec", "dpo")
        assert named.roles_of("stranger") == frozenset()

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


def team_settings(cli, roles: dict[str, list[str]]) -> None:
    """Write the workspace's settings: the firm, and the members with their roles."""
    members = "".join(
        f'[members."{account}"]\nroles = {json.dumps(held)}\n' for account, held in roles.items()
    )
    (cli.home / "config" / "settings.toml").write_text(
        # The firm is named: submitting the initial report produces it, and a report names its unit.
        '[firm]\nname = "示例财税"\naddress = "北京"\ncontact_name = "李静"\ncontact_phone = "400-800-0000"\n'
        'contact_email = "privacy@example-tax.cn"\ncontact_hours = "工作日 9:00–18:00"\n' + members,
        encoding="utf-8",
    )


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


class TestSingleOperatorModeIsShown:
    def test_screens_say_so_until_a_member_is_named(self, cli):
        """config check warns, whoami and the what-now block say every account acts as every role;
        once one member is named (without roles), the notes go and this account is refused the DPO's step."""
        incident_id = cli.open_incident()
        check = cli("config", "check")
        assert "members: warning: single-operator mode" in check.stdout
        rows = json.loads(cli("config", "check", "--json").stdout)  # exit 1: [firm] and [smtp] unset
        assert next(r for r in rows if r["section"] == "members")["warning"]
        assert "single-operator mode" in cli("whoami", check=True).stdout
        shown = cli("incident", "show", incident_id, check=True).stdout
        assert "single-operator mode: config/settings.toml names no member" in shown
        team_settings(cli, {"someone.else": []})
        assert "single-operator mode" not in cli("config", "check").stdout
        assert "single-operator mode" not in cli("incident", "show", incident_id, check=True).stdout
        assert cli.json("whoami")["roles"] == []
        for tasks, trigger in STEPS:
            for task in tasks:
                cli("task", "done", incident_id, task, check=True)
            cli("incident", "advance", incident_id, trigger, check=True)
        for task in ("submit_initial_report", "cooperate_with_authorities"):
            cli("task", "done", incident_id, task, check=True)
        assert_one_line_error(cli("incident", "advance", incident_id, "report"), "needs the role dpo")
