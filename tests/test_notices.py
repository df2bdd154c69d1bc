"""Per-person notices from the database: streamed, recorded once, resumable, safe with hostile data."""

from __future__ import annotations

import email
import email.policy
import hashlib
import os
import random
import signal
import stat
import subprocess
import time
from pathlib import Path

import pytest
from conftest import BREACH
from sqlalchemy import delete, select
from test_people import DATA, do_import, give_content, open_incident

from engine.documents.registry import DOCUMENT
from engine.documents.templating import context_problems
from engine.errors import BadInput
from engine.notices.content import set_content
from engine.notices.contexts import NoticeContent
from engine.notices.people import PERSON
from engine.notices.render import clean_temporaries, render_notices
from engine.workspace import Workspace

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
"""


def workspace(home: Path, db_url: str, extra: str = "") -> Workspace:
    """A workspace folder whose settings name the firm (and ``extra`` TOML)."""
    (home / "config").mkdir(parents=True, exist_ok=True)
    (home / "config" / "settings.toml").write_text(FIRM + extra, encoding="utf-8")
    return Workspace.resolve(home, db_url)


def documents(store, incident_id: str) -> list[dict]:
    with store.read() as s:
        rows = s.execute(
            select(DOCUMENT).where(DOCUMENT.c.incident_id == incident_id).order_by(DOCUMENT.c.id)
        )
        return [dict(r._mapping) for r in rows]


def render(store, ws, incident_id, **options):
    return render_notices(store, ws, incident_id, actor="alice", **options)


@pytest.fixture
def setup(store, builtin_source, tmp_path, db_url):
    """An incident with the agency recipient list and a workspace naming the firm."""
    incident = open_incident(store, builtin_source)
    do_import(store, incident, DATA / "agency.csv")
    give_content(store, incident)
    return incident, workspace(tmp_path / "ws", db_url)


class TestRender:
    def test_each_channel_gets_its_format(self, store, setup):
        """By default email → .eml, SMS → text, post → HTML; client letters too; the people reachable
        only in public get one announcement (Markdown and HTML), not a letter each."""
        incident, ws = setup
        report = render(store, ws, incident)
        assert report.rendered == {
            "customer_notice/eml": 3,
            "customer_notice/sms": 1,
            "customer_notice/html": 1,
            "client_notice/eml": 1,
            "client_notice/html": 1,
            "public_notice/md": 1,
            "public_notice/html": 1,
        }
        docs = documents(store, incident)
        assert {(d["person_ref"], d["fmt"]) for d in docs} >= {
            ("P-0001", "eml"),
            ("P-0003", "sms"),
            ("CO-1002", "html"),
        }
        for doc in docs:
            path = Path(doc["path"])
            start = doc["kind"] + "_" + (doc["subject"] if doc["person_ref"] else incident)
            assert path.parent == report.out_dir and path.name.startswith(start)
            assert hashlib.sha256(path.read_bytes()).hexdigest() == doc["sha256"]
            assert stat.S_IMODE(path.stat().st_mode) == 0o600
            assert len(doc["template_sha256"]) == 64 and doc["template"].endswith(".j2")
        assert stat.S_IMODE(report.out_dir.stat().st_mode) == 0o700

    def test_run_again_renders_no_one_twice(self, store, setup):
        """A second run finds every document recorded and renders nothing."""
        incident, ws = setup
        render(store, ws, incident)
        again = render(store, ws, incident)
        assert again.rendered == {} and sum(again.already.values()) == 9
        assert len(documents(store, incident)) == 9

    def test_explicit_format_for_everyone_with_batches(self, store, setup):
        """--format md renders for every recipient, in pages of two people."""
        incident, ws = setup
        ws = workspace(ws.home, ws.db_url, "[notices]\nbatch_size = 2\n")
        report = render(store, ws, incident, formats=["md"], kinds=["customer_notice"])
        assert report.rendered == {"customer_notice/md": 6}

    def test_eml_only_for_people_with_an_address(self, store, setup):
        """An email notice is rendered only for those with an address; its Message-ID is recorded."""
        incident, ws = setup
        assert render(store, ws, incident, formats=["eml"]).rendered == {
            "customer_notice/eml": 3,
            "client_notice/eml": 1,
        }
        eml = next(d for d in documents(store, incident) if d["person_ref"] == "P-0001")
        message = email.message_from_bytes(Path(eml["path"]).read_bytes(), policy=email.policy.default)
        assert message["Message-ID"] == eml["message_id"]
        assert message["To"].addresses[0].display_name == "张三"

    def test_unknown_format_or_kind_is_refused(self, store, setup):
        """A format no notice has, or a formal kind, is refused before anything is written."""
        incident, ws = setup
        with pytest.raises(BadInput, match="docx is not a notice format"):
            render(store, ws, incident, formats=["docx"])
        with pytest.raises(BadInput, match="is not a notice kind"):
            render(store, ws, incident, kinds=["internal_bulletin"])
        assert documents(store, incident) == []

    def test_firm_must_be_configured(self, store, setup, tmp_path):
        """Without [firm] settings no notice is rendered: it would name a placeholder firm."""
        incident, ws = setup
        bare = Workspace.resolve(tmp_path / "bare", ws.db_url)
        with pytest.raises(BadInput, match=r"\[firm\] name"):
            render(store, bare, incident)

    def test_contexts_match_the_documented_shape(self, store, setup):
        """The customer and client contexts the pipeline builds satisfy templates/contexts.yaml."""
        from engine.incidents.tables import Incident
        from engine.notices.contexts import IncidentStats, NoticeContexts
        from engine.notices.firm import firm_settings
        from engine.store.db import utcnow

        incident_id, ws = setup
        with store.read() as s:
            incident = s.get(Incident, incident_id)
            people = {r["customer_id"]: r for r in s.execute(select(PERSON)).mappings()}
        builder = NoticeContexts(
            incident, firm_settings(ws.settings), NoticeContent(), utcnow(), IncidentStats()
        )
        assert context_problems("customer_notice", builder.customer(people["P-0001"])) == []
        client = builder.client(people["CO-1001"], [people["P-0001"], people["P-0002"]], "示例〔2026〕1号")
        assert context_problems("client_notice", client) == []
        categories = client["client"]["categories"]
        assert categories[0] == {"label": "企业登记信息", "people": None}  # the company's own records
        assert {"label": "姓名", "people": 2} in categories and client["client"]["people_count"] == 2


class TestContent:
    def test_content_appears_in_each_readers_language(self, store, setup):
        """The notice states the content's cause and measures, each reader in their own language."""
        incident, ws = setup
        content = NoticeContent.parse(
            {
                "incident": {
                    "cause": {"zh-CN": "离职员工违规导出", "en": "A former employee exported data"},
                    "measures": {"zh-CN": ["停用账号"], "en": ["Disabled the account"]},
                    "possible_harm": "可能被用于诈骗",
                    "next_steps": {"zh-CN": ["追回数据"], "en": ["Recover the data"]},
                },
                "notice": {"remedies": ["免费安全服务"], "url": "https://example-tax.cn/n"},
            },
            "test",
        )
        set_content(store, incident, content, actor="alice")
        render(store, ws, incident, formats=["md"], kinds=["customer_notice"])
        texts = {
            d["person_ref"]: Path(d["path"]).read_text(encoding="utf-8") for d in documents(store, incident)
        }
        assert "离职员工违规导出" in texts["P-0001"] and "停用账号" in texts["P-0001"]
        assert "A former employee exported data" in texts["P-0002"] and "免费安全服务" in texts["P-0001"]
        assert "追回数据" in texts["P-0001"] and "Recover the data" in texts["P-0002"]

    def test_content_needs_aware_times_and_known_fields(self):
        """A naive time or an unknown field in the content file is refused with its path."""
        with pytest.raises(BadInput, match="occurred_at needs a time zone"):
            NoticeContent.parse({"incident": {"occurred_at": "2026-11-12T22:10:00"}}, "c.yaml")
        with pytest.raises(BadInput, match=r"c\.yaml: incident\.caus"):
            NoticeContent.parse({"incident": {"caus": "x"}}, "c.yaml")


class TestResume:
    def test_recorded_but_lost_rows_are_rendered_again_identically(self, store, setup):
        """Files written but not recorded (a crash between) are rendered again with the same bytes."""
        incident, ws = setup
        render(store, ws, incident)
        before = {d["path"]: d["sha256"] for d in documents(store, incident)}
        with store.write() as s:
            s.execute(delete(DOCUMENT).where(DOCUMENT.c.person_ref.in_(["P-0001", "P-0004", "CO-1001"])))
        report = render(store, ws, incident)
        assert sum(report.rendered.values()) == 3
        assert {d["path"]: d["sha256"] for d in documents(store, incident)} == before

    def test_failure_midway_then_resume_covers_everyone_once(self, store, setup, monkeypatch):
        """A run that dies halfway keeps what it recorded; the next run does only the rest."""
        from engine.files import PrivateFolder

        incident, ws = setup
        ws = workspace(ws.home, ws.db_url, "[notices]\nbatch_size = 2\n")
        real, calls = PrivateFolder.put, []

        def flaky(folder, name, content):
            calls.append(name)
            if len(calls) == 4:
                raise KeyboardInterrupt  # as if the operator pressed Ctrl-C mid-batch
            return real(folder, name, content)

        monkeypatch.setattr(PrivateFolder, "put", flaky)
        with pytest.raises(KeyboardInterrupt):
            render(store, ws, incident, formats=["md"])
        assert len(documents(store, incident)) == 2
        monkeypatch.setattr(PrivateFolder, "put", real)
        report = render(store, ws, incident, formats=["md"])
        assert report.rendered["customer_notice/md"] + report.rendered["client_notice/md"] == 6
        refs = [d["person_ref"] for d in documents(store, incident) if d["person_ref"]]
        assert len(refs) == len(set(refs)) == 8

    def test_stale_temporary_files_are_removed(self, tmp_path):
        """A temporary file of a dead process goes; one of a live process stays."""
        tmp_path.joinpath(".a.md.999999999.0.tmp").write_bytes(b"x")
        tmp_path.joinpath(f".b.md.{os.getpid()}.0.tmp").write_bytes(b"x")
        assert clean_temporaries(tmp_path) == 1
        assert sorted(p.name for p in tmp_path.iterdir()) == [f".b.md.{os.getpid()}.0.tmp"]


class TestDrillAndHostileData:
    def test_drill_marks_every_document(self, store, builtin_source, tmp_path, db_url):
        """In a drill every notice says 演练 / DRILL and its file name starts with DRILL."""
        incident = open_incident(store, builtin_source, drill=True)
        do_import(store, incident, DATA / "agency.csv")
        give_content(store, incident)
        render(store, workspace(tmp_path / "ws", db_url), incident, formats=["md", "sms", "eml"])
        for doc in documents(store, incident):
            assert Path(doc["path"]).name.startswith("DRILL_")
            content = Path(doc["path"]).read_bytes()
            if doc["fmt"] == "eml":
                message = email.message_from_bytes(content, policy=email.policy.default)
                assert "演练" in message["Subject"] or "DRILL" in message["Subject"]
                content = message.get_body(("plain",)).get_content().encode()
            assert "演练".encode() in content or b"DRILL" in content, doc["path"]

    def test_hostile_names_come_out_literally_and_stay_inside(self, store, builtin_source, tmp_path, db_url):
        """Markup, template syntax, paths, emoji and long names: literal in text, escaped in HTML."""
        incident = open_incident(store, builtin_source)
        do_import(store, incident, DATA / "hostile.csv")
        give_content(store, incident)
        out = tmp_path / "out"
        render(
            store, workspace(tmp_path / "ws", db_url), incident, formats=["md", "html", "eml"], out_dir=out
        )
        docs = {(d["person_ref"], d["fmt"]): Path(d["path"]) for d in documents(store, incident)}
        md = docs[("H-1", "md")].read_text(encoding="utf-8")
        assert "<script>alert(1)</script> & {{ 7*7 }} ../../x 😀" in md and "49" not in md
        html = docs[("H-1", "html")].read_text(encoding="utf-8")
        assert "&lt;script&gt;" in html and "<script>alert" not in html
        assert "{% for x in range(3) %}loop{% endfor %}" in docs[("H-3", "md")].read_text(encoding="utf-8")
        assert "长" * 900 in docs[("H-4", "md")].read_text(encoding="utf-8")
        # The To header keeps a hostile name literally; a 900-character one is cut there (the notice has it).
        for ref, name in (
            ("H-1", "<script>alert(1)</script> & {{ 7*7 }} ../../x 😀"),
            ("H-4", "长" * 14 + "…"),
        ):
            raw = docs[(ref, "eml")].read_bytes()
            assert max(len(line) for line in raw.split(b"\r\n")) <= 998  # folded: no overlong header line
            message = email.message_from_bytes(raw, policy=email.policy.default)
            assert message["To"].addresses[0].display_name == name
        for path in docs.values():
            assert path.parent == out.resolve() and len(path.name.encode()) <= 180
        assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in docs.values())


class TestCli:
    def test_a_template_over_a_bound_stops_the_render_and_it_resumes_once_fixed(self, cli):
        """A workspace template padding to a gigabyte: exit 2 naming template, line and bound; then whole."""
        workspace(cli.home, cli.db_url or "")
        incident = cli.open_incident()
        cli("people", "import", incident, str(DATA / "agency.csv"), check=True)
        cli("notices", "content", incident, str(cli.home / "notice-content.example.yaml"), check=True)
        override = cli.home / "templates" / "zh-CN" / "customer_notice.sms.j2"
        override.parent.mkdir(parents=True, exist_ok=True)
        override.write_text("您好\n{{ 'a'.ljust(2000000000) }}\n", encoding="utf-8")
        refused = cli("notices", "render", incident)
        assert refused.returncode == 2 and "Traceback" not in refused.stderr, refused.stderr
        line = refused.stderr.strip()
        assert len(line.splitlines()) == 1, refused.stderr
        assert "customer_notice.sms.j2 line 2" in line and "template_width" in line, line
        written = [p.name for p in (cli.home / "out" / incident).glob("*")]
        assert not [name for name in written if name.endswith(".sms")], written
        override.unlink()
        result = cli.json("notices", "render", incident)
        assert result["rendered"]["customer_notice/sms"] == 1
        assert cli.json("notices", "render", incident)["rendered"] == {}  # nothing left to do

    def test_render_json_and_incident_show(self, cli):
        """render --json reports counts; incident show lists the documents with their hashes."""
        workspace(cli.home, cli.db_url or "")
        incident = cli.open_incident()
        cli("people", "import", incident, str(DATA / "agency.csv"), check=True)
        cli("notices", "content", incident, str(cli.home / "notice-content.example.yaml"), check=True)
        result = cli.json("notices", "render", incident)
        assert result["rendered"]["customer_notice/eml"] == 3
        shown = cli.json("incident", "show", incident)
        assert len(shown["documents"]) == 9 and {"kind", "format", "path", "sha256", "person"} <= set(
            shown["documents"][0]
        )
        rendered = [e for e in shown["events"] if e["kind"] == "notices_rendered"]
        assert rendered[0]["inputs"]["rendered"]["customer_notice/eml"] == 3

    def test_templates_list_and_check(self, cli):
        """list names the file in force per kind and locale; check fails with file:line on a bad template."""
        rows = cli.json("templates", "list")
        assert {"kind": "customer_notice", "locale": "en", "file": "customer_notice.sms.j2"}.items() <= next(
            r for r in rows if r["file"] == "customer_notice.sms.j2" and r["locale"] == "en"
        ).items()
        assert "templates ok" in cli("templates", "check", check=True).stdout
        folder = cli.home / "templates" / "en"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "customer_notice.sms.j2").write_text("Hi\n{{ person.nmae }}\n", encoding="utf-8")
        override = next(
            r
            for r in cli.json("templates", "list")
            if r["file"] == "customer_notice.sms.j2" and r["locale"] == "en"
        )
        assert override["source"] == "workspace"
        result = cli("templates", "check")
        assert result.returncode == 2
        assert "customer_notice.sms.j2:2:" in result.stdout and "person.nmae" in result.stdout


@pytest.mark.slow
def test_killed_render_resumes_without_duplicates_or_gaps(cli, tmp_path):
    """SIGKILL at random moments, then run again: every recipient has exactly one document, intact."""
    workspace(cli.home, cli.db_url or "", "[notices]\nbatch_size = 15\n")
    incident = cli.open_incident()
    csv = tmp_path / "many.csv"
    csv.write_text(
        "customer_id,name,email,channel,categories\n"
        + "".join(f"K-{i},测试{i},k{i}@example.com,email,name;id_number\n" for i in range(240)),
        encoding="utf-8",
    )
    cli("people", "import", incident, str(csv), check=True)
    cli("notices", "content", incident, str(cli.home / "notice-content.example.yaml"), check=True)
    env = {**os.environ, "BREACH_HOME": str(cli.home)}
    if cli.db_url:
        env["BREACH_DATABASE_URL"] = cli.db_url
    rng = random.Random(7)
    for _trial in range(3):
        process = subprocess.Popen(
            [BREACH, "notices", "render", incident, "--format", "md,eml"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(rng.uniform(1.0, 3.0))
        process.send_signal(signal.SIGKILL)
        process.wait()
    cli("notices", "render", incident, "--format", "md,eml", check=True)
    status = cli.json("notices", "status", incident)
    assert status["documents"] == {"customer_notice/md": 240, "customer_notice/eml": 240}
    shown = cli.json("incident", "show", incident)["documents"]
    keys = [(d["person"], d["format"]) for d in shown]
    assert len(keys) == len(set(keys)) == 480
    for doc in shown:
        assert hashlib.sha256(Path(doc["path"]).read_bytes()).hexdigest() == doc["sha256"]
    folder = Path(shown[0]["path"]).parent
    assert sorted(p.name for p in folder.iterdir()) == sorted(Path(d["path"]).name for d in shown)
