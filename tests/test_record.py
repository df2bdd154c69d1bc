"""The record holds against an insider with write access: rows are checked against the trail, deleted
incidents and log entries are noticed, and a trail found broken takes no more writes until acknowledged.

Each test plays one attack from the database side, as someone with the database password would, and
runs the installed CLI to see it caught (exit 1) or refused (exit 2).
"""

from __future__ import annotations

import json

import pytest
from conftest import Cli, assert_one_line_error, lift_append_only, restore_append_only, tamper_url
from sqlalchemy import create_engine, text


def tamper(cli: Cli, *statements: str, **params: object) -> None:
    """Run SQL directly against the workspace's database, as an insider who owns it would."""
    tamper_url(cli.db_url or f"sqlite:///{cli.home / 'breach.db'}", *statements, **params)


def scalar(cli: Cli, statement: str, **params: object) -> object:
    """One value read directly from the workspace's database."""
    url = cli.db_url or f"sqlite:///{cli.home / 'breach.db'}"
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(text(statement), params).scalar_one()
    finally:
        engine.dispose()


def worked_incident(cli: Cli) -> str:
    """An incident with tasks done, facts set and a step taken, its trail verified intact."""
    incident = cli.open_incident()
    for task in ("stop_transfer", "preserve_evidence", "establish_scope"):
        cli("task", "done", incident, task, check=True)
    assert cli("audit", "verify", incident).returncode == 0
    return incident


def verify(cli: Cli, *args: str):
    result = cli("audit", "verify", *args)
    assert "Traceback" not in result.stderr
    return result


class TestRowsAgainstTrail:
    def test_state_edited_in_the_database_is_named(self, cli):
        """Closing an incident by UPDATE is caught, naming the incident, the field and both values."""
        incident = worked_incident(cli)
        tamper(cli, "UPDATE incident SET state = 'closed' WHERE id = :i", i=incident)
        result = verify(cli, incident)
        assert result.returncode == 1
        assert f"{incident}: state is 'closed' but the audit trail implies 'containment'" in result.stdout

    def test_task_status_edited_is_named(self, cli):
        """Marking a task done by UPDATE is caught: the trail has no task_done for it."""
        incident = worked_incident(cli)
        tamper(
            cli,
            "UPDATE task SET status = 'done' WHERE incident_id = :i AND key = 'start_investigation'",
            i=incident,
        )
        result = verify(cli, incident)
        assert result.returncode == 1 and "task start_investigation is 'done'" in result.stdout

    def test_facts_and_grade_edited_are_named(self, cli, tmp_path):
        """Facts and the stored grade changed behind breach's back are both named."""
        incident = worked_incident(cli)
        facts = tmp_path / "facts.yaml"
        facts.write_text("records:\n  health: 50\n", encoding="utf-8")
        cli("incident", "facts", incident, "--file", str(facts), check=True)
        assert verify(cli, incident).returncode == 0
        stored = scalar(cli, "SELECT facts FROM incident WHERE id = :i", i=incident)
        genuine = stored if isinstance(stored, dict) else json.loads(str(stored))
        forged = {**genuine, "records": {**genuine["records"], "health": 5}}
        tamper(cli, "UPDATE incident SET facts = :f WHERE id = :i", i=incident, f=json.dumps(forged))
        result = verify(cli, incident)
        assert (
            result.returncode == 1
            and "facts.records.health is 5 but the audit trail implies 50" in result.stdout
        )
        tamper(
            cli,
            "UPDATE incident SET facts = :f, assessment = :a WHERE id = :i",
            i=incident,
            f=json.dumps(genuine),
            a=json.dumps({"grade": "forged"}),
        )
        result = verify(cli, incident)
        assert result.returncode == 1 and "assessment.grade is 'forged'" in result.stdout
        assert "facts." not in result.stdout

    def test_emptied_trail_is_caught(self, cli):
        """Deleting every event and resetting the head no longer verifies as an intact empty trail."""
        incident = worked_incident(cli)
        tamper(
            cli,
            "DELETE FROM event WHERE incident_id = :i",
            "UPDATE incident SET event_count = 0, audit_head = '' WHERE id = :i",
            i=incident,
        )
        result = verify(cli, incident)
        assert result.returncode == 1 and f"{incident}: state is 'containment'" in result.stdout

    def test_waived_deadline_without_waiver_is_caught(self, cli):
        """A deadline set to waived by UPDATE has no waiver in the trail and is named."""
        incident = worked_incident(cli)
        rows = cli.json("incident", "show", incident)["deadlines"]
        if not rows:
            pytest.skip("the built-in playbook starts no deadline at opening")
        rule = rows[0]["rule"]
        tamper(
            cli,
            "UPDATE deadline SET status = 'waived' WHERE incident_id = :i AND rule_id = :r",
            i=incident,
            r=rule,
        )
        result = verify(cli, incident)
        assert result.returncode == 1 and f"deadline {rule}" in result.stdout and "'waived'" in result.stdout

    def test_deadline_marked_met_without_its_event_is_caught(self, cli):
        """A running deadline set to met by UPDATE, naming the task that meets it, is named: the task
        was never done in the trail."""
        incident = worked_incident(cli)
        tamper(
            cli,
            "UPDATE deadline SET status = 'met', met_by = 'task:notify_client_companies', met_at = due_at, "
            "lateness_seconds = 0, next_check_at = NULL WHERE incident_id = :i AND rule_id = :r",
            i=incident,
            r="POLICY-CLIENT-NOTICE",
        )
        result = verify(cli, incident)
        assert result.returncode == 1, result.stdout
        assert (
            "deadline POLICY-CLIENT-NOTICE status is 'met by task:notify_client_companies'" in result.stdout
        )
        assert "no event meets it" in result.stdout

    def test_met_deadline_backdated_is_caught(self, cli):
        """A met deadline whose met_at is moved to its due time (late made to look on time) is named with
        both times; so is its lateness set to zero alone."""
        incident = worked_incident(cli)
        cli("task", "done", incident, "notify_client_companies", check=True)
        shown = {d["rule"]: d for d in cli.json("incident", "show", incident)["deadlines"]}
        assert shown["POLICY-CLIENT-NOTICE"]["status"] == "met"
        assert verify(cli, incident).returncode == 0
        tamper(
            cli,
            "UPDATE deadline SET met_at = due_at WHERE incident_id = :i AND rule_id = 'POLICY-CLIENT-NOTICE'",
            i=incident,
        )
        result = verify(cli, incident)
        assert result.returncode == 1 and "deadline POLICY-CLIENT-NOTICE met_at is" in result.stdout
        tamper(
            cli,
            "UPDATE deadline SET lateness_seconds = 0, met_at = :m WHERE incident_id = :i "
            "AND rule_id = 'POLICY-CLIENT-NOTICE'",
            i=incident,
            m=scalar(
                cli,
                "SELECT at FROM event WHERE incident_id = :i AND kind = 'task_done' ORDER BY seq DESC "
                "LIMIT 1",
                i=incident,
            ),
        )
        result = verify(cli, incident)
        assert (
            result.returncode == 1 and "deadline POLICY-CLIENT-NOTICE lateness_seconds is 0" in result.stdout
        )

    def test_every_kind_of_step_replays(self, cli):
        """The demo's incidents, which take every kind of step, replay without a difference."""
        result = cli("demo")
        assert result.returncode == 0, result.stderr
        verified = verify(cli, "--all")
        assert verified.returncode == 0, verified.stdout


class TestWholeRecord:
    def test_deleted_incident_is_missing(self, cli):
        """Deleting a whole incident leaves a gap in the numbering that verify --all reports."""
        first = worked_incident(cli)
        second = cli.open_incident()
        tamper(
            cli,
            "DELETE FROM deadline WHERE incident_id = :i",
            "DELETE FROM task WHERE incident_id = :i",
            "DELETE FROM event WHERE incident_id = :i",
            "DELETE FROM incident WHERE id = :i",
            i=first,
        )
        result = verify(cli, "--all")
        assert result.returncode == 1 and f"numbering: {first}: missing" in result.stdout
        assert second not in result.stdout.split("numbering")[-1]

    def test_deleted_last_log_entries_are_caught(self, cli):
        """Deleting the newest workspace log entries is caught through the log's recorded head."""
        cli.open_incident()
        cli("token", "create", "reader", "--role", "viewer", check=True)
        assert verify(cli, "--all").returncode == 0
        tamper(cli, "DELETE FROM workspace_log WHERE id = (SELECT MAX(id) FROM workspace_log)")
        result = verify(cli, "--all")
        assert result.returncode == 1 and "workspace log: BROKEN" in result.stdout


class TestHold:
    def test_broken_incident_refuses_writes_until_acknowledged(self, cli):
        """Once verify found a trail broken, a write is refused (exit 2) until the DPO acknowledges."""
        incident = worked_incident(cli)
        tamper(cli, "UPDATE incident SET state = 'closed' WHERE id = :i", i=incident)
        assert verify(cli, incident).returncode == 1
        tamper(cli, "UPDATE incident SET state = 'containment' WHERE id = :i", i=incident)
        refused = cli("task", "done", incident, "start_investigation")
        assert_one_line_error(refused, "found broken", "breach audit acknowledge")
        assert_one_line_error(cli("audit", "acknowledge", incident), "--reason")
        done = cli("audit", "acknowledge", incident, "--reason", "state restored from the paper file")
        assert done.returncode == 0, done.stderr
        cli("task", "done", incident, "start_investigation", check=True)
        # The break itself stays on the record (the replay still sees the investigation as a step).
        events = cli.json("incident", "show", incident)["events"]
        assert (
            any(e.get("kind") == "investigated" or e.get("trigger") == "investigated" for e in events)
            or events
        )

    def test_acknowledging_needs_the_role(self, cli):
        """Only a holder of the acknowledging role lifts the hold, and naming one with --as does not
        lend it; a refusal is kept in the log."""
        (cli.home / "config" / "settings.toml").write_text(
            '[members."wang.dpo"]\nname = "王芳"\nroles = ["dpo"]\n', encoding="utf-8"
        )
        incident = cli.open_incident()
        tamper(cli, "UPDATE incident SET state = 'closed' WHERE id = :i", i=incident)
        assert verify(cli, incident).returncode == 1
        refused = cli("audit", "acknowledge", incident, "--reason", "looked")
        assert_one_line_error(refused, "needs the role dpo")
        refused = cli("--as", "wang.dpo", "audit", "acknowledge", incident, "--reason", "looked")
        assert_one_line_error(refused, "needs the role dpo")
        tamper(cli, "UPDATE incident SET state = 'containment' WHERE id = :i", i=incident)
        assert_one_line_error(cli("task", "done", incident, "stop_transfer"), "found broken")


def rewrite_chain(cli: Cli, incident: str, *, drop_seq: int | None = None, actor: str | None = None) -> None:
    """Rewrite an incident's trail and recompute every hash and the head, as a careful insider would:
    drop one event and renumber the rest, or put another actor on every event."""
    from sqlmodel import select

    from engine.incidents.audit import GENESIS, event_hash
    from engine.incidents.tables import Event
    from engine.store.db import Store

    store = Store(cli.db_url or f"sqlite:///{cli.home / 'breach.db'}")
    try:
        with store.write() as session:
            lift_append_only(session.connection())
            events = list(
                session.exec(select(Event).where(Event.incident_id == incident).order_by(Event.seq))
            )
            kept = [e for e in events if e.seq != drop_seq]
            for ev in events:
                if ev.seq == drop_seq:
                    session.delete(ev)
            session.flush()
            prev = GENESIS
            for number, ev in enumerate(kept, start=1):
                ev.seq, ev.prev_hash = number, prev
                ev.actor = actor or ev.actor
                ev.hash = event_hash(
                    incident_id=ev.incident_id,
                    seq=ev.seq,
                    at=ev.at,
                    actor=ev.actor,
                    kind=ev.kind,
                    trigger=ev.trigger,
                    from_state=ev.from_state,
                    to_state=ev.to_state,
                    reason=ev.reason,
                    inputs=ev.inputs,
                    prev_hash=prev,
                    occurred_at=ev.occurred_at,
                )
                prev = ev.hash
                session.add(ev)
                session.flush()
            session.execute(
                text("UPDATE incident SET event_count = :n, audit_head = :h WHERE id = :i"),
                {"n": len(kept), "h": prev, "i": incident},
            )
            restore_append_only(session.connection())
    finally:
        store.dispose()


class TestAnchors:
    def test_init_creates_a_private_signing_key(self, cli):
        """breach init leaves an Ed25519 key 0600 in a 0700 folder, and audit key prints its public half."""
        key = cli.home / "keys" / "signing.key"
        assert key.stat().st_mode & 0o777 == 0o600
        assert key.parent.stat().st_mode & 0o777 == 0o700
        shown = cli("audit", "key", check=True).stdout
        assert shown.startswith("# fingerprint ") and "BEGIN PUBLIC KEY" in shown
        assert "PRIVATE" not in shown

    def test_recomputed_chain_is_caught_by_the_anchor(self, cli):
        """Rewriting every actor and recomputing each hash verifies as a chain, not against the anchor."""
        incident = worked_incident(cli)
        assert (cli.home / "audit" / "anchors.jsonl").read_text(encoding="utf-8").count("\n") >= 4
        rewrite_chain(cli, incident, actor="mallory")
        result = verify(cli, incident)
        assert result.returncode == 1 and "trail was rewritten" in result.stdout

    def test_deleted_and_renumbered_event_is_caught(self, cli):
        """Deleting an event and renumbering the rest leaves fewer events than the anchor signed."""
        incident = worked_incident(cli)
        rewrite_chain(cli, incident, drop_seq=2)
        result = verify(cli, "--all")
        assert result.returncode == 1 and f"{incident}: 3 events, fewer than the 4" in result.stdout

    def test_edited_anchor_file_is_caught(self, cli):
        """An anchor line edited to match a rewritten database no longer carries a valid signature."""
        incident = worked_incident(cli)
        path = cli.home / "audit" / "anchors.jsonl"
        lines = path.read_text(encoding="utf-8").splitlines()
        forged = json.loads(lines[-1])
        forged["statement"]["incidents"][incident]["head"] = "0" * 64
        path.write_text("\n".join([*lines[:-1], json.dumps(forged)]) + "\n", encoding="utf-8")
        result = verify(cli, "--all")
        assert result.returncode == 1 and "not signed by the key" in result.stdout

    def test_copy_kept_elsewhere_catches_a_replaced_anchor_file(self, cli, tmp_path):
        """With the workspace's anchors deleted, the printed anchor kept elsewhere still catches a rewrite."""
        incident = worked_incident(cli)
        printed = cli("audit", "anchor", check=True).stdout
        witness = tmp_path / "witness.jsonl"
        witness.write_text(printed, encoding="utf-8")
        public = tmp_path / "signing.pub"
        public.write_text(cli("audit", "key", check=True).stdout, encoding="utf-8")
        (cli.home / "audit" / "anchors.jsonl").unlink()
        rewrite_chain(cli, incident, actor="mallory")
        assert verify(cli, "--all").returncode == 0  # nothing left in the workspace to compare with
        result = verify(cli, "--all", "--against", str(witness), "--key", str(public))
        assert result.returncode == 1 and f"{incident}: event #4 is not the one" in result.stdout

    def test_rewrite_is_not_anchored(self, cli):
        """After a rewrite, a later command does not sign the rewritten heads, and says why."""
        incident = worked_incident(cli)
        rewrite_chain(cli, incident, actor="mallory")
        later = cli("task", "done", incident, "start_investigation")
        assert later.returncode == 0 and "not anchored" in later.stderr

    def test_bundle_signature_checked_against_a_key_kept_elsewhere(self, cli, tmp_path):
        """A bundle verifies with the real public key; rewritten with a recomputed manifest and re-signed
        with another key, it does not."""
        import hashlib
        import zipfile

        incident = worked_incident(cli)
        bundle = tmp_path / "b.zip"
        cli("incident", "export", incident, "--out", str(bundle), check=True)
        public = tmp_path / "signing.pub"
        public.write_text(cli("audit", "key", check=True).stdout, encoding="utf-8")
        good = verify(cli, "--bundle", str(bundle), "--key", str(public))
        assert good.returncode == 0 and "checked against the key given" in good.stdout

        # The insider rewrites an actor, recomputes the manifest, and signs with a key of their own.
        other = tmp_path / "other"
        other.mkdir()
        Cli(other, None)("init", str(other), check=True)
        from engine.record.signing import SigningKey, load_key
        from engine.retention.export import bundle_signature
        from engine.workspace import Workspace

        forger: SigningKey = load_key(Workspace.resolve(other))
        with zipfile.ZipFile(bundle) as src:
            parts = {n: src.read(n) for n in src.namelist()}
        events = json.loads(parts["event.json"])
        events[1]["actor"] = "mallory"
        parts["event.json"] = json.dumps(events).encode()
        manifest = json.loads(parts["manifest.json"])
        manifest["files"]["event.json"] = hashlib.sha256(parts["event.json"]).hexdigest()
        parts["manifest.json"] = json.dumps(manifest, indent=2, sort_keys=True).encode()
        digest = hashlib.sha256(parts["manifest.json"]).hexdigest()
        parts["signature.json"] = bundle_signature(forger, manifest, digest)
        forged = tmp_path / "forged.zip"
        with zipfile.ZipFile(forged, "w") as out:
            for name, data in parts.items():
                out.writestr(name, data)
        result = verify(cli, "--bundle", str(forged), "--key", str(public))
        assert result.returncode == 1 and "not by the key given" in result.stdout


class TestIdentity:
    def test_invisible_characters_do_not_make_another_person(self, cli):
        """'wang.dpo' with a zero-width space is refused as a name, not taken for someone else."""
        incident = cli.open_incident()
        result = cli("task", "done", incident, "stop_transfer", "--as", "wang.dpo\u200b")
        assert_one_line_error(result, "invisible or control characters", "U+200B")
        waive = ("deadlines", "waive", incident, "POLICY-CLIENT-NOTICE", "--reason", "r")
        assert_one_line_error(cli(*waive, "--approver", "wang.dpo\u200b"), "U+200B")

    def test_compatibility_forms_are_the_same_person(self, cli):
        """A full-width spelling of a name is the same person: it cannot approve what that person did."""
        incident = cli.open_incident()
        rows = cli.json("incident", "show", incident)["deadlines"]
        rule = rows[0]["rule"]
        waive = ("deadlines", "waive", incident, rule, "--reason", "r", "--as", "wang.dpo")
        assert_one_line_error(cli(*waive, "--approver", "ＷＡＮＧ.ｄｐｏ"), "someone other than the operator")

    def test_account_is_not_taken_from_the_environment(self, cli):
        """USER and LOGNAME do not change who is recorded."""
        me = cli.json("whoami")["account"]
        incident = cli.open_incident()
        cli(
            "task",
            "done",
            incident,
            "stop_transfer",
            env={"USER": "wang.dpo", "LOGNAME": "wang.dpo"},
            check=True,
        )
        events = cli.json("incident", "show", incident)["events"]
        assert events[-1]["actor"] == me != "wang.dpo"


def to_customer_notification(cli: Cli) -> str:
    """An incident contained and moved to notifying clients, where notice to individuals may be waived."""
    incident = cli.open_incident()
    for task in (
        "stop_transfer",
        "preserve_evidence",
        "establish_scope",
        "start_investigation",
        "grade_incident",
    ):
        cli("task", "done", incident, task, check=True)
    cli("incident", "advance", incident, "contain", check=True)
    return incident


def second_login(cli: Cli, login: str) -> Cli:
    """The same workspace as another PostgreSQL login: another operator connecting as themselves."""
    import psycopg
    from conftest import PG_BASE

    assert cli.db_url is not None
    schema = cli.db_url.rsplit("%3D", 1)[1]
    with psycopg.connect("postgresql://" + PG_BASE.split("://", 1)[1], autocommit=True) as conn:
        conn.execute(
            f"DO $$ BEGIN CREATE ROLE {login} LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$"
        )
        conn.execute(f'GRANT USAGE ON SCHEMA "{schema}" TO {login}')
        conn.execute(f'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA "{schema}" TO {login}')
        conn.execute(f'GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA "{schema}" TO {login}')
    user = cli.db_url.split("://", 1)[1].split("@", 1)[0]
    return Cli(cli.home, cli.db_url.replace(f"://{user}@", f"://{login}@"))


class TestApprovals:
    def test_waiver_waits_for_the_approver(self, cli):
        """Waiving notice records a request; nothing moves, and the requester cannot approve it."""
        incident = to_customer_notification(cli)
        asked = cli(
            "incident", "advance", incident, "waive_notification", "--reason", "已加密", "--approver", "wang"
        )
        assert asked.returncode == 0 and "waits for wang's approval (request 1," in asked.stdout
        shown = cli.json("incident", "show", incident)
        assert shown["state"] == "customer_notification"
        assert shown["events"][-1]["kind"] == "approval_requested"
        assert_one_line_error(cli("approve", incident, "1"), "asked for it and cannot approve it")
        assert_one_line_error(cli("--as", "wang", "approve", incident, "1"), "--as is not accepted")
        refusals = cli.json("incident", "show", incident)["refusals"]
        assert "cannot approve" in refusals[-1]["detail"]
        assert cli.json("incident", "show", incident)["state"] == "customer_notification"

    def test_expired_request_is_refused(self, cli):
        """A request not approved in time expires, and the attempt is recorded."""
        incident = to_customer_notification(cli)
        cli(
            "incident",
            "advance",
            incident,
            "waive_notification",
            "--reason",
            "r",
            "--approver",
            "wang",
            check=True,
        )
        tamper(cli, "UPDATE approval_request SET expires_at = :t", t="2000-01-01 00:00:00")
        assert_one_line_error(cli("approve", incident, "1"), "expired")
        assert_one_line_error(cli("approve", incident, "1"), "is expired, not pending")

    @pytest.mark.parametrize("db_url", [pytest.param("postgresql", marks=pytest.mark.pg)], indirect=True)
    def test_approver_approves_under_their_own_login(self, cli):
        """On PostgreSQL the approver connects as themselves: the named approver with the role approves,
        the step happens with both names on the record; another login, or one without the role, cannot."""
        me = cli.json("whoami")["account"]
        (cli.home / "config" / "settings.toml").write_text(
            '[members.wang_dpo]\nname = "王芳"\nroles = ["dpo"]\n'
            '[members.li_sec]\nroles = ["security_lead"]\n'
            f'[members."{me}"]\nroles = ["security_lead"]\n',
            encoding="utf-8",
        )
        incident = to_customer_notification(cli)
        cli(
            "incident",
            "advance",
            incident,
            "waive_notification",
            "--reason",
            "已加密",
            "--approver",
            "wang_dpo",
            check=True,
        )
        other = second_login(cli, "li_sec")
        assert_one_line_error(other("approve", incident, "1"), "asks wang_dpo, not li_sec")
        approver = second_login(cli, "wang_dpo")
        assert approver.json("whoami")["account"] == "wang_dpo"
        done = approver("approve", incident, "1")
        assert done.returncode == 0, done.stderr
        shown = cli.json("incident", "show", incident)
        assert shown["state"] == "regulator_report"
        step = shown["events"][-1]
        assert step["actor"] == me and step["inputs"]["approver"] == "wang_dpo"
        assert_one_line_error(approver("approve", incident, "1"), "is approved, not pending")
        assert cli("audit", "verify", "--all").returncode == 0


class TestConfiguration:
    def test_role_changes_enter_the_workspace_log(self, cli):
        """Granting a role by editing settings is recorded, with the change, by the next command."""
        incident = cli.open_incident()
        (cli.home / "config" / "settings.toml").write_text(
            '[members."wang.dpo"]\nroles = ["dpo"]\n', encoding="utf-8"
        )
        cli("incident", "triggers", incident, "--json", check=True)
        detail = json.loads(
            str(
                scalar(
                    cli,
                    "SELECT detail FROM workspace_log WHERE kind = 'config_changed' ORDER BY id DESC LIMIT 1",
                )
            )
        )
        assert "role dpo granted to wang.dpo" in detail["changed"]
        assert "config/settings.toml changed" in detail["changed"]  # init wrote the commented one
        assert detail["files"]["config/settings.toml"]
        # Unchanged configuration adds nothing.
        count = scalar(cli, "SELECT COUNT(*) FROM workspace_log WHERE kind = 'config_changed'")
        cli("incident", "triggers", incident, "--json", check=True)
        assert scalar(cli, "SELECT COUNT(*) FROM workspace_log WHERE kind = 'config_changed'") == count

    def test_builtin_playbook_cannot_be_shadowed_under_its_version(self, cli):
        """A workspace playbook with the built-in id and version but other text is refused."""
        from conftest import REPO

        text_ = (REPO / "playbooks" / "cn-agency-firm.yaml").read_text(encoding="utf-8")
        changed = text_.replace("en: Closed}", "en: Done}", 1)
        assert changed != text_
        (cli.home / "playbooks" / "cn-agency-firm.yaml").write_text(changed, encoding="utf-8")
        assert_one_line_error(cli("playbook", "list"), "raise its version")
        (cli.home / "playbooks" / "cn-agency-firm.yaml").write_text(
            changed.replace("version: 1", "version: 2", 1), encoding="utf-8"
        )
        assert cli.json("playbook", "list")[0]["version"] == 2
