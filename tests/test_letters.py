"""Letters that read right for every recipient, a public announcement that discloses no one, and SMS texts
that stand on their own, in both locales."""

from __future__ import annotations

import csv
import email
import email.policy
import re
from pathlib import Path

import pytest
from test_notices import documents, render, workspace
from test_people import DATA, do_import, give_content, open_incident, rejected, write

from engine.documents.sms import sms_segments
from engine.documents.templating import mask_account, mask_id, mask_phone


@pytest.fixture
def rendered(store, builtin_source, tmp_path, db_url):
    """Every default notice of the agency list rendered, with the rows of the file."""
    incident = open_incident(store, builtin_source)
    do_import(store, incident, DATA / "agency.csv")
    give_content(store, incident)
    ws = workspace(tmp_path / "ws", db_url)
    report = render(store, ws, incident)
    rows = list(csv.DictReader((DATA / "agency.csv").open(encoding="utf-8")))
    return incident, ws, report, rows


def text_of(doc: dict) -> str:
    """A document as its reader sees it: an email's plain part, else the file's text."""
    raw = Path(doc["path"]).read_bytes()
    if doc["fmt"] == "eml":
        return email.message_from_bytes(raw, policy=email.policy.default).get_body(("plain",)).get_content()
    return raw.decode("utf-8")


class TestPublicAnnouncement:
    def test_no_public_render_carries_any_imported_personal_data(self, store, rendered):
        """Every public render, in every format and locale, contains no name, phone, email, address or
        identifier (raw or masked) of anyone imported: publishing it discloses nobody."""
        incident, ws, _report, rows = rendered
        render(store, ws, incident, kinds=["public_notice"], formats=["md", "html"])
        public = [d for d in documents(store, incident) if d["kind"] == "public_notice"]
        assert {d["fmt"] for d in public} == {"md", "html"}
        secrets = set()
        for row in rows:
            for key in ("name", "email", "phone", "contact_name", "address", "id_number", "bank_account"):
                value = (row.get(key) or "").strip()
                if value:
                    secrets.add(value)
            if row.get("phone"):
                secrets.add(mask_phone(row["phone"]))
            if row.get("id_number"):
                secrets.add(mask_id(row["id_number"]))
            if row.get("bank_account"):
                secrets.add(mask_account(re.sub(r"\s", "", row["bank_account"])))
        for doc in public:
            text = Path(doc["path"]).read_text(encoding="utf-8")
            assert "关于个人信息泄露事件的公告" in text
            for secret in secrets:
                assert secret not in text, (doc["path"], secret)

    def test_the_announcement_is_recorded_as_the_public_channels_notice(self, store, rendered):
        """Recording the public channel delivers the announcement to P-0006 and completes no one else."""
        from engine.notices.recorded import record_deliveries
        from engine.wiring import hooks_for

        incident, ws, report, _rows = rendered
        assert report.rendered["public_notice/md"] == 1
        assert not any(d["person_ref"] == "P-0006" for d in documents(store, incident))  # no named letter
        done = record_deliveries(
            store,
            incident,
            channel="public",
            reference="https://example-tax.cn/n",
            actor="bob",
            hooks=hooks_for(ws),
        )
        assert done.changed == ["P-0006"]


class TestLetters:
    def test_a_company_without_employee_rows_gets_its_own_categories_and_count(
        self, store, builtin_source, tmp_path, db_url
    ):
        """A client company listed alone: its letter lists its own categories and its people count."""
        incident = open_incident(store, builtin_source)
        path = write(
            tmp_path,
            "customer_id,type,name,email,channel,categories,contact_name,people_count\n"
            "CO-9,company,独立客户有限公司,boss@example.cn,email,registration;salary,孙总,37\n",
        )
        do_import(store, incident, path)
        give_content(store, incident)
        render(store, workspace(tmp_path / "ws", db_url), incident, formats=["md"])
        [doc] = documents(store, incident)
        text = text_of(doc)
        assert "涉及人数：37人" in text and "0人" not in text
        assert "企业登记信息" in text and "工资收入" in text

    def test_an_opening_reads_right_with_and_without_an_employer(self, rendered, store):
        """A person with an employer is told whose data it was; one without reads a whole sentence."""
        incident, _ws, _report, _rows = rendered
        texts = {
            d["person_ref"]: text_of(d) for d in documents(store, incident) if d["kind"] == "customer_notice"
        }
        assert "受北京示例科技有限公司委托" in texts["P-0001"]
        assert "（以下简称“我司”）十分遗憾地告知您" in texts["P-0005"]
        assert "）我们十分遗憾" not in texts["P-0005"]
        assert "We are very sorry" in texts["P-0002"]

    def test_letters_by_post_carry_the_address_block(self, rendered, store):
        """The posted letters to a person and a company start with the postal address."""
        incident, _ws, _report, _rows = rendered
        posted = {d["person_ref"]: text_of(d) for d in documents(store, incident) if d["fmt"] == "html"}
        assert "上海市静安区示例路12弄3号 200040" in posted["P-0004"] and "王芳 收" in posted["P-0004"]
        assert "上海市黄浦区样例路66号 200001" in posted["CO-1002"]

    def test_a_post_row_without_an_address_is_refused_at_import(self, store, builtin_source, tmp_path):
        """Import refuses a post row without address, naming its line."""
        incident = open_incident(store, builtin_source)
        path = write(tmp_path, "customer_id,name,channel,categories\nP-1,王五,post,name\n")
        assert rejected(store, incident, path) == [
            "line 2: channel is post but address is empty (a letter needs the postal address)"
        ]


class TestSms:
    @pytest.mark.parametrize("locale", ["zh-CN", "en"])
    def test_every_sms_carries_the_signature_what_happened_and_where_to_read(
        self, store, builtin_source, tmp_path, db_url, locale
    ):
        """Each locale's text starts with 【firm】, says what happened and points to the notice."""
        incident = open_incident(store, builtin_source)
        path = write(
            tmp_path,
            f"customer_id,name,phone,locale,channel,categories\nS-1,周八,13800000009,{locale},sms,name;tax\n",
        )
        do_import(store, incident, path)
        give_content(store, incident)
        report = render(store, workspace(tmp_path / "ws", db_url), incident)
        [doc] = documents(store, incident)
        text = text_of(doc)
        assert text.startswith("【示例财税咨询有限公司】")
        assert ("泄露" in text) if locale == "zh-CN" else ("leak" in text)
        assert "400-800-0000" in text
        segments, encoding = sms_segments(text)
        assert encoding == "UCS-2" and 1 <= segments <= 3
        assert report.sms_messages == 1 and report.sms_segments == segments

    def test_render_and_status_print_the_cost_in_segments(self, cli):
        """notices render prints the texts and segments; notices status shows their cost."""
        incident = cli.open_incident()
        workspace(cli.home, cli.db_url or "")
        cli("people", "import", incident, str(DATA / "agency.csv"), check=True)
        cli("notices", "content", incident, str(cli.home / "notice-content.example.yaml"), check=True)
        out = cli("notices", "render", incident, check=True).stdout
        assert re.search(r"sms: 1 texts, \d segments in all", out)
        status = cli.json("notices", "status", incident)
        assert status["sms"]["customer_notice"]["messages"] == 1
        assert re.search(
            r"sms customer_notice: 1 texts, \d segments", cli("notices", "status", incident).stdout
        )
