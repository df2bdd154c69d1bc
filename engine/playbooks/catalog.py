"""Finding playbooks: the workspace's ``playbooks/`` first, then the built-in ones.

A workspace file shadows the built-in file of the same name; lookups by id read each candidate once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from engine.errors import NotFound
from engine.playbooks.model import PlaybookSource, read_playbook_file
from engine.workspace import Workspace

__all__ = ["PlaybookCatalog"]


@dataclass
class PlaybookCatalog:
    """The playbooks a workspace can open incidents under."""

    workspace: Workspace
    _loaded: dict[Path, PlaybookSource] = field(default_factory=dict)

    def files(self) -> list[Path]:
        """Playbook files in effect, a workspace file hiding the built-in file of the same name."""
        chosen: dict[str, Path] = {}
        for folder in reversed(self.workspace.search_path("playbooks")):
            if folder.is_dir():
                for path in sorted(folder.glob("*.yaml")) + sorted(folder.glob("*.yml")):
                    chosen[path.name] = path
        return [chosen[name] for name in sorted(chosen)]

    def load(self, path: Path) -> PlaybookSource:
        """Parse one file (cached for the life of the catalog)."""
        if path not in self._loaded:
            self._loaded[path] = read_playbook_file(path)
        return self._loaded[path]

    def all(self) -> list[PlaybookSource]:
        """Every playbook in effect, parsed; an invalid file raises with its first error."""
        return [self.load(path) for path in self.files()]

    def get(self, playbook_id: str) -> PlaybookSource:
        """The playbook with ``playbook_id``; ``NotFound`` lists the ids there are."""
        for path in self.files():
            if path.stem == playbook_id:
                source = self.load(path)
                if source.playbook.id == playbook_id:
                    return source
        sources = self.all()
        for source in sources:
            if source.playbook.id == playbook_id:
                return source
        known = ", ".join(s.playbook.id for s in sources) or "none"
        raise NotFound(f"unknown playbook {playbook_id!r}; available: {known}")
