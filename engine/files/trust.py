"""Whether a workspace can be trusted: like ssh with its keys, breach refuses loose permissions.

A workspace's settings, playbooks and templates decide who holds a role, which guards a waiver needs
and what every notice says. If another account can write them (the folder or the file is writable
by group or others, or owned by someone else), that account can change the response without being
on the record. Such a workspace is refused, naming the path and the command that fixes it.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from engine.errors import BadInput

__all__ = ["UntrustedWorkspace", "check_trusted"]

# What a workspace holds that decides how the response runs (the database is guarded by its own mode).
_CHECKED = ("config", "playbooks", "templates")
_MAX_ENTRIES = 100_000  # a workspace with more override files than this is refused as unreadable


class UntrustedWorkspace(BadInput):
    """A workspace path another account could write; nothing was read from it."""


def _owner(uid: int) -> str:
    try:
        import pwd

        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except (KeyError, ImportError):
        return f"uid {uid}"


def _check(path: Path, info: os.stat_result, me: int) -> None:
    if info.st_uid != me:
        raise UntrustedWorkspace(
            f"{path} belongs to {_owner(info.st_uid)}, not to you ({_owner(me)}): breach will not trust "
            f"a workspace another account controls; fix with: chown {_owner(me).split(' ')[0]} {path}"
        )
    if info.st_mode & 0o022:
        who = (
            "group and others"
            if info.st_mode & 0o022 == 0o022
            else "group"
            if info.st_mode & 0o020
            else "others"
        )
        raise UntrustedWorkspace(
            f"{path} is writable by {who} (mode {stat.S_IMODE(info.st_mode):04o}): breach will not trust "
            f"a workspace another account can change; fix with: chmod go-w {path}"
        )


def check_trusted(home: Path) -> None:
    """Refuse ``home`` when it, or anything in its ``config/``, ``playbooks/`` or ``templates/``, is
    writable by group or others or owned by another account. A folder that is not a workspace (none
    of those, no database) has nothing to trust and passes.

    A link is judged by what it points to: the file read is the one that must be safe.

    :raises UntrustedWorkspace: naming the first loose path and the command that fixes it.
    """
    present = [home / name for name in (*_CHECKED, "breach.db") if os.path.lexists(home / name)]
    if not present:
        return
    me = os.geteuid()
    _check(home, os.stat(home), me)
    seen = 0
    for top in present:
        if top.name == "breach.db":
            continue
        try:
            _check(top, os.stat(top), me)
        except FileNotFoundError:
            continue  # a dangling link: nothing is read through it
        if not top.is_dir():
            continue
        for folder, dirs, files in os.walk(top, followlinks=False):
            for name in dirs + files:
                seen += 1
                if seen > _MAX_ENTRIES:
                    raise UntrustedWorkspace(f"{top} holds more than {_MAX_ENTRIES:,} files: tidy it up")
                path = Path(folder) / name
                try:
                    _check(path, os.stat(path), me)
                except FileNotFoundError:
                    continue
