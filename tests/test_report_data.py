"""Report data: regulator-report items supplied at any time, and what the reports then say."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import assert_one_line_error
from docx import Document
from sqlalchemy import select
from test_deadlines import people_for
from test_formal import FIRM, WORD_ONLY, Walk, docx_text, make_workspace, pdf_text

from engine.errors import BadInput
from engine.formal.report_data import REPORT_ITEM, check_values, set_report_data
from engine.formal.service import render_document
from engine.incidents.opening import open_incident
from engine.incidents.reassess import update_facts
from engine.notices.content import set_content
from engine.notices.contexts import NoticeContent
from engine.wiring import hooks_for, legal_for
from engine.workspace import Workspace

ZONE = "Asia/Shanghai"


@pytest.fixture
def ws(tmp_path, db_url) -> Workspace:
    return make_workspace(tmp_path / "ws", db_url)


def supply(walk: Walk, **values) -> list[str]:
    checked = check_values(values, "--set", ZONE)
    return set_report_data(walk.store, walk.id, checked, actor="alice", zone=ZONE).changed


def changed_items(path) -> list[str]:
    """The 报告事项 column of a supplementary report's table of changes, as Word shows it."""
    table = Document(io.BytesIO(path.read_bytes())).tables[0]
    return [row.cells[1].text for row in table.rows[1:]]


def field_line(text: str, label: str) -> str:
    return next(line for line in text.splitlines() if line.startswith(label))


class TestReports:
    def test_initial_marks_unknown_then_supplement_lists_exactly_what_was_supplied(self, store, ws):
        """Items supplied before the initial report are in it, the rest say 待补报; the supplement lists
        exactly the items supplied or changed since, and re-supplying a value unchanged lists nothing."""
        walk = Walk(store, ws).to_report()
        supply(walk, system="客户账套管理系统（SaaS）", cause="离职员工账号未注销。")
        walk.tasks("submit_initial_report")
        initial = docx_text(walk.file("regulator_initial_report"))
        assert "客户账套管理系统（SaaS）" in initial and "离职员工账号未注销。" in initial
        assert field_line(initial, "事件类型：") == "事件类型：待补报"
        assert field_line(initial, "发现方式：") == "发现方式：待补报"
        assert "迟报" not in initial  # on time: no delay to explain

        changed = supply(
            walk,
            system="客户账套管理系统（SaaS）",  # the same: not a change
            type_label="数据泄露",
            leads="导出操作来自 203.0.113.7。",
            cause="离职员工利用未注销的账号导出客户账套。",
        )
        assert changed == ["type_label", "leads", "cause"]
        walk.fire("supplementary_report", reason="查明事件类型和原因")
        path = walk.file("regulator_supplementary_report", subject="1")
        assert changed_items(path) == [
            "（二）事件类型",
            "（四）事件原因",
            "（五）追查溯源线索",
            "补充说明",
        ]
        text = docx_text(path)
        assert "离职员工账号未注销。" in text and "离职员工利用未注销的账号导出客户账套。" in text
        pending = text.split("二、仍待查明的事项")[1].split("三、")[0]
        assert "（二）发现方式" in pending and "（二）事件类型" not in pending

        supply(walk, found_how="客户投诉")
        walk.fire("supplementary_report", reason="查明发现方式")
        assert changed_items(walk.file("regulator_supplementary_report", subject="2")) == [
            "（二）发现方式",
            "补充说明",
        ]

    def test_report_data_wins_over_the_notice_content(self, store, ws):
        """The notice content gives an item until report data supplies it; the summary report then
        states the latest values and no 待补报 for the items set (Word and PDF)."""
        walk = Walk(store, ws).to_report()
        content = {"incident": {"cause": "初步判断为账号泄露。", "type_label": "数据泄露"}}
        set_content(store, walk.id, NoticeContent.parse(content, "t"), actor="alice")
        walk.tasks("submit_initial_report")
        assert (
            field_line(docx_text(walk.file("regulator_initial_report")), "事件类型：") == "事件类型：数据泄露"
        )
        supply(
            walk,
            type_label="个人信息泄露事件",
            occurred_at="2026-01-05 10:30",
            found_how="客户投诉",
            place="北京市海淀区",
            cause="离职员工利用未注销的账号导出客户账套。",
            possible_harm="可能被用于电信诈骗。",
            measures="停用账号\n更换密钥",
            measures_effect="未再发现异常导出。",
            system="客户账套管理系统",
        )
        supply(walk, cause="离职员工利用未注销的账号批量导出客户账套。")  # the latest value is stated
        produced = render_document(
            store, ws, walk.id, "regulator_summary_report", actor="alice", formats=["docx", "pdf"]
        )
        (summary,) = produced
        by_fmt = {fmt: Path(f["path"]) for fmt, f in summary.files.items()}
        word = docx_text(by_fmt["docx"])
        assert field_line(word, "事件类型：") == "事件类型：个人信息泄露事件"
        assert "离职员工利用未注销的账号批量导出客户账套。" in word and "初步判断为账号泄露。" not in word
        assert "停用账号" in word and "未再发现异常导出。" in word
        assert "2026年1月5日 10:30" in word
        for label in ("事件类型：", "发生时间："):
            assert "待补报" not in field_line(word, label), label
        pdf = pdf_text(by_fmt["pdf"])
        assert "事件类型：个人信息泄露事件" in pdf and "事件类型：待补报" not in pdf

    def test_every_change_is_kept_and_audited_in_one_step(self, store, ws):
        """Each change adds rows (earlier values stay) and one audit event naming old and new values;
        an unchanged value writes nothing."""
        walk = Walk(store, ws)
        supply(walk, cause="甲", leads="乙")
        version, events = walk.version_and_events()
        assert supply(walk, cause="甲") == []
        assert walk.version_and_events() == (version, events)
        supply(walk, cause="丙")
        with store.read() as s:
            rows = s.execute(
                select(REPORT_ITEM.c.item, REPORT_ITEM.c.value)
                .where(REPORT_ITEM.c.incident_id == walk.id)
                .order_by(REPORT_ITEM.c.id)
            ).all()
        assert [tuple(r) for r in rows] == [("cause", "甲"), ("leads", "乙"), ("cause", "丙")]
        audited = walk.events("report_data")
        assert len(audited) == 2
        assert audited[-1].inputs["changed"] == {"cause": {"from": "甲", "to": "丙"}}

    def test_every_art7_item_is_supplied_or_derived(self):
        """Each CN-CAC-RPT-7 item a report states is either report data or taken from the facts."""
        from engine.formal.report_data import DERIVED, SETTABLE
        from engine.formal.report_items import ITEMS, LATE_ITEM

        assert not set(SETTABLE) & set(DERIVED)
        assert (set(SETTABLE) - {LATE_ITEM[0]}) | set(DERIVED) == {key for key, _zh, _en in ITEMS}

    @pytest.mark.parametrize(
        ("values", "message"),
        [
            ({"couse": "x"}, "unknown report item 'couse'"),
            ({"people_count": "5"}, "comes from the facts"),
            ({"cause": "长" * 2001}, "at most 2000"),
            ({"occurred_at": "yesterday"}, "malformed time"),
            ({"measures": [{"a": 1}]}, "must be text"),
        ],
    )
    def test_bad_values_are_refused(self, values, message):
        """Unknown items, derived items, texts too long, bad times and shapes are refused by name."""
        with pytest.raises(BadInput, match=message):
            check_values(values, "--set", ZONE)


class LateWalk(Walk):
    """An incident discovered 30 hours ago whose grade became 较大 only now: its initial-report clock
    (CN-CAC-RPT-4, 4 hours) starts already overdue."""

    def __init__(self, store, ws: Workspace) -> None:
        self.store, self.ws, self.hooks = store, ws, hooks_for(ws)
        self.id = open_incident(
            store,
            source=WORD_ONLY,
            title="客户账套泄露",
            actor="alice",
            zone=ZONE,
            hooks=self.hooks,
            discovered_at=datetime.now(UTC) - timedelta(hours=30),
        ).id
        update_facts(
            store,
            self.id,
            {"people_affected": people_for("relatively_major")},
            actor="alice",
            legal=legal_for(ws),
            hooks=self.hooks,
        )


class TestLate:
    def test_late_initial_report_states_the_delay_and_marks_a_missing_reason(self, store, ws):
        """A late initial report says when it was due and 迟报原因：待补报; the reason supplied later is
        listed by the next supplement."""
        walk = LateWalk(store, ws).to_report()
        walk.tasks("submit_initial_report")
        text = docx_text(walk.file("regulator_initial_report"))
        assert "迟报说明：本报告应于" in text and "现迟于该时限报送" in text
        assert field_line(text, "迟报原因：") == "迟报原因：待补报"
        supply(walk, late_reason="事件定级延误：涉及人数于发现后第30小时方查清。")
        walk.fire("supplementary_report", reason="补报迟报原因")
        path = walk.file("regulator_supplementary_report", subject="1")
        assert changed_items(path) == ["迟报原因", "补充说明"]
        assert "事件定级延误" in docx_text(path)

    def test_reason_given_with_the_step_is_printed(self, store, ws):
        """A late reason recorded in the step that produces the report (--late-reason) is printed in it."""
        from engine.cli.report_data_cmd import late_reason_hook

        walk = LateWalk(store, ws).to_report()
        walk.hooks.after_change.insert(0, late_reason_hook("定级数据迟至今日才取得。", ZONE))
        walk.tasks("submit_initial_report")
        text = docx_text(walk.file("regulator_initial_report"))
        assert field_line(text, "迟报原因：") == "迟报原因：定级数据迟至今日才取得。"


class TestCli:
    def test_set_show_and_refusals(self, cli):
        """--set prints what changed, --show lists each item with its Art 7 number, value or 待补报, and
        who supplied it when; bad input is one line, exit 2, nothing changed."""
        cli.write_settings(FIRM)
        incident = cli.open_incident(discovered_at=(datetime.now(UTC) - timedelta(days=3)).isoformat())
        done = cli("incident", "report-data", incident, "--set", "cause=账号未注销", "--set", "place=北京")
        assert done.returncode == 0, done.stderr
        assert "report data changed: cause, place" in done.stdout
        version = cli.json("incident", "show", incident)["version"]
        for args, needle in (
            (("--set", "couse=x"), "unknown report item 'couse'"),
            (("--set", "cause=" + "长" * 2001), "at most 2000"),
            (("--set", "cause"), "--set expects KEY=VALUE"),
            (("--file", str(cli.home / "missing.yaml")), "missing.yaml"),
            (("--set", "leads=x", "--at", "2099-01-01 10:00"), "in the future"),
            (("--set", "leads=x", "--at", "2020-01-01 10:00"), "before the incident was discovered"),
            (
                ("--set", "leads=x", "--at", (datetime.now(UTC) - timedelta(hours=48)).isoformat()),
                "give --reason",
            ),
        ):
            assert_one_line_error(cli("incident", "report-data", incident, *args), needle)
        bad = cli.home / "bad.yaml"
        bad.write_text("cause: [unclosed\n", encoding="utf-8")
        assert_one_line_error(cli("incident", "report-data", incident, "--file", str(bad)), "bad.yaml")
        assert cli.json("incident", "show", incident)["version"] == version
        good = cli.home / "items.yaml"
        good.write_text(
            "type_label: 数据泄露\nnext_steps:\n  - 全面排查账号\n  - 开展培训\n", encoding="utf-8"
        )
        two_days = (datetime.now(UTC) - timedelta(hours=40)).isoformat()
        cli(
            "incident",
            "report-data",
            incident,
            "--file",
            str(good),
            "--at",
            two_days,
            "--reason",
            "补录",
            check=True,
        )
        shown = cli("incident", "report-data", incident, "--show", check=True).stdout
        assert "（四）事件原因 [cause]: 账号未注销  (supplied" in shown
        assert "（五）追查溯源线索 [leads]: 待补报" in shown
        assert "（六）拟进一步采取的措施 [next_steps]: 全面排查账号; 开展培训" in shown
        items = {i["item"]: i for i in cli.json("incident", "report-data", incident)["items"]}
        assert items["type_label"]["value"] == "数据泄露"
        supplied = datetime.fromisoformat(items["type_label"]["supplied_at"])
        assert abs(supplied - datetime.fromisoformat(two_days)) < timedelta(seconds=1)
        assert items["leads"]["value"] is None
        verified = cli("audit", "verify", incident)
        assert verified.returncode == 0, verified.stdout + verified.stderr

    def test_late_reason_on_the_step_that_produces_the_report(self, cli):
        """task done submit_initial_report --late-reason prints the reason in the late initial report;
        a reason too long is one line, exit 2, and the task stays open."""
        from engine.store.db import Store

        cli.write_settings(FIRM)
        ws = Workspace.resolve(cli.home, cli.db_url)
        walk = LateWalk(Store(ws.db_url), ws).to_report()
        version = cli.json("incident", "show", walk.id)["version"]
        too_long = cli("task", "done", walk.id, "submit_initial_report", "--late-reason", "长" * 2001)
        assert_one_line_error(too_long, "--late-reason", "at most 2000")
        assert cli.json("incident", "show", walk.id)["version"] == version
        cli(
            "task",
            "done",
            walk.id,
            "submit_initial_report",
            "--late-reason",
            "定级数据迟至今日才取得。",
            check=True,
        )
        text = docx_text(walk.file("regulator_initial_report"))
        assert field_line(text, "迟报原因：") == "迟报原因：定级数据迟至今日才取得。"
        shown = cli("incident", "report-data", walk.id, "--show", check=True).stdout
        assert "迟报原因 [late_reason]: 定级数据迟至今日才取得。  (supplied" in shown
