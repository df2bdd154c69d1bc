"""Formal documents produced on the steps that owe them, opened as their readers open them."""

from __future__ import annotations

import hashlib
import io
import shutil
import stat
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from conftest import assert_one_line_error, team_toml
from docx import Document
from sqlalchemy import select

from engine.documents.registry import DOCUMENT
from engine.documents.render import KINDS
from engine.errors import BadInput, NotAllowed, NotFound
from engine.formal.responsible import ISSUE, list_responsible, record_responsible
from engine.formal.service import FormalHook, list_documents, render_document
from engine.incidents import flow
from engine.incidents.opening import open_incident
from engine.incidents.repository import get_incident
from engine.incidents.tables import Event
from engine.incidents.tasks import complete_task
from engine.notices.content import set_content
from engine.notices.contexts import NoticeContent
from engine.playbooks.document_rules import FORMAL_KINDS
from engine.playbooks.parsing import parse_playbook, playbook_errors
from engine.wiring import hooks_for
from engine.workspace import Workspace, builtin_root

ZONE = "Asia/Shanghai"
FIRM = """
[firm]
name = "示例财税咨询有限公司"
address = "北京市海淀区示例路88号"
legal_representative = "周明"
contact_name = "李静"
contact_phone = "400-800-0000"
contact_email = "privacy@example-tax.cn"
contact_hours = "工作日 9:00–18:00"
protection_officer = "法务部 周宁（个人信息保护负责人）"

[documents]
regulator = "北京市互联网信息办公室"
number_prefix = "示例财税"
"""
HOSTILE = "<script>alert(1)</script> & {{ 7*7 }} ../../x"
CONTAIN = ["stop_transfer", "preserve_evidence", "establish_scope", "start_investigation", "grade_incident"]
NOTIFY = ["notify_client_companies", "notify_individuals", "offer_remedies", "keep_notice_records"]
ACCOUNT = ["determine_responsibility", "decide_sanctions", "issue_internal_bulletin"]
REMEDY = [
    "management_rules",
    "technical_controls",
    "security_training",
    "client_confidentiality",
    "external_audit",
    "lessons_learned",
    "submit_summary_report",
]
BUILTIN_TEXT = (builtin_root() / "playbooks" / "cn-agency-firm.yaml").read_text(encoding="utf-8")
# The built-in playbook with Word files only: most tests need no PDF, which costs 0.1–0.4 s each.
INITIAL = "- kind: regulator_initial_report\n  on: {task: submit_initial_report}\n  formats: [docx]\n"
WORD_ONLY = parse_playbook(BUILTIN_TEXT.replace("formats: [docx, pdf]", "formats: [docx]"), "word-only")


def make_workspace(home: Path, db_url: str, settings: str = FIRM) -> Workspace:
    """A workspace folder with ``settings`` as its config/settings.toml; alice, who walks incidents
    here, is a member with the DPO's role unless ``settings`` names the team itself."""
    (home / "config").mkdir(parents=True, exist_ok=True)
    team = "" if "[members." in settings else team_toml("alice")
    (home / "config" / "settings.toml").write_text(settings + team, encoding="utf-8")
    return Workspace.resolve(home, db_url)


@pytest.fixture
def ws(tmp_path, db_url) -> Workspace:
    return make_workspace(tmp_path / "ws", db_url)


class Walk:
    """One incident walked through the playbook with a workspace's hooks."""

    def __init__(self, store, ws: Workspace, source=WORD_ONLY, *, drill=False, title="客户账套泄露") -> None:
        self.store, self.ws, self.hooks = store, ws, hooks_for(ws)
        self.id = open_incident(
            store,
            source=source,
            title=title,
            actor="alice",
            zone=ZONE,
            drill=drill,
            hooks=self.hooks,
            discovered_at=datetime.now(UTC) - timedelta(hours=2),
        ).id

    def tasks(self, *keys: str, notes: dict[str, str] | None = None) -> None:
        for key in keys:
            complete_task(
                self.store, self.id, key, actor="alice", hooks=self.hooks, note=(notes or {}).get(key)
            )

    def fire(self, trigger: str, **kw) -> None:
        flow.advance(self.store, self.id, trigger, actor="alice", zone=ZONE, hooks=self.hooks, **kw)

    def to_report(self) -> Walk:
        self.tasks(*CONTAIN)
        self.fire("contain")
        self.tasks(*NOTIFY)
        self.fire("notify")
        return self

    def to_accountability(self) -> Walk:
        self.to_report().tasks("submit_initial_report", "cooperate_with_authorities")
        self.fire("report")
        return self

    def person(self, name="孙七", **kw) -> dict:
        values = {
            "department": "信息部",
            "position": "系统管理员",
            "responsibility": "direct",
            "sanction": "warning",
            "facts": "未按规定及时注销离职人员账号。",
            "rules": ["《信息系统账号管理办法》第十二条"],
        }
        return record_responsible(self.store, self.id, name=name, actor="alice", **{**values, **kw}).person

    def docs(self) -> list[dict]:
        with self.store.read() as s:
            rows = s.execute(
                select(DOCUMENT).where(DOCUMENT.c.incident_id == self.id).order_by(DOCUMENT.c.id)
            )
            return [dict(r._mapping) for r in rows]

    def keys(self) -> set[tuple[str, str, str]]:
        return {(d["kind"], d["fmt"], d["subject"]) for d in self.docs()}

    def file(self, kind: str, fmt: str = "docx", subject: str = "") -> Path:
        return next(
            Path(d["path"])
            for d in self.docs()
            if (d["kind"], d["fmt"], d["subject"]) == (kind, fmt, subject)
        )

    def version_and_events(self) -> tuple[int, int]:
        with self.store.read() as s:
            incident = get_incident(s, self.id)
            return incident.version, incident.event_count

    def events(self, kind: str) -> list[Event]:
        with self.store.read() as s:
            return list(
                s.exec(select(Event).where(Event.incident_id == self.id, Event.kind == kind)).scalars()
            )


def docx_text(path: Path) -> str:
    """Every paragraph of a Word file, body, tables and header, as python-docx reads them."""
    document = Document(io.BytesIO(path.read_bytes()))
    parts = [p.text for p in document.paragraphs]
    parts += [cell.text for table in document.tables for row in table.rows for cell in row.cells]
    parts += [p.text for section in document.sections for p in section.header.paragraphs]
    return "\n".join(parts)


def pdf_text(path: Path) -> str:
    """The text pdftotext extracts, as a reader's tools would see it (line breaks removed)."""
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (poppler-utils) is not installed")
    out = subprocess.run(["pdftotext", "-enc", "UTF-8", str(path), "-"], check=True, capture_output=True)
    return out.stdout.decode("utf-8").replace("\n", "")


class TestRules:
    def test_formal_kinds_match_the_renderer(self):
        """The playbook schema's list of formal kinds is the renderer's, with the same formats."""
        formal = {k for k, spec in KINDS.items() if set(spec.formats) == {"docx", "pdf", "html"}}
        assert set(FORMAL_KINDS) == formal

    def test_builtin_declares_each_document_once(self, builtin_source):
        """The built-in playbook owes all six kinds, as Word and PDF, on the steps documented."""
        rules = {r.kind: r for r in builtin_source.playbook.documents}
        assert set(rules) == set(FORMAL_KINDS)
        assert {k: [str(o) for o in r.on] for k, r in rules.items()} == {
            "regulator_initial_report": ["task:submit_initial_report"],
            "regulator_supplementary_report": ["trigger:supplementary_report"],
            "regulator_summary_report": ["task:submit_summary_report"],
            "internal_bulletin": ["task:issue_internal_bulletin"],
            "disciplinary_decision": ["task:decide_sanctions"],
            "remediation_report": ["trigger:close"],
        }
        assert all(r.formats == ["docx", "pdf"] for r in rules.values())

    @pytest.mark.parametrize(
        ("section", "message"),
        [
            ("- kind: internal_bulletin\n  on: {task: nope}\n  formats: [docx]", "unknown task 'nope'"),
            ("- kind: internal_bulletin\n  on: {trigger: fly}\n  formats: [docx]", "unknown trigger 'fly'"),
            ("- kind: internal_bulletin\n  on: {state: moon}\n  formats: [docx]", "unknown state 'moon'"),
            ("- kind: internal_bulletin\n  on: {task: decide_sanctions}\n  formats: [odt]", "formats"),
            ("- kind: memo\n  on: {task: decide_sanctions}\n  formats: [docx]", "kind"),
            (
                "- kind: internal_bulletin\n  on: {task: decide_sanctions}\n  formats: [docx]\n"
                "- kind: internal_bulletin\n  on: {task: issue_internal_bulletin}\n  formats: [pdf]",
                "listed twice",
            ),
            (
                f"{INITIAL}- kind: regulator_supplementary_report\n  on: {{trigger: supplementary_report}}\n"
                "  formats: [docx]",
                "needs record",
            ),
            (
                f"{INITIAL}- kind: regulator_supplementary_report\n  on: {{trigger: report}}\n"
                "  record: supplementary_reports\n  formats: [docx]",
                "does not append to supplementary_reports",
            ),
            (
                "- kind: internal_bulletin\n  on: {task: decide_sanctions}\n  formats: [docx]\n"
                "  sections: {lessons: [lessons_learned]}",
                "unknown sections lessons",
            ),
            (
                "- kind: internal_bulletin\n  on: {task: decide_sanctions, trigger: report}\n"
                "  formats: [docx]",
                "exactly one of task, trigger or state",
            ),
        ],
    )
    def test_bad_sections_are_named(self, section, message):
        """Each mistake in documents: names what is wrong, with the playbook's line."""
        head = BUILTIN_TEXT.split("\ndocuments:\n")[0]
        source, errors = playbook_errors(f"{head}\ndocuments:\n{section}\n", "p.yaml")
        assert source is None and any(message in e for e in errors), errors
        assert all(e.startswith("p.yaml:") for e in errors)


class TestResponsible:
    def test_recorded_only_in_accountability(self, store, ws):
        """Before accountability the record is refused, saying where it belongs; then it is kept."""
        walk = Walk(store, ws).to_report()
        with pytest.raises(NotAllowed, match=r"is in regulator_report .*recorded in accountability"):
            walk.person()
        walk.tasks("submit_initial_report", "cooperate_with_authorities")
        walk.fire("report")
        before = walk.version_and_events()
        person = walk.person(
            sanction="记过", responsibility="间接", compensation="1,500.5", compensation_basis="手册"
        )
        assert (person["sanction"], person["responsibility"], person["compensation_fen"]) == (
            "demerit",
            "indirect",
            150050,
        )
        assert walk.version_and_events() == (before[0] + 1, before[1] + 1)
        assert walk.events("responsible_recorded")[0].inputs["name"] == "孙七"
        with pytest.raises(NotAllowed, match="recorded already"):
            walk.person(sanction="warning")

    @pytest.mark.parametrize(
        ("values", "message"),
        [
            ({"sanction": "fired"}, "--sanction 'fired' is not one of warning (警告), demerit (记过)"),
            ({"responsibility": "partial"}, "--responsibility 'partial'"),
            ({"compensation": "-5", "compensation_basis": "x"}, "positive amount"),
            ({"compensation": "1.005", "compensation_basis": "x"}, "two decimals"),
            ({"compensation": "100"}, "go together"),
            ({"name": " "}, "--name is required"),
            ({"facts": "a\x1bb"}, "control characters"),
        ],
    )
    def test_bad_values_write_nothing(self, store, ws, values, message):
        """A bad value is refused with a line naming the option; nothing is recorded."""
        walk = Walk(store, ws).to_accountability()
        with pytest.raises(BadInput, match=message.replace("(", r"\(").replace(")", r"\)")):
            walk.person(**values)
        with store.read() as s:
            assert list_responsible(s, walk.id) == []


class TestProducedOnSteps:
    def test_each_step_produces_exactly_its_documents(self, store, ws):
        """Advancing through the phases produces the declared documents once each, numbered in order,
        0600 files in a 0700 folder, each recorded with its hash and audited."""
        walk = Walk(store, ws).to_report()
        assert walk.keys() == set()
        walk.tasks("submit_initial_report")
        assert walk.keys() == {("regulator_initial_report", "docx", "")}
        walk.fire("supplementary_report", reason="查明涉及人数")
        walk.fire("supplementary_report", reason="查明涉及客户单位")
        walk.tasks("cooperate_with_authorities")
        walk.fire("report")
        walk.person("孙七", compensation="2000", compensation_basis="《员工奖惩办法》第二十条")
        walk.person("钱八", position="经理", responsibility="indirect", sanction="demotion")
        walk.tasks(*ACCOUNT, notes={"issue_internal_bulletin": "严禁拷贝客户数据\n离职当日注销账号"})
        walk.fire("hold_accountable")
        walk.fire("handling_ended")
        walk.tasks(*REMEDY, notes={"lessons_learned": "权限管理必须覆盖离职全过程"})
        walk.fire("close")
        people = [str(p["id"]) for p in list_responsible_of(walk)]
        assert walk.keys() == {
            ("regulator_initial_report", "docx", ""),
            ("regulator_supplementary_report", "docx", "1"),
            ("regulator_supplementary_report", "docx", "2"),
            *(("disciplinary_decision", "docx", p) for p in people),
            ("internal_bulletin", "docx", ""),
            ("regulator_summary_report", "docx", ""),
            ("remediation_report", "docx", ""),
        }
        folder = ws.out_dir / walk.id
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
        for doc in walk.docs():
            path = Path(doc["path"])
            assert path.parent == folder and stat.S_IMODE(path.stat().st_mode) == 0o600
            assert hashlib.sha256(path.read_bytes()).hexdigest() == doc["sha256"]
            assert doc["template"].endswith(".docx") and len(doc["template_sha256"]) == 64
            assert doc["created_by"] == "alice"
        assert sorted(p.name for p in folder.iterdir()) == sorted(Path(d["path"]).name for d in walk.docs())
        numbers = list(dict.fromkeys(d["number"] for d in list_documents(store, walk.id)["documents"]))
        year = datetime.now(ZoneInfo(ZONE)).year
        assert numbers == [f"示例财税〔{year}〕{n}号" for n in range(1, 9)]
        assert len(walk.events("documents_produced")) == 8
        second = docx_text(walk.file("regulator_supplementary_report", subject="2"))
        assert "（第2次补充报告）" in second and "查明涉及客户单位" in second
        assert "示例财税〔" in second and "2号报送" in second  # it follows report no. 2, the first supplement
        bulletin = docx_text(walk.file("internal_bulletin"))
        for expected in (
            "孙七",
            "钱八",
            "直接责任",
            "间接责任",
            "警告",
            "降职",
            "严禁拷贝客户数据",
            "示例财税咨询有限公司",
        ):
            assert expected in bulletin, expected
        remediation = docx_text(walk.file("remediation_report"))
        assert "权限管理必须覆盖离职全过程" in remediation and "已完成" in remediation

    def test_reentry_and_retry_make_no_duplicates(self, store, ws):
        """Reopening walks the phases again: the initial report, opened by its clock (met once), stays
        done; no document is produced again, and the next supplement is numbered after the earlier ones."""
        walk = Walk(store, ws).to_report()
        walk.tasks("submit_initial_report")
        walk.fire("supplementary_report", reason="一")
        walk.tasks("cooperate_with_authorities")
        walk.fire("report")
        walk.tasks(*ACCOUNT)
        walk.fire("hold_accountable")
        walk.fire("reopen", reason="发现新的导出记录")
        before = walk.docs()
        walk.to_report()
        with pytest.raises(NotAllowed, match="done already"):
            walk.tasks("submit_initial_report")
        walk.fire("supplementary_report", reason="二")
        assert [d for d in walk.docs() if d["kind"] != "regulator_supplementary_report"] == [
            d for d in before if d["kind"] != "regulator_supplementary_report"
        ]
        assert sorted(d["subject"] for d in walk.docs() if d["kind"] == "regulator_supplementary_report") == [
            "1",
            "2",
        ]

    def test_supplement_without_initial_report_is_refused(self, store, ws):
        """A supplement follows a report: before the initial report it is refused, nothing kept."""
        walk = Walk(store, ws).to_report()
        before = walk.version_and_events()
        with pytest.raises(NotAllowed, match=r"supplementary_report owes .*initial report first"):
            walk.fire("supplementary_report", reason="x")
        assert walk.version_and_events() == before and walk.docs() == []

    def test_supplement_says_what_changed(self, store, ws):
        """Items unknown in the initial report and known later appear as changes; the rest stays pending."""
        walk = Walk(store, ws).to_report()
        walk.tasks("submit_initial_report")
        initial = docx_text(walk.file("regulator_initial_report"))
        assert "待补报" in initial and "北京市互联网信息办公室" in initial
        content = {
            "incident": {"cause": "离职员工利用未收回的账号导出客户账套。", "outlook": "暂未发现扩散。"}
        }
        set_content(store, walk.id, NoticeContent.parse(content, "t"), actor="alice")
        walk.fire("supplementary_report", reason="查明原因")
        text = docx_text(walk.file("regulator_supplementary_report", subject="1"))
        assert "（四）事件原因" in text and "离职员工利用未收回的账号导出客户账套。" in text
        assert "（三）发展趋势及可能的进一步影响" in text and "查明原因" in text
        pending = text.split("二、仍待查明的事项")[1].split("三、")[0]
        assert "（五）追查溯源线索" in pending and "（四）事件原因" not in pending


def list_responsible_of(walk: Walk) -> list[dict]:
    with walk.store.read() as s:
        return list_responsible(s, walk.id)


class TestReaders:
    def test_word_and_pdf_hold_the_chinese_text(self, store, ws, builtin_source):
        """python-docx and pdftotext find the unit's name, the finding, the sanction and the compensation."""
        walk = Walk(store, ws, builtin_source).to_accountability()
        person = walk.person(
            facts="未在员工离职当日注销其账号。",
            compensation="2000",
            compensation_basis="《员工奖惩办法》第二十条",
            rules=["《信息系统账号管理办法》第十二条"],
        )
        walk.tasks("determine_responsibility", "decide_sanctions")
        subject = str(person["id"])
        for text in (
            docx_text(walk.file("disciplinary_decision", "docx", subject)),
            pdf_text(walk.file("disciplinary_decision", "pdf", subject)),
        ):
            for expected in (
                "关于给予孙七警告处分的决定",
                "直接责任",
                "示例财税咨询有限公司",
                "人民币2,000.00元",
                "《信息系统账号管理办法》第十二条",
                "未在员工离职当日注销其账号。",
                "15日内",
            ):
                assert expected in text, expected
            assert "演练" not in text
        assert walk.file("regulator_initial_report", "pdf").read_bytes().startswith(b"%PDF")

    def test_drill_marks_every_document(self, store, ws):
        """A drill's documents say 演练 / DRILL in the text and in their file names."""
        walk = Walk(store, ws, drill=True).to_accountability()
        walk.person()
        walk.tasks(*ACCOUNT)
        docs = walk.docs()
        assert len(docs) == 3
        for doc in docs:
            assert Path(doc["path"]).name.startswith("DRILL_")
            text = docx_text(Path(doc["path"]))
            assert "演练" in text and "DRILL" in text

    def test_hostile_names_come_out_literally(self, store, ws):
        """Markup, template syntax and paths in a title, a name and facts print as written and the file
        stays in the incident's folder."""
        walk = Walk(store, ws, title=f"标题 {HOSTILE}").to_accountability()
        person = walk.person(name=HOSTILE, facts=f"事实 {HOSTILE}", rules=[HOSTILE])
        walk.tasks("determine_responsibility", "decide_sanctions")
        path = walk.file("disciplinary_decision", "docx", str(person["id"]))
        assert path.parent == ws.out_dir / walk.id
        text = docx_text(path)
        assert text.count(HOSTILE) >= 4 and "49" not in text
        html = render_document(store, ws, walk.id, "disciplinary_decision", actor="alice", formats=["html"])
        page = Path(html[0].files["html"]["path"]).read_text(encoding="utf-8")
        assert (
            "&lt;script&gt;alert(1)&lt;/script&gt; &amp; {{ 7*7 }} ../../x" in page and "<script>" not in page
        )


class TestRefusals:
    def test_missing_firm_refuses_the_step_and_changes_nothing(self, store, tmp_path, db_url):
        """Without [firm] the step that owes a report is refused, naming each key and the file."""
        ws = make_workspace(tmp_path / "bare", db_url, settings='[firm]\nname = "示例"\n')
        walk = Walk(store, ws).to_report()
        before = walk.version_and_events()
        with pytest.raises(NotAllowed) as refused:
            walk.tasks("submit_initial_report")
        message = str(refused.value)
        assert message.startswith("task submit_initial_report owes regulator_initial_report, which cannot be")
        assert "address, contact_name, contact_phone, contact_email, contact_hours" in message
        assert str(ws.home / "config" / "settings.toml") in message and "\n" not in message
        assert walk.version_and_events() == before and walk.docs() == []
        assert not (ws.out_dir / walk.id).exists()
        with store.read() as s:
            assert s.execute(select(ISSUE).where(ISSUE.c.incident_id == walk.id)).first() is None
        triggers = {t.trigger: t for t in flow_triggers(walk)}
        assert triggers["report"].allowed is False

    def test_a_later_refusal_removes_the_written_files(self, store, ws):
        """Files written in a transaction that then rolls back are removed: no file without a record."""
        walk = Walk(store, ws).to_report()

        def refuse(step):
            raise NotAllowed("refused after the documents were written")

        hooks = hooks_for(ws)
        hooks.after_change.append(refuse)
        with pytest.raises(NotAllowed, match="refused after"):
            complete_task(store, walk.id, "submit_initial_report", actor="alice", hooks=hooks)
        assert walk.docs() == [] and list((ws.out_dir / walk.id).iterdir()) == []

    def test_render_refuses_unknown_kind_subject_and_format(self, store, ws):
        """The on-demand render names what is wrong."""
        walk = Walk(store, ws).to_accountability()
        with pytest.raises(BadInput, match="unknown formal document 'memo'"):
            render_document(store, ws, walk.id, "memo", actor="alice")
        with pytest.raises(NotAllowed, match="no responsible persons recorded yet"):
            render_document(store, ws, walk.id, "disciplinary_decision", actor="alice")
        with pytest.raises(NotFound, match="no responsible person #99"):
            render_document(store, ws, walk.id, "disciplinary_decision", actor="alice", subject="99")
        with pytest.raises(BadInput, match="takes no --subject"):
            render_document(store, ws, walk.id, "internal_bulletin", actor="alice", subject="1")
        with pytest.raises(BadInput, match="--format odt"):
            render_document(store, ws, walk.id, "internal_bulletin", actor="alice", formats=["odt"])


def flow_triggers(walk: Walk):
    with walk.store.read() as s:
        return flow.list_triggers(s, get_incident(s, walk.id), actor="alice", hooks=walk.hooks)


class TestOnDemand:
    def test_render_again_keeps_number_and_unchanged_files(self, store, ws):
        """Rendering again keeps the number; unchanged bytes keep the file, changed ones get a new file
        beside the old one, which stays; each run is audited."""
        walk = Walk(store, ws).to_report()
        walk.tasks("submit_initial_report")
        first = walk.file("regulator_initial_report")
        again = render_document(store, ws, walk.id, "regulator_initial_report", actor="bob", formats=["docx"])
        assert again[0].unchanged == ["docx"] and walk.file("regulator_initial_report") == first
        content = {"incident": {"cause": "离职员工导出。"}}
        set_content(store, walk.id, NoticeContent.parse(content, "t"), actor="alice")
        changed = render_document(
            store, ws, walk.id, "regulator_initial_report", actor="bob", formats=["docx"]
        )
        new = walk.file("regulator_initial_report")
        assert new != first and first.is_file() and new.name.endswith("_r2.docx")
        assert changed[0].number == again[0].number and "离职员工导出。" in docx_text(new)
        events = walk.events("documents_produced")
        assert (
            len(events) == 3
            and events[-1].inputs["replaced"]["docx"] == hashlib.sha256(first.read_bytes()).hexdigest()
        )


class TestCli:
    @staticmethod
    def walk(cli, settings: str | None = FIRM) -> Walk:
        """An incident of the CLI's workspace, brought to regulator_report through the library (each CLI
        call costs a second: only the commands under test run as processes)."""
        from engine.store.db import Store

        if settings is not None:
            cli.write_settings(settings + team_toml("alice"))
        ws = Workspace.resolve(cli.home, cli.db_url)
        return Walk(Store(ws.db_url), ws).to_report()

    def test_responsible_documents_and_show(self, cli):
        """The CLI records persons (one line, exit 2 on bad values), lists and renders documents, and
        incident show --json lists them with path and sha256."""
        walk = self.walk(cli)
        incident = walk.id
        base = [
            "incident",
            "responsible",
            incident,
            "--name",
            "孙七",
            "--department",
            "信息部",
            "--position",
            "管理员",
        ]
        assert_one_line_error(cli(*base, "--responsibility", "direct", "--sanction", "warning"), "--facts")
        assert_one_line_error(
            cli(*base, "--responsibility", "direct", "--sanction", "warning", "--draft"), "accountability"
        )
        walk.tasks("submit_initial_report", "cooperate_with_authorities")
        walk.fire("report")
        assert_one_line_error(
            cli(*base, "--responsibility", "direct", "--sanction", "fired"), "--sanction 'fired'"
        )
        assert_one_line_error(cli("incident", "responsible", incident, "--name", "x"), "needs --department")
        ok = cli(
            *base,
            "--responsibility",
            "直接责任",
            "--sanction",
            "记过",
            "--facts",
            "未及时注销离职人员账号",
            "--rule",
            "第十二条",
            "--rule",
            "第五条",
        )
        assert ok.returncode == 0 and "直接责任, 记过" in ok.stdout
        listed = cli.json("incident", "responsible", incident, "--list")
        assert [(p["name"], p["sanction"], p["rules"]) for p in listed] == [
            ("孙七", "demerit", ["第十二条", "第五条"])
        ]
        walk.tasks("decide_sanctions")
        docs = cli.json("documents", "list", incident)
        kinds = {(d["kind"], d["format"], d["subject"]) for d in docs["documents"]}
        assert kinds == {("regulator_initial_report", "docx", ""), ("disciplinary_decision", "docx", "1")}
        shown = cli.json("incident", "show", incident)["documents"]
        assert {(d["kind"], d["format"], d["path"], d["sha256"]) for d in shown} == {
            (d["kind"], d["format"], d["path"], d["sha256"]) for d in docs["documents"]
        }
        again = cli("documents", "render", incident, "regulator_initial_report", "--format", "docx")
        assert again.returncode == 0 and "(unchanged)" in again.stdout
        assert_one_line_error(cli("documents", "render", incident, "memo"), "unknown formal document 'memo'")
        assert cli("audit", "verify", incident).returncode == 0

    def test_missing_firm_is_one_line(self, cli):
        """Without [firm] the CLI step exits 2 with one line saying what to set."""
        walk = self.walk(cli, settings=None)
        assert_one_line_error(
            cli("task", "done", walk.id, "submit_initial_report"), "set [firm] name, address", "settings.toml"
        )


def test_hook_ignores_steps_that_owe_nothing(tmp_path):
    """The hook finds the rules of a cause from an index; steps that owe nothing cost a lookup."""
    hook = FormalHook(Workspace.resolve(tmp_path))
    source = WORD_ONLY
    assert hook.rules_for(source, "containment", "task:stop_transfer") == []
    assert [r.kind for r in hook.rules_for(source, "closed", "close")] == ["remediation_report"]
    assert [r.kind for r in hook.rules_for(source, "accountability", "task:decide_sanctions")] == [
        "disciplinary_decision"
    ]
