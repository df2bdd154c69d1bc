"""A hypothesis state machine drives one incident through random triggers and task completions.

Each example opens one incident on a fresh SQLite file (a copy of an empty template) and runs a random
sequence of steps: every trigger of the built-in playbook plus an unknown one, with and without the reason,
approver and inputs they need, with valid and invalid values, at the current or a stale version; and task
completions, of the current phase or not. ``Model`` below is this test's own reading of the playbook's rules
(written here, not taken from ``engine.playbooks.guards`` or ``engine.playbooks.effects``): it predicts
whether each step is accepted and what it changes. After every step the engine must agree with it, and:

- the state is one of the playbook's states, and the one the transition table says;
- the audit chain verifies;
- the version and the event count rise by exactly one per accepted change;
- a refused step (any ``BreachError``) changes no row of any table;
- ``list_triggers`` says "allowed" exactly when the model's guards hold.
"""

from __future__ import annotations

import copy
import shutil
import sqlite3
import tempfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from engine.errors import BadInput, BreachError, Conflict, GuardFailed, NotAllowed, NotFound
from engine.incidents import flow
from engine.incidents.audit import verify_chain
from engine.incidents.opening import open_incident
from engine.incidents.tables import Incident
from engine.incidents.tasks import complete_task
from engine.migrations.tables import create_all
from engine.playbooks.catalog import PlaybookCatalog
from engine.playbooks.model import TransitionSpec
from engine.store.db import Store, utcnow
from engine.workspace import Workspace

REPO = Path(__file__).resolve().parent.parent
SOURCE = PlaybookCatalog(Workspace.resolve(REPO)).get("cn-agency-firm")
PLAYBOOK = SOURCE.playbook
ZONE = "Asia/Shanghai"
ACTOR = "alice"
STATES = {s.id for s in PLAYBOOK.states}
TASKS = [t.id for s in PLAYBOOK.states for t in s.tasks]
TRIGGERS = PLAYBOOK.triggers()
HAPPY_PATH = ["contain", "notify", "report", "hold_accountable"]

REFS = ["R-1", "R-2", " R-1 ", "", "   "]
VALID_DUE = ["2026-12-01", "2026-12-01T09:30:00+08:00", "2027-01-15 10:00"]
INVALID_DUE = ["next week", "2026-13-01", "0001-01-01T00:00:00", ""]
reasons = st.sampled_from([None, "", "  ", "监管部门来函要求"])
approvers = st.sampled_from([None, "", ACTOR, ACTOR.upper(), "bob"])
inputs = st.fixed_dictionaries(
    {},
    optional={
        "ref": st.sampled_from(REFS),
        "due_at": st.sampled_from(VALID_DUE + INVALID_DUE),
        "colour": st.just("blue"),  # taken by no trigger
    },
)


@dataclass
class Model:
    """What the incident should look like: state, counters, task statuses, flags and record lists."""

    state: str
    version: int = 1
    events: int = 1
    tasks: dict[str, str] = field(default_factory=dict)
    flags: set[str] = field(default_factory=set)
    anchors: set[str] = field(default_factory=lambda: {"discovered_at", "opened_at"})
    record_counts: Counter[str] = field(default_factory=Counter)
    open_refs: dict[str, Counter[str]] = field(default_factory=dict)

    def enter(self, state_id: str) -> None:
        """Entering a state opens each of its tasks, done ones included, but an early task already
        opened keeps its status; it also opens (again) the later tasks that open with this state."""
        self.state = state_id
        for task in PLAYBOOK.state(state_id).tasks:
            if task.opens is None or task.id not in self.tasks:
                self.tasks[task.id] = "open"
        for home, task in PLAYBOOK.early_tasks():
            if task.opens is not None and task.opens.state == state_id and home.id != state_id:
                self.tasks[task.id] = "open"

    def record_anchors(self, names: set[str]) -> None:
        """Recording a moment opens the early tasks waiting for it; recorded again, reopens done ones."""
        self.anchors |= names
        for _home, task in PLAYBOOK.early_tasks():
            if task.opens is not None and task.opens.anchor in names:
                self.tasks[task.id] = "open"

    def doable(self, key: str) -> bool:
        """An open task of the current state, or an early one opened before its state and not left."""
        if self.tasks.get(key) != "open":
            return False
        home, task = PLAYBOOK.task(key)
        if home.id == self.state:
            return True
        here = PLAYBOOK.state(self.state)
        return task.opens is not None and not here.final and (here.phase or 0) < (home.phase or 0)

    def guard_failures(self, spec: TransitionSpec, approver: str | None) -> list[str]:
        """The guards of ``spec`` that do not hold, by name."""
        failing = []
        for name, param in spec.guards:
            if name == "required_tasks_done":
                holds = all(
                    self.tasks.get(t.id) == "done" for t in PLAYBOOK.state(self.state).tasks if t.required
                )
            elif name == "flag_set":
                holds = param in self.flags
            elif name == "flag_clear":
                holds = param not in self.flags
            elif name == "records_closed":
                holds = not +self.open_refs.get(param, Counter())
            elif name == "approver_not_actor":
                holds = (approver or "").strip().casefold() != ACTOR.casefold()
            elif name in ("role", "approver_role"):
                holds = True  # run without a role map (NO_HOOKS): the flow requires no role at all
            elif name == "task_not_done":
                holds = self.tasks.get(param) != "done"
            elif name in ("fact_present", "grade_at_least"):
                holds = False  # opened without facts and without an assessment
            else:
                raise AssertionError(f"the model does not know guard {name!r}: teach it")
            if not holds:
                failing.append(name)
        return failing

    def apply_effects(self, spec: TransitionSpec, values: dict[str, str]) -> bool:
        """Apply the effects of ``spec``; False when one of them must refuse the step."""
        ref = values.get("ref", "")
        for name, param in spec.effects:
            if name == "set_flag":
                self.flags.add(param)
            elif name == "clear_flag":
                self.flags.discard(param)
            elif name == "set_anchor":
                self.anchors.add(param)
            elif name == "append_record":
                self.record_counts[param] += 1
            elif name == "open_record":
                self.record_counts[param] += 1
                self.open_refs.setdefault(param, Counter())[ref] += 1
            elif name == "close_record":
                if self.open_refs.get(param, Counter())[ref] <= 0:
                    return False
                self.open_refs[param][ref] -= 1
            else:
                raise AssertionError(f"the model does not know effect {name!r}: teach it")
        return True

    def predict_trigger(
        self,
        trigger: str,
        reason: str | None,
        approver: str | None,
        given: dict[str, str],
        expected_version: int | None,
    ) -> tuple[list[type[BreachError]], Model | None]:
        """Every refusal the attempt deserves (any one may be reported), or the model after it."""
        if trigger not in TRIGGERS:
            return [NotFound], None
        if expected_version is not None and expected_version != self.version:
            return [Conflict], None
        spec = PLAYBOOK.transition(trigger, self.state)
        if spec is None:
            return [NotAllowed], None
        problems: list[type[BreachError]] = []
        if spec.reason == "required" and not (reason or "").strip():
            problems.append(BadInput)
        if spec.approver and not (approver or "").strip():
            problems.append(BadInput)
        if not spec.approver and (approver or "").strip():
            problems.append(BadInput)  # an approver where none is asked for is refused, not recorded
        declared = {i.name: i for i in spec.inputs}
        values: dict[str, str] = {}
        if set(given) - set(declared):
            problems.append(BadInput)
        for name, item in declared.items():
            value = (given.get(name) or "").strip()
            if not value:
                if item.required:
                    problems.append(BadInput)
            elif item.type == "datetime" and value not in VALID_DUE:
                problems.append(BadInput)
            values[name] = value
        if self.guard_failures(spec, approver):
            problems.append(GuardFailed)
        after = copy.deepcopy(self)
        if not after.apply_effects(spec, values):
            problems.append(NotAllowed)
        if problems:
            return problems, None
        if not spec.internal:
            assert spec.dest is not None
            after.enter(spec.dest)
        # Moments are recorded by effects, after the state is entered: their early tasks open then.
        after.record_anchors({str(p) for n, p in spec.effects if n == "set_anchor"})
        after.version += 1
        after.events += 1
        return [], after

    def predict_task(self, key: str) -> tuple[list[type[BreachError]], Model | None]:
        """Only an open task of the current state may be completed."""
        if key not in TASKS:
            return [NotFound], None
        if not self.doable(key):
            return [NotAllowed], None
        after = copy.deepcopy(self)
        after.tasks[key] = "done"
        after.version += 1
        after.events += 1
        return [], after


class IncidentMachine(RuleBasedStateMachine):
    """One incident on its own SQLite file, driven by random steps and checked against ``Model``."""

    template: Path

    def __init__(self) -> None:
        super().__init__()
        self.folder = Path(tempfile.mkdtemp(prefix="breach-stateful-"))
        shutil.copy(self.template, self.folder / "breach.db")
        self.store = Store(f"sqlite:///{self.folder / 'breach.db'}")
        # A plain connection for snapshots: the ORM's per-query overhead would dominate the run.
        self.raw = sqlite3.connect(self.folder / "breach.db", isolation_level=None)
        incident = open_incident(
            self.store, source=SOURCE, title="状态机测试", actor=ACTOR, zone=ZONE, discovered_at=utcnow()
        )
        self.incident_id = incident.id
        self.model = Model(state=PLAYBOOK.initial)
        self.model.enter(PLAYBOOK.initial)

    def teardown(self) -> None:
        self.raw.close()
        self.store.dispose()
        shutil.rmtree(self.folder, ignore_errors=True)

    # -- helpers -------------------------------------------------------------------------------------

    def snapshot(self) -> dict[str, list[Any]]:
        """Every row of every table, as stored."""
        tables = [r[0] for r in self.raw.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {t: self.raw.execute(f'SELECT * FROM "{t}" ORDER BY 1').fetchall() for t in tables}

    def last_event(self) -> tuple[Any, ...]:
        """Kind, trigger, from and to state of the incident's newest event."""
        return tuple(
            self.raw.execute(
                'SELECT kind, "trigger", from_state, to_state FROM event WHERE incident_id = ? '
                "ORDER BY seq DESC LIMIT 1",
                (self.incident_id,),
            ).fetchone()
        )

    def attempt(self, run: Any, prediction: tuple[list[type[BreachError]], Model | None]) -> Any:
        """Run one step; the engine must refuse it (changing nothing) exactly when the model does.

        A prediction with both refusals and a model after it allows either outcome.
        """
        refusals, after = prediction
        before = self.snapshot() if refusals else None
        try:
            result = run()
        except BreachError as exc:
            assert refusals, f"the engine refused a step the model accepts: {exc}"
            assert isinstance(exc, tuple(refusals)), (type(exc).__name__, refusals, str(exc))
            if GuardFailed not in refusals:
                assert not isinstance(exc, GuardFailed), str(exc)
            assert self.snapshot() == before, f"a refused step changed rows: {exc}"
            return None
        assert after is not None, f"the engine accepted a step the model refuses with {refusals}"
        self.model = after
        return result

    def fire(
        self,
        trigger: str,
        reason: str | None,
        approver: str | None,
        given: dict[str, str],
        expected_version: int | None = None,
    ) -> None:
        """Fire a trigger and check its outcome, its audit event and its place in the transition table."""
        state_before = self.model.state
        prediction = self.model.predict_trigger(trigger, reason, approver, given, expected_version)
        result = self.attempt(
            lambda: flow.advance(
                self.store,
                self.incident_id,
                trigger,
                actor=ACTOR,
                zone=ZONE,
                reason=reason,
                approver=approver,
                inputs=given,
                expected_version=expected_version,
            ),
            prediction,
        )
        if result is None:
            return
        spec = PLAYBOOK.transition(trigger, state_before)
        assert spec is not None
        declared_dest = state_before if spec.internal else spec.dest
        assert (result.from_state, result.to_state) == (state_before, declared_dest)
        assert result.version == self.model.version
        assert self.last_event() == ("trigger", trigger, state_before, declared_dest)

    def complete(self, key: str) -> None:
        """Complete a task and check its outcome and audit event."""
        state = self.model.state
        result = self.attempt(
            lambda: complete_task(self.store, self.incident_id, key, actor=ACTOR),
            self.model.predict_task(key),
        )
        if result is not None:
            assert self.last_event() == ("task_done", None, state, state)

    def doable_tasks(self) -> list[str]:
        """Every task the model says may be marked done now, early ones included."""
        return [key for key in TASKS if self.model.doable(key)]

    def open_current_tasks(self, *, required_only: bool = False) -> list[str]:
        return [
            t.id
            for t in PLAYBOOK.state(self.model.state).tasks
            if self.model.tasks.get(t.id) == "open" and (t.required or not required_only)
        ]

    def possible_triggers(self) -> list[TransitionSpec]:
        """Transitions from the current state whose guards and effects the model says can pass."""
        possible = []
        for spec in PLAYBOOK.transitions_from(self.model.state):
            if self.model.guard_failures(spec, "bob"):
                continue
            closes = [param for name, param in spec.effects if name == "close_record"]
            if closes and not any(+self.model.open_refs.get(p, Counter()) for p in closes):
                continue
            possible.append(spec)
        return possible

    # -- rules ---------------------------------------------------------------------------------------

    @initialize(phases=st.integers(0, len(HAPPY_PATH)), waive=st.booleans())
    def fast_forward(self, phases: int, waive: bool) -> None:
        """Start some walks in a later phase, reached step by step along the happy path (all checked)."""
        for trigger in HAPPY_PATH[:phases]:
            for key in self.open_current_tasks(required_only=True):
                self.complete(key)
            if trigger == "notify" and waive:
                self.fire("waive_notification", "措施有效避免危害", "bob", {})
            else:
                self.fire(trigger, None, None, {})

    @rule(
        trigger=st.sampled_from([*TRIGGERS, "escalate_to_moon"]),
        reason=reasons,
        approver=approvers,
        given=inputs,
    )
    def fire_anything(self, trigger: str, reason: str | None, approver: str | None, given: dict) -> None:
        """Any trigger, known or not, with any mix of reason, approver and inputs, valid or not."""
        self.fire(trigger, reason, approver, given)

    @precondition(lambda self: bool(self.possible_triggers()))
    @rule(data=st.data())
    def fire_valid(self, data: st.DataObject) -> None:
        """A trigger the model expects to pass, given what it needs: keeps the walk moving forward."""
        spec = data.draw(st.sampled_from(self.possible_triggers()), label="trigger")
        reason = "书面理由" if spec.reason == "required" else data.draw(reasons, label="reason")
        approver = "bob" if spec.approver else None
        given: dict[str, str] = {}
        closes = [param for name, param in spec.effects if name == "close_record"]
        for item in spec.inputs:
            if item.type == "datetime":
                given[item.name] = data.draw(st.sampled_from(VALID_DUE), label=item.name)
            elif item.name == "ref" and closes:
                open_now = sorted(+self.model.open_refs.get(closes[0], Counter()))
                given["ref"] = data.draw(st.sampled_from(open_now), label="ref")
            else:
                given[item.name] = data.draw(st.sampled_from(["R-1", "R-2"]), label=item.name)
        self.fire(spec.trigger, reason, approver, given)

    @rule(trigger=st.sampled_from([*TRIGGERS, "escalate_to_moon"]), offset=st.sampled_from([-1, 1]))
    def fire_at_stale_version(self, trigger: str, offset: int) -> None:
        """A trigger sent with a version other than the current one is a conflict."""
        self.fire(trigger, "理由", "bob", {}, expected_version=self.model.version + offset)

    @rule(key=st.sampled_from([*TASKS, "water_the_plants"]))
    def complete_any_task(self, key: str) -> None:
        """Any task, of this phase or another, open or done, known or not."""
        self.complete(key)

    @precondition(lambda self: bool(self.doable_tasks()))
    @rule(data=st.data())
    def complete_open_task(self, data: st.DataObject) -> None:
        """An open task of the current phase, or one the playbook opened before its phase."""
        self.complete(data.draw(st.sampled_from(self.doable_tasks()), label="task"))

    @precondition(lambda self: bool(self.open_current_tasks(required_only=True)))
    @rule()
    def finish_phase(self) -> None:
        """Every open required task of the current phase, one after the other."""
        for key in self.open_current_tasks(required_only=True):
            self.complete(key)

    # -- invariants ----------------------------------------------------------------------------------

    @invariant()
    def matches_model(self) -> None:
        """The stored incident is the model's, its chain verifies, and list_triggers agrees."""
        with self.store.read() as session:
            incident = session.get(Incident, self.incident_id)
            assert incident is not None
            assert incident.state in STATES
            assert incident.state == self.model.state
            assert (incident.version, incident.event_count) == (self.model.version, self.model.events)
            report = verify_chain(session, incident)
            assert report.ok and report.events == self.model.events, report.problem
            tasks = self.raw.execute(
                "SELECT key, status FROM task WHERE incident_id = ?", (self.incident_id,)
            )
            assert dict(tasks.fetchall()) == self.model.tasks
            assert {k for k, v in incident.flags.items() if v} == self.model.flags
            assert set(incident.anchors) == self.model.anchors
            counts = Counter({k: len(v) for k, v in incident.records.items()})
            assert +counts == +self.model.record_counts
            for name, entries in incident.records.items():
                still_open = Counter(str(e["ref"]) for e in entries if e.get("status") == "open")
                assert +still_open == +self.model.open_refs.get(name, Counter()), name
            assert (incident.closed_at is not None) == PLAYBOOK.state(incident.state).final
            for info in flow.list_triggers(session, incident, actor=ACTOR):
                spec = PLAYBOOK.transition(info.trigger, incident.state)
                assert spec is not None
                failing = [g for g in self.model.guard_failures(spec, None) if g != "approver_not_actor"]
                assert info.allowed == (not failing), (info.trigger, info.blocked_by, failing)
                assert info.dest == (incident.state if spec.internal else spec.dest)


@pytest.fixture(scope="module")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty SQLite file with every table, which each example copies (cheaper than creating it)."""
    path = tmp_path_factory.mktemp("stateful") / "template.db"
    store = Store(f"sqlite:///{path}")
    create_all(store)
    store.dispose()
    return path


class TestRandomWalks:
    def test_engine_agrees_with_model(self, template_db: Path) -> None:
        """Random trigger and task sequences keep every invariant and match the model step by step."""
        IncidentMachine.template = template_db
        run_state_machine_as_test(
            IncidentMachine,
            settings=settings(
                max_examples=40,
                stateful_step_count=30,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
            ),
        )


def _walk_to(store: Store, until: str) -> str:
    """Open an incident and walk the happy path (required tasks, then each trigger) through ``until``."""
    incident = open_incident(store, source=SOURCE, title="t", actor=ACTOR, zone=ZONE, discovered_at=utcnow())
    for trigger in [*HAPPY_PATH, "handling_ended", "close"]:
        for task in PLAYBOOK.state(_state_of(store, incident.id)).tasks:
            if task.required and trigger != "handling_ended":
                complete_task(store, incident.id, task.id, actor=ACTOR)
        flow.advance(store, incident.id, trigger, actor=ACTOR, zone=ZONE)
        if trigger == until:
            break
    return incident.id


def _state_of(store: Store, incident_id: str) -> str:
    with store.read() as session:
        incident = session.get(Incident, incident_id)
        assert incident is not None
        return incident.state


@pytest.fixture
def fresh_store(template_db: Path, tmp_path: Path) -> Iterator[Store]:
    """A store on a copy of the template database."""
    shutil.copy(template_db, tmp_path / "breach.db")
    store = Store(f"sqlite:///{tmp_path / 'breach.db'}")
    yield store
    store.dispose()


class TestTasksOfLeftPhases:
    def test_optional_task_of_a_left_phase_is_refused(self, fresh_store: Store) -> None:
        """An optional task still open when its phase was left cannot be completed from the next phase,
        even one that opened early."""
        incident_id = _walk_to(fresh_store, "report")
        with pytest.raises(NotAllowed, match="report_to_police"):
            complete_task(fresh_store, incident_id, "report_to_police", actor=ACTOR)

    def test_closed_incident_takes_no_task(self, fresh_store: Store) -> None:
        """A closed incident accepts no change: its optional tasks left open stay as they were."""
        incident_id = _walk_to(fresh_store, "close")
        assert _state_of(fresh_store, incident_id) == "closed"
        with pytest.raises(NotAllowed):
            complete_task(fresh_store, incident_id, "client_follow_up", actor=ACTOR)
