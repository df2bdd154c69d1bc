"""Parsed YAML kept between commands, and only the named command built: write commands start faster."""

from __future__ import annotations

import stat
from datetime import date
from pathlib import Path

import pytest
from conftest import REPO

from engine.files import parsed
from engine.playbooks import parsing
from engine.playbooks.parsing import parse_playbook, playbook_errors

PLAYBOOK = (REPO / "playbooks" / "cn-agency-firm.yaml").read_text(encoding="utf-8")


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv(parsed.CACHE_ENV, str(folder))
    return folder


class TestParsedCache:
    def test_a_playbook_parsed_once_is_read_back_without_yaml(self, cache, monkeypatch):
        """The second parse of the same text reads the kept values: the YAML parser is not called."""
        first = parse_playbook(PLAYBOOK, "a.yaml")

        def no_yaml(*_args, **_kwargs):
            raise AssertionError("parsed the YAML again")

        monkeypatch.setattr(parsing, "load_located", no_yaml)
        again = parse_playbook(PLAYBOOK, "b.yaml")
        assert again.playbook == first.playbook and again.sha256 == first.sha256 and again.origin == "b.yaml"
        entries = list(cache.iterdir())
        assert entries and all(stat.S_IMODE(e.stat().st_mode) == 0o600 for e in entries)
        assert stat.S_IMODE(cache.stat().st_mode) == 0o700

    def test_a_changed_playbook_is_parsed_and_its_errors_have_lines(self, cache):
        """An edit is a new key: a mistake in the edited text is reported with its line, not hidden."""
        parse_playbook(PLAYBOOK, "a.yaml")
        broken = PLAYBOOK.replace("version:", "versoin:", 1)
        source, errors = playbook_errors(broken, "a.yaml")
        assert source is None and errors and errors[0].startswith("a.yaml:")

    def test_a_damaged_entry_is_parsed_again(self, cache):
        """A truncated or foreign cache file changes nothing: the text is parsed as before."""
        first = parse_playbook(PLAYBOOK, "a.yaml")
        for entry in cache.iterdir():
            entry.write_bytes(b'{"value": {"id": 3')
        assert parse_playbook(PLAYBOOK, "a.yaml").playbook == first.playbook
        for entry in cache.iterdir():
            entry.write_bytes(b'{"value": {"id": "other"}}')
        assert parse_playbook(PLAYBOOK, "a.yaml").playbook == first.playbook

    def test_off_keeps_nothing(self, tmp_path, monkeypatch):
        """BREACH_CACHE_DIR=off: nothing is written anywhere."""
        monkeypatch.setenv(parsed.CACHE_ENV, "off")
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
        parse_playbook(PLAYBOOK, "a.yaml")
        assert parsed.recall("playbook", PLAYBOOK) is parsed.MISSING
        assert not (tmp_path / "xdg").exists()

    def test_only_values_json_gives_back_are_kept(self, cache):
        """Keys that are not text keep their type; a date is never kept (JSON would return text)."""
        parsed.remember("t", "a", {True: [1, 2.5, None], "x": {"y": "z"}, 3: "three"})
        assert parsed.recall("t", "a") == {True: [1, 2.5, None], "x": {"y": "z"}, 3: "three"}
        parsed.remember("t", "b", {"verified": date(2026, 1, 1)})
        assert parsed.recall("t", "b") is parsed.MISSING

    def test_legal_data_is_the_same_read_back(self, cache):
        """The legal data loaded from the cache equals the data parsed from YAML."""
        from engine.legal.data import load_legal

        first = load_legal([REPO / "config"])
        assert list(cache.iterdir())
        assert load_legal([REPO / "config"]).model_dump() == first.model_dump()


class TestOnlyTheNamedCommand:
    def test_the_named_group_and_command_only(self):
        """incident advance ID: the built application holds that one command; the full one is untouched."""
        import typer.main

        from engine.cli.app import app
        from engine.cli.pruning import pruned

        small = pruned(app, ["--home", "/x", "incident", "advance", "INC-1", "contain"], ("--home",))
        command = typer.main.get_command(small)
        assert list(command.commands) == ["incident"]
        assert list(command.commands["incident"].commands) == ["advance"]
        assert "task" in typer.main.get_command(app).commands

    @pytest.mark.parametrize(
        "argv",
        [["--help"], ["incident", "advnce"], ["nosuch"], ["--verbose", "incident", "list"], []],
    )
    def test_anything_else_gets_the_whole_application(self, argv):
        """Help, a misspelt or unknown name, an unknown option: nothing is left out."""
        from engine.cli.app import app
        from engine.cli.pruning import pruned

        whole = pruned(app, argv, ("--db", "--home", "--as"))
        if argv[:1] == ["incident"]:
            assert len(whole.registered_groups) == 1
            assert whole.registered_groups[0].typer_instance.registered_commands == next(
                g.typer_instance.registered_commands for g in app.registered_groups if g.name == "incident"
            )
        else:
            assert whole is app

    def test_a_misspelt_command_still_gets_a_suggestion(self, cli):
        """breach incident advnce: exit 2 with the suggestion, as with the whole application."""
        result = cli("incident", "advnce", "INC-1")
        assert result.returncode == 2 and "Did you mean 'advance'" in result.stderr
