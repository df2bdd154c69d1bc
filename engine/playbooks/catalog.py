"""Finding playbooks: the workspace's ``playbooks/`` first, then the built-in ones.

A workspace file shadows the built-in file of the same name; lookups by id read each candidate once.
A workspace playbook that claims a built-in playbook's id and version but says something else is
refused: an incident's record names the playbook by id and version, and two texts under one name would
let a changed procedure pass for the published one. Raising the version makes it a playbook of its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from engine.errors import BadInput, NotFound
from engine.playbooks.parsing import PlaybookSource, read_playbook_file
from engine.workspace import Workspace, builtin_root

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
            source = read_playbook_file(path)
            builtin = builtin_root() / "playbooks"
            if path.parent.resolve() != builtin.resolve():
                self._refuse_shadow(path, source, builtin)
            self._loaded[path] = source
        return self._loaded[path]

    def _refuse_shadow(self, path: Path, source: PlaybookSource, builtin: Path) -> None:
        """Refuse a workspace file that reuses a built-in playbook's id and version with other text."""
        for candidate in sorted(builtin.glob("*.yaml")) + sorted(builtin.glob("*.yml")):
            if candidate.stem != source.playbook.id and candidate.name != path.name:
                continue
            shipped = self._loaded.get(candidate) or read_playbook_file(candidate)
            self._loaded[candidate] = shipped
            same = (shipped.playbook.id, shipped.playbook.version) == (
                source.playbook.id,
                source.playbook.version,
            )
            if same and shipped.sha256 != source.sha256:
                raise BadInput(
                    f"{path}: playbook {source.playbook.id} version {source.playbook.version} differs from "
                    "the built-in playbook of the same id and version; raise its version to use it"
                )

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
