"""One ``transitions`` state machine per playbook version, shared by every incident opened under it.

Incidents are never bound to a Machine (transitions would set attributes on the row, and a Machine per
incident costs tens of kilobytes and milliseconds). A trigger runs on a small ``Run`` object whose
``state`` reads and writes the incident row; guards and effects are the engine's allow-listed callables.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any, cast

from transitions import EventData, Machine

from engine.playbooks.effects import Mutable, apply_effects
from engine.playbooks.guards import Situation, evaluate_guards
from engine.playbooks.model import Playbook, TransitionSpec
from engine.playbooks.parsing import PlaybookSource

__all__ = ["PlaybookMachine", "Run", "machine_for", "mermaid_diagram"]


class _AllowListMachine(Machine):
    """A Machine that accepts only callables we built: a playbook can never name code by string."""

    @staticmethod
    def resolve_callable(func: Any, event_data: EventData) -> Callable[..., Any]:
        if isinstance(func, str):
            raise TypeError(f"refusing to resolve {func!r}: playbooks name allow-listed guards only")
        return func  # type: ignore[no-any-return]


class Run:
    """The model a trigger runs on: the incident's state plus what guards and effects need."""

    def __init__(
        self,
        incident: Any,
        situation: Situation,
        mutable: Mutable,
        on_enter: Callable[[str], None],
    ) -> None:
        self.incident = incident
        self.situation = situation
        self.mutable = mutable
        self.on_enter = on_enter
        self.blocked: list[str] = []
        self.effects_done: list[str] = []

    @property
    def state(self) -> str:
        """The incident's current state."""
        return str(self.incident.state)

    @state.setter
    def state(self, value: str) -> None:
        self.incident.state = value


class PlaybookMachine:
    """A playbook version compiled into a transitions Machine."""

    def __init__(self, source: PlaybookSource) -> None:
        self.source = source
        self.playbook: Playbook = source.playbook
        states = [{"name": s.id, "on_enter": [self._entered]} for s in self.playbook.states]
        transitions = [self._transition(spec) for spec in self.playbook.transitions]
        self.machine = _AllowListMachine(
            model=None,
            states=states,
            transitions=transitions,
            initial=self.playbook.initial,
            auto_transitions=False,
            send_event=True,
        )

    def _transition(self, spec: TransitionSpec) -> dict[str, Any]:
        playbook = self.playbook

        def guards_hold(event: EventData) -> bool:
            run = cast(Run, event.model)
            run.blocked = evaluate_guards(spec.guards, run.situation, playbook)
            return not run.blocked

        def run_effects(event: EventData) -> None:
            run = cast(Run, event.model)
            run.effects_done = apply_effects(spec.effects, run.mutable)

        return {
            "trigger": spec.trigger,
            "source": list(spec.source),
            "dest": None if spec.internal else spec.dest,
            "conditions": [guards_hold],
            "after": [run_effects],
        }

    @staticmethod
    def _entered(event: EventData) -> None:
        run = cast(Run, event.model)
        run.on_enter(event.state.name)

    def fire(self, run: Run, trigger: str) -> bool:
        """Run ``trigger`` on ``run``; False when a guard blocked it (``run.blocked`` says why)."""
        return bool(self.machine.events[trigger].trigger(run))


_cache: dict[str, PlaybookMachine] = {}
_lock = threading.Lock()


def machine_for(source: PlaybookSource) -> PlaybookMachine:
    """The machine of this exact playbook text, built once per process."""
    with _lock:
        built = _cache.get(source.sha256)
        if built is None:
            built = _cache[source.sha256] = PlaybookMachine(source)
        return built


def mermaid_diagram(playbook: Playbook, locale: str = "zh-CN") -> str:
    """A Mermaid state diagram of the playbook, drawn by transitions' GraphMachine."""
    from transitions.extensions import GraphMachine

    class _Sketch:
        """A throwaway model: GraphMachine draws through a model, never through ``model=None``."""

    states = [{"name": s.id} for s in playbook.states]
    transitions = []
    for spec in playbook.transitions:
        transitions.append(
            {
                "trigger": spec.trigger,
                "source": list(spec.source),
                "dest": None if spec.internal else spec.dest,
            }
        )
    sketch = _Sketch()
    GraphMachine(
        model=sketch,
        states=states,
        transitions=transitions,
        initial=playbook.initial,
        auto_transitions=False,
        graph_engine="mermaid",
        show_conditions=False,
        title=playbook.title(locale),
    )
    # Every statement on its own line: the drawn text does not end with a line break, so a statement
    # appended directly would share the last line with another and Mermaid would refuse the diagram.
    text = str(sketch.get_graph().draw(None)).rstrip("\n") + "\n"  # type: ignore[attr-defined]
    # Mermaid's front matter is YAML: the title needs its key (the drawing gives the bare words); and
    # its keyword is "class": the drawing's "Class" is not a statement Mermaid knows.
    lines = [("  class " + line[8:]) if line.startswith("  Class ") else line for line in text.split("\n")]
    if len(lines) > 2 and lines[0] == "---" and not lines[1].startswith("title:"):
        lines[1] = "title: " + json.dumps(lines[1], ensure_ascii=False)
    text = "\n".join(lines)
    # Show the operator's words for each state, and mark final states as ending the diagram.
    for state in playbook.states:
        text = text.replace(
            f'state "{state.id}" as {state.id}', f'state "{state.label(locale)}" as {state.id}'
        )
        if state.final:
            text += f"  {state.id} --> [*]\n"
    # Tasks that open before their state: a note on the state that requires them says from when.
    for state in playbook.states:
        early = [t for t in state.tasks if t.opens is not None]
        if early:
            lines = [f"{t.label(locale)} ({t.id}) opens when {t.opens.describe()}" for t in early if t.opens]
            text += f"  note right of {state.id} : " + "<br/>".join(lines).replace(":", " ") + "\n"
    return text
