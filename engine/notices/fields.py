"""The fields of an incident's notice content: what each means, how readers see it named, which every
notice needs before it may be rendered.

One list serves four readers: ``breach notices content ID --show`` (the fields and what is missing),
``breach notices render`` (refused while a required field is missing, naming it), a correction notice
(which quotes each changed field by its label) and the documentation (``templates/README.md`` and the
example file ``templates/notice-content.example.yaml`` that ``breach init`` copies into a workspace).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "CONTENT_FIELDS",
    "FIRM_FIELDS_FOR_NOTICES",
    "ContentField",
    "field_label",
    "field_value",
    "missing_fields",
]


@dataclass(frozen=True)
class ContentField:
    """One field of the content file: its dotted path, labels (zh-CN, en), whether notices need it."""

    path: str
    zh: str
    en: str
    required: bool
    meaning: str

    def label(self, locale: str) -> str:
        """The label in ``locale`` (Chinese for zh-*, else English)."""
        return self.zh if locale.startswith("zh") else self.en


CONTENT_FIELDS: tuple[ContentField, ...] = (
    ContentField("incident.cause", "事件原因", "Cause", True, "What caused the leak, as known now."),
    ContentField(
        "incident.possible_harm", "可能造成的影响", "Possible harm", True, "The harm the leak may cause."
    ),
    ContentField(
        "incident.measures",
        "已采取的补救措施",
        "Measures taken",
        True,
        "Measures the firm has already taken, one sentence each (PIPL Art 57 (2)).",
    ),
    ContentField(
        "incident.next_steps",
        "将要采取的措施",
        "Measures still to be taken",
        True,
        "Measures the firm will still take, one sentence each.",
    ),
    ContentField("incident.occurred_at", "发生时间", "When it happened", False, "With its offset, +08:00."),
    ContentField("incident.found_how", "发现方式", "How it was found", False, "How the firm learned of it."),
    ContentField(
        "incident.title", "事件名称", "Title", False, "The title readers see (else the incident's)."
    ),
    ContentField("incident.type_label", "事件类型", "Type", False, "e.g. 数据泄露 / data leak."),
    ContentField("incident.measures_effect", "措施效果", "Effect of the measures", False, "So far."),
    ContentField("incident.place", "发生或发现地点", "Place", False, "Where it happened or was found."),
    ContentField("incident.system", "涉事系统", "System involved", False, "Basics of the system involved."),
    ContentField("incident.ended_at", "处置结束时间", "Handling ended", False, "With its offset."),
    ContentField("notice.remedies", "我司提供的帮助", "Help offered", False, "Remedies the firm offers."),
    ContentField("notice.url", "完整通知网址", "Notice web page", False, "Where the full notice is read."),
    ContentField("client.reply_by", "答复期限", "Reply by", False, "By when a client company answers."),
    ContentField(
        "client.notify_on_behalf", "代为通知", "Notify for the client", False, "Offer to notify its people."
    ),
    ContentField("client.supply_list", "提供名单", "Supply the list", False, "Offer to supply the list."),
    ContentField("client.signatory", "签发人", "Signatory", False, "Who signs client letters."),
)
# [firm] keys a notice prints beyond those every document needs: the PIPL Art 52 officer or department.
FIRM_FIELDS_FOR_NOTICES: tuple[tuple[str, str], ...] = (
    ("protection_officer", "the personal-information protection officer or department (PIPL Art 52)"),
)
_BY_PATH = {f.path: f for f in CONTENT_FIELDS}


def field_label(path: str, locale: str) -> str:
    """How a reader sees the field named (its path when it is not a known field)."""
    found = _BY_PATH.get(path)
    return found.label(locale) if found else path


def field_value(content: Mapping[str, Any], path: str) -> Any:
    """The raw value at ``path`` in a content mapping (None when absent)."""
    value: Any = content
    for key in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def _empty(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, list):
        return not any(str(v).strip() for v in value)
    return False


def missing_fields(
    content: Mapping[str, Any], firm: Mapping[str, Any] | None, locales: Iterable[str]
) -> list[str]:
    """Every required field with nothing for one of ``locales`` (``incident.cause[en]``), then the
    ``[firm]`` keys notices need (unless ``firm`` is None); empty when the notices can be rendered."""
    missing: list[str] = []
    wanted = sorted(set(locales)) or ["zh-CN"]
    for spec in CONTENT_FIELDS:
        if not spec.required:
            continue
        value = field_value(content, spec.path)
        if isinstance(value, Mapping):  # one text per locale: each reader's language must be there
            absent = [loc for loc in wanted if _empty(_for_locale(value, loc))]
            if len(absent) == len(wanted):
                missing.append(spec.path)
            else:
                missing += [f"{spec.path}[{loc}]" for loc in absent]
        elif _empty(value):
            missing.append(spec.path)
    for key, _meaning in FIRM_FIELDS_FOR_NOTICES if firm is not None else ():
        if not str((firm or {}).get(key) or "").strip():
            missing.append(f"[firm] {key}")
    return missing


def _for_locale(value: Mapping[str, Any], locale: str) -> Any:
    """A per-locale text's entry for ``locale`` or its language (no fallback to another language)."""
    if locale in value:
        return value[locale]
    language = locale.split("-")[0]
    return next((v for k, v in value.items() if str(k).split("-")[0] == language), None)
