"""The HTTP API fuzzed from its own OpenAPI document with schemathesis, on SQLite and on PostgreSQL.

Every operation is called with generated parameters (valid and invalid): no answer may be a 5xx, and
every answer must match the schema its status documents (content type, required keys, types).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from engine.incidents.opening import open_incident
from engine.web.app import create_app
from engine.wiring import hooks_for
from engine.workspace import Workspace


@pytest.fixture
def api_schema(store, builtin_source, tmp_path, db_url):
    """The API over a database with a running incident, an overdue one and a drill."""
    ws = Workspace.resolve(tmp_path / "ws", db_url)
    for title, days, drill in (("运行中", 0.1, False), ("已逾期", 10, False), ("演练", 1, True)):
        open_incident(
            store,
            source=builtin_source,
            title=title,
            actor="alice",
            zone="Asia/Shanghai",
            drill=drill,
            discovered_at=datetime.now(UTC) - timedelta(days=days),
            facts={"people_affected": 8000, "records": {"property": 8000}},
            hooks=hooks_for(ws),
        )
    app = create_app(ws, always_required=False)
    return schemathesis.openapi.from_asgi("/api/v1/openapi.json", app)


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["valid", "invalid"])
def test_api_answers_as_documented(api_schema, mode):
    """Generated calls to every operation: no server error, and each answer matches its documented schema."""
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) == 6
    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=15,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        )
        def call(case):
            case.call_and_validate()

        call()
