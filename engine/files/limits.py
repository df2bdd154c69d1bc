"""How much breach agrees to read: the size of every file, the shape of YAML, JSON and zip bundles.

The limits are generous for real incidents (a recipient list of a million people, a playbook of a
thousand states) and small against an attack (a 342-byte YAML alias bomb, ``/dev/zero`` given as a
file, a zip that inflates to gigabytes). A workspace can change them in ``[limits]`` of its
``config/settings.toml``; the settings file itself is read under the default limits.

The limits in force are one process-wide value: the command line sets them from the workspace once,
and every reader consults :func:`current_limits` unless it is handed its own.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

from engine.errors import BadInput

__all__ = ["DEFAULT_LIMITS", "Limits", "configure_limits", "current_limits", "limits_from_settings"]

_MIB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """Bounds on what breach reads; each field is a key of ``[limits]`` in settings.toml."""

    data_file_bytes: int = 8 * _MIB  # YAML, JSON and TOML: facts, content, playbooks, legal data, settings
    template_file_bytes: int = 16 * _MIB  # a Jinja template or a Word template
    people_file_bytes: int = 512 * _MIB  # a recipient CSV (about three million rows)
    document_file_bytes: int = 64 * _MIB  # a generated document read back (an email to send, a bundle part)
    bundle_bytes: int = 8 * 1024 * _MIB  # an evidence bundle on disk
    bundle_unpacked_bytes: int = 16 * 1024 * _MIB  # all of a bundle's members once inflated
    bundle_json_bytes: int = 1024 * _MIB  # one JSON member of a bundle (it is parsed in memory)
    bundle_members: int = 2_000_000  # files in one bundle (one per document of the incident)
    bundle_ratio: int = 200  # inflated size / compressed size of one member (real JSON: under 30)
    yaml_aliases: int = 100  # alias uses (*name) in one YAML document
    yaml_depth: int = 64  # nesting of mappings and lists in YAML
    yaml_nodes: int = 1_000_000  # values in one YAML document once every alias is expanded
    json_depth: int = 64  # nesting of objects and arrays in JSON
    template_iterations: int = 1_000_000  # range() values one document's loops may take
    template_output_bytes: int = 64 * _MIB  # text one template renders for one document
    template_seconds: int = 30  # time one document may take to render
    template_width: int = 10_000  # a padding, format width or precision in a template

    def describe(self, key: str) -> str:
        """``8 MiB ([limits] data_file_bytes)``: a limit as an error message names it."""
        value = getattr(self, key)
        shown = f"{value / _MIB:g} MiB" if key.endswith("_bytes") and value >= _MIB else f"{value:,}"
        return f"{shown} ([limits] {key} in settings.toml)"


DEFAULT_LIMITS = Limits()
_current: Limits = DEFAULT_LIMITS


def limits_from_settings(settings: dict[str, Any]) -> Limits:
    """The ``[limits]`` table over the defaults; each value a whole number from 1 to 2**53.

    :raises BadInput: naming the key and what is allowed.
    """
    table = settings.get("limits", {})
    if not isinstance(table, dict):
        raise BadInput("settings.toml [limits] must be a table of KEY = number")
    known = {f.name for f in fields(Limits)}
    changes: dict[str, int] = {}
    for key, value in table.items():
        if key not in known:
            raise BadInput(f"settings.toml [limits] {key}: unknown limit; known: {', '.join(sorted(known))}")
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 2**53:
            raise BadInput(f"settings.toml [limits] {key}: must be a whole number from 1 to 2**53")
        changes[key] = value
    return replace(DEFAULT_LIMITS, **changes)


def configure_limits(limits: Limits) -> Limits:
    """Make ``limits`` the process's limits; return the previous ones (to restore them)."""
    global _current
    previous, _current = _current, limits
    return previous


def current_limits() -> Limits:
    """The limits in force in this process."""
    return _current
