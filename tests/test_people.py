"""Importing the recipients of an incident's notices from CSV: all rows or none, every problem named."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import assert_one_line_error
from sqlalchemy import func, select, text

from engine.errors import BadInput
from engine.incidents import opening
from engine.incidents.tables import Event
from engine.notices.people import PERSON, ImportRejected, import_people

DATA = Path(__file__).parent / "data" / "people"
LOCALES = ("zh-CN", "en")
ZONE = "Asia/Shanghai"


def open_incident(store, source, *, drill: bool = False) -> str:
    return opening.open_incident(
        store,
        source=source,
        title="客户账套泄露",
        actor="alice",
        zone=ZONE,
        drill=drill,
        discovered_at=datetime.now(UTC) - timedelta(hours=2),
    ).id


def do_import(store, incident_id: str, path: Path):
    return import_people(store, incident_id, path, actor="alice", locales=LOCALES, default_locale="zh-CN")


# Notice content that says everything a notice needs, in both languages the test recipients read.
CONTENT = {
    "incident": {
        "cause": {"zh-CN": "前员工导出客户台账", "en": "A former employee exported the ledger"},
        "possible_harm": {"zh-CN": "可能被用于诈骗", "en": "It may be used for scams"},
        "measures": {"zh-CN": ["停用涉事账号"], "en": ["Disabled the account"]},
        "next_steps": {"zh-CN": ["配合公安机关追回数据"], "en": ["Help the police recover the data"]},
    }
}


def give_content(store, incident_id: str, content: dict | None = None) -> None:
    """Set notice content complete enough for every notice to render."""
    from engine.notices.content import set_content
    from engine.notices.contexts import NoticeContent

    set_content(store, incident_id, NoticeContent.parse(content or CONTENT, "test"), actor="alice")


def count(store, incident_id: str) -> int:
    with store.read() as s:
        return s.execute(select(func.count()).where(PERSON.c.incident_id == incident_id)).scalar_one()


def rejected(store, incident_id: str, path: Path) -> list[str]:
    with pytest.raises(ImportRejected) as caught:
        do_import(store, incident_id, path)
    assert count(store, incident_id) == 0, "a rejected file must write nothing"
    return caught.value.problems


def write(tmp_path: Path, body: str, name: str = "people.csv", encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(body.encode(encoding))
    return path


HEADER = "customer_id,name,email,locale,channel,categories\n"


class TestImport:
    def test_mixed_list_of_companies_and_people(self, store, builtin_source):
        """Companies and people import together; employers resolve to the company's name."""
        incident = open_incident(store, builtin_source)
        report = do_import(store, incident, DATA / "agency.csv")
        assert (report.persons, report.companies) == (6, 2)
        with store.read() as s:
            rows = {
                r.customer_id: r for r in s.execute(select(PERSON).where(PERSON.c.incident_id == incident))
            }
        assert rows["P-0001"].employer_name == "北京示例科技有限公司"
        assert rows["P-0005"].locale == "zh-CN" and rows["P-0006"].locale == "zh-CN"
        assert rows["P-0002"].categories == "name;salary;tax"
        assert rows["CO-1001"].type == "company" and rows["CO-1001"].contact_name == "王五"

    def test_identifiers_are_stored_masked_only(self, store, builtin_source):
        """An ID number or bank account in the file is kept only in masked form."""
        incident = open_incident(store, builtin_source)
        do_import(store, incident, DATA / "agency.csv")
        with store.read() as s:
            dump = json.dumps([dict(r._mapping) for r in s.execute(select(PERSON))], default=str)
            person = s.execute(
                select(PERSON.c.identifiers).where(PERSON.c.customer_id == "P-0001")
            ).scalar_one()
        assert "110101199001011234" not in dump and "6222020200001234567" not in dump
        assert person == [
            {"code": "id_number", "masked": "1101********1234"},
            {"code": "bank_account", "masked": "****4567"},
        ]

    def test_audit_event_has_counts_and_hash_but_no_personal_data(self, store, builtin_source):
        """The import is on the incident's trail: count and file hash, never a name or address."""
        incident = open_incident(store, builtin_source)
        report = do_import(store, incident, DATA / "agency.csv")
        with store.read() as s:
            event = s.exec(
                select(Event).where(Event.incident_id == incident, Event.kind == "people_imported")
            ).one()
        assert event[0].inputs == {"count": 8, "persons": 6, "companies": 2, "file_sha256": report.sha256}
        assert "张三" not in json.dumps(event[0].inputs, ensure_ascii=False)

    def test_bom_and_crlf_are_accepted(self, store, builtin_source, tmp_path):
        """A file saved by Excel (BOM, CRLF line ends) imports like any other."""
        incident = open_incident(store, builtin_source)
        body = (DATA / "agency.csv").read_text(encoding="utf-8").replace("\n", "\r\n")
        do_import(store, incident, write(tmp_path, "\ufeff" + body))
        assert count(store, incident) == 8

    def test_every_bad_row_is_reported_with_its_line(self, store, builtin_source):
        """Each problem names its line (a quoted cell spanning lines counts its first line)."""
        incident = open_incident(store, builtin_source)
        problems = rejected(store, incident, DATA / "bad_rows.csv")
        expected = {
            3: "name contains control characters",
            5: "duplicate customer_id C-1 (first on line 2)",
            6: "locale 'fr' is not one of: zh-CN, en",
            7: "channel 'pigeon' is not one of",
            8: "unknown category dna",
            9: "channel is sms but phone is empty",
            10: "a company row needs contact_name",
            11: "employer 'C-404' is not the customer_id of a company",
            12: "customer_id is empty",
            13: "customer_id 'C_10' must be",
            14: "categories is empty",
        }
        for line, needle in expected.items():
            assert any(p.startswith(f"line {line}: ") and needle in p for p in problems), (line, problems)
        assert any(p.startswith("line 3: email 'not-an-email'") for p in problems)
        assert not any(p.startswith("line 2:") for p in problems)

    def test_duplicates_against_an_earlier_import_are_refused(self, store, builtin_source, tmp_path):
        """A customer id already imported for the incident is refused; nothing of the file is kept."""
        incident = open_incident(store, builtin_source)
        do_import(store, incident, write(tmp_path, HEADER + "A-1,甲,a@example.com,,email,name\n"))
        again = write(
            tmp_path, HEADER + "B-1,乙,b@example.com,,email,name\nA-1,甲,a@example.com,,email,name\n", "b.csv"
        )
        with pytest.raises(ImportRejected) as caught:
            do_import(store, incident, again)
        assert caught.value.problems == [
            "line 3: duplicate customer_id A-1 (already imported for this incident)"
        ]
        assert count(store, incident) == 1

    def test_the_same_id_in_another_incident_is_fine(self, store, builtin_source, tmp_path):
        """Customer ids are unique per incident, not across incidents."""
        path = write(tmp_path, HEADER + "A-1,甲,a@example.com,,email,name\n")
        first, second = open_incident(store, builtin_source), open_incident(store, builtin_source)
        do_import(store, first, path)
        do_import(store, second, path)
        assert count(store, first) == count(store, second) == 1

    @pytest.mark.parametrize(
        ("body", "needle"),
        [
            ("", "line 1: the file is empty"),
            ("\n\n", "line 1: the file is empty"),
            (HEADER, "line 2: no data rows"),
            ("customer_id,name,email\nA-1,甲,a@example.com\n", "line 1: missing column channel, categories"),
            (HEADER.replace("locale", "lang"), "line 1: unknown column lang"),
            (HEADER.replace("email", "emial"), "unknown column emial"),
            (HEADER + 'A-1,"甲,a@example.com,,email,name\n', "not valid CSV"),
            (HEADER + "A-1,甲,a@example.com,,email\n", "line 2: the number of cells differs from the header"),
        ],
    )
    def test_file_level_problems(self, store, builtin_source, tmp_path, body, needle):
        """Empty files, missing or misspelled columns and broken CSV are named, with the line."""
        incident = open_incident(store, builtin_source)
        problems = rejected(store, incident, write(tmp_path, body))
        assert any(needle in p for p in problems), problems

    def test_not_utf8_is_refused_with_the_line(self, store, builtin_source, tmp_path):
        """A GBK-encoded file is refused, pointing at the first line that is not UTF-8."""
        incident = open_incident(store, builtin_source)
        path = write(tmp_path, HEADER + "A-1,张三,a@example.com,,email,name\n", encoding="gbk")
        assert rejected(store, incident, path) == [
            "line 2: bytes that are not UTF-8 (save the file as UTF-8)"
        ]

    def test_employer_may_be_listed_after_its_people(self, store, builtin_source, tmp_path):
        """A person may name a company that appears further down the file."""
        incident = open_incident(store, builtin_source)
        body = (
            "customer_id,type,name,email,channel,categories,employer,contact_name\n"
            "P-1,person,甲,a@example.com,email,name,CO-1,\n"
            "CO-1,company,某公司,co@example.com,email,,,王五\n"
        )
        assert do_import(store, incident, write(tmp_path, body)).companies == 1

    def test_hostile_values_are_stored_as_given(self, store, builtin_source):
        """Markup, template syntax, paths, emoji and very long names are data, kept literally."""
        incident = open_incident(store, builtin_source)
        do_import(store, incident, DATA / "hostile.csv")
        with store.read() as s:
            names = dict(s.execute(select(PERSON.c.customer_id, PERSON.c.name)).all())
        assert names["H-1"] == "<script>alert(1)</script> & {{ 7*7 }} ../../x 😀"
        assert names["H-4"] == "长" * 900

    def test_closed_or_unknown_incident_is_refused(self, store, tmp_path):
        """An unknown incident id is refused before anything is read into the database."""
        with pytest.raises(BadInput, match="no incident"):
            do_import(store, "INC-1999-0001", DATA / "agency.csv")
        with store.read() as s:
            assert s.execute(text("SELECT count(*) FROM person")).scalar_one() == 0


class TestCli:
    def test_import_prints_every_problem_then_one_error(self, cli):
        """Bad rows: each on stderr with file and line, then one error line; exit 2."""
        incident = cli.open_incident()
        result = cli("people", "import", incident, str(DATA / "bad_rows.csv"))
        assert result.returncode == 2 and "Traceback" not in result.stderr
        lines = result.stderr.strip().splitlines()
        assert lines[0].startswith("bad_rows.csv line 3: ")
        assert lines[-1].startswith("error: bad_rows.csv: ") and "nothing imported" in lines[-1]
        assert cli.json("people", "list", incident) == []

    def test_import_then_list(self, cli):
        """A clean file imports; the summary has counts only."""
        incident = cli.open_incident()
        out = cli("people", "import", incident, str(DATA / "agency.csv"), check=True).stdout
        assert "imported 6 people and 2 client companies" in out
        counts = {(r["type"], r["channel"]): r["count"] for r in cli.json("people", "list", incident)}
        assert counts[("person", "email")] == 3 and counts[("company", "post")] == 1
        assert_one_line_error(
            cli("people", "import", "INC-1999-0009", str(DATA / "agency.csv")), "no incident"
        )
