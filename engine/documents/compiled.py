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

import threading
from collections.abc import Callable
from types import CodeType

from jinja2.bccache import Bucket, BytecodeCache

__all__ = ["CompiledTemplates", "compiled_templates", "referenced_templates"]


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


def referenced_templates(source_sha256: str, find: Callable[[], list[str]]) -> list[str]:
    """The templates a source uses, found by ``find`` once per source hash."""
    found = _references.get(source_sha256)
    if found is None:
        if len(_references) >= _MAX_REFERENCES:  # a process that sees templates edited for days
            _references.clear()
        found = _references[source_sha256] = find()
    return found
