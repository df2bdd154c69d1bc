"""``breach config show|check|set``: the settings in force, where each comes from, whether they hold."""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Callable
from typing import Annotated, Any

import typer

from engine.cli.context import Ctx, emit_json
from engine.cli.options import JsonOpt
from engine.errors import BadInput, BreachError, CheckFailed

__all__ = ["commented_settings", "register", "set_in_text"]

# Tables read without a built-in default: the team (``[members."NAME"]``) and the file-size limits.
EXTRA_TABLES = ("members", "limits")
config_app = typer.Typer(help="Settings: what is in force and where it comes from, and a check.")


def commented_settings(builtin: str) -> str:
    """The built-in settings file with every value commented out, as ``breach init`` writes it.

    Each section and key keeps its explanation; nothing is in force until a line is uncommented, so the
    file documents every setting without changing one.
    """
    lines = [
        "# This workspace's settings. Every section and key breach reads is below, commented out with its",
        "# built-in value: uncomment and change what differs (each [table] once), then run",
        "# 'breach config check'. 'breach config show' lists what is in force and where it comes from.",
        "",
    ]
    body = builtin.splitlines()
    # The built-in file's own header speaks of itself: start at its first table.
    start = next((i for i, line in enumerate(body) if line.startswith("[")), 0)
    for line in body[start:]:
        stripped = line.lstrip()
        lines.append(line if not stripped or stripped.startswith("#") else f"# {line}")
    return "\n".join(lines) + "\n"


def _flat(table: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in table.items():
        name = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict) and value:
            out.update(_flat(value, name))
        else:
            out[name] = value
    return out


def _shown(key: str, value: Any) -> Any:
    """A setting as ``config show`` prints it: a robot's secret, and its URL (which holds its key or
    token), are only said to be set."""
    if key.startswith("alerts.robots.") and key.rsplit(".", 1)[1] in ("secret", "url") and value:
        return "(set; not shown)"
    return value


def _layers(c: Ctx) -> tuple[dict[str, Any], dict[str, Any]]:
    """The built-in settings and the workspace's own, each parsed (a bad file is refused)."""
    from engine.workspace import SETTINGS_FILE, builtin_root, read_settings

    builtin_file = builtin_root() / "config" / SETTINGS_FILE
    local_file = c.workspace.home / "config" / SETTINGS_FILE
    builtin = read_settings(builtin_file) if builtin_file.is_file() else {}
    local = read_settings(local_file) if local_file.is_file() else {}
    return builtin, local


@config_app.command("show")
def show_cmd(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Every setting in force and where it comes from: built-in, or the workspace's settings.toml."""
    c: Ctx = ctx.obj
    builtin, local = _layers(c)
    defaults, own = _flat(builtin), _flat(local)
    effective = _flat(c.workspace.settings)
    rows = [
        {"key": key, "value": _shown(key, value), "source": "workspace" if key in own else "built-in"}
        for key, value in effective.items()
        if key in own or key in defaults
    ]
    if as_json:
        emit_json(rows)
        return
    for row in rows:
        print(f"{row['key']} = {row['value']!r}  ({row['source']})")


def _checks(c: Ctx, local: dict[str, Any], builtin: dict[str, Any]) -> list[tuple[str, Callable[[], object]]]:
    """Each section's own validation, as the commands that use it run it."""
    from engine.clocks.durations import parse_duration
    from engine.deadlines.alerting import EscalationSettings, load_alerting, parse_section
    from engine.formal.service import document_settings
    from engine.notices.settings import notice_settings

    settings = c.workspace.settings

    def policy() -> None:
        for rule, text in (settings.get("deadlines", {}).get("policy") or {}).items():
            try:
                parse_duration(str(text))
            except BreachError as exc:
                raise CheckFailed(f'[deadlines.policy] "{rule}" = {text!r}: {exc}') from None

    def firm() -> None:
        from engine.notices.firm import firm_settings

        if not local.get("firm"):
            raise CheckFailed("[firm] is not set: notices and formal documents are refused until it is")
        firm_settings(settings)

    def smtp() -> None:
        from engine.notices.send import require_smtp, smtp_settings

        smtp_settings(c.workspace)
        require_smtp(c.workspace)

    return [
        ("workspace", lambda: c.workspace.timezone),
        ("firm", firm),
        ("smtp", smtp),
        ("notices", lambda: notice_settings(settings)),
        ("documents", lambda: document_settings(settings)),
        ("escalation", lambda: parse_section(settings, "escalation", EscalationSettings)),
        ("alerts", lambda: load_alerting(c.workspace)),
        ("deadlines.policy", policy),
    ]


@config_app.command("check")
def check_cmd(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Check the workspace's settings.toml: syntax, known tables, each section's values; exit 1 if any
    section needs attention."""
    c: Ctx = ctx.obj
    builtin, local = _layers(c)
    results: list[dict[str, Any]] = [
        {
            "section": name,
            "ok": False,
            "problem": f"unknown table [{name}]: a typo? known: {', '.join([*builtin, *EXTRA_TABLES])}",
        }
        for name in local
        if name not in builtin and name not in EXTRA_TABLES
    ]
    for section, check in _checks(c, local, builtin):
        try:
            check()
            results.append({"section": section, "ok": True, "problem": None})
        except BreachError as exc:
            results.append({"section": section, "ok": False, "problem": str(exc)})
    from engine.access import RoleMap, no_members_line
    from engine.cli.team import roles_in_use

    # Not a fault of the file, yet never silent: until a member is named, every role-gated step is refused.
    named = RoleMap.from_settings(c.workspace.settings).named
    warning = None if named else no_members_line("ACCOUNT", roles_in_use(c.workspace))
    results.append({"section": "members", "ok": True, "problem": None, "warning": warning})
    if as_json:
        emit_json(results)
    else:
        for r in results:
            if r.get("warning"):
                print(f"{r['section']}: warning: {r['warning']}")
            else:
                print(f"{r['section']}: ok" if r["ok"] else f"{r['section']}: {r['problem']}")
    failed = [r["section"] for r in results if not r["ok"]]
    if failed:
        raise CheckFailed(f"settings need attention: {', '.join(failed)}")


_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
# Tables whose keys are the workspace's own (rule ids, account names): any key is accepted there.
OPEN_TABLES = ("deadlines.policy", "roles.members")
MEMBER_FIELDS = ("name", "department", "position", "roles")
"""What ``members.ACCOUNT.FIELD`` may set: how documents name the member, and the roles they hold."""
_ROLE = re.compile(r"[a-z][a-z0-9_]*")


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else json.dumps(key, ensure_ascii=False)


def _toml_value(text: str, default: Any = None) -> str:
    """VALUE as TOML: a number, true/false, an array or a quoted string as typed; else a string. Where
    the built-in value is text (a phone number, a name), digits stay text."""
    try:
        parsed = tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return json.dumps(text, ensure_ascii=False)
    if isinstance(default, str) and not isinstance(parsed, str):
        return json.dumps(text, ensure_ascii=False)
    return text


def _role_list(text: str) -> str:
    """Roles as a TOML array: ``dpo,security_lead`` or ``["dpo"]``; empty text takes every role away."""
    try:
        parsed = tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        parsed = [part.strip() for part in text.split(",") if part.strip()]
    if isinstance(parsed, str):
        parsed = [part.strip() for part in parsed.split(",") if part.strip()]
    if not isinstance(parsed, list) or not all(isinstance(r, str) and _ROLE.fullmatch(r) for r in parsed):
        raise BadInput(f"roles {text!r}: give role names separated by commas, e.g. dpo,security_lead")
    return json.dumps(list(dict.fromkeys(parsed)))


def _split_key(key: str) -> tuple[tuple[str, ...], str]:
    """SECTION.KEY as the path of its table and the key. An account (``members.ACCOUNT.FIELD``,
    ``roles.members.ACCOUNT``) may hold dots of its own, so it is what lies between the known parts."""
    from engine.access import normal_name

    if key.startswith("members."):
        account, dot, name = key.removeprefix("members.").rpartition(".")
        account = account.strip()
        if len(account) > 1 and account[0] == account[-1] == '"':
            account = account[1:-1]
        if not dot or not account or name not in MEMBER_FIELDS:
            raise BadInput(
                f"{key!r}: a member is set as members.ACCOUNT.FIELD, FIELD one of {', '.join(MEMBER_FIELDS)} "
                "(e.g. breach config set members.wang.dpo.roles dpo)"
            )
        return ("members", normal_name(account, what="account")), name
    if key.startswith("roles.members.") and key != "roles.members.":
        return ("roles", "members"), normal_name(key.removeprefix("roles.members."), what="account")
    table, _, name = key.rpartition(".")
    if not table or not name:
        raise BadInput(f"{key!r}: use SECTION.KEY, e.g. smtp.host (breach config show lists them)")
    return tuple(table.split(".")), name


def _header_path(inside: str) -> tuple[str, ...]:
    """The path a table header names (``members."wang.dpo"`` is two keys, not three)."""
    try:
        node: Any = tomllib.loads(f"[{inside}]\n")
    except tomllib.TOMLDecodeError:
        return tuple(part.strip().strip('"') for part in inside.split("."))
    path: list[str] = []
    while isinstance(node, dict) and len(node) == 1:
        name, node = next(iter(node.items()))
        path.append(name)
    return tuple(path)


def _header(table: tuple[str, ...]) -> str:
    # A member's account is always quoted, as the settings file documents it: [members."wang.dpo"].
    if len(table) == 2 and table[0] == "members":
        return f"[members.{json.dumps(table[1], ensure_ascii=False)}]"
    return "[" + ".".join(_toml_key(part) for part in table) + "]"


def set_in_text(text: str, table: str | tuple[str, ...], key: str, value: str) -> str:
    """``text`` (a settings file) with ``key = value`` set in ``[table]``: the key's line replaced where
    the table has it, else added under the table's header, else the table added at the end. Comments
    and every other line stay as they were. ``table`` is a dotted name or, where a key holds dots, the
    path of keys."""
    path = tuple(table.split(".")) if isinstance(table, str) else table
    lines = text.splitlines()
    header = re.compile(r"^\s*\[([^\[\]]+)\]\s*(#.*)?$")
    line = f"{_toml_key(key)} = {value}"
    start = end = None
    for i, raw in enumerate(lines):
        found = header.match(raw)
        if found:
            if start is not None and end is None:
                end = i
            if start is None and _header_path(found.group(1)) == path:
                start = i
    if start is None:
        return "\n".join([*lines, "", _header(path), line]) + "\n"
    end = len(lines) if end is None else end
    assignment = re.compile(rf"^\s*(?:{re.escape(key)}|{re.escape(json.dumps(key))})\s*=")
    for i in range(start + 1, end):
        if assignment.match(lines[i]):
            lines[i] = line
            return "\n".join(lines) + "\n"
    lines.insert(start + 1, line)
    return "\n".join(lines) + "\n"


@config_app.command("set")
def set_cmd(
    ctx: typer.Context,
    key: Annotated[
        str,
        typer.Argument(
            help="SECTION.KEY, e.g. smtp.host, deadlines.policy.POLICY-X or members.ACCOUNT.roles "
            "(a member's name, department, position or roles)."
        ),
    ],
    value: Annotated[
        str, typer.Argument(help="The value: 587, true, or text (quoted for you); roles: dpo,security_lead.")
    ],
) -> None:
    """Set one setting in the workspace's settings.toml, in its table, keeping every comment."""
    from engine.documents.render import write_private
    from engine.files import DEFAULT_LIMITS, read_text
    from engine.workspace import SETTINGS_FILE

    c: Ctx = ctx.obj
    builtin, _ = _layers(c)  # also refuses to edit a file that does not read
    path_of, name = _split_key(key)
    table = ".".join(path_of)
    known = _flat(builtin)
    section = path_of[0]
    robot = table.startswith("alerts.robots.")  # robots are named by the workspace
    if table not in OPEN_TABLES and section not in EXTRA_TABLES and key not in known and not robot:
        close = [k for k in known if k.split(".")[0] == section]
        hint = f"; keys of [{section}]: {', '.join(k.split('.', 1)[1] for k in close)}" if close else ""
        raise BadInput(f"unknown setting {key!r}{hint}")
    path = c.workspace.home / "config" / SETTINGS_FILE
    text = read_text(path, what="settings file", limits=DEFAULT_LIMITS) if os.path.lexists(path) else ""
    if path_of == ("roles", "members") or (section == "members" and name == "roles"):
        literal = _role_list(value)
    else:
        literal = _toml_value(value, "" if section == "members" else known.get(key))
    updated = set_in_text(text, path_of, name, literal)
    try:
        tomllib.loads(updated)
    except tomllib.TOMLDecodeError as exc:
        raise BadInput(f"{key} = {value}: the file would not read as TOML ({exc}); nothing changed") from None
    write_private(path.parent, SETTINGS_FILE, updated.encode("utf-8"), root=c.workspace.home)
    print(f"{key} = {literal}  (in {path}; check with: breach config check)")


def register(app: typer.Typer) -> None:
    """Add the config commands to ``app``."""
    app.add_typer(config_app, name="config")
