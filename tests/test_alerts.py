"""Alerts that reach people: repeats, levels, acknowledgement, and the three chat-group robots.

The robots are real HTTP servers on loopback that verify each vendor's signature the way the vendor
documents it and answer the way the vendor answers (tests/robot_servers.py). Time moves by shifting the
deadline under test into the past (its due time, miss and next check), as if the clock had run on.
"""

from __future__ import annotations

import json
import subprocess
import time
import types
from datetime import UTC, datetime, timedelta

import pytest
from conftest import BREACH, assert_one_line_error
from escalation_servers import free_port
from robot_servers import DINGTALK_SECRET, SECRETS, RobotServer, robot_env, robots_toml
from sqlmodel import select
from test_escalation import TITLE, Env

from engine.deadlines.acknowledge import acknowledge_deadline
from engine.deadlines.alerting import load_alerting
from engine.deadlines.checker import scan
from engine.deadlines.tables import Deadline, Escalation, EscalationDelivery
from engine.incidents.tables import Event

ZONE = "Asia/Shanghai"
RULE = "POLICY-CLIENT-NOTICE"  # the 24 h client notice: missed first


class AlertEnv(Env):
    """A workspace whose scans follow the [alerts] policy, with a way to move its clock on."""

    def scan(self):
        alerting = load_alerting(self.workspace)
        return scan(self.store, alerting.settings, alerting.channels, zone=ZONE, policy=alerting.policy)

    def travel(self, minutes: float) -> None:
        """As if ``minutes`` passed for the client-notice deadline (the only one the tests watch)."""
        shift = timedelta(minutes=minutes)
        with self.store.write() as s:
            for row in s.exec(select(Deadline).where(Deadline.rule_id == RULE)):
                row.due_at -= shift
                row.missed_at = row.missed_at - shift if row.missed_at else None
                row.next_check_at = row.next_check_at - shift if row.next_check_at else None

    def kinds(self) -> list[str]:
        with self.store.read() as s:
            return [e.kind for e in s.exec(select(Escalation).order_by(Escalation.id))]

    def deadline(self) -> Deadline:
        with self.store.read() as s:
            return s.exec(select(Deadline).where(Deadline.rule_id == RULE)).one()


@pytest.fixture
def robots(monkeypatch):
    with RobotServer() as server:
        for name, value in robot_env(server).items():
            monkeypatch.setenv(name, value)
        yield server


@pytest.fixture
def alert_env(store, db_url, tmp_path):
    def make(settings: str) -> AlertEnv:
        return AlertEnv(tmp_path, db_url, settings)

    return make


def counts(server: RobotServer) -> tuple[int, int, int]:
    return tuple(len(server.texts(kind)) for kind in ("wecom", "dingtalk", "feishu"))  # type: ignore[return-value]


class TestEscalationThroughRobots:
    def test_repeats_levels_and_acknowledgement(self, alert_env, robots, builtin_source, capsys):
        """A missed deadline reaches level 1's WeCom group once, repeats after 30 minutes, reaches the
        DPO's DingTalk group after 2 h and management's Feishu group after 8 h; once acknowledged, no
        more. No secret reaches the log."""
        env = alert_env(robots_toml(robots, repeat=30))
        incident_id = env.incident(builtin_source, hours_ago=24.02)
        first = env.scan()
        assert [(a["rule"], a["kind"], a["level"]) for a in first.alerts] == [(RULE, "missed", 1)]
        assert counts(robots) == (1, 0, 0)
        text = robots.texts("wecom")[0]
        assert incident_id in text and TITLE in text and RULE in text and "个人信息保护法" in text
        assert "+08:00" in text and "overdue by" in text
        assert f"breach deadlines ack {incident_id} {RULE}" in text
        assert env.scan().alerts == [] and counts(robots) == (1, 0, 0)  # nothing new: nothing sent

        env.travel(31)
        assert [a["kind"] for a in env.scan().alerts] == ["missed#1"]
        assert counts(robots) == (2, 0, 0) and "repeat 1" in robots.texts("wecom")[1]

        env.travel(95)  # 2 h 6 min past due: the DPO's level
        assert [(a["kind"], a["level"], a["repeat"]) for a in env.scan().alerts] == [("missed:L2", 2, 0)]
        assert counts(robots) == (2, 1, 0)
        ding = robots.accepted["dingtalk"][0]
        assert ding["at"] == {"atMobiles": ["13800000001"], "isAtAll": False}
        assert "@13800000001" in ding["markdown"]["text"] and "level 2 DPO" in ding["markdown"]["title"]

        env.travel(31)
        assert [a["kind"] for a in env.scan().alerts] == ["missed:L2#1"] and counts(robots) == (2, 2, 0)

        env.travel(330)  # 8 h 8 min past due: management
        assert [a["kind"] for a in env.scan().alerts] == ["missed:L3"] and counts(robots) == (2, 2, 1)
        assert "level 3 management" in robots.texts("feishu")[0]

        acknowledge_deadline(env.store, incident_id, RULE, actor="wang.dpo", note="客户已电话通知")
        for _ in range(3):
            env.travel(61)
            assert env.scan().alerts == []
        assert counts(robots) == (2, 2, 1)
        row = env.deadline()
        assert row.status == "missed" and row.acknowledged_by == "wang.dpo" and row.next_check_at is None
        assert env.kinds() == ["missed", "missed#1", "missed:L2", "missed:L2#1", "missed:L3"]
        logged = capsys.readouterr().err
        assert logged.count(f"rule={RULE}") == 4  # level 1 and 2 also go to the log
        assert not any(secret in logged for secret in SECRETS) and TITLE not in logged

    def test_met_deadline_stops_repeating(self, alert_env, robots, builtin_source):
        """A repeat still undelivered when the deadline is met is cancelled, and none follow."""
        env = alert_env(robots_toml(robots, repeat=30))
        incident_id = env.incident(builtin_source, hours_ago=24.02)
        env.scan()
        robots.queued["wecom"] = [{"errcode": 45009, "errmsg": "api freq out of limit"}]
        env.travel(31)
        report = env.scan()  # the repeat is decided but the robot is rate-limited
        assert [a["kind"] for a in report.alerts] == ["missed#1"] and len(report.delivery.retrying) == 1
        with env.store.read() as s:
            waiting = s.exec(select(EscalationDelivery).where(EscalationDelivery.status == "pending")).one()
        # A rate limit asks for a minute's pause, whatever the (zero) retry delay of the settings.
        assert waiting.next_attempt_at >= datetime.now(UTC) + timedelta(seconds=50)
        from engine.incidents import flow
        from engine.incidents.tasks import complete_task

        for task in ("stop_transfer", "preserve_evidence", "establish_scope", "start_investigation"):
            complete_task(env.store, incident_id, task, actor="alice", hooks=env.hooks)
        complete_task(env.store, incident_id, "grade_incident", actor="alice", hooks=env.hooks)
        flow.advance(env.store, incident_id, "contain", actor="alice", zone=ZONE, hooks=env.hooks)
        complete_task(env.store, incident_id, "notify_client_companies", actor="alice", hooks=env.hooks)
        with env.store.write() as s:
            waiting = s.get(EscalationDelivery, waiting.id)
            waiting.next_attempt_at = datetime.now(UTC) - timedelta(seconds=1)
        env.travel(61)
        report = env.scan()
        assert report.alerts == [] and len(report.delivery.cancelled) == 1
        assert counts(robots) == (1, 0, 0) and env.deadline().status == "met"


class TestLevelRecipients:
    def test_each_level_emails_its_own_people(self, alert_env, builtin_source):
        """Level 1 emails [smtp] recipients; level 2 emails the DPO named in its own email list."""
        from escalation_servers import SmtpServer

        with SmtpServer() as smtp:
            text = (
                "[escalation]\nlease_seconds = 60\nretry_seconds = 0\n[alerts]\nrepeat_minutes = 0\n"
                '[[alerts.levels]]\nchannels = ["smtp"]\n'
                '[[alerts.levels]]\nname = "DPO"\nafter_minutes = 120\nchannels = ["smtp"]\n'
                'email = ["dpo@example.test"]\n'
                f'[smtp]\nhost = "127.0.0.1"\nport = {smtp.port}\nsender = "breach@example.test"\n'
                'recipients = ["oncall@example.test"]\ntimeout_seconds = 5\n'
            )
            env = alert_env(text)
            env.incident(builtin_source, hours_ago=24.02)
            env.scan()
            env.travel(121)
            assert [a["kind"] for a in env.scan().alerts] == ["missed:L2"]
            assert [m["To"] for m in smtp.sink.messages] == ["oncall@example.test", "dpo@example.test"]
            assert smtp.sink.messages[1]["Subject"].endswith("MISSED, level 2 DPO")


class TestVendorRefusals:
    def test_rejected_signature_is_retried_then_failed(self, alert_env, robots, builtin_source, capsys):
        """A DingTalk robot that rejects the signature (HTTP 200, errcode 310000) is retried a bounded
        number of times, then listed for a person; the secret is in no error or log line."""
        wrong = "SECnot-the-robots-secret"
        env = alert_env(robots_toml(robots, max_attempts=2, dingtalk_secret=wrong))
        env.incident(builtin_source, hours_ago=26.5)  # past the DPO's 2 h
        report = env.scan()
        assert [a["kind"] for a in report.alerts] == ["missed:L2"]
        replies = [r["reply"] for r in robots.requests if r["kind"] == "dingtalk"]
        assert replies == [{"errcode": 310000, "errmsg": "sign not match"}] * 2
        assert robots.accepted["dingtalk"] == [] and len(report.delivery.failed) == 1
        (problem,) = report.attention
        assert problem["status"] == "failed" and "310000 sign not match" in problem["error"]
        shown = json.dumps(report.to_json(ZONE), ensure_ascii=False) + capsys.readouterr().err
        assert wrong not in shown and not any(secret in shown for secret in SECRETS)
        assert len(env.scan().delivery.sent) == 0  # failed stays failed: no third attempt

    def test_stale_dingtalk_timestamp_is_refused(self, alert_env, robots, builtin_source, monkeypatch):
        """A DingTalk signature made more than an hour ago is refused by the robot (invalid timestamp);
        the next attempt, signed afresh, is accepted."""
        import engine.outbox.robots as robot_module

        calls: list[float] = []

        def clock() -> float:  # the first signature is made 1 h 2 min late, as by a stalled sender
            calls.append(time.time())
            return calls[-1] - (3720 if len(calls) == 1 else 0)

        monkeypatch.setattr(robot_module, "time", types.SimpleNamespace(time=clock, sleep=time.sleep))
        env = alert_env(robots_toml(robots))
        env.incident(builtin_source, hours_ago=26.5)
        report = env.scan()
        replies = [r["reply"] for r in robots.requests if r["kind"] == "dingtalk"]
        assert replies == [{"errcode": 310000, "errmsg": "invalid timestamp"}, {"errcode": 0, "errmsg": "ok"}]
        assert len(robots.texts("dingtalk")) == 1 and len(report.delivery.sent) == 2  # log and robot

    def test_keyword_and_feishu_refusal(self, alert_env, builtin_source, monkeypatch):
        """A robot set to a keyword gets it in every message; Feishu's non-zero code is a failure."""
        with RobotServer(keyword="breach告警") as server:
            for name, value in robot_env(server).items():
                monkeypatch.setenv(name, value)
            text = robots_toml(server).replace(
                'kind = "feishu"\n', 'kind = "feishu"\nkeyword = "breach告警"\n'
            )
            env = alert_env(text)
            env.incident(builtin_source, hours_ago=32.1)  # past 8 h: management's Feishu bot
            server.queued["feishu"] = [{"code": 11232, "msg": "frequency limited"}]
            report = env.scan()
            assert len(report.delivery.retrying) == 1 and server.accepted["feishu"] == []
            with env.store.write() as s:
                for row in s.exec(select(EscalationDelivery)):
                    row.next_attempt_at = datetime.now(UTC) - timedelta(seconds=1)
            env.scan()
            (body,) = server.accepted["feishu"]
            assert body["content"]["text"].startswith("【breach告警】") and body["msg_type"] == "text"


class TestSettings:
    def test_secret_from_environment_is_required_and_hidden(self, cli, monkeypatch):
        """A robot whose variable is empty is refused in one line; config show never prints a secret."""
        with RobotServer() as server:
            path = cli.home / "config" / "settings.toml"
            path.write_text(robots_toml(server), encoding="utf-8")
            result = cli("deadlines", "check")
            assert_one_line_error(result, "BREACH_TEST_DINGTALK_URL is empty")
            shown = cli("config", "show", env=robot_env(server), check=True).stdout
            assert "alerts.robots.dpo-dingtalk.secret = '(set; not shown)'" in shown
            assert not any(secret in shown for secret in SECRETS) and DINGTALK_SECRET not in shown
            checked = cli("config", "check", env=robot_env(server)).stdout
            assert "alerts: ok" in checked and "escalation: ok" in checked
            cli("config", "set", "alerts.robots.ops-wecom.keyword", "breach", check=True)
            cli("config", "set", "alerts.repeat_minutes", "15", check=True)
            shown = {r["key"]: r["value"] for r in cli.json("config", "show")}
            assert (
                shown["alerts.robots.ops-wecom.keyword"] == "breach" and shown["alerts.repeat_minutes"] == 15
            )

    @pytest.mark.parametrize(
        ("text", "message"),
        [
            ('[[alerts.levels]]\nchannels = ["pager"]\n', "unknown channel 'pager'"),
            (
                '[[alerts.levels]]\nchannels = ["log"]\n[[alerts.levels]]\nafter_minutes = 0\n'
                'channels = ["log"]\n',
                "after_minutes must rise",
            ),
            ('[alerts.robots.x]\nkind = "slack"\n', "[alerts] robots.x.kind"),
            ('[alerts.robots.x]\nkind = "wecom"\n[[alerts.levels]]\nchannels = ["x"]\n', "has no url"),
        ],
    )
    def test_bad_alert_settings_are_named(self, cli, text, message):
        """Misconfigured [alerts] is refused in one line naming the key, exit 2."""
        (cli.home / "config" / "settings.toml").write_text(text, encoding="utf-8")
        assert_one_line_error(cli("deadlines", "check"), message)

    def test_init_documents_alerts(self, cli):
        """breach init writes the [alerts] section, commented, with an example of every robot."""
        text = (cli.home / "config" / "settings.toml").read_text(encoding="utf-8")
        assert "\n# [alerts]\n" in text and "# repeat_minutes = 60" in text
        for kind in ("wecom", "dingtalk", "feishu"):
            assert f'kind = "{kind}"' in text


class TestAcknowledge:
    def test_ack_command(self, cli, builtin_source):
        """ack records who took on a missed deadline in the audit trail; unknown incident, unknown rule
        and a deadline not missed are refused in one line, exit 2, changing nothing."""
        env = AlertEnv(cli.home, cli.db_url, "[alerts]\nrepeat_minutes = 30\n")
        incident_id = env.incident(builtin_source, hours_ago=24.02)
        assert_one_line_error(cli("deadlines", "ack", incident_id, RULE), "not missed")  # not yet scanned
        assert cli("deadlines", "check").returncode == 1
        assert_one_line_error(cli("deadlines", "ack", "INC-1999-0001", RULE), "INC-1999-0001")
        assert_one_line_error(cli("deadlines", "ack", incident_id, "POLICY-NOPE"), "no deadline POLICY-NOPE")
        assert_one_line_error(
            cli("deadlines", "ack", incident_id, "POLICY-PIPL57-REGULATOR"), "pending, not missed"
        )
        note = ("--note", "已联系客户")
        done = cli("deadlines", "ack", incident_id, RULE, "--as", "wang.dpo", *note, check=True)
        assert "acknowledged by wang.dpo" in done.stdout and "+08:00" in done.stdout
        assert_one_line_error(cli("deadlines", "ack", incident_id, RULE), "acknowledged already")
        with env.store.read() as s:
            events = list(s.exec(select(Event).where(Event.kind == "deadline_acknowledged")))
        assert [(e.actor.split()[0], e.reason, e.inputs["rule"]) for e in events] == [
            ("wang.dpo", "已联系客户", RULE)
        ]
        verified = cli("audit", "verify", incident_id)
        assert verified.returncode == 0, verified.stdout + verified.stderr
        (shown,) = [d for d in cli.json("deadlines", "list", "--incident", incident_id) if d["rule"] == RULE]
        assert shown["status"] == "missed" and shown["acknowledged_by"].startswith("wang.dpo")
        assert shown["acknowledged_at"].endswith("+08:00") and shown["overdue"]
        assert "acknowledged by wang.dpo" in cli("deadlines", "list", "--incident", incident_id).stdout
        env.travel(61)
        assert cli("deadlines", "check").returncode == 1 and env.kinds() == ["missed"]


@pytest.mark.slow
class TestRacingCheckers:
    def test_two_checkers_send_each_alert_once(self, cli, builtin_source):
        """Two `breach deadlines check` at once: each robot receives each (deadline, level, repeat)
        alert once: the first alert, the repeat after 30 minutes, the DPO's level after 2 h."""
        with RobotServer(delay=0.2) as server:
            env = AlertEnv(cli.home, cli.db_url, robots_toml(server, repeat=30))
            incident_id = env.incident(builtin_source, hours_ago=24.02)
            environment = {**robot_env(server)}

            def race() -> None:
                procs = [
                    subprocess.Popen(
                        [BREACH, "deadlines", "check", "--json"],
                        stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE,
                        text=True,
                        env=cli_env(cli, environment),
                        cwd=cli.home,
                    )
                    for _ in range(2)
                ]
                outs = [p.communicate(timeout=120) for p in procs]
                assert [p.returncode for p in procs] == [1, 1], [o[1] for o in outs]

            race()
            assert counts(server) == (1, 0, 0)
            env.travel(31)
            race()
            assert counts(server) == (2, 0, 0)
            env.travel(95)
            race()
            assert counts(server) == (2, 1, 0)
            cli("deadlines", "ack", incident_id, RULE, check=True)
            env.travel(61)
            race()
            assert counts(server) == (2, 1, 0)
            assert env.kinds() == ["missed", "missed#1", "missed:L2"]


def cli_env(cli, extra: dict[str, str]) -> dict[str, str]:
    import os

    env = {**os.environ, "BREACH_HOME": str(cli.home), "COLUMNS": "200", **extra}
    env.pop("BREACH_DATABASE_URL", None)
    if cli.db_url:
        env["BREACH_DATABASE_URL"] = cli.db_url
    return env


def test_unreachable_robot_is_in_doubt_free(alert_env, builtin_source, monkeypatch):
    """A robot nobody listens on is retried, not in doubt (the request never left), then failed."""
    url = f"http://127.0.0.1:{free_port()}/cgi-bin/webhook/send?key=k"
    text = (
        "[escalation]\nlease_seconds = 30\nretry_seconds = 0\nmax_attempts = 2\n"
        '[[alerts.levels]]\nchannels = ["ops"]\n'
        f'[alerts.robots.ops]\nkind = "wecom"\nurl = "{url}"\ntimeout_seconds = 1\nattempts = 1\n'
    )
    env = alert_env(text)
    env.incident(builtin_source, hours_ago=30)
    report = env.scan()
    assert len(report.delivery.failed) == 1
    (row,) = [d for d in env.deliveries() if d.channel == "ops"]
    assert row.status == "failed" and not row.in_doubt and "key=k" not in (row.last_error or "")


class TestPolicy:
    T0 = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)  # the due time

    @staticmethod
    def policy(repeat: float | None = 30, max_repeats: int = 0):
        from engine.deadlines.policy import AlertPolicy, Level

        levels = (
            Level(1, "on-call", timedelta(0), ("log",)),
            Level(2, "DPO", timedelta(hours=2), ("smtp",)),
            Level(3, "management", timedelta(hours=8), ("ops",)),
        )
        return AlertPolicy(levels, timedelta(minutes=repeat) if repeat else None, max_repeats)

    def at(self, minutes: float, *, missed_after: float = 0, **options):
        from engine.deadlines.policy import missed_alert

        return missed_alert(
            self.policy(**options),
            due_at=self.T0,
            missed_at=self.T0 + timedelta(minutes=missed_after),
            now=self.T0 + timedelta(minutes=minutes),
        )

    def test_repeats_count_from_each_level_start(self):
        """Level 1 repeats every 30 minutes until level 2 starts at 2 h, which repeats from its start."""
        assert (self.at(0).kind, self.at(0).next_check_at) == ("missed", self.T0 + timedelta(minutes=30))
        assert self.at(95).kind == "missed#3" and self.at(95).next_check_at == self.T0 + timedelta(hours=2)
        assert (self.at(120).kind, self.at(151).kind) == ("missed:L2", "missed:L2#1")
        late = self.at(8 * 60 + 5)
        assert (late.level, late.repeat, late.next_check_at) == (3, 0, self.T0 + timedelta(hours=8.5))

    def test_a_late_first_look_starts_at_the_level_reached(self):
        """A miss first noticed 3 h late goes straight to level 2, as its first alert (not a repeat)."""
        first = self.at(180, missed_after=180)
        assert (first.kind, first.next_check_at) == ("missed:L2", self.T0 + timedelta(hours=3.5))

    def test_without_repeats_or_after_the_last(self):
        """No repeats: only level changes; at the last level with max_repeats reached, no next check."""
        assert self.at(10, repeat=None).next_check_at == self.T0 + timedelta(hours=2)
        assert self.at(9 * 60, repeat=None).next_check_at is None
        capped = self.at(8 * 60 + 95, max_repeats=2)
        assert (capped.kind, capped.next_check_at) == ("missed:L3#2", None)

    def test_kinds_read_back(self):
        """The outbox kind names level and repeat, and reads back (after a recomputed due time too)."""
        from engine.deadlines.policy import missed_kind, parse_kind

        assert missed_kind(2, 3, alert_round=2) == "missed:L2#3@r2"
        assert [parse_kind(k) for k in ("missed", "missed#4", "missed:L3@r2", "warn:50%")] == [
            (1, 0),
            (1, 4),
            (3, 0),
            (1, 0),
        ]

    def test_console_line_names_level_repeat_and_channels(self):
        """The scheduler's line for an alert says what, which incident, how late, basis, level, repeat."""
        from engine.cli.clock_views import alert_line

        line = alert_line(
            {
                "kind": "missed:L2#1",
                "incident_id": "INC-2026-0001",
                "rule": RULE,
                "due_at": "2026-12-01T10:00:00+08:00",
                "remaining_seconds": -9000,
                "basis": {"article": "PIPL Art 57"},
                "level": 2,
                "repeat": 1,
                "channels": ["log", "dpo-dingtalk"],
            }
        )
        assert line == (
            f"ALERT missed:L2#1: level 2 repeat 1 INC-2026-0001 {RULE} due 2026-12-01T10:00:00+08:00 "
            "(overdue by 2h 30m) — PIPL Art 57 → log, dpo-dingtalk"
        )
