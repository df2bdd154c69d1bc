"""Templates compiled once per process, whichever renderer asks for them.

A renderer compiles each template it uses, and a long-running process (the web server, the
schedulers, a test run, a render of many incidents) makes many renderers over the same files: parsing
and compiling a notice costs more than rendering a few hundred of them. Jinja's bytecode-cache hook
keeps the compiled code here, in memory only (never on disk, where it would be code another program
could replace), keyed by the template's name and file and checked against the hash of its source: an
edited template is compiled again. The code Jinja generates depends on the environment's options
(the locale's placeholder for a missing value, Word XML escaping), so each flavour has its own cache.

Which other templates a template uses (its layouts and partials, for the hash a document records)
is remembered the same way, by the hash of its source.
"""

from __future__ import annotations

import functools
import hashlib
import threading
from collections.abc import Callable
from pathlib import Path
from types import CodeType
from typing import Any

from jinja2.bccache import Bucket, BytecodeCache

from engine.errors import BadInput

__all__ = ["CompiledTemplates", "compiled_templates", "template_digest"]


class CompiledTemplates(BytecodeCache):
    """Compiled template code of one environment flavour, by template and source hash."""

    def __init__(self) -> None:
        self._kept: dict[str, tuple[str, CodeType]] = {}

    def load_bytecode(self, bucket: Bucket) -> None:
        """Give ``bucket`` the code compiled from the same source, if any (else Jinja compiles)."""
        kept = self._kept.get(bucket.key)
        if kept is not None and kept[0] == bucket.checksum:
            bucket.code = kept[1]

    def dump_bytecode(self, bucket: Bucket) -> None:
        """Keep the code Jinja just compiled (it replaces the code of an earlier source)."""
        if bucket.code is not None:
            self._kept[bucket.key] = (bucket.checksum, bucket.code)

    def clear(self) -> None:
        """Forget every compiled template."""
        self._kept.clear()


_caches: dict[tuple[str, bool], CompiledTemplates] = {}
_references: dict[str, list[str]] = {}
_lock = threading.Lock()
_MAX_REFERENCES = 4096


def compiled_templates(locale: str, docx: bool) -> CompiledTemplates:
    """The process's cache for environments of ``locale`` (``docx``: the Word XML flavour)."""
    with _lock:
        return _caches.setdefault((locale, docx), CompiledTemplates())


def _referenced(source_sha256: str, find: Callable[[], list[str]]) -> list[str]:
    """The templates a source uses, found by ``find`` once per source hash."""
    found = _references.get(source_sha256)
    if found is None:
        if len(_references) >= _MAX_REFERENCES:  # a process that sees templates edited for days
            _references.clear()
        found = _references[source_sha256] = find()
    return found


def template_digest(env: Any, names: list[str]) -> tuple[str, str]:
    """The templates' label, and one hash over them and every layout or partial they use, so that a
    changed ``_formal.html.j2`` changes the recorded hash of every report built on it. A template
    that uses no other keeps its own file's hash."""
    from jinja2 import TemplateNotFound

    files: dict[str, tuple[str, str]] = {}  # template name -> (path below templates/, sha256)
    pending = list(names)
    while pending:
        name = pending.pop(0)
        if name in files:
            continue
        try:
            source, filename, _ = env.loader.get_source(env, name)
        except TemplateNotFound:
            raise BadInput(f"template {names[0]} uses {name!r}, which does not exist") from None
        digest = hashlib.sha256(Path(filename).read_bytes()).hexdigest()
        files[name] = (f"{Path(filename).parent.name}/{Path(filename).name}", digest)
        pending += _referenced(digest, functools.partial(_uses, env, source))
    label = ", ".join(files[name][0] for name in names)
    if len(files) == 1:
        return label, files[names[0]][1]
    listing = "\n".join(f"{path} {sha}" for path, sha in sorted(files.values()))
    return label, hashlib.sha256(listing.encode()).hexdigest()


def _uses(env: Any, source: str) -> list[str]:
    """The templates ``source`` includes, imports or extends (by constant name)."""
    from jinja2 import meta

    return [used for used in meta.find_referenced_templates(env.parse(source)) if used]
