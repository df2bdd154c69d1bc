"""Which template file is in force for each document kind, format and locale (``breach templates
list``): the file that wins the search (workspace before built-in, then the fallback locale) and where
it comes from.

It stands alone because it only lists files; it neither parses nor checks a template.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = ["templates_in_force"]

_FILES = {
    "md": ("md.j2",),
    "html": ("html.j2",),
    "pdf": ("html.j2",),
    "sms": ("sms.j2",),
    "eml": ("subject.j2", "md.j2", "html.j2"),
    "docx": ("docx",),
}


def templates_in_force(search_paths: Iterable[Path]) -> list[dict[str, Any]]:
    """Each template file in use per kind and locale: the formats it serves, the file that wins the
    search (workspace before built-in, then the fallback locale) and where that file comes from."""
    from engine.documents.render import KINDS
    from engine.documents.templating import FALLBACK_LOCALE, locale_dirs

    paths = [Path(p) for p in search_paths]
    locales = sorted(
        {
            d.name
            for root in paths
            if root.is_dir()
            for d in root.iterdir()
            if d.is_dir() and not d.name.startswith((".", "_"))
        },
        key=lambda name: (name != FALLBACK_LOCALE, name),
    )
    rows: list[dict[str, Any]] = []
    for locale in locales:
        dirs = locale_dirs(paths, locale)
        partials = sorted({f.name for d in dirs if d.is_dir() for f in d.glob("_*.j2")})
        wanted: dict[tuple[str, str], list[str]] = {}
        for spec in KINDS.values():
            for fmt in spec.formats:
                for suffix in _FILES[fmt]:
                    wanted.setdefault((spec.name, f"{spec.name}.{suffix}"), []).append(fmt)
        wanted.update({("(partial)", name): [] for name in partials})
        for (kind, name), formats in wanted.items():
            found = next((d / name for d in dirs if (d / name).is_file()), None)
            source = (
                "missing"
                if found is None
                else "workspace"
                if paths and found.is_relative_to(paths[0])
                else "built-in"
            )
            if found is not None and found.parent.name != locale:
                source += f" ({found.parent.name} fallback)"
            rows.append(
                {
                    "kind": kind,
                    "locale": locale,
                    "formats": list(dict.fromkeys(formats)),
                    "file": name,
                    "path": str(found) if found else None,
                    "source": source,
                }
            )
    return rows
