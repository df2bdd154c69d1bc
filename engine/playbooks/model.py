"""Playbooks as data: the typed, validated model of a response.

A playbook lists states (each with its phase and tasks), the transitions between them (trigger, guards,
required inputs, effects), the legal clocks each step starts and the documents each step owes. Guards and
effects are names from the engine's allow-lists (``engine.playbooks.guards``,
``engine.playbooks.effects``), never code. Reading a playbook's YAML into this model, with a file and
line for every error, is :mod:`engine.playbooks.parsing`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from engine.clocks.rules import DeadlineRule, cross_check
from engine.errors import NotFound
from engine.playbooks.document_rules import DocumentRule, check_documents
from engine.playbooks.effects import EFFECTS
from engine.playbooks.guards import GUARDS

__all__ = [
    "InputSpec",
    "Playbook",
    "StateSpec",
    "TaskOpens",
    "TaskSpec",
    "TransitionSpec",
]

Ident = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]
LOCALES = ("zh-CN", "en")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _both_locales(value: dict[str, str]) -> dict[str, str]:
    """Require a non-empty text for every locale the product ships."""
    missing = [loc for loc in LOCALES if not str(value.get(loc, "")).strip()]
    if missing:
        raise ValueError(f"needs {', '.join(missing)} (has {', '.join(value) or 'none'})")
    return value


class Labelled(_Strict):
    """Anything shown to people: carries a Chinese and an English label."""

    labels: dict[str, str]

    @field_validator("labels")
    @classmethod
    def _labels(cls, value: dict[str, str]) -> dict[str, str]:
        return _both_locales(value)

    def label(self, locale: str = "zh-CN") -> str:
        """The label in ``locale``, falling back to Chinese."""
        return self.labels.get(locale) or self.labels["zh-CN"]


class TaskOpens(_Strict):
    """When a task opens before the state it belongs to is entered: exactly one of three moments.

    The law's clocks run from awareness, in parallel, while the phases run in sequence: a report due four
    hours after the grade reaches 较大 cannot wait for the notification phase to end. ``clock`` opens the
    task when that deadline rule starts, ``anchor`` when that moment is recorded, ``state`` when that
    earlier state is entered. The task's own state still requires it before it can be left.
    """

    clock: str | None = None
    anchor: Ident | None = None
    state: Ident | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> TaskOpens:
        given = [k for k in ("clock", "anchor", "state") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("opens names exactly one of clock: RULE_ID, anchor: NAME or state: STATE_ID")
        return self

    def describe(self) -> str:
        """The moment in words, e.g. ``clock CN-CAC-RPT-4 starts``."""
        if self.clock is not None:
            return f"clock {self.clock} starts"
        if self.anchor is not None:
            return f"{self.anchor} is recorded"
        return f"state {self.state} is entered"


class TaskSpec(Labelled):
    """A task an operator completes in a state; required tasks block leaving it.

    ``opens`` lets it open earlier (see :class:`TaskOpens`); done early, it stays done.
    """

    id: Ident
    required: bool = True
    opens: TaskOpens | None = None


class StateSpec(Labelled):
    """A state of the response; ``phase`` orders the five phases, ``final`` ends the incident."""

    id: Ident
    phase: int | None = None
    final: bool = False
    tasks: list[TaskSpec] = []


class InputSpec(_Strict):
    """A value an operator must (or may) give with a trigger, such as a regulator order's due date."""

    name: Ident
    type: Literal["text", "datetime", "integer"] = "text"
    required: bool = True
    description: str = ""


def _named_param(value: Any, registry: dict[str, Any], what: str) -> tuple[str, Any]:
    """Read ``name`` or ``{name: param}`` and check the name against an allow-list."""
    if isinstance(value, str):
        name, param = value, None
    elif isinstance(value, dict) and len(value) == 1:
        name, param = next(iter(value.items()))
    else:
        raise ValueError(f"a {what} is a name or a one-key mapping {{name: parameter}}")
    if name not in registry:
        raise ValueError(f"unknown {what} {name!r}; allowed: {', '.join(sorted(registry))}")
    wants = registry[name].param
    if wants is None and param is not None:
        raise ValueError(f"{what} {name!r} takes no parameter")
    if wants is not None and (param is None or not isinstance(param, str | int)):
        raise ValueError(f"{what} {name!r} needs a parameter ({wants})")
    return name, param


class TransitionSpec(Labelled):
    """A trigger that moves an incident from one of ``source`` to ``dest`` (or stays, if ``internal``)."""

    trigger: Ident
    source: list[str]
    dest: str | None = None
    internal: bool = False
    guards: list[tuple[str, Any]] = []
    reason: Literal["required", "optional"] = "optional"
    approver: bool = False
    inputs: list[InputSpec] = []
    effects: list[tuple[str, Any]] = []
    roles: list[Ident] = []

    @field_validator("source", mode="before")
    @classmethod
    def _listify(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("guards", mode="before")
    @classmethod
    def _guards(cls, value: Any) -> Any:
        if not isinstance(value, list):
            raise ValueError("guards must be a list")
        return [_named_param(v, GUARDS, "guard") for v in value]

    @field_validator("effects", mode="before")
    @classmethod
    def _effects(cls, value: Any) -> Any:
        if not isinstance(value, list):
            raise ValueError("effects must be a list")
        return [_named_param(v, EFFECTS, "effect") for v in value]

    @model_validator(mode="after")
    def _dest_or_internal(self) -> TransitionSpec:
        if self.internal and self.dest is not None:
            raise ValueError("an internal transition has no dest")
        if not self.internal and self.dest is None:
            raise ValueError("dest is required unless internal: true")
        return self


class Playbook(_Strict):
    """A whole playbook: states, transitions, clocks and documents, at one version."""

    id: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]*$", max_length=64)]
    version: Annotated[int, Field(ge=1)]
    titles: dict[str, str]
    jurisdictions: list[str]
    initial: Ident
    states: list[StateSpec]
    transitions: list[TransitionSpec]
    anchors: list[Ident] = ["discovered_at", "opened_at"]
    deadlines: list[DeadlineRule] = []
    documents: list[DocumentRule] = []

    @field_validator("titles")
    @classmethod
    def _titles(cls, value: dict[str, str]) -> dict[str, str]:
        return _both_locales(value)

    @model_validator(mode="after")
    def _consistent(self) -> Playbook:
        ids = [s.id for s in self.states]
        dupes = {i for i in ids if ids.count(i) > 1}
        if dupes:
            raise ValueError(f"duplicate state ids: {', '.join(sorted(dupes))}")
        task_ids = [t.id for s in self.states for t in s.tasks]
        dupes = {i for i in task_ids if task_ids.count(i) > 1}
        if dupes:
            raise ValueError(f"duplicate task ids: {', '.join(sorted(dupes))}")
        known = set(ids)
        if self.initial not in known:
            raise ValueError(f"initial state {self.initial!r} is not among the states ({', '.join(ids)})")
        if not any(s.final for s in self.states):
            raise ValueError("no final state: an incident could never be closed")
        finals = {s.id for s in self.states if s.final}
        seen: set[tuple[str, str]] = set()
        for t in self.transitions:
            for src in t.source:
                if src not in known:
                    raise ValueError(f"transition {t.trigger!r}: unknown source state {src!r}")
                if src in finals:
                    raise ValueError(f"transition {t.trigger!r}: final state {src!r} cannot be left")
                if (t.trigger, src) in seen:
                    raise ValueError(f"trigger {t.trigger!r} defined twice for state {src!r}")
                seen.add((t.trigger, src))
            if t.dest is not None and t.dest not in known:
                raise ValueError(f"transition {t.trigger!r}: unknown dest state {t.dest!r}")
        cross_check(
            self.deadlines,
            anchors=self.anchors,
            triggers=self.triggers(),
            tasks=task_ids,
            transitions=self.transitions,
        )
        check_documents(
            self.documents, states=ids, triggers=self.triggers(), tasks=task_ids, transitions=self.transitions
        )
        unreachable = known - self._reachable()
        if unreachable:
            raise ValueError(f"states no transition reaches: {', '.join(sorted(unreachable))}")
        self._check_opens()
        return self

    def _check_opens(self) -> None:
        """Refuse a task that could never open early: unknown clock or anchor, or a state not before it."""
        rules = [r.id for r in self.deadlines]
        for state in self.states:
            for task in state.tasks:
                opens = task.opens
                if opens is None:
                    continue
                where = f"task {task.id!r} opens when"
                if opens.clock is not None and opens.clock not in rules:
                    raise ValueError(
                        f"{where} clock {opens.clock!r} starts, but no deadline rule has that id "
                        f"(rules: {', '.join(rules) or 'none'})"
                    )
                if opens.anchor is not None and opens.anchor not in self.anchors:
                    raise ValueError(
                        f"{where} {opens.anchor!r} is recorded, but that is not an anchor "
                        f"(anchors: {', '.join(self.anchors)})"
                    )
                if opens.state is not None and opens.state not in {s.id for s in self.states}:
                    raise ValueError(f"{where} state {opens.state!r} is entered, but there is no such state")
                if opens.state is not None and not self._before(self.state(opens.state), state):
                    raise ValueError(
                        f"{where} state {opens.state!r} is entered, but that is not a state before "
                        f"{state.id!r} (one from which {state.id!r} can be reached)"
                    )

    def _before(self, earlier: StateSpec, later: StateSpec) -> bool:
        """Whether ``earlier`` comes before ``later``: by phase when both have one (a reopening loops
        back, so transitions alone would put every phase before every other), else by transitions."""
        if earlier.id == later.id:
            return False
        if earlier.phase is not None and later.phase is not None:
            return earlier.phase < later.phase
        return later.id in self._reachable(earlier.id)

    def reachable_from(self, state_id: str) -> set[str]:
        """The states some sequence of transitions leads to from ``state_id`` (itself included)."""
        return self._reachable(state_id)

    def _reachable(self, start: str | None = None) -> set[str]:
        first = self.initial if start is None else start
        reached, frontier = {first}, [first]
        while frontier:
            here = frontier.pop()
            for t in self.transitions:
                if here in t.source and t.dest and t.dest not in reached:
                    reached.add(t.dest)
                    frontier.append(t.dest)
        return reached

    def state(self, state_id: str) -> StateSpec:
        """The state called ``state_id``; ``NotFound`` lists the states there are."""
        for s in self.states:
            if s.id == state_id:
                return s
        raise NotFound(f"playbook {self.id} has no state {state_id!r}")

    def title(self, locale: str = "zh-CN") -> str:
        """The playbook's title in ``locale``."""
        return self.titles.get(locale) or self.titles["zh-CN"]

    def triggers(self) -> list[str]:
        """Every trigger name, in playbook order, without repeats."""
        return list(dict.fromkeys(t.trigger for t in self.transitions))

    def transitions_from(self, state_id: str) -> list[TransitionSpec]:
        """The transitions whose source includes ``state_id``."""
        return [t for t in self.transitions if state_id in t.source]

    def transition(self, trigger: str, state_id: str) -> TransitionSpec | None:
        """The transition ``trigger`` from ``state_id``, if there is one."""
        for t in self.transitions_from(state_id):
            if t.trigger == trigger:
                return t
        return None

    def task(self, task_id: str) -> tuple[StateSpec, TaskSpec]:
        """The task called ``task_id`` and the state it belongs to."""
        for s in self.states:
            for t in s.tasks:
                if t.id == task_id:
                    return s, t
        raise NotFound(f"playbook {self.id} has no task {task_id!r}")

    def early_tasks(self) -> list[tuple[StateSpec, TaskSpec]]:
        """Every task that opens before its state, with the state it belongs to, in playbook order."""
        return [(s, t) for s in self.states for t in s.tasks if t.opens is not None]
