"""One JSON shape per concept: the CLI's --json outputs match the JSON Schemas shipped in the package."""

from __future__ import annotations

import re

import jsonschema
import pytest

from engine.shapes.schemas import COMMANDS, command_schema, shipped_schema

OFFSET = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+08:00$")


def validate(name: str, value: object) -> None:
    """Check ``value`` against the shipped schema of the command output ``name``."""
    schema = shipped_schema(name)
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft202012Validator(schema).validate(value)


class TestShippedSchemas:
    @pytest.mark.parametrize("name", sorted(COMMANDS))
    def test_shipped_file_is_the_generated_schema(self, name):
        """The shipped files are what the concepts say (regenerate: python -m engine.shapes.schemas)."""
        assert shipped_schema(name) == command_schema(name)

    def test_a_time_without_offset_is_refused(self):
        """The schemas pin times to ISO-8601 with an offset: a naive time does not pass."""
        item = {
            "id": "INC-2026-0001",
            "title": "t",
            "playbook": "cn-agency-firm",
            "state": "containment",
            "version": 1,
            "drill": False,
            "opened_at": "2026-12-01T09:00:00+08:00",
            "discovered_at": "2026-12-01T09:00:00",
            "grade": None,
        }
        with pytest.raises(jsonschema.ValidationError):
            validate("incident-list", [item])
        validate("incident-list", [{**item, "discovered_at": "2026-12-01T09:00:00+08:00"}])


class TestCommandsFollowTheirSchemas:
    def test_outputs_validate_and_share_one_deadline_shape(self, cli):
        """Five outputs validate; a deadline has one shape in incident show and deadlines list."""
        incident_id = cli.open_incident("--set", "people_affected=8000", discovered_at="2026-11-30 09:00")
        cli("task", "done", incident_id, "stop_transfer", check=True)
        listed = cli.json("incident", "list")
        shown = cli.json("incident", "show", incident_id)
        validate("incident-list", listed)
        validate("incident-show", shown)
        validate("incident-triggers", cli.json("incident", "triggers", incident_id))
        now = cli.json("incident", "what-now", incident_id)
        validate("incident-what-now", now)
        assert now["open_tasks"][0]["id"] == "preserve_evidence" and now["overdue"]
        clocks = cli.json("deadlines", "list", "--incident", incident_id, "--all")
        validate("deadlines-list", clocks)
        moving = ("remaining_seconds", "countdown", "overdue")
        assert [{k: v for k, v in d.items() if k not in moving} for d in shown["deadlines"]] == [
            {k: v for k, v in d.items() if k not in moving} for d in clocks
        ]
        times = [
            listed[0]["opened_at"],
            shown["discovered_at"],
            clocks[0]["due_at"],
            now["overdue"][0]["due_at"],
        ]
        times += [e["at"] for e in shown["events"]] + [t["done_at"] for t in shown["tasks"] if t["done_at"]]
        assert all(OFFSET.match(t) for t in times), times
