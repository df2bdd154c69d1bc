"""Document rules of a playbook: which formal document each step owes, in which formats.

A rule in a playbook's ``documents:`` list (every name is checked against the rest of the playbook)::

    - kind: regulator_initial_report      # one of FORMAL_KINDS
      on: {task: submit_initial_report}   # or {trigger: T}, or {state: S} (entering S); a list for several
      formats: [docx, pdf]                # any of docx, pdf, html

    - kind: regulator_supplementary_report
      on: {trigger: supplementary_report}
      record: supplementary_reports       # the records list the trigger appends to: report N is entry N
      formats: [docx, pdf]

    - kind: remediation_report
      on: {trigger: close}
      sections:                           # lists of the document filled from tasks of the playbook:
        management: [management_rules]    # each task's note (one item per line, else its label), who
        lessons: [lessons_learned]        # did it and whether it is done
      formats: [docx, pdf]

How many documents one rule produces follows from its kind: one per incident, except a supplementary
report (one per entry of its ``record`` list) and a disciplinary decision (one per responsible person
recorded with ``breach incident responsible``). This module is the schema and its static checks;
:mod:`engine.formal.service` produces the documents.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = ["FORMAL_FORMATS", "FORMAL_KINDS", "SECTIONS", "DocumentOn", "DocumentRule", "check_documents"]

Ident = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]
# Kept here rather than read from engine.documents.render: every playbook parse validates these, and importing
# the renderer (Jinja, docxtpl) would slow every command; a test holds the two lists equal.
FORMAL_KINDS = (
    "regulator_initial_report",
    "regulator_supplementary_report",
    "regulator_summary_report",
    "internal_bulletin",
    "disciplinary_decision",
    "remediation_report",
)
FORMAL_FORMATS = ("docx", "pdf", "html")
FormalKind = Literal[
    "regulator_initial_report",
    "regulator_supplementary_report",
    "regulator_summary_report",
    "internal_bulletin",
    "disciplinary_decision",
    "remediation_report",
]
# The lists of each kind that tasks may fill: "actions" become rows with owner and status, "lines" are
# plain sentences (one per line of each task's note).
SECTIONS: dict[str, dict[str, Literal["actions", "lines"]]] = {
    "regulator_initial_report": {},
    "regulator_supplementary_report": {},
    "regulator_summary_report": {"rectification": "actions", "lessons": "lines"},
    "internal_bulletin": {"requirements": "lines"},
    "disciplinary_decision": {},
    "remediation_report": {
        "management": "actions",
        "technology": "actions",
        "people": "actions",
        "contracts": "actions",
        "audit": "actions",
        "lessons": "lines",
    },
}


class _Strict(BaseModel):
    """Unknown keys are errors: a misspelt key must not be silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class DocumentOn(_Strict):
    """The step that owes a document: a task done, a trigger fired, or a state entered."""

    task: Ident | None = None
    trigger: Ident | None = None
    state: Ident | None = None

    @model_validator(mode="after")
    def _one(self) -> DocumentOn:
        """Exactly one of task, trigger or state."""
        if sum(v is not None for v in (self.task, self.trigger, self.state)) != 1:
            raise ValueError("each 'on' entry names exactly one of task, trigger or state")
        return self

    def __str__(self) -> str:
        """``task:X``, ``trigger:Y`` or ``state:Z``: the keys the hook looks causes up by."""
        if self.task:
            return f"task:{self.task}"
        return f"trigger:{self.trigger}" if self.trigger else f"state:{self.state}"


class DocumentRule(_Strict):
    """One formal document a playbook owes (see the module docstring for the YAML)."""

    kind: FormalKind
    on: list[DocumentOn]
    formats: list[Literal["docx", "pdf", "html"]]
    record: Ident | None = None
    sections: dict[str, list[Ident]] = {}

    @model_validator(mode="before")
    @classmethod
    def _on_key(cls, data: Any) -> Any:
        """Take back ``on`` from the boolean key YAML 1.1 makes of it."""
        # YAML 1.1 reads a bare ``on`` key as the boolean true (as in GitHub workflows): take it back.
        if isinstance(data, dict) and True in data and "on" not in data:
            data = {("on" if k is True else k): v for k, v in data.items()}
        return data

    @field_validator("on", mode="before")
    @classmethod
    def _listify(cls, value: Any) -> Any:
        """One ``on`` mapping or a list of them."""
        return [value] if isinstance(value, dict) else value

    @model_validator(mode="after")
    def _shape(self) -> DocumentRule:
        """Formats, ``record`` and ``sections`` as the kind needs them."""
        if not self.on:
            raise ValueError(f"document {self.kind}: 'on' names at least one task, trigger or state")
        if not self.formats:
            raise ValueError(f"document {self.kind}: formats lists at least one of docx, pdf, html")
        if len(set(self.formats)) != len(self.formats):
            raise ValueError(f"document {self.kind}: a format is listed twice")
        supplementary = self.kind == "regulator_supplementary_report"
        if supplementary and self.record is None:
            raise ValueError(f"document {self.kind}: needs record: the list whose entry N is report N")
        if not supplementary and self.record is not None:
            raise ValueError(f"document {self.kind}: record applies to supplementary reports only")
        if supplementary and any(o.trigger is None for o in self.on):
            raise ValueError(
                f"document {self.kind}: is produced on the trigger that appends to {self.record}"
            )
        allowed = SECTIONS[self.kind]
        unknown = sorted(set(self.sections) - set(allowed))
        if unknown:
            takes = ", ".join(allowed) or "none"
            raise ValueError(
                f"document {self.kind}: unknown sections {', '.join(unknown)} (it takes: {takes})"
            )
        return self


def check_documents(
    rules: list[DocumentRule],
    *,
    states: list[str],
    triggers: list[str],
    tasks: list[str],
    transitions: list[Any],
) -> None:
    """Check rules against the rest of a playbook; ``ValueError`` names the first thing that is wrong.

    ``transitions`` are the playbook's transition specs (``trigger`` and ``effects`` are read).
    """
    kinds = [r.kind for r in rules]
    dupes = sorted({k for k in kinds if kinds.count(k) > 1})
    if dupes:
        # One rule per kind: a document is identified by (kind, format, subject), so two rules would race.
        raise ValueError(f"documents listed twice: {', '.join(dupes)} (give one rule several 'on' entries)")
    for rule in rules:
        for on in rule.on:
            if on.task and on.task not in tasks:
                raise ValueError(f"document {rule.kind}: on names unknown task {on.task!r}")
            if on.trigger and on.trigger not in triggers:
                raise ValueError(f"document {rule.kind}: on names unknown trigger {on.trigger!r}")
            if on.state and on.state not in states:
                raise ValueError(f"document {rule.kind}: on names unknown state {on.state!r}")
        for section, names in rule.sections.items():
            for name in names:
                if name not in tasks:
                    raise ValueError(f"document {rule.kind}: section {section} names unknown task {name!r}")
        if rule.record is not None:
            appending = {
                t.trigger
                for t in transitions
                if ("append_record", rule.record) in t.effects or ("open_record", rule.record) in t.effects
            }
            for on in rule.on:
                if on.trigger not in appending:
                    raise ValueError(
                        f"document {rule.kind}: trigger {on.trigger!r} does not append to {rule.record} "
                        "(it needs an {append_record: " + rule.record + "} effect)"
                    )
    if "regulator_supplementary_report" in kinds and "regulator_initial_report" not in kinds:
        raise ValueError(
            "document regulator_supplementary_report: a supplement follows an initial report; "
            "declare regulator_initial_report too"
        )
