"""Several operators at once, as separate processes, on SQLite (WAL) and PostgreSQL.

Eight processes fire the same trigger on the same incident having seen the same version: exactly one wins,
the others get the conflict error, and the audit chain has exactly one new event. Eight processes each
advancing their own incident all succeed.
"""

from __future__ import annotations

import os
import subprocess

from conftest import BREACH

CONTAINMENT = [
    "stop_transfer",
    "preserve_evidence",
    "establish_scope",
    "start_investigation",
    "grade_incident",
]


def _env(cli) -> dict[str, str]:
    env = {**os.environ, "BREACH_HOME": str(cli.home)}
    env.pop("BREACH_DATABASE_URL", None)
    if cli.db_url:
        env["BREACH_DATABASE_URL"] = cli.db_url
    return env


def _ready_incident(cli) -> tuple[str, int]:
    incident_id = cli.open_incident(discovered_at="2026-11-20 09:00")
    cli("task", "done", incident_id, *CONTAINMENT, check=True)
    return incident_id, cli.json("incident", "show", incident_id)["version"]


def _run_all(cli, commands: list[list[str]]) -> list[subprocess.CompletedProcess[str]]:
    """Start every command before waiting for any, so they really run at once."""
    procs = [
        subprocess.Popen(
            [BREACH, *cmd],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(cli),
            cwd=cli.home,
        )
        for cmd in commands
    ]
    results = []
    for cmd, proc in zip(commands, procs, strict=True):
        out, err = proc.communicate(timeout=180)
        results.append(subprocess.CompletedProcess(cmd, proc.returncode, out, err))
    return results


def test_eight_operators_same_incident_one_winner(cli):
    """One of eight identical advances at once wins; seven get 'changed meanwhile'; the chain verifies."""
    incident_id, version = _ready_incident(cli)
    results = _run_all(
        cli,
        [
            [
                "incident",
                "advance",
                incident_id,
                "contain",
                "--expect-version",
                str(version),
                "--as",
                f"op{i}",
            ]
            for i in range(8)
        ],
    )
    winners = [r for r in results if r.returncode == 0]
    losers = [r for r in results if r.returncode != 0]
    assert len(winners) == 1, [r.stderr for r in results]
    assert all(r.returncode == 2 and "changed meanwhile" in r.stderr for r in losers), [
        r.stderr for r in losers
    ]
    assert all("Traceback" not in r.stderr for r in results)
    data = cli.json("incident", "show", incident_id)
    contains = [e for e in data["events"] if e["trigger"] == "contain"]
    assert len(contains) == 1 and data["version"] == version + 1
    assert [e["seq"] for e in data["events"]] == list(range(1, len(data["events"]) + 1))
    assert cli("audit", "verify", incident_id).returncode == 0


def test_eight_operators_own_incidents_all_succeed(cli):
    """Eight processes each advancing a different incident all succeed, each chain intact."""
    ids = [_ready_incident(cli)[0] for _ in range(8)]
    results = _run_all(cli, [["incident", "advance", i, "contain", "--as", "op"] for i in ids])
    assert all(r.returncode == 0 for r in results), [r.stderr for r in results]
    for incident_id in ids:
        assert cli.json("incident", "show", incident_id)["state"] == "customer_notification"
    assert cli("audit", "verify", "--all").returncode == 0


def test_eight_operators_racing_without_expected_version(cli):
    """Without --expect-version every loser is still refused cleanly: conflict or 'not allowed now'."""
    incident_id, version = _ready_incident(cli)
    results = _run_all(cli, [["incident", "advance", incident_id, "contain"] for _ in range(8)])
    assert sum(r.returncode == 0 for r in results) == 1
    for r in results:
        if r.returncode:
            assert r.returncode == 2 and ("changed meanwhile" in r.stderr or "not allowed" in r.stderr), (
                r.stderr
            )
    assert cli.json("incident", "show", incident_id)["version"] == version + 1
