"""Configuration is part of the record: changed settings, roles, playbooks and templates are logged.

Settings decide who holds which role, and workspace playbooks and templates decide what a step requires
and what a document says. A change to any of them is as much part of what happened as a step of an
incident, yet it is made by editing files. So each command that opens the database compares the hashes
of the workspace's ``config/``, ``playbooks/`` and ``templates/`` files, and the roles settings give,
with what the workspace log last recorded; when they differ, a ``config_changed`` entry records the new
hashes, which files changed and which roles were granted or taken away.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlmodel import Session

from engine.access import RoleMap
from engine.incidents.audit import canonical_json
from engine.incidents.worklog import append_log
from engine.store.db import Store
from engine.workspace import OVERRIDE_DIRS, Workspace

__all__ = ["configuration_state", "record_configuration", "unrecorded_configuration"]

_LAST = text("SELECT detail FROM workspace_log WHERE kind = 'config_changed' ORDER BY id DESC LIMIT 1")


def _files(home: Path) -> dict[str, str]:
    found: dict[str, str] = {}
    for folder in OVERRIDE_DIRS:
        top = home / folder
        if not top.is_dir() or top.is_symlink():
            continue
        for root, dirs, names in os.walk(top):
            dirs[:] = sorted(d for d in dirs if not (Path(root) / d).is_symlink())
            for name in sorted(names):
                path = Path(root) / name
                if path.is_symlink() or not path.is_file():
                    continue
                found[path.relative_to(home).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def configuration_state(workspace: Workspace) -> dict[str, Any]:
    """The hashes of the workspace's configuration files and the roles each member holds."""
    roles = RoleMap.from_settings(workspace.settings)
    return {
        "files": _files(workspace.home),
        "roles": {key: sorted(member.roles) for key, member in sorted(roles.people.items())},
    }


def _changes(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    said: list[str] = []
    old_files, new_files = before.get("files") or {}, after["files"]
    for name in sorted(old_files.keys() | new_files.keys()):
        if name not in old_files:
            said.append(f"{name} added")
        elif name not in new_files:
            said.append(f"{name} removed")
        elif old_files[name] != new_files[name]:
            said.append(f"{name} changed")
    old_roles, new_roles = before.get("roles") or {}, after["roles"]
    for account in sorted(old_roles.keys() | new_roles.keys()):
        granted = sorted(set(new_roles.get(account, [])) - set(old_roles.get(account, [])))
        revoked = sorted(set(old_roles.get(account, [])) - set(new_roles.get(account, [])))
        said += [f"role {role} granted to {account}" for role in granted]
        said += [f"role {role} taken from {account}" for role in revoked]
    return said


def unrecorded_configuration(session: Session, workspace: Workspace) -> dict[str, Any] | None:
    """The configuration as a log entry's content when it differs from the last one logged, else None."""
    state = configuration_state(workspace)
    digest = hashlib.sha256(canonical_json(state).encode("utf-8")).hexdigest()
    last = session.connection().execute(_LAST).scalar()
    before: dict[str, Any] = {}
    if last:
        try:
            before = json.loads(str(last))
        except ValueError:
            before = {}
        if before.get("digest") == digest:
            return None
    return {"digest": digest, **state, "changed": _changes(before, state)}


def record_configuration(store: Store, workspace: Workspace, *, actor: str) -> list[str]:
    """Log the configuration when it differs from the last one logged; return what changed.

    Read first, so that a command on an unchanged workspace takes no write lock for this.
    """
    with store.read() as session:
        entry = unrecorded_configuration(session, workspace)
    if entry is None:
        return []
    with store.write() as session:
        append_log(session, actor=actor, kind="config_changed", incident_id="", detail=canonical_json(entry))
    return list(entry["changed"])
