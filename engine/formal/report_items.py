"""The items a regulator report states (CN-CAC-RPT-7, 国家网络安全事件报告管理办法第七条), and how one
report's items compare with the last one's.

Each item is known from the incident (facts, grade, recipient list), from the notice content
(``breach notices content``) or from the report data the operator supplies at any time
(``breach incident report-data``, :mod:`engine.formal.report_data`): report data wins, because the notice
content is frozen once a notice went out while a report keeps being completed. An item not known prints as
待补报 / "to follow". A supplementary report lists exactly the items whose text differs from what the
previous report stated (kept on that report's register row), and what is still to follow.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from engine.documents.filters import datetime_local

__all__ = [
    "ITEMS",
    "LATE_ITEM",
    "NONE_WHEN_EMPTY",
    "item_label",
    "stated_items",
    "supplement_block",
]

# The CN-CAC-RPT-7 items a regulator report states, with the words a supplement names them by. A
# supplement compares what the last report stated with what is known now, item by item.
ITEMS: tuple[tuple[str, str, str], ...] = (
    ("system", "（一）涉事系统或设施", "(1) System or facility involved"),
    ("occurred_at", "（二）发生时间", "(2) When it happened"),
    ("found_how", "（二）发现方式", "(2) How it was found"),
    ("place", "（二）发生或发现地点", "(2) Place"),
    ("type_label", "（二）事件类型", "(2) Type of incident"),
    ("grade_label", "（二）事件级别", "(2) Grade"),
    ("categories", "（二）涉及的个人信息类别", "(2) Categories of personal information"),
    ("people_count", "（二）涉及人数", "(2) People affected"),
    ("record_count", "（二）涉及记录数", "(2) Records involved"),
    ("client_count", "（二）涉及客户单位数", "(2) Client companies involved"),
    ("possible_harm", "（二）影响和危害", "(2) Impact and harm"),
    ("measures", "（二）已采取的措施", "(2) Measures taken"),
    ("measures_effect", "（二）措施效果", "(2) Effect of the measures"),
    ("outlook", "（三）发展趋势及可能的进一步影响", "(3) Outlook and possible further harm"),
    ("cause", "（四）事件原因", "(4) Cause"),
    ("leads", "（五）追查溯源线索", "(5) Leads for tracing"),
    ("next_steps", "（六）拟进一步采取的措施", "(6) Further measures planned"),
    ("support_requested", "（六）请求支持事项", "(6) Support requested"),
    ("scene_protection", "（七）现场保护情况", "(7) Protection of the scene"),
    ("other_matters", "（八）其他需要报告的事项", "(8) Other matters"),
)
# Why a report is late (CN-CAC-RPT-10, 迟报): stated only by a report made after its clock was due.
LATE_ITEM = ("late_reason", "迟报原因", "Reason for the late report")
# Items whose absence means "none", not "to follow": they are never listed as pending.
NONE_WHEN_EMPTY = ("support_requested", "other_matters")


def _zh(locale: str) -> bool:
    return locale.startswith("zh")


def item_label(key: str, locale: str) -> str:
    """The words a report names item ``key`` by, e.g. ``（四）事件原因``."""
    for name, zh_label, en_label in (*ITEMS, LATE_ITEM):
        if name == key:
            return zh_label if _zh(locale) else en_label
    raise KeyError(key)


def _item_text(value: Any, locale: str, zone: str) -> str | None:
    """What an item says, as one text (a moment in the reader's zone, lists joined); None when unknown."""
    if value is None or value == [] or value == "":
        return None
    if isinstance(value, datetime):
        return datetime_local(value, zone, locale)
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, list):
        return ("；" if _zh(locale) else "; ").join(str(v) for v in value)
    return str(value)


def stated_items(
    incident_block: dict[str, Any], locale: str, zone: str, late: dict[str, Any] | None = None
) -> dict[str, str | None]:
    """What a regulator report states for each CN-CAC-RPT-7 item (None: to follow); with ``late`` (the
    initial report's clock was due before it was made), the reason for the delay too."""
    stated = {key: _item_text(incident_block.get(key), locale, zone) for key, _zh_label, _en in ITEMS}
    if late is not None:
        stated[LATE_ITEM[0]] = _item_text(late.get("reason"), locale, zone)
    return stated


def supplement_block(
    incident: dict[str, Any],
    supplement: dict[str, Any],
    locale: str,
    zone: str,
    late: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The ``supplement`` block: what changed since the report it follows, and what is still to follow.

    ``supplement`` holds its ``sequence``, the record ``entry`` and the ``previous`` register row (with
    what that report ``stated``); ``late`` is the initial report's lateness, when it was late.
    """
    previous, entry = supplement["previous"], supplement["entry"]
    before = previous["stated"] or {}
    now = stated_items(incident, locale, zone, late)
    zh = _zh(locale)
    changes = []
    for key, zh_label, en_label in (*ITEMS, LATE_ITEM):
        if key in now and now[key] is not None and now[key] != before.get(key):
            changes.append({"item": zh_label if zh else en_label, "before": before.get(key), "now": now[key]})
    if entry.get("reason"):  # the operator's own statement of what this supplement reports
        changes.append(
            {"item": "补充说明" if zh else "Supplementary statement", "before": None, "now": entry["reason"]}
        )
    pending = [
        zh_label if zh else en_label
        for key, zh_label, en_label in (*ITEMS, LATE_ITEM)
        if key in now and now[key] is None and key not in NONE_WHEN_EMPTY
    ]
    previous_day: date = previous["issued_on"]
    return {
        "sequence": supplement["sequence"],
        "previous_number": previous["number"],
        "previous_date": previous_day,
        "changes": changes,
        "pending": pending,
    }
