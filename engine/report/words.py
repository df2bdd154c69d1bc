"""The words of the status report, the dashboard and the KPI page, in zh-CN and en.

Legal texts (a clock's label, article and source, a finding's outcome) come from the data and are
printed as stored; these are only the words around them.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from engine.report.gather import Clock

__all__ = ["LOCALES", "WORDS", "clock_status", "duration_text", "local_time", "pick_locale"]

LOCALES = ("zh-CN", "en")

WORDS: dict[str, dict[str, str]] = {
    "zh-CN": {
        "report_title": "事件状态报告",
        "drill": "演练 DRILL · 非真实事件",
        "drill_banner": "演练 DRILL｜本报告所述事件为应急演练，并未真实发生。",
        "generated": "生成时间",
        "playbook": "预案",
        "summary": "一、概要",
        "state": "当前阶段",
        "grade": "事件等级",
        "not_assessed": "尚未评估",
        "nearest": "最近的期限",
        "none_running": "没有正在计时的期限",
        "overdue": "已逾期",
        "none_overdue": "没有逾期的期限",
        "discovered": "发现时间",
        "opened": "立案时间",
        "closed": "结案时间",
        "findings": "评估结论及依据",
        "rule": "规则",
        "finding": "事项",
        "outcome": "结论",
        "basis": "依据",
        "verified": "已核实",
        "unverified": "未核实（请法务核对官方文本）",
        "clocks": "二、法定期限与内部目标",
        "clocks_none": "本事件没有计时的期限。",
        "what": "事项",
        "due": "截止时间",
        "status": "状态",
        "provisional": "（暂定：所涉年度的节假日安排尚未公布）",
        "policy": "内部目标，非法定",
        "chart_legend": "每行一项期限：色条为计时区间，红色虚线为现在，▼ 为完成时间，✕ 为逾期。",
        "progress": "三、通知进度（按渠道，仅计数）",
        "progress_none": "尚未导入受影响的个人或客户单位。",
        "progress_chart_none": "尚无已完成的送达。",
        "channel": "渠道",
        "recipients": "应通知",
        "notified": "已通知",
        "pending": "待送达",
        "failed": "失败",
        "in_doubt": "待核实",
        "tasks": "四、各阶段任务",
        "task": "任务",
        "done_at": "完成时间",
        "done_by": "完成人",
        "open": "未完成",
        "done": "已完成",
        "optional": "（可选）",
        "current": "当前阶段",
        "documents": "五、正式文书",
        "documents_none": "尚未出具正式文书。",
        "number": "文号",
        "kind": "种类",
        "format": "格式",
        "file": "文件",
        "audit": "六、审计记录",
        "audit_head": "审计链末端哈希",
        "events": "事件数",
        "verify": "核验命令",
        "verify_note": "在工作区中运行上述命令；输出 intact 且退出码为 0 即表示审计记录未被篡改。",
        "met_on_time": "按时完成",
        "met_late": "完成，迟 {late}",
        "left": "剩余 {left}",
        "overdue_by": "已逾期 {late}",
        "waived": "已豁免",
        "void": "已失效",
        "now": "现在",
        "notified_axis": "已通知人数",
        "next": "下一步",
        "next_report": "在工作区查看可执行的操作：breach incident triggers {id}",
        "next_closed": "事件已结案：用 breach incident export {id} 导出证据包存档。",
    },
    "en": {
        "report_title": "Incident status report",
        "drill": "DRILL · not a real incident",
        "drill_banner": "DRILL | the incident in this report is an exercise; it did not happen.",
        "generated": "Generated",
        "playbook": "Playbook",
        "summary": "1. Summary",
        "state": "Phase",
        "grade": "Grade",
        "not_assessed": "not assessed yet",
        "nearest": "Nearest deadline",
        "none_running": "no clock is running",
        "overdue": "Overdue",
        "none_overdue": "nothing is overdue",
        "discovered": "Discovered",
        "opened": "Opened",
        "closed": "Closed",
        "findings": "Findings and their basis",
        "rule": "Rule",
        "finding": "Question",
        "outcome": "Outcome",
        "basis": "Basis",
        "verified": "verified",
        "unverified": "unverified (legal team to check the official text)",
        "clocks": "2. Legal deadlines and internal targets",
        "clocks_none": "This incident has no clock.",
        "what": "What",
        "due": "Due",
        "status": "Status",
        "provisional": " (provisional: that year's holiday schedule is not announced yet)",
        "policy": "internal target, not law",
        "chart_legend": "One row per clock: the bar is its run, the dashed red line is now, ▼ met, ✕ missed.",
        "progress": "3. Notification progress by channel (counts only)",
        "progress_none": "No affected people or client companies imported yet.",
        "progress_chart_none": "No delivery completed yet.",
        "channel": "Channel",
        "recipients": "Recipients",
        "notified": "Notified",
        "pending": "Pending",
        "failed": "Failed",
        "in_doubt": "In doubt",
        "tasks": "4. Tasks by phase",
        "task": "Task",
        "done_at": "Done at",
        "done_by": "Done by",
        "open": "open",
        "done": "done",
        "optional": " (optional)",
        "current": "current phase",
        "documents": "5. Formal documents",
        "documents_none": "No formal document issued yet.",
        "number": "Number",
        "kind": "Kind",
        "format": "Format",
        "file": "File",
        "audit": "6. Audit record",
        "audit_head": "Audit chain head hash",
        "events": "Events",
        "verify": "Verify with",
        "verify_note": "Run this in the workspace: 'intact' and exit code 0 mean no event was altered.",
        "met_on_time": "met on time",
        "met_late": "met {late} late",
        "left": "{left} left",
        "overdue_by": "overdue by {late}",
        "waived": "waived",
        "void": "void",
        "now": "now",
        "notified_axis": "people notified",
        "next": "Next",
        "next_report": "See what can be done next, in the workspace: breach incident triggers {id}",
        "next_closed": "The incident is closed: archive it with breach incident export {id}",
    },
}


def pick_locale(locale: str | None, default: str = "zh-CN") -> str:
    """``zh``, ``zh-CN``, ``zh_CN`` read as zh-CN, ``en-*`` as en; anything else is the default."""
    tag = (locale or default).replace("_", "-").lower()
    if tag.startswith("zh"):
        return "zh-CN"
    if tag.startswith("en"):
        return "en"
    return default if default in LOCALES else "zh-CN"


def duration_text(seconds: int, locale: str) -> str:
    """A span in its two largest units, never overstated: 3天4小时 / 3d 4h, 25分钟 / 25m."""
    minutes = abs(seconds) // 60
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    units = ("天", "小时", "分钟") if locale.startswith("zh") else ("d", "h", "m")
    parts = [f"{n}{u}" for n, u in zip((days, hours, minutes), units, strict=True) if n]
    if not parts:
        return "不足1分钟" if locale.startswith("zh") else "<1m"
    return ("" if locale.startswith("zh") else " ").join(parts[:2])


def clock_status(clock: Clock, now: datetime, locale: str) -> str:
    """What a clock's status means now: time left, lateness frozen when met, or how it ended."""
    w = WORDS[locale]
    if clock.status == "met":
        late = clock.lateness_seconds or 0
        return w["met_on_time"] if late <= 0 else w["met_late"].format(late=duration_text(late, locale))
    if clock.running:
        left = int((clock.due_at - now).total_seconds())
        if left <= 0:
            return w["overdue_by"].format(late=duration_text(-left, locale))
        return w["left"].format(left=duration_text(left, locale))
    return w.get(clock.status, clock.status) + (f": {clock.note}" if clock.note else "")


def local_time(value: datetime | None, zone: str) -> str:
    """A moment for reading: local date and time to the minute with the zone's offset."""
    if value is None:
        return "—"
    shown = value.astimezone(ZoneInfo(zone))
    offset = shown.strftime("%z")
    return f"{shown:%Y-%m-%d %H:%M} {offset[:3]}:{offset[3:]}"
