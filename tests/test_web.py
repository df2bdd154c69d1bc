"""The read-only dashboard and its API, in process: pages, filters, the token guard and the API's shapes."""

from __future__ import annotations

import csv
import re
from datetime import UTC, datetime, timedelta

import pytest
from conftest import assert_one_line_error, at_rest
from sqlalchemy import select
from starlette.testclient import TestClient
from test_delivery import DATA, mail_settings, mailing, smtp  # noqa: F401
from test_recorded import contained

from engine.incidents import flow, opening
from engine.incidents.tasks import complete_task
from engine.incidents.worklog import WorkspaceLog
from engine.tokens import create_token, revoke_token
from engine.web.app import create_app
from engine.web.guard import COOKIE
from engine.wiring import hooks_for
from engine.workspace import Workspace

ZONE = "Asia/Shanghai"


@pytest.fixture
def ws(tmp_path, db_url, store) -> Workspace:
    return Workspace.resolve(tmp_path / "ws", db_url)


@pytest.fixture
def client(ws):
    """A dashboard on loopback over the test database (tokens needed only once one exists)."""

    def make(*, always_required: bool = False, locale: str = "zh-CN") -> TestClient:
        return TestClient(create_app(ws, always_required=always_required, locale=locale))

    return make


def open_incident(store, ws, source, *, title="客户台账泄露", drill=False, days_ago: float = 0.1) -> str:
    return opening.open_incident(
        store,
        source=source,
        title=title,
        actor="alice",
        zone=ZONE,
        drill=drill,
        discovered_at=datetime.now(UTC) - timedelta(days=days_ago),
        facts={"people_affected": 8000, "records": {"property": 8000}},
        hooks=hooks_for(ws),
    ).id


def refusals(store) -> list[WorkspaceLog]:
    with store.read() as s:
        return list(s.exec(select(WorkspaceLog).where(WorkspaceLog.kind == "web_refused")).scalars())


def rows(html: str) -> dict[str, str]:
    """Index rows by incident id."""
    return dict(re.findall(r'<tr class="incident[^"]*" data-id="([^"]+)">(.*?)</tr>', html, re.S))


class TestIndex:
    def test_incidents_with_nearest_deadline_and_overdue_marked(self, store, ws, builtin_source, client):
        """A fresh incident shows its nearest clock counting down; one ten days old is marked overdue."""
        fresh = open_incident(store, ws, builtin_source, title="新事件")
        late = open_incident(store, ws, builtin_source, title="旧事件", days_ago=10)
        with client() as c:
            page = c.get("/")
        assert page.status_code == 200
        found = rows(page.text)
        assert set(found) == {fresh, late}
        assert 'class="countdown"' in found[fresh] and "剩余" in found[fresh]
        assert "已逾期" in found[late]
        assert re.search(rf'<tr class="incident is-overdue" data-id="{late}">', page.text)
        assert "breach report" in page.text  # what to do next

    def test_filters_by_drill_grade_text_and_overdue(self, store, ws, builtin_source, client):
        """Each filter narrows the list; a value it does not take is a 400 naming the allowed ones."""
        real = open_incident(store, ws, builtin_source, title="真实事件", days_ago=10)
        drill = open_incident(store, ws, builtin_source, title="演练事件", drill=True)
        with client() as c:
            assert set(rows(c.get("/?drill=only").text)) == {drill}
            assert set(rows(c.get("/?drill=exclude").text)) == {real}
            assert set(rows(c.get("/?q=演练").text)) == {drill}
            assert set(rows(c.get("/?overdue=true").text)) == {real}
            assert set(rows(c.get("/?grade=major").text)) == set()
            assert "演练" in rows(c.get("/").text)[drill]
            bad = c.get("/?grade=catastrophic")
        assert bad.status_code == 400 and "general" in bad.text


class TestIncidentPage:
    def test_live_report_with_clock_bars_and_no_personal_data(self, mailing, store, ws, client):  # noqa: F811
        """The incident page is the status report: a bar per clock, counts per channel, no recipient."""
        m = mailing()
        contained(m, store)
        m.send()
        with client() as c:
            page = c.get(f"/incidents/{m.incident}")
        assert page.status_code == 200
        from engine.deadlines.tables import Deadline

        with store.read() as s:
            clocks = len(s.exec(select(Deadline).where(Deadline.incident_id == m.incident)).all())
        assert len(re.findall(r'id="clock-bar-\d+"', page.text)) == clocks
        assert 'data-channel="email"' in page.text
        with (DATA / "agency.csv").open(encoding="utf-8") as f:
            for person in csv.DictReader(f):
                for column in ("name", "email", "phone", "contact_name"):
                    value = (person.get(column) or "").strip()
                    assert not value or value not in page.text, f"{column} of {person['customer_id']} shown"

    def test_unknown_incident_is_404_with_a_way_back(self, store, client):
        """An id that does not exist: 404, the message names it, and the page links back to the index."""
        with client() as c:
            page = c.get("/incidents/INC-2099-0001")
        assert page.status_code == 404
        assert "INC-2099-0001" in page.text and 'href="/"' in page.text

    def test_strict_headers_on_every_page(self, store, client):
        """Pages forbid inline scripts, framing, sniffing and caching."""
        with client() as c:
            page = c.get("/kpi")
        assert page.status_code == 200
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert page.headers["x-frame-options"] == "DENY"
        assert page.headers["cache-control"] == "no-store"


class TestTokens:
    def test_once_a_token_exists_every_request_needs_one(self, store, ws, client):
        """No token: open on loopback. Once one exists: none → 401 and a log entry; the token → 200."""
        with client() as c:
            assert c.get("/").status_code == 200
            token = create_token(store, name="ceo-laptop", role="viewer", actor="alice")
            refused = c.get("/api/v1/incidents?q=secret", headers={"X-Forwarded-For": "1.2.3.4"})
            assert refused.status_code == 401
            assert refused.json() == {"error": "no valid token", "status": 401}
            assert c.get("/", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        logged = refusals(store)
        assert len(logged) == 1
        assert logged[0].detail == "web: GET /api/v1/incidents refused (401): no valid token"
        assert "secret" not in logged[0].detail

    def test_role_api_cannot_open_pages_and_revoked_tokens_stop_at_once(self, store, client):
        """An api token reads the API but gets 403 on pages; revoked, it gets 401; both are logged."""
        token = create_token(store, name="script", role="api", actor="alice")
        auth = {"Authorization": f"Bearer {token}"}
        with client() as c:
            assert c.get("/api/v1/kpis", headers=auth).status_code == 200
            assert c.get("/", headers=auth).status_code == 403
            revoke_token(store, name="script", actor="alice")
            assert c.get("/api/v1/kpis", headers=auth).status_code == 401
        assert [r.detail.split("(")[1][:3] for r in refusals(store)] == ["403", "401"]

    def test_browser_signs_in_with_a_cookie(self, store, client):
        """/login turns a viewer token into an HttpOnly, SameSite=Strict cookie; a wrong one is refused."""
        token = create_token(store, name="manager", role="viewer", actor="alice")
        with client() as c:
            assert c.get("/").status_code == 401
            wrong = c.post("/login", data={"token": "brt_wrong"}, follow_redirects=False)
            assert wrong.status_code == 401
            signed = c.post("/login", data={"token": token}, follow_redirects=False)
            assert signed.status_code == 303
            cookie = signed.headers["set-cookie"]
            assert f"{COOKIE}=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
            assert c.get("/").status_code == 200
        assert len(refusals(store)) == 2

    def test_beyond_loopback_no_token_means_no_access(self, store, client):
        """A server listening beyond loopback refuses every request while no token exists."""
        with client(always_required=True) as c:
            assert c.get("/").status_code == 401
            assert c.get("/api/v1/openapi.json").status_code == 401


class TestApi:
    def test_errors_are_json_with_a_status(self, store, client):
        """Unknown incident 404, bad parameter 400, unknown path 404, a write method 405: all JSON."""
        with client() as c:
            assert c.get("/api/v1/incidents/INC-2099-0001").json()["status"] == 404
            assert c.get("/api/v1/incidents/INC-2099-0001/triggers").json()["status"] == 404
            bad = c.get("/api/v1/deadlines?due_within_hours=soon")
            assert bad.status_code == 400 and "hours" in bad.json()["error"]
            assert c.get("/api/v1/nothing").json() == {"error": "no such page", "status": 404}
            assert c.post("/api/v1/incidents").status_code == 405

    def test_kpis_count_time_to_contain_from_discovery(self, store, ws, builtin_source, client):
        """Contained an hour after discovery: the median time to contain is about an hour; drills left out."""
        incident = open_incident(store, ws, builtin_source, days_ago=1 / 24)
        open_incident(store, ws, builtin_source, drill=True)
        hooks = hooks_for(ws)
        for task in ("stop_transfer", "preserve_evidence", "establish_scope", "start_investigation"):
            complete_task(store, incident, task, actor="alice", hooks=hooks)
        complete_task(store, incident, "grade_incident", actor="alice", hooks=hooks)
        flow.advance(store, incident, "contain", actor="alice", zone=ZONE, hooks=hooks)
        with client() as c:
            kpis = c.get("/api/v1/kpis").json()
            with_drills = c.get("/api/v1/kpis?drills=true").json()
        overall = kpis["overall"]
        assert overall["incidents"] == 1 and with_drills["overall"]["incidents"] == 2
        assert overall["time_to_contain"]["count"] == 1
        assert 3500 <= overall["time_to_contain"]["median_seconds"] <= 3700
        assert overall["time_to_notify_everyone"]["count"] == 0


class TestCommands:
    def test_token_create_list_revoke(self, cli):
        """Printed once, stored only hashed, never listed; a second revoke is refused."""
        created = cli("token", "create", "ceo-laptop", "--role", "viewer", check=True)
        token = created.stdout.strip()
        assert re.fullmatch(r"brt_[A-Za-z0-9_-]{43}", token)
        assert "only time it is shown" in created.stderr
        listed = cli.json("token", "list")
        assert [(t["name"], t["role"], t["revoked_at"]) for t in listed] == [("ceo-laptop", "viewer", None)]
        assert token not in cli("token", "list").stdout
        if cli.db_url is None:
            assert token.encode() not in (cli.home / "breach.db").read_bytes()
        assert_one_line_error(cli("token", "create", "ceo-laptop", "--role", "viewer"), "exists")
        assert_one_line_error(cli("token", "create", "x", "--role", "admin"), "viewer")
        assert_one_line_error(cli("token", "create", "../x", "--role", "viewer"), "token name")
        cli("token", "revoke", "ceo-laptop", check=True)
        assert cli.json("token", "list")[0]["revoked_at"]
        assert_one_line_error(cli("token", "revoke", "ceo-laptop"), "already revoked")

    def test_serve_refuses_to_listen_beyond_loopback_without_tokens(self, cli):
        """`breach serve --host 0.0.0.0` with no token: exit 2, one line saying how to create one."""
        assert_one_line_error(cli("serve", "--host", "0.0.0.0", "--port", "0"), "breach token create")
        assert_one_line_error(cli("serve", "--port", "70000"), "--port")


class TestSameShapesAsTheCli:
    def test_api_answers_what_the_cli_prints(self, cli):
        """Incidents, one incident, its deadlines and triggers: the API's JSON is the CLI's --json."""
        incident = cli.open_incident("--set", "people_affected=8000")
        cli("task", "done", incident, "stop_transfer", check=True)
        ws = Workspace.resolve(cli.home, cli.db_url)
        with TestClient(create_app(ws, always_required=False)) as c:
            listed = c.get("/api/v1/incidents").json()
            shown = c.get(f"/api/v1/incidents/{incident}").json()
            clocks = c.get(f"/api/v1/incidents/{incident}/deadlines").json()
            triggers = c.get(f"/api/v1/incidents/{incident}/triggers").json()
        assert listed == cli.json("incident", "list")
        assert at_rest(shown) == at_rest(cli.json("incident", "show", incident))
        moving = ("remaining_seconds", "countdown")
        assert [{k: v for k, v in d.items() if k not in moving} for d in clocks] == [
            {k: v for k, v in d.items() if k not in moving}
            for d in cli.json("deadlines", "list", "--incident", incident)
        ]
        assert triggers == cli.json("incident", "triggers", incident)
