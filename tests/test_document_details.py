"""The smaller things readers of the documents noticed: numbers that never repeat, decisions never issued
half-empty, due dates that read the same everywhere, an honest list of what is owed, a waiver that comes
too late, and names of members instead of machine accounts."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from test_formal import ACCOUNT, FIRM, Walk, docx_text, make_workspace
from test_people import DATA, do_import, give_content

from engine.errors import BadInput, NotAllowed
from engine.formal.service import list_documents
from engine.notices.recorded import record_deliveries
from engine.notices.render import render_notices


@pytest.fixture
def ws(tmp_path, db_url):
    """A workspace naming the firm, its officer, the regulator and the number prefix."""
    return make_workspace(tmp_path / "ws", db_url)


MEMBERS = (
    '\n[members."alice"]\nname = "王芳"\ndepartment = "法务部"\nposition = "数据保护负责人"\n'
    'roles = ["dpo"]\n'
)


class TestNumbers:
    def test_numbers_never_repeat_across_kinds_or_incidents(self, store, ws):
        """Two incidents of one firm, their reports and their client letters: every number differs."""
        numbers = []
        for _ in range(2):
            walk = Walk(store, ws).to_report()
            do_import(store, walk.id, DATA / "agency.csv")
            give_content(store, walk.id)
            render_notices(store, ws, walk.id, actor="alice", kinds=["client_notice"], formats=["md"])
            walk.tasks("submit_initial_report")
            numbers += [walk.file("regulator_initial_report").name]
            numbers += [d["path"] for d in walk.docs() if d["kind"] == "client_notice"]
        from engine.formal.responsible import ISSUE

        with store.read() as s:
            issued = [r[0] for r in s.execute(ISSUE.select().with_only_columns(ISSUE.c.number))]
        assert len(issued) == 6 and len(set(issued)) == 6
        assert all(n.startswith("示例财税〔") for n in issued)


class TestDecisions:
    def test_a_decision_without_facts_or_rule_is_refused_unless_a_draft(self, store, ws):
        """Without facts and a rule the person is refused, naming both; as a draft it is kept, and
        recording them again completes the same decision."""
        walk = Walk(store, ws).to_accountability()
        with pytest.raises(BadInput, match=r"needs --facts and --rule.*--draft"):
            walk.person(facts=None, rules=None)
        draft = walk.person(facts=None, rules=None, draft=True)
        walk.tasks(*ACCOUNT[:2])
        text = docx_text(walk.file("disciplinary_decision", subject=str(draft["id"])))
        assert "草稿" in text
        done = walk.person()  # the same person, now with facts and rule
        assert done["id"] == draft["id"] and done["draft"] is False
        with pytest.raises(NotAllowed, match="recorded already"):
            walk.person()


class TestDueDates:
    def test_an_order_due_on_a_date_reads_24_00_of_that_day_in_report_and_clock(self, store, ws):
        """due_at=2026-12-20: the clock is due at 24:00 that day, and the report says the same."""
        walk = Walk(store, ws).to_report()
        walk.fire("correction_order", inputs={"ref": "某网信办〔2026〕12号", "due_at": "2026-12-20"})
        walk.tasks("submit_initial_report")
        text = docx_text(walk.file("regulator_initial_report"))
        assert "期限 2026年12月20日 24:00" in text
        from sqlalchemy import select

        from engine.deadlines.tables import Deadline

        with store.read() as s:
            due = s.execute(
                select(Deadline.due_at).where(
                    Deadline.incident_id == walk.id, Deadline.rule_id == "CN-SPC-2019-4"
                )
            ).scalar_one()
        assert due.astimezone(UTC) == datetime(2026, 12, 20, 16, 0, tzinfo=UTC)  # 24:00 Beijing time

    def test_the_clock_table_shows_24_00_of_the_last_day(self):
        """A deadline at local midnight is shown as 24:00 of the day it ends."""
        from engine.cli.context import Ctx

        class Shanghai(Ctx):
            zone = "Asia/Shanghai"  # type: ignore[assignment]

        ctx = Shanghai.__new__(Shanghai)
        assert ctx.fmt_short(datetime(2026, 12, 20, 16, 0, tzinfo=UTC)) == "2026-12-20 24:00 +08:00"
        assert ctx.fmt_short(datetime(2026, 12, 20, 1, 30, tzinfo=UTC)) == "2026-12-20 09:30 +08:00"


class TestOwed:
    def test_documents_list_calls_a_document_owed_only_once_its_step_was_taken(self, store, ws):
        """Early on every document is later; a decision for a person recorded after the decisions
        were issued is owed, naming the person."""
        walk = Walk(store, ws).to_report()
        status = {d["kind"]: d["status"] for d in list_documents(store, walk.id)["declared"]}
        assert set(status.values()) == {"not yet due"}
        walk.tasks("submit_initial_report", "cooperate_with_authorities")
        walk.fire("report")
        walk.person()
        walk.tasks(*ACCOUNT[:2])
        late = walk.person(name="钱八")
        declared = {d["kind"]: d for d in list_documents(store, walk.id)["declared"]}
        assert declared["regulator_initial_report"]["status"] == "produced"
        assert declared["disciplinary_decision"]["status"] == "owed"
        assert declared["disciplinary_decision"]["subjects_missing"] == [str(late["id"])]
        assert declared["remediation_report"]["status"] == "not yet due"


class TestWaiver:
    def test_a_waiver_is_refused_once_every_individual_was_notified(self, store, ws):
        """With every person's notice recorded, waive_notification names the done task and changes nothing."""
        walk = Walk(store, ws)
        walk.tasks(
            "stop_transfer", "preserve_evidence", "establish_scope", "start_investigation", "grade_incident"
        )
        walk.fire("contain")
        path = ws.home / "sms.csv"
        path.write_text("customer_id,name,phone,channel,categories\nS-1,周八,13800000009,sms,name\n", "utf-8")
        do_import(store, walk.id, path)
        give_content(store, walk.id)
        render_notices(store, ws, walk.id, actor="alice")
        record_deliveries(store, walk.id, channel="sms", reference="GW-1", actor="alice", hooks=walk.hooks)
        before = walk.version_and_events()
        with pytest.raises(NotAllowed, match="notify_individuals"):
            walk.fire("waive_notification", reason="数据已加密", approver="wang.dpo")
        assert walk.version_and_events() == before


class TestMembers:
    def test_documents_name_the_member_never_the_account(self, store, tmp_path, db_url):
        """A remediation action done under a member's account names them; another account is not printed."""
        ws = make_workspace(tmp_path / "ws", db_url, FIRM + MEMBERS)
        walk = Walk(store, ws).to_accountability()
        walk.person()
        walk.tasks(*ACCOUNT)
        walk.fire("hold_accountable")
        walk.fire("handling_ended")
        walk.tasks("management_rules", notes={"management_rules": "修订客户信息保护制度"})
        from engine.incidents.tasks import complete_task

        complete_task(store, walk.id, "technical_controls", actor="root", hooks=walk.hooks, note="加密存储")
        walk.tasks("security_training", "client_confidentiality", "external_audit", "lessons_learned")
        walk.tasks("submit_summary_report")
        walk.fire("close")
        text = docx_text(walk.file("remediation_report"))
        assert "责任人：王芳（法务部 数据保护负责人）" in text
        assert "root" not in text and "alice" not in text
