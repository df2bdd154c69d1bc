"""Where things live: the workspace an operator works in, and the built-in data shipped with the package.

A workspace is a directory holding the SQLite database and three override folders, ``playbooks/``,
``templates/`` and ``config/``. Any file placed there shadows the built-in file of the same relative
name, so a legal team can change a threshold or a template without a new release.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from engine.errors import BadInput

__all__ = [
    "DB_FILENAME",
    "OVERRIDE_DIRS",
    "SETTINGS_FILE",
    "Workspace",
    "builtin_root",
    "deep_merge",
    "read_settings",
]

DB_FILENAME = "breach.db"
OVERRIDE_DIRS = ("playbooks", "templates", "config")
SETTINGS_FILE = "settings.toml"


def builtin_root() -> Path:
    """Return the directory holding the built-in ``playbooks/``, ``templates/`` and ``config/``.

    A wheel carries them inside the package (``engine/_builtin``); a source checkout has them at the
    repository's top level, one directory above the package.
    """
    packaged = Path(__file__).resolve().parent / "_builtin"
    if (packaged / "playbooks").is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Merge ``override`` into a copy of ``base``; nested tables merge, everything else replaces."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def read_settings(path: Path) -> dict[str, Any]:
    """A settings file, parsed; a file TOML cannot read (a typo, a table declared twice) is bad input
    naming the file, the line and what to do.

    :raises BadInput: with ``path:line`` and the parser's reason.
    """
    from engine.files import DEFAULT_LIMITS, load_toml, read_text

    # Read under the default limits: the settings are where other limits come from.
    text = read_text(path, what="settings file", limits=DEFAULT_LIMITS)
    try:
        return load_toml(text, str(path), limits=DEFAULT_LIMITS)
    except BadInput as exc:
        head, found, reason = str(exc).partition(": invalid TOML: ")
        if not found:
            raise
        line = ""
        if "(at line " in reason:
            reason, _, where = reason.partition(" (at line ")
            line = ":" + where.split(",")[0].rstrip(")")
        raise BadInput(
            f"{head}{line}: {reason}: fix that line (each [table] once; strings in quotes), then run "
            "'breach config check'"
        ) from None


@dataclass(frozen=True)
class Workspace:
    """An operator's working directory and the database it points at."""

    home: Path
    db_url_override: str | None = field(default=None)

    @classmethod
    def resolve(cls, home: str | Path | None = None, db_url: str | None = None) -> Workspace:
        """Pick the home from the option, else ``BREACH_HOME``, else the current directory."""
        chosen = home if home is not None else os.environ.get("BREACH_HOME") or Path.cwd()
        url = db_url or os.environ.get("BREACH_DATABASE_URL") or None
        return cls(home=Path(chosen).expanduser().resolve(), db_url_override=url)

    @property
    def db_path(self) -> Path:
        """The workspace's embedded SQLite file."""
        return self.home / DB_FILENAME

    @property
    def db_url(self) -> str:
        """The database URL in force: the explicit one, else the workspace's SQLite file."""
        return self.db_url_override or f"sqlite:///{self.db_path}"

    @property
    def is_initialised(self) -> bool:
        """Whether ``breach init`` ran here (or an external database was named)."""
        return self.db_url_override is not None or self.db_path.exists()

    @property
    def out_dir(self) -> Path:
        """Where generated documents go unless a command is told otherwise."""
        return self.home / "out"

    def search_path(self, kind: str) -> list[Path]:
        """The folders searched for a ``kind`` of file, workspace first, then built-in."""
        if kind not in OVERRIDE_DIRS:
            raise ValueError(f"unknown data folder {kind!r}")
        return [self.home / kind, builtin_root() / kind]

    def find(self, kind: str, relative: str) -> Path | None:
        """The first file named ``relative`` in the ``kind`` search path, or None."""
        for folder in self.search_path(kind):
            candidate = folder / relative
            if candidate.is_file():
                return candidate
        return None

    def config_file(self, relative: str) -> Path:
        """A config data file, the workspace's copy shadowing the built-in one."""
        found = self.find("config", relative)
        if found is None:
            raise FileNotFoundError(f"config file {relative!r} not found in the workspace or built-ins")
        return found

    @cached_property
    def settings(self) -> dict[str, Any]:
        """Built-in ``settings.toml`` merged with the workspace's; a workspace sets only what differs."""
        base: dict[str, Any] = {}
        for path in (builtin_root() / "config" / SETTINGS_FILE, self.home / "config" / SETTINGS_FILE):
            if os.path.lexists(path):
                base = deep_merge(base, read_settings(path))
        return base

    @property
    def timezone(self) -> str:
        """The IANA zone times are shown and read in (default Asia/Shanghai); an unknown zone is refused."""
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        name = self.settings.get("workspace", {}).get("timezone", "Asia/Shanghai")
        try:
            ZoneInfo(str(name))
        except (ZoneInfoNotFoundError, ValueError):
            raise BadInput(
                f"{self.home / 'config' / SETTINGS_FILE}: [workspace] timezone = {name!r} is not a known "
                "time zone: use an IANA name such as Asia/Shanghai or Europe/Berlin (breach config check)"
            ) from None
        return str(name)
