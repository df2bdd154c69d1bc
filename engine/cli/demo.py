"""``breach demo``: a sample incident walked through every phase, in a throwaway workspace.

The scenario comes from the agency-firm guidance: a bookkeeping firm serving about 1,200 small companies
finds that a former employee copied its client ledger, including the payroll of about 8,000 people.
"""

from __future__ import annotations

import tempfile
from datetime import timedelta
from pathlib import Path

from engine.cli.context import Ctx, stdout_console

__all__ = ["run_demo"]

DEMO_TITLE = "代账客户台账被前员工拷贝 / Client ledger copied by a former employee"

# About 8,000 employees' payroll rows (names, ID numbers, bank accounts, salaries): property information,
# counted once per person; the former employee obtained it while performing his duties.
DEMO_FACTS: dict[str, object] = {
    "people_affected": 8000,
    "records": {"property": 8000},
    "insider": True,
    "operator_type": "other",
}

# Each step: the tasks to complete in the current phase, then the trigger with its reason and inputs.
STEPS: list[tuple[list[str], str, dict[str, object]]] = [
    (
        [
            "stop_transfer",
            "preserve_evidence",
            "establish_scope",
            "start_investigation",
            "grade_incident",
            "report_to_police",
        ],
        "contain",
        {},
    ),
    (
        ["notify_client_companies", "notify_individuals", "offer_remedies", "keep_notice_records"],
        "notify",
        {},
    ),
    ([], "correction_order", {"inputs": {"ref": "某网信办〔2026〕12号", "due_at": "+20d"}}),
    (
        ["submit_initial_report", "cooperate_with_authorities"],
        "supplementary_report",
        {"reason": "调查确认泄露条数与涉及客户单位名单"},
    ),
    ([], "report", {}),
    (["determine_responsibility", "decide_sanctions", "issue_internal_bulletin"], "hold_accountable", {}),
    ([], "correction_done", {"inputs": {"ref": "某网信办〔2026〕12号"}}),
    ([], "handling_ended", {}),
    (
        [
            "management_rules",
            "technical_controls",
            "security_training",
            "client_confidentiality",
            "external_audit",
            "lessons_learned",
            "submit_summary_report",
        ],
        "close",
        {},
    ),
]


def run_demo(c: Ctx) -> None:
    """Create (or reuse) a workspace, open the sample incident, advance it to closed, print the timeline."""
    from engine.catalog import PlaybookCatalog
    from engine.cli.setup_cmd import init_workspace
    from engine.cli.views import print_timeline
    from engine.facts import facts_to_dict, merge_facts
    from engine.flow import advance, complete_task, open_incident
    from engine.store import utcnow

    console = stdout_console()
    if c.home is None and c.db is None:
        c.home = tempfile.mkdtemp(prefix="breach-demo-")
        c.__dict__.pop("workspace", None)
    workspace = init_workspace(Path(c.workspace.home), c.db)
    console.print(f"[bold]breach demo[/bold] in workspace {workspace.home}")
    store = c.store()
    actor = c.actor()
    source = PlaybookCatalog(workspace).get("cn-agency-firm")
    discovered = utcnow() - timedelta(hours=3)
    incident = open_incident(
        store,
        source=source,
        title=DEMO_TITLE,
        discovered_at=discovered,
        actor=actor,
        zone=c.zone,
        hooks=c.hooks(),
        facts=facts_to_dict(merge_facts({}, DEMO_FACTS)),
    )
    console.print(
        f"opened {incident.id} under {source.playbook.id} v{source.playbook.version}: "
        f"{source.playbook.title('zh-CN')}"
    )
    grade = incident.assessment
    console.print(
        f"assessed: grade {grade['grade_label']} ({grade['grade']}); "
        + "; ".join(f"{f['rule']}: {f['outcome']}" for f in grade["findings"])
    )
    for tasks, trigger, options in STEPS:
        for task in tasks:
            complete_task(store, incident.id, task, actor=actor, hooks=c.hooks())
        inputs = {k: str(v) for k, v in dict(options.get("inputs", {})).items()}  # type: ignore[call-overload]
        if inputs.get("due_at") == "+20d":
            inputs["due_at"] = (utcnow() + timedelta(days=20)).isoformat()
        result = advance(
            store,
            incident.id,
            trigger,
            actor=actor,
            zone=c.zone,
            hooks=c.hooks(),
            reason=options.get("reason") and str(options["reason"]),
            inputs=inputs,
        )
        console.print(f"  {trigger}: {result.from_state} → {result.to_state}")
    reader = c.reader()
    row = reader.incident(incident.id)
    reader.close()
    print_timeline(c, row, title=f"{incident.id} timeline")
    _print_clocks(c, row)
    from engine.audit import verify_chain
    from engine.flow import _load

    with store.read() as session:
        report = verify_chain(session, _load(session, incident.id))
    console.print(
        f"audit trail: {'intact' if report.ok else 'BROKEN'} ({report.events} events, "
        f"verify with: breach --home {workspace.home} audit verify {incident.id})"
    )


def _print_clocks(c: Ctx, row: dict[str, object]) -> None:
    """The incident's clocks with basis and status, and the rules that never started, with why."""
    from engine.cli.deadlines_cmd import display_row, print_deadlines
    from engine.deadlines import DeadlineHook, rules_not_running
    from engine.flow import _load

    deadlines = list(row["deadlines"])  # type: ignore[call-overload]
    print_deadlines(c, [display_row(c, d) for d in deadlines], title="Clocks", with_incident=False)
    hook = next((h for h in c.hooks().after_change if isinstance(h, DeadlineHook)), None)
    if hook is None:
        return
    store = c.store()
    with store.read() as session:
        idle = rules_not_running(session, _load(session, str(row["id"])), hook.context())
    for rule_id, why in idle:
        stdout_console().print(f"  {rule_id}: not running ({why})", markup=False)
