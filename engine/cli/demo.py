"""``breach demo``: a sample incident walked through every phase, in a throwaway workspace.

The scenario comes from the agency-firm guidance: a bookkeeping firm serving about 1,200 small companies
finds that a former employee copied its client ledger, including the payroll of about 8,000 people.
"""

from __future__ import annotations

import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any, TypedDict

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
class StepOptions(TypedDict, total=False):
    """What a demo step adds to its trigger: inputs, a written reason, responsible persons to record."""

    inputs: dict[str, str]
    reason: str
    responsible: bool


STEPS: list[tuple[list[str], str, StepOptions]] = [
    (
        [
            "stop_transfer",
            "preserve_evidence",
            "establish_scope",
            "start_investigation",
            "grade_incident",
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
        ["submit_initial_report", "cooperate_with_authorities", "report_to_police"],
        "supplementary_report",
        {"reason": "调查确认泄露条数与涉及客户单位名单"},
    ),
    ([], "report", {}),
    (
        ["determine_responsibility", "decide_sanctions", "issue_internal_bulletin"],
        "hold_accountable",
        {"responsible": True},
    ),
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


# Used only when the workspace names no firm: the demo's documents then say plainly that it is an example.
DEMO_FIRM = {
    "name": "示例财税服务有限公司（演示）",
    "address": "北京市海淀区示例路88号",
    "legal_representative": "周明",
    "contact_name": "李静",
    "contact_phone": "400-800-0000",
    "contact_email": "privacy@example-tax.cn",
    "contact_hours": "工作日 9:00–18:00",
    "protection_officer": "法务部 周宁（个人信息保护负责人）",
}
DEMO_CONTENT = {
    "incident": {
        "type_label": {"zh-CN": "数据泄露", "en": "data leak"},
        "cause": {
            "zh-CN": "一名已离职员工利用未及时收回的账号权限，离职前批量导出客户台账并复制到个人设备。",
            "en": "A departing employee used access that had not been withdrawn to export the client ledger.",
        },
        "possible_harm": {
            "zh-CN": "泄露的身份证号、银行账号和工资信息可能被用于冒用身份或实施精准诈骗。",
            "en": "Leaked ID numbers, bank accounts and salaries may be used for identity theft or scams.",
        },
        "measures": {
            "zh-CN": ["停用涉事账号并收回全部离职人员权限", "保全系统日志和导出记录", "向公安机关报案"],
            "en": [
                "Disabled the account and withdrew former staff's access",
                "Preserved the logs",
                "Reported to the police",
            ],
        },
        "next_steps": {
            "zh-CN": ["配合公安机关追回数据", "逐一通知受影响的客户单位和个人"],
            "en": ["Help the police recover the data", "Notify every client company and person affected"],
        },
    }
}
# The two employees the investigation holds responsible (the former employee himself is the police's).
DEMO_RESPONSIBLE = [
    {
        "name": "孙七",
        "department": "信息部",
        "position": "系统管理员",
        "responsibility": "direct",
        "sanction": "demerit",
        "facts": "负责离职人员账号注销，未在员工离职当日注销其账号，致使其导出客户台账。",
        "rules": ["《信息系统账号管理办法》第十二条"],
        "compensation": "2000",
        "compensation_basis": "《员工奖惩办法》第二十条",
    },
    {
        "name": "钱八",
        "department": "信息部",
        "position": "经理",
        "responsibility": "indirect",
        "sanction": "warning",
        "facts": "作为部门负责人，未督促落实离职人员账号当日注销的要求，也未定期核查账号清单。",
        "rules": ["《信息安全管理制度》第五条"],
    },
]
# Task notes that the documents print: staff requirements in the bulletin, measures and lessons.
DEMO_NOTES = {
    "issue_internal_bulletin": "严禁将客户数据复制到个人设备\n离职交接当日注销全部系统账号",
    "management_rules": "修订《客户信息保护管理制度》，明确各岗位职责",
    "technical_controls": "客户台账加密存储，批量导出需双人审批并告警",
    "lessons_learned": "权限管理必须覆盖员工离职全过程",
}


# A handful of the clients and their employees (invented): client companies get the client letter,
# people a personal notice by the channel they chose. Identifiers are stored masked only.
_COLUMNS = (
    "customer_id,type,name,email,phone,locale,channel,categories,employer,department,contact_name,"
    "contact_title,id_number,bank_account,address"
)
DEMO_RECIPIENTS = f"""{_COLUMNS}
CO-1001,company,北京示例科技有限公司,it@example-tech.invalid,,zh-CN,email,registration;tax_filing,,,王五,法定代表人,,,
CO-1002,company,上海样例贸易有限公司,,,zh-CN,post,tax_filing,,,赵敏,财务负责人,,,上海市黄浦区样例路66号
P-0001,person,张三,zhangsan@example.invalid,13800000001,zh-CN,email,name;id_number;bank_account;salary,CO-1001,研发部,,,110101199001011234,6222020200001234567,
P-0002,person,John Smith,john.smith@example.invalid,,en,email,name;salary;tax,CO-1001,Sales,,,,,
P-0003,person,李四,,13900000002,zh-CN,sms,name;bank_account;salary,CO-1002,财务部,,,,6222020200009876543,
P-0004,person,王芳,wangfang@example.invalid,,zh-CN,email,name;id_number;salary,CO-1002,行政部,,,310101198505051234,,
"""


def _notify_recipients(c: Ctx, store: Any, incident_id: str, actor: str) -> None:
    """Import the sample recipients and render each one's notice, as an operator would."""
    from engine.cli.people_cmd import template_locales
    from engine.documents.render import write_private
    from engine.notices.people import import_people
    from engine.notices.render import render_notices

    csv_path = write_private(
        c.workspace.home, "demo-recipients.csv", DEMO_RECIPIENTS.encode("utf-8"), root=c.workspace.home
    )
    locales, default = template_locales(c)
    imported = import_people(
        store, incident_id, csv_path, actor=actor, locales=locales, default_locale=default
    )
    report = render_notices(store, c.workspace, incident_id, actor=actor)
    made = ", ".join(f"{label} ×{n}" for label, n in sorted(report.rendered.items()))
    console = stdout_console()
    console.print(
        f"  recipients imported: {imported.companies} client companies, {imported.persons} people; "
        f"notices rendered: {made}"
    )
    console.print(
        f"    in {report.out_dir} (send them with: breach notices send {incident_id})", markup=False
    )


def run_demo(c: Ctx) -> None:
    """Create (or reuse) a workspace, open the sample incident, advance it to closed, print the timeline."""
    from engine.cli.setup_cmd import init_workspace
    from engine.cli.team import name_first_member, role_hint
    from engine.cli.views import print_timeline
    from engine.formal.responsible import record_responsible
    from engine.incidents.flow import advance
    from engine.incidents.opening import open_incident
    from engine.incidents.tasks import complete_task
    from engine.legal.facts import facts_to_dict, merge_facts
    from engine.notices.content import set_content
    from engine.notices.contexts import NoticeContent
    from engine.playbooks.catalog import PlaybookCatalog
    from engine.store.db import utcnow

    console = stdout_console()
    if c.home is None and c.db is None:
        c.home = tempfile.mkdtemp(prefix="breach-demo-")
        c.__dict__.pop("workspace", None)
    workspace = init_workspace(Path(c.workspace.home), c.db)
    console.print(f"[bold]breach demo[/bold] in workspace {workspace.home}")
    # The walk takes steps only a DPO may take: like 'breach init', the demo makes the account running
    # it the first member, with every role, unless the workspace names its own team.
    first = name_first_member(workspace)
    if first is not None:
        c.__dict__.pop("workspace", None)  # read the settings again, with the member in them
        console.print(f"you are member {first.account} with roles {', '.join(first.roles)}", markup=False)
    store = c.store()
    actor = c.actor()
    if not str(c.workspace.settings.get("firm", {}).get("name") or "").strip():
        # In memory only: the workspace's own settings file is never written.
        c.workspace.settings["firm"] = {**c.workspace.settings.get("firm", {}), **DEMO_FIRM}
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
    set_content(store, incident.id, NoticeContent.parse(DEMO_CONTENT, "demo"), actor=actor)
    for tasks, trigger, options in STEPS:
        if trigger == "notify":
            _notify_recipients(c, store, incident.id, actor)
        if options.get("responsible"):
            for person in DEMO_RESPONSIBLE:
                record_responsible(store, incident.id, actor=actor, **person)  # type: ignore[arg-type]
        for task in tasks:
            complete_task(store, incident.id, task, actor=actor, hooks=c.hooks(), note=DEMO_NOTES.get(task))
        inputs = dict(options.get("inputs", {}))
        if inputs.get("due_at") == "+20d":
            inputs["due_at"] = (utcnow() + timedelta(days=20)).isoformat()
        with role_hint(c, actor):
            result = advance(
                store,
                incident.id,
                trigger,
                actor=actor,
                zone=c.zone,
                hooks=c.hooks(),
                reason=options.get("reason"),
                inputs=inputs,
            )
        console.print(f"  {trigger}: {result.from_state} → {result.to_state}")
    reader = c.reader()
    row = reader.incident(incident.id)
    reader.close()
    print_timeline(c, row, title=f"{incident.id} timeline (task ticks left out)", tasks=False)
    _print_clocks(c, row)
    _print_documents(c, incident.id)
    from engine.incidents.audit import verify_chain
    from engine.incidents.repository import get_incident

    with store.read() as session:
        report = verify_chain(session, get_incident(session, incident.id))
    console.print(
        f"audit trail: {'intact' if report.ok else 'BROKEN'} ({report.events} events, "
        f"verify with: breach --home {workspace.home} audit verify {incident.id})"
    )


def _print_documents(c: Ctx, incident_id: str) -> None:
    """The formal documents the walk produced, by number, and the folder they are in."""
    from engine.formal.service import list_documents

    listed = list_documents(c.store(), incident_id)["documents"]
    console = stdout_console()
    console.print(f"formal documents ({len(listed)} files, each recorded with its sha256):")
    for d in listed:
        console.print(f"  {d['number']}  {Path(d['path']).name}", markup=False)
    if listed:
        folder = Path(listed[0]["path"]).parent
        console.print(
            f"  in {folder} (list them with: breach --home {c.workspace.home} documents list {incident_id})",
            markup=False,
        )


def _print_clocks(c: Ctx, row: dict[str, object]) -> None:
    """The incident's clocks with basis and status, and the rules that never started, with why."""
    from engine.cli.clock_views import display_row, print_deadlines
    from engine.deadlines.sync import DeadlineHook, rules_not_running
    from engine.incidents.repository import get_incident

    deadlines = list(row["deadlines"])  # type: ignore[call-overload]
    print_deadlines(c, [display_row(c, d) for d in deadlines], title="Clocks", with_incident=False)
    hook = next((h for h in c.hooks().after_change if isinstance(h, DeadlineHook)), None)
    if hook is None:
        return
    store = c.store()
    with store.read() as session:
        idle = rules_not_running(session, get_incident(session, str(row["id"])), hook.context())
    for rule_id, why in idle:
        stdout_console().print(f"  {rule_id}: not running ({why})", markup=False)
