"""Anchors sent to a witness: `breach audit anchor` posts each signed anchor to `[audit] witness_url`
and keeps the witness's receipt in the workspace log; a witness that does not take it is said plainly.

The witness is a real HTTP server on loopback.
"""

from __future__ import annotations

import hashlib
import json

from conftest import Cli, assert_one_line_error
from escalation_servers import HookServer
from sqlalchemy import create_engine, text


def set_witness(cli: Cli, url: str) -> None:
    path = cli.home / "config" / "settings.toml"
    path.write_text(
        path.read_text(encoding="utf-8") + f'\n[audit]\nwitness_url = "{url}"\nwitness_timeout_seconds = 5\n',
        encoding="utf-8",
    )


def log_entries(cli: Cli, kind: str) -> list[dict[str, object]]:
    """The workspace log's entries of one kind, their detail parsed."""
    engine = create_engine(cli.db_url or f"sqlite:///{cli.home / 'breach.db'}")
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text("SELECT actor, detail FROM workspace_log WHERE kind = :k ORDER BY id"), {"k": kind}
            ).all()
    finally:
        engine.dispose()
    return [{"actor": actor, **json.loads(detail)} for actor, detail in rows]


class TestWitness:
    def test_the_witness_gets_the_signed_anchor_and_its_receipt_is_logged(self, cli, tmp_path):
        """The witness receives the very line signed into the anchor file; its receipt is in the log,
        and the witness's copy verifies the record with --against."""
        incident = cli.open_incident()
        cli("task", "done", incident, "stop_transfer", check=True)
        with HookServer() as witness:
            witness.reply = b'{"receipt": "W-0001", "stored": true}'
            set_witness(cli, witness.url)
            result = cli("audit", "anchor")
            assert result.returncode == 0, result.stderr
            assert (
                "received by the witness" in result.stderr
                and "recorded in the workspace log" in result.stderr
            )
            line = result.stdout.strip()
            (received,) = witness.requests
        sha = hashlib.sha256(line.encode("utf-8")).hexdigest()
        assert received["body"]["line"] == line and received["body"]["anchor_sha256"] == sha
        assert received["headers"]["Idempotency-Key"] == sha
        assert received["body"]["anchor"]["statement"]["incidents"][incident]["events"] == 2
        (logged,) = log_entries(cli, "witnessed")
        assert logged["anchor_sha256"] == sha and logged["status"] == 200
        assert logged["receipt"] == '{"receipt": "W-0001", "stored": true}'
        assert logged["witness"] == witness.url
        copy = tmp_path / "witness-copy.jsonl"
        copy.write_text(received["body"]["line"] + "\n", encoding="utf-8")
        verified = cli("audit", "verify", "--all", "--against", str(copy))
        assert verified.returncode == 0, verified.stdout + verified.stderr

    def test_a_witness_that_refuses_is_exit_2_and_logged(self, cli):
        """A witness answering 500 is one line naming it (exit 2); the anchor stays in the file and the
        failure is in the workspace log."""
        cli.open_incident()
        anchors = cli.home / "audit" / "anchors.jsonl"
        with HookServer(statuses=[500]) as witness:
            set_witness(cli, witness.url)
            before = anchors.read_text(encoding="utf-8").count("\n")
            result = cli("audit", "anchor")
        assert_one_line_error(result, "not received by the witness", witness.url, "HTTP 500", "again")
        assert anchors.read_text(encoding="utf-8").count("\n") == before + 1
        (failed,) = log_entries(cli, "witness_failed")
        assert failed["problem"] == "HTTP 500" and not log_entries(cli, "witnessed")

    def test_a_malformed_witness_url_is_refused_before_signing(self, cli):
        """A witness setting that is not an http(s) URL is exit 2, and no anchor is written."""
        cli.open_incident()
        anchors = cli.home / "audit" / "anchors.jsonl"
        before = anchors.read_text(encoding="utf-8")
        set_witness(cli, "file:///etc/passwd")
        assert_one_line_error(cli("audit", "anchor"), "witness_url", "file:///etc/passwd")
        assert anchors.read_text(encoding="utf-8") == before
