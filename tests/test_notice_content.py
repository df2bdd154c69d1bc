"""Notice content that can be completed: render refuses a notice with an empty section, the content changes
freely until a notice goes out, and afterwards a correction is a real step with its own notices."""

from __future__ import annotations

import email
import email.policy
from pathlib import Path

import pytest
from conftest import assert_one_line_error
from sqlalchemy import select
from test_notices import documents, render, workspace
from test_people import CONTENT, DATA, do_import, give_content, open_incident

from engine.errors import BadInput, NotAllowed
from engine.incidents.tables import Event
from engine.notices.content import set_content
from engine.notices.contexts import NoticeContent
from engine.notices.correction import correct_content
from engine.notices.recorded import record_deliveries
from engine.wiring import hooks_for

LOCALES = ("zh-CN", "en")


def corrected(**incident) -> NoticeContent:
    """The test content with some incident fields replaced."""
    return NoticeContent.parse({"incident": {**CONTENT["incident"], **incident}}, "corrected")


def events(store, incident_id: str, kind: str) -> list[Event]:
    with store.read() as s:
        return list(
            s.scalars(
                select(Event).where(Event.incident_id == incident_id, Event.kind == kind).order_by(Event.seq)
            )
        )


@pytest.fixture
def ready(store, builtin_source, tmp_path, db_url):
    """An incident with the agency recipients and a workspace naming the firm and its officer."""
    incident = open_incident(store, builtin_source)
    do_import(store, incident, DATA / "agency.csv")
    return incident, workspace(tmp_path / "ws", db_url)


class TestRequiredFields:
    def test_render_without_content_names_every_missing_field_and_writes_nothing(self, store, ready):
        """No content: the render is refused naming cause, harm, measures taken and still to be taken."""
        incident, ws = ready
        with pytest.raises(BadInput) as refused:
            render(store, ws, incident)
        for field in ("incident.cause", "incident.possible_harm", "incident.measures", "incident.next_steps"):
            assert field in str(refused.value)
        assert documents(store, incident) == [] and not list(ws.out_dir.glob("*/*"))

    def test_a_language_some_recipients_read_must_be_there(self, store, ready):
        """A per-language text without English, for a list with an English reader, is named as such."""
        incident, ws = ready
        give_content(store, incident, {"incident": {**CONTENT["incident"], "cause": {"zh-CN": "原因"}}})
        with pytest.raises(BadInput, match=r"incident\.cause\[en\]"):
            render(store, ws, incident)

    def test_the_protection_officer_must_be_named(self, store, ready, tmp_path):
        """Without [firm] protection_officer (PIPL Art 52) notices are refused, naming the key."""
        incident, ws = ready
        give_content(store, incident)
        bare = tmp_path / "bare"
        (bare / "config").mkdir(parents=True)
        text = (ws.home / "config" / "settings.toml").read_text(encoding="utf-8")
        kept = "\n".join(line for line in text.splitlines() if not line.startswith("protection_officer"))
        (bare / "config" / "settings.toml").write_text(kept, encoding="utf-8")
        from engine.workspace import Workspace

        with pytest.raises(BadInput, match=r"\[firm\] protection_officer"):
            render(store, Workspace.resolve(bare, ws.db_url), incident)

    def test_every_notice_states_measures_taken_and_to_come_and_the_officer(self, store, ready):
        """Each letter lists the measures taken and those still to be taken, and names the officer."""
        incident, ws = ready
        give_content(store, incident)
        render(store, ws, incident, formats=["md"])
        for doc in documents(store, incident):
            text = Path(doc["path"]).read_text(encoding="utf-8")
            zh = "停用涉事账号" in text
            assert zh or "Disabled the account" in text, doc["path"]
            assert ("配合公安机关追回数据" if zh else "Help the police recover the data") in text
            assert "法务部 周宁（个人信息保护负责人）" in text
            assert "待补报" not in text and "to follow" not in text


class TestChangesBeforeSending:
    def test_content_changes_until_a_notice_goes_out_and_notices_follow_it(self, store, ready):
        """Rendered but unsent notices are discarded by a change and rendered again with the new text."""
        incident, ws = ready
        give_content(store, incident)
        render(store, ws, incident)
        old = {d["path"] for d in documents(store, incident)}
        set_content(
            store,
            incident,
            corrected(cause={"zh-CN": "外包人员越权访问", "en": "A contractor overreached"}),
            actor="alice",
        )
        assert documents(store, incident) == [] and not any(Path(p).exists() for p in old)
        render(store, ws, incident)
        texts = [
            Path(d["path"]).read_text(encoding="utf-8", errors="replace") for d in documents(store, incident)
        ]
        assert any("外包人员越权访问" in t for t in texts)

    def test_once_a_notice_went_out_a_change_is_refused_pointing_to_the_correction(self, store, ready):
        """After an SMS is recorded as sent, setting the content is refused and names notices correct."""
        incident, ws = ready
        give_content(store, incident)
        render(store, ws, incident)
        record_deliveries(store, incident, channel="sms", reference="GW-1", actor="bob", hooks=hooks_for(ws))
        with pytest.raises(NotAllowed, match="breach notices correct"):
            set_content(store, incident, corrected(cause="新原因"), actor="alice")


class TestCorrection:
    def test_a_correction_reaches_everyone_notified_with_what_changed(self, store, ready):
        """Correcting the cause owes a correction notice to the notified only, quoting old and new text;
        the unsent notices are rendered again from the corrected content; each step is audited."""
        incident, ws = ready
        give_content(store, incident)
        render(store, ws, incident)
        hooks = hooks_for(ws)
        record_deliveries(store, incident, channel="sms", reference="GW-1", actor="bob", hooks=hooks)
        record_deliveries(store, incident, channel="post", reference="EMS-1", actor="bob", hooks=hooks)
        done = correct_content(
            store,
            incident,
            corrected(cause={"zh-CN": "外包人员越权访问", "en": "A contractor overreached"}),
            actor="alice",
            locales=LOCALES,
        )
        assert done.version == 2 and done.changed == ["incident.cause"] and done.recipients == 3
        report = render(store, ws, incident)
        assert (
            report.rendered["correction_notice/sms"] == 1 and report.rendered["correction_notice/html"] == 2
        )
        assert report.rendered["customer_notice/eml"] == 3  # the emails never sent: rendered again
        corrections = [d for d in documents(store, incident) if d["kind"] == "correction_notice"]
        assert {d["person_ref"] for d in corrections} == {"P-0003", "P-0004", "CO-1002"}
        letter = next(Path(d["path"]) for d in corrections if d["person_ref"] == "P-0004").read_text("utf-8")
        assert "更正通知" in letter and "前员工导出客户台账" in letter and "外包人员越权访问" in letter
        fresh = next(d for d in documents(store, incident) if d["person_ref"] == "P-0001")
        assert (
            "外包人员越权访问"
            in email.message_from_bytes(Path(fresh["path"]).read_bytes(), policy=email.policy.default)
            .get_body(("plain",))
            .get_content()
        )
        again = record_deliveries(store, incident, channel="sms", reference="GW-2", actor="bob", hooks=hooks)
        assert again.changed == ["P-0003"]  # the correction's own delivery
        [event] = events(store, incident, "notice_corrected")
        assert event.inputs["version"] == 2 and event.inputs["recipients"] == 3
        assert "外包" not in str(event.inputs)  # counts and field names only

    def test_a_correction_before_anything_went_out_or_without_a_change_is_refused(self, store, ready):
        """Nothing sent: correct points to notices content; the same content again corrects nothing."""
        incident, ws = ready
        give_content(store, incident)
        with pytest.raises(NotAllowed, match="breach notices content"):
            correct_content(store, incident, corrected(cause="x"), actor="alice", locales=LOCALES)
        render(store, ws, incident)
        record_deliveries(store, incident, channel="sms", reference="GW-1", actor="bob", hooks=hooks_for(ws))
        with pytest.raises(BadInput, match="nothing to correct"):
            correct_content(store, incident, corrected(), actor="alice", locales=LOCALES)


class TestCli:
    def test_show_lists_fields_and_what_is_missing_then_the_example_completes_it(self, cli):
        """--show names each field and the missing ones; the example written by init fills them all."""
        incident = cli.open_incident()
        workspace(cli.home, cli.db_url or "")
        shown = cli("notices", "content", incident, "--show", check=True).stdout
        assert "incident.cause" in shown and "missing before notices can be rendered" in shown
        assert (cli.home / "notice-content.example.yaml").is_file()
        cli("notices", "content", incident, str(cli.home / "notice-content.example.yaml"), check=True)
        data = cli.json("notices", "content", incident, "--show")
        assert data["missing"] == [] and data["version"] == 1
        assert "complete" in cli("notices", "content", incident, "--show", check=True).stdout

    def test_correct_with_nothing_sent_is_one_error_line(self, cli):
        """notices correct before any notice went out: exit 2, one line pointing to notices content."""
        incident = cli.open_incident()
        workspace(cli.home, cli.db_url or "")
        example = str(cli.home / "notice-content.example.yaml")
        cli("notices", "content", incident, example, check=True)
        assert_one_line_error(cli("notices", "correct", incident, example), "breach notices content")
