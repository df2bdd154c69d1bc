"""The workspace's team on screen: the first member ``breach init`` names, the roles in use, and how a
refusal for want of a role tells the operator to grant it.

No one holds a role until the settings name a member (:mod:`engine.access`), so ``breach init`` names the
account that runs it, with every role the built-in playbooks and the settings ask for: the person who
sets the workspace up can take every step at once, and colleagues are added one ``breach config set``
at a time.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.cli.context import Ctx
    from engine.workspace import Workspace

__all__ = ["FirstMember", "name_first_member", "role_hint", "roles_in_use"]

# Settings that name a role someone must hold, beside the playbooks' own.
_ROLE_SETTINGS = (("audit", "acknowledge_role"), ("approvals", "deadline_waiver_role"))


def roles_in_use(workspace: Workspace) -> list[str]:
    """Every role the built-in playbooks' steps require, and those the settings name
    (who acknowledges a broken trail, who approves a deadline waiver)."""
    from engine.playbooks.guards import roles_required
    from engine.playbooks.parsing import read_playbook_file
    from engine.workspace import builtin_root

    folder = builtin_root() / "playbooks"
    found: set[str] = set()
    for path in sorted(folder.glob("*.yaml")) + sorted(folder.glob("*.yml")):
        found |= roles_required(read_playbook_file(path).playbook)
    for section, key in _ROLE_SETTINGS:
        role = str((workspace.settings.get(section) or {}).get(key) or "").strip()
        if role:
            found.add(role)
    return sorted(found)


@dataclass(frozen=True)
class FirstMember:
    """The member ``breach init`` named: the account and the roles it was given."""

    account: str
    roles: list[str]


def _member_block(account: str, roles: list[str]) -> str:
    return (
        "\n# The team: each member's account (what 'breach whoami' shows), how documents name them, their\n"
        "# roles. No one holds a role the settings do not give. The account that set this workspace up\n"
        "# is named first, with every role the built-in playbooks use; add a colleague with\n"
        "#   breach config set members.ACCOUNT.roles ROLE[,ROLE]   (and .name, .department, .position)\n"
        f"[members.{json.dumps(account, ensure_ascii=False)}]\n"
        f"roles = {json.dumps(roles, ensure_ascii=False)}\n"
    )


def name_first_member(workspace: Workspace) -> FirstMember | None:
    """Make the account running ``breach init`` the first member, holding every role in use, when the
    settings name no member yet; the change enters the workspace log as any configuration change does.

    None when the settings already name a member: the team is the workspace's own then.
    """
    from engine.access import RoleMap
    from engine.cli.context import database_login, os_account
    from engine.documents.render import write_private
    from engine.files import DEFAULT_LIMITS, read_text
    from engine.record.configuration import record_configuration
    from engine.store.db import Store
    from engine.workspace import SETTINGS_FILE, Workspace, read_settings

    if RoleMap.from_settings(workspace.settings).named:
        return None
    roles = roles_in_use(workspace)
    store = Store(workspace.db_url)
    try:
        account = os_account() if workspace.db_url.startswith("sqlite") else database_login(store)
        path = workspace.home / "config" / SETTINGS_FILE
        text = read_text(path, what="settings file", limits=DEFAULT_LIMITS) if os.path.lexists(path) else ""
        updated = text.rstrip("\n") + "\n" + _member_block(account, roles)
        write_private(path.parent, SETTINGS_FILE, updated.encode("utf-8"), root=workspace.home)
        read_settings(path)  # what was written must read back
        # A fresh view of the workspace: the one given cached the settings as they were before.
        record_configuration(store, Workspace(workspace.home, workspace.db_url_override), actor=account)
    finally:
        store.dispose()
    return FirstMember(account, roles)


@contextmanager
def role_hint(c: Ctx, actor: str) -> Iterator[None]:
    """Add to a step refused for want of a role how to grant it: the flow words only the refusal (and
    has already logged the attempt)."""
    from engine.access import RoleMap
    from engine.errors import NotAllowed
    from engine.incidents.flow import RoleRefused

    try:
        yield
    except RoleRefused as refused:
        roles = c.hooks().roles or RoleMap({})
        raise NotAllowed(f"{refused}; {roles.how_to_grant(actor, refused.missing)}") from None
