"""Playbooks are data: loading, validation errors with file and line, the allow-lists, diagrams."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.errors import BadInput
from engine.playbooks.machine import mermaid_diagram
from engine.playbooks.parsing import parse_playbook, playbook_errors

REPO = Path(__file__).resolve().parent.parent
BUILTIN = (REPO / "playbooks" / "cn-agency-firm.yaml").read_text(encoding="utf-8")


class TestBuiltinPlaybook:
    def test_five_phases_in_order_then_closed(self, builtin_source):
        """The agency-firm playbook runs its five phases in order, then closed."""
        pb = builtin_source.playbook
        assert [s.id for s in pb.states] == [
            "containment",
            "customer_notification",
            "regulator_report",
            "accountability",
            "remediation",
            "closed",
        ]
        assert [s.phase for s in pb.states[:5]] == [1, 2, 3, 4, 5]
        assert pb.state("closed").final

    def test_labels_are_chinese_and_english(self, builtin_source):
        """Every state and task has a zh-CN and an en label."""
        for state in builtin_source.playbook.states:
            assert state.label("zh-CN") and state.label("en")
            for task in state.tasks:
                assert task.label("zh-CN") != task.label("en")

    def test_waiver_needs_reason_and_approver(self, builtin_source):
        """Waiving customer notification (PIPL Art 57) needs a written rationale and a named approver."""
        spec = builtin_source.playbook.transition("waive_notification", "customer_notification")
        assert spec is not None and spec.reason == "required" and spec.approver

    def test_correction_order_takes_a_due_date(self, builtin_source):
        """A regulator's order to correct is recorded with its due date."""
        spec = builtin_source.playbook.transition("correction_order", "regulator_report")
        assert spec is not None
        assert {i.name: i.type for i in spec.inputs} == {"ref": "text", "due_at": "datetime"}

    def test_mermaid_diagram_lists_every_state(self, builtin_source):
        """The diagram is Mermaid text naming every state with its label."""
        text = mermaid_diagram(builtin_source.playbook)
        assert "stateDiagram-v2" in text
        for state in builtin_source.playbook.states:
            assert f"as {state.id}" in text
        assert "立即止损" in text and "remediation --> containment: reopen" in text


class TestValidation:
    def _errors(self, text: str) -> list[str]:
        source, errors = playbook_errors(text, "pb.yaml")
        assert source is None
        return errors

    def test_import_path_as_guard_is_refused(self):
        """A guard that is not in the engine's allow-list is an error naming the allowed ones."""
        bad = BUILTIN.replace(
            "guards: [required_tasks_done]\n    effects: [{set_anchor",
            "guards: [os.system]\n    effects: [{set_anchor",
            1,
        )
        errors = self._errors(bad)
        assert any("unknown guard 'os.system'" in e and "required_tasks_done" in e for e in errors)
        line = bad.splitlines().index("    guards: [os.system]") + 1
        assert errors[0].startswith(f"pb.yaml:{line}:")

    def test_unknown_effect_is_refused(self):
        """Effects come from an allow-list too."""
        bad = BUILTIN.replace("{set_anchor: contained_at}", "{exec: rm}")
        assert any("unknown effect 'exec'" in e for e in self._errors(bad))

    def test_unknown_dest_state(self):
        """A transition to a state that does not exist is reported."""
        bad = BUILTIN.replace("dest: accountability", "dest: acountability")
        assert any("unknown dest state 'acountability'" in e for e in self._errors(bad))

    def test_wrong_type_names_the_line(self):
        """A wrong type is reported with the YAML line of the offending value."""
        bad = BUILTIN.replace("version: 1", "version: one")
        errors = self._errors(bad)
        assert errors[0].startswith("pb.yaml:5: version:")  # line 5 of the file holds "version:"

    def test_missing_english_label(self):
        """Labels need both locales."""
        bad = BUILTIN.replace("labels: {zh-CN: 已结案, en: Closed}", "labels: {zh-CN: 已结案}")
        assert any("needs en" in e for e in self._errors(bad))

    def test_malformed_yaml_gives_line(self):
        """A YAML syntax error names the line."""
        errors = self._errors("id: x\nstates: [a,\n")
        assert errors[0].startswith("pb.yaml:") and "malformed YAML" in errors[0]

    def test_duplicate_keys_are_refused(self):
        """A key given twice is an error, not a silent override."""
        errors = self._errors("id: a\nid: b\n")
        assert "duplicate key 'id'" in errors[0] and errors[0].startswith("pb.yaml:2")

    def test_unknown_field_is_refused(self):
        """Typos in field names are caught (extra fields are forbidden)."""
        bad = BUILTIN.replace(
            "    guards: [required_tasks_done]\n    effects: [{set_anchor",
            "    gaurds: [required_tasks_done]\n    effects: [{set_anchor",
            1,
        )
        assert any("gaurds" in e for e in self._errors(bad))

    def test_unreachable_state(self):
        """A state no transition reaches is reported."""
        bad = BUILTIN.replace("    dest: closed\n", "    dest: remediation\n")
        assert any("no transition reaches: closed" in e for e in self._errors(bad))

    def test_parse_playbook_raises_bad_input(self):
        """The single-error API raises BadInput with the first error and a pointer to validate."""
        with pytest.raises(BadInput, match=r"pb\.yaml:5"):
            parse_playbook(BUILTIN.replace("version: 1", "version: one"), "pb.yaml")
