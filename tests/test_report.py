"""The status report: what a manager reads about one incident, as HTML and PDF, without the CLI."""

from __future__ import annotations

import csv
import os
import re
import stat
import subprocess
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest
from conftest import assert_one_line_error
from test_delivery import DATA, mail_settings, mailing, smtp  # noqa: F401
from test_recorded import contained, record

from engine.incidents.opening import open_incident
from engine.incidents.tasks import complete_task
from engine.notices.render import render_notices
from engine.report.gather import gather
from engine.report.render import render_html
from engine.store.readmodel import Reader
from engine.wiring import hooks_for
from engine.workspace import Workspace

ZONE = "Asia/Shanghai"


def report_html(store, incident_id: str, *, locale: str = "zh-CN", now: datetime | None = None) -> str:
    reader = Reader(store.url)
    try:
        report = gather(reader, incident_id, now=now or datetime.now(UTC), locale=locale)
    finally:
        reader.close()
    return render_html(report, ZONE)


def ids(html: str, prefix: str) -> list[str]:
    """Element ids starting with ``prefix`` (the charts' bars, marks and lines)."""
    return re.findall(rf'id="({re.escape(prefix)}[^"]*)"', html)


def deadline_count(store, incident_id: str) -> int:
    from sqlalchemy import func, select

    from engine.deadlines.tables import Deadline

    with store.read() as s:
        return s.execute(select(func.count()).where(Deadline.incident_id == incident_id)).scalar_one()


class Text(HTMLParser):
    """The text a reader sees (styles and charts' markup left out)."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("style", "svg"):
            self._skip += 1

    def handle_endtag(self, tag):
        if tag in ("style", "svg"):
            self._skip -= 1

    def handle_data(self, data):
        if not self._skip:
            self.parts.append(data)


def visible(html: str) -> str:
    parser = Text()
    parser.feed(html)
    return " ".join(" ".join(parser.parts).split())


@pytest.fixture
def opened(store, builtin_source, tmp_path, db_url):
    """An incident discovered two hours ago, opened with the workspace's hooks (so its clocks run)."""

    def make(*, drill: bool = False, hours_ago: float = 2) -> tuple[str, Workspace]:
        ws = Workspace.resolve(tmp_path / "ws", db_url)
        incident = open_incident(
            store,
            source=builtin_source,
            title="客户台账泄露",
            actor="alice",
            zone=ZONE,
            drill=drill,
            discovered_at=datetime.now(UTC) - timedelta(hours=hours_ago),
            facts={"people_affected": 8000, "records": {"property": 8000}},
            hooks=hooks_for(ws),
        )
        return incident.id, ws

    return make


class TestClocks:
    def test_every_clock_is_one_bar_with_a_now_line_while_it_runs(self, store, opened):
        """One bar per stored clock; each running clock's row has the "now" line, none is marked missed."""
        incident, _ = opened()
        html = report_html(store, incident)
        clocks = deadline_count(store, incident)
        assert clocks >= 2
        assert len(ids(html, "clock-bar-")) == clocks
        assert len(ids(html, "now-line-")) == clocks
        assert ids(html, "clock-missed-") == []

    def test_overdue_clocks_are_marked_missed_and_named_in_the_summary(self, store, opened):
        """Discovered ten days ago and nothing done: the summary lists the overdue clocks in red."""
        incident, _ = opened(hours_ago=240)
        html = report_html(store, incident)
        missed = ids(html, "clock-missed-")
        assert missed, "an overdue clock must carry a missed mark"
        summary = html.split('id="overdue"', 1)[1].split("</td>", 1)[0]
        assert 'class="overdue"' in summary and "已逾期" in summary
        assert "POLICY-CLIENT-NOTICE" in summary

    def test_countdown_and_basis_of_the_nearest_clock(self, store, opened):
        """The nearest running clock shows its rule, time left, and every clock its article and source."""
        incident, _ = opened()
        html = report_html(store, incident, locale="en")
        nearest = visible(html.split('id="nearest"', 1)[1].split("</td>", 1)[0])
        assert re.search(r"\d+h( \d+m)? left", nearest), nearest
        assert "个人信息保护法" in visible(html)
        assert "internal target, not law" in visible(html)


class TestProgress:
    def test_counts_by_channel_and_no_personal_data(self, mailing, store):  # noqa: F811
        """After emails and a recorded SMS batch: notified counts per channel, no name, address or number."""
        m = mailing()
        m.store = store
        contained(m, store)
        m.send()
        render_notices(store, m.ws, m.incident, actor="alice")
        record(m, "sms")
        html = report_html(store, m.incident)
        rows = {
            ch: re.findall(r"<td[^>]*>(\d+)</td>", row)
            for ch, row in re.findall(r'data-channel="(\w+)">(.*?)</tr>', html, re.S)
        }
        assert rows["email"][:2] == ["4", "4"]
        assert rows["sms"][:2] == ["1", "1"]
        assert rows["post"][:2] == ["2", "0"]
        assert ids(html, "progress-") == ["progress-email", "progress-sms"]
        with (DATA / "agency.csv").open(encoding="utf-8") as f:
            people = list(csv.DictReader(f))
        for person in people:
            for column in ("name", "email", "phone", "id_number", "bank_account", "contact_name"):
                value = (person.get(column) or "").strip()
                if value:
                    assert value not in html, f"{column} of {person['customer_id']} is in the report"

    def test_no_recipients_yet_says_so(self, store, opened):
        """Before anyone is imported the report says that no recipients exist, and draws no chart."""
        incident, _ = opened()
        html = report_html(store, incident)
        assert "尚未导入受影响的个人或客户单位" in html
        assert ids(html, "progress-") == []


class TestTasksAndAudit:
    def test_tasks_by_phase_with_who_and_when_and_the_audit_head(self, store, opened):
        """A done task names who did it and when; the audit head hash is the incident's, in full."""
        incident, ws = opened()
        complete_task(store, incident, "stop_transfer", actor="zhang.wei", hooks=hooks_for(ws))
        html = report_html(store, incident)
        containment = html.split("四、各阶段任务", 1)[1].split("</table>", 1)[0]
        assert "zhang.wei" in containment and "已完成" in containment
        from engine.incidents.tables import Incident

        with store.read() as s:
            head = s.get(Incident, incident).audit_head
        assert len(head) == 64
        assert f'id="audit-head">{head}<' in html
        assert f"breach audit verify {incident}" in html

    def test_drill_is_marked_in_the_page_and_in_every_printed_page(self, store, opened):
        """A drill carries the banner and the @page mark that WeasyPrint prints on every page."""
        incident, _ = opened(drill=True)
        html = report_html(store, incident)
        assert 'id="drill-banner"' in html
        assert re.search(r"@top-center \{ content: \"演练 DRILL", html)

    def test_html_is_self_contained(self, store, opened):
        """No script, no stylesheet link, no image or font fetched: the file opens anywhere offline."""
        incident, _ = opened(drill=True)
        html = report_html(store, incident)
        assert "<script" not in html and "<link" not in html
        assert not re.search(r'(src|href)\s*=\s*"(https?:|//|file:)', html)
        assert not re.search(r"url\((?!#)", html), "only the charts' own clip paths may be referenced"


def pdf_pages(path: Path) -> list[str]:
    text = subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True
    )
    return [page for page in text.stdout.split("\f") if page.strip()]


class TestReportCommand:
    def test_pdf_of_a_drill_marks_every_page_and_is_private(self, cli):
        """`breach report --format pdf` writes a 0600 PDF whose every page says DRILL."""
        incident = cli.open_incident("--drill", "--set", "people_affected=8000")
        out = cli.home / "reports" / "status.pdf"
        result = cli("report", incident, "--format", "pdf", "--out", str(out), check=True)
        assert result.stdout.splitlines()[0] == str(out.resolve())
        pages = pdf_pages(out)
        assert len(pages) >= 2
        for page in pages:
            assert "DRILL" in page
        assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
        assert stat.S_IMODE(os.stat(out.parent).st_mode) == 0o700
        assert "事件状态报告" in pages[0] and incident in pages[0]

    def test_html_by_default_in_the_workspace_out_folder_in_english(self, cli):
        """Without --out the HTML goes to out/ID/, in the locale asked for."""
        incident = cli.open_incident()
        result = cli("report", incident, "--locale", "en", check=True)
        path = Path(result.stdout.strip())
        assert path == cli.home / "out" / incident / f"status_report_{incident}.html"
        html = path.read_text(encoding="utf-8")
        assert "Incident status report" in html and 'lang="en"' in html
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600

    def test_bad_input_is_one_line_and_writes_nothing(self, cli):
        """Unknown incident, format or locale, or a link in the way: exit 2, one line, nothing written."""
        incident = cli.open_incident()
        for args, needle in (
            (["INC-2099-0001"], "INC-2099-0001"),
            ([incident, "--format", "docx"], "--format"),
            ([incident, "--locale", "fr"], "--locale"),
        ):
            assert_one_line_error(cli("report", *args), needle)
        assert not list((cli.home / "out").rglob("status_report*"))
        # A link planted where the report goes is refused, and nothing is written through it.
        elsewhere = cli.home.parent / "elsewhere"
        elsewhere.mkdir()
        (cli.home / "out").mkdir(exist_ok=True)
        (cli.home / "out" / incident).symlink_to(elsewhere)
        assert_one_line_error(cli("report", incident), "link")
        assert list(elsewhere.iterdir()) == []
