"""The one module every file read and write goes through: bounded reads, bounded parsing, private
writes that never follow a link, and the refusal of a workspace another account can write."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest

from engine.errors import BadInput
from engine.files import (
    DEFAULT_LIMITS,
    PrivateFolder,
    UntrustedWorkspace,
    append_private,
    check_trusted,
    clean_temporaries,
    configure_limits,
    limits_from_settings,
    load_json,
    load_toml,
    load_yaml,
    make_private_dirs,
    read_bytes,
    read_text,
    write_private,
)

# A "billion laughs" document of a few hundred bytes: nine levels of nine aliases each.
ALIAS_BOMB = "".join(
    f"{name}: &{name} [{', '.join([f'*{prev}'] * 9) if prev else ', '.join(['lol'] * 9)}]\n"
    for prev, name in zip([None, *"abcdefgh"], "abcdefghi", strict=True)
)


@pytest.fixture
def umask_000():
    """Run with the most permissive umask, as a careless shell would."""
    previous = os.umask(0)
    yield
    os.umask(previous)


def mode(path: Path) -> int:
    return path.lstat().st_mode & 0o777


class TestBoundedReads:
    def test_a_device_is_refused_before_reading(self):
        """/dev/zero given as a file is refused at once instead of being read until memory runs out."""
        started = time.monotonic()
        with pytest.raises(BadInput, match="/dev/zero is not a regular file"):
            read_bytes("/dev/zero", what="facts file", limit_key="data_file_bytes")
        assert time.monotonic() - started < 1

    def test_a_pipe_is_refused_without_blocking(self, tmp_path):
        """A FIFO is refused without waiting for a writer."""
        fifo = tmp_path / "facts.yaml"
        os.mkfifo(fifo)
        with pytest.raises(BadInput, match="not a regular file"):
            read_bytes(fifo, what="facts file", limit_key="data_file_bytes")

    def test_a_folder_and_a_missing_file_are_named(self, tmp_path):
        """A folder or a missing path is one line naming it."""
        with pytest.raises(BadInput, match="not a regular file"):
            read_text(tmp_path, what="playbook")
        with pytest.raises(BadInput, match=r"playbook .*nope\.yaml does not exist"):
            read_text(tmp_path / "nope.yaml", what="playbook")

    def test_over_the_limit_names_the_setting(self, tmp_path):
        """A file over its limit is refused naming the size, the limit and the settings key."""
        big = tmp_path / "big.yaml"
        big.write_bytes(b"a" * 2048)
        limits = limits_from_settings({"limits": {"data_file_bytes": 1024}})
        with pytest.raises(
            BadInput, match=r"2,048 bytes, over the limit of 1,024 \(\[limits\] data_file_bytes"
        ):
            read_bytes(big, what="facts file", limit_key="data_file_bytes", limits=limits)

    def test_text_that_is_not_utf8_names_the_line(self, tmp_path):
        """Bytes that are not UTF-8 are refused with their line number."""
        path = tmp_path / "x.yaml"
        path.write_bytes(b"a: 1\nb: \xff\n")
        with pytest.raises(BadInput, match="line 2: bytes that are not UTF-8"):
            read_text(path, what="facts file")


class TestYaml:
    def test_the_alias_bomb_is_refused_quickly(self):
        """A few hundred bytes of alias bomb are refused in well under a second, not after gigabytes."""
        assert len(ALIAS_BOMB) < 400
        started = time.monotonic()
        with pytest.raises(BadInput, match=r"once its aliases are expanded.*yaml_nodes"):
            load_yaml(ALIAS_BOMB, "bomb.yaml")
        assert time.monotonic() - started < 1

    def test_too_many_aliases(self):
        """More alias uses than the limit are refused with the line of the first one over it."""
        text = "a: &a x\nb: [" + ", ".join(["*a"] * 101) + "]\n"
        with pytest.raises(BadInput, match=r"line 2: refused: more aliases than the limit of 100"):
            load_yaml(text, "x.yaml")

    def test_deep_nesting_is_refused_not_a_recursion_error(self):
        """A hundred thousand nested lists are refused by the depth limit, not a RecursionError."""
        with pytest.raises(BadInput, match=r"nested deeper than the limit of 64"):
            load_yaml("[" * 100_000, "deep.yaml")

    def test_a_recursive_alias_is_refused(self):
        """An alias inside the value it names is refused."""
        with pytest.raises(BadInput, match="refers to a value that contains it"):
            load_yaml("a: &a [*a]\n", "x.yaml")

    def test_huge_numbers_nul_and_surrogates_are_refused(self):
        """A 4,000-digit number, an escaped NUL and a lone surrogate are each refused naming the key."""
        with pytest.raises(BadInput, match="number of more than 40 characters"):
            load_yaml("people_affected: " + "9" * 4000, "facts.yaml")
        with pytest.raises(BadInput, match=r"records\.x: refused: a number beyond"):
            load_yaml("records: {x: 10000000000000000000}", "facts.yaml")
        with pytest.raises(BadInput, match="title: refused: text with a NUL"):
            load_yaml('title: "a\\0b"', "x.yaml")
        with pytest.raises(BadInput, match="lone surrogate"):
            load_yaml('title: "\\ud800"', "x.yaml")

    def test_ordinary_documents_and_few_aliases_load(self):
        """A document with a few anchors and aliases loads as the safe loader would."""
        data = load_yaml("base: &b {x: 1}\nuse: *b\nlist: [1, 2.5, true, null]\n", "ok.yaml")
        assert data == {"base": {"x": 1}, "use": {"x": 1}, "list": [1, 2.5, True, None]}

    def test_syntax_errors_name_the_line(self):
        """Malformed YAML is one line with the source and line."""
        with pytest.raises(BadInput, match=r"x.yaml: line 2: malformed YAML"):
            load_yaml("a: [1\nb: ]", "x.yaml")


class TestJsonAndToml:
    def test_json_depth_nan_numbers_nul_and_surrogates(self):
        """JSON nesting, NaN, a 5,000-digit number, NUL and lone surrogates are refused in one line each."""
        for text, needle in (
            ("[" * 100_000 + "]" * 100_000, "nested deeper than the limit of 64"),
            ("[" * 65 + "]" * 65, "nested deeper than the limit of 64"),
            ("NaN", "NaN is not a number"),
            ("9" * 5000, "more than 40 digits"),
            ('{"cause": "\\u0000"}', "cause: refused: text with a NUL"),
            ('{"cause": "\\ud800"}', "cause: refused: text with a lone surrogate"),
        ):
            with pytest.raises(BadInput, match=needle):
                load_json(text, "content.json")
        assert load_json('{"a": [1, 2.5]}', "ok.json") == {"a": [1, 2.5]}

    def test_json_syntax_errors_name_the_line(self):
        """Malformed JSON names its line."""
        with pytest.raises(BadInput, match=r"x.json: line 2: invalid JSON"):
            load_json('{"a": 1,\n}', "x.json")

    def test_toml_nul_and_errors(self):
        """TOML with an escaped NUL or a syntax error is refused naming the file."""
        with pytest.raises(BadInput, match=r"settings.toml: firm.name: refused: text with a NUL"):
            load_toml('[firm]\nname = "a\\u0000"\n', "settings.toml")
        with pytest.raises(BadInput, match=r"settings.toml: invalid TOML"):
            load_toml("[firm\n", "settings.toml")


class TestLimitsSettings:
    def test_unknown_key_and_bad_values_are_refused(self):
        """[limits] accepts only known keys with whole positive numbers."""
        with pytest.raises(BadInput, match="unknown limit"):
            limits_from_settings({"limits": {"nope": 1}})
        for bad in (0, -1, True, "8"):
            with pytest.raises(BadInput, match="whole number"):
                limits_from_settings({"limits": {"yaml_depth": bad}})
        assert limits_from_settings({}) == DEFAULT_LIMITS

    def test_configured_limits_apply_to_every_reader(self, tmp_path):
        """The limits configured for the process bound readers that are given none."""
        path = tmp_path / "a.yaml"
        path.write_text("a: [[[1]]]\n")
        previous = configure_limits(limits_from_settings({"limits": {"yaml_depth": 2}}))
        try:
            with pytest.raises(BadInput, match="nested deeper than the limit of 2"):
                load_yaml(read_text(path, what="file"), str(path))
        finally:
            configure_limits(previous)
        assert load_yaml(read_text(path, what="file"), str(path)) == {"a": [[[1]]]}


class TestPrivateWrites:
    def test_modes_hold_under_umask_000(self, tmp_path, umask_000):
        """Under umask 000 the folders breach makes are 0700 and its files 0600."""
        path = write_private(tmp_path / "out" / "INC-1", "notice.eml", b"x", root=tmp_path)
        assert path.read_bytes() == b"x"
        assert mode(path) == 0o600
        assert mode(tmp_path / "out") == mode(tmp_path / "out" / "INC-1") == 0o700

    def test_missing_parents_above_the_root_are_private_too(self, tmp_path, umask_000):
        """Folders created above the named root are 0700 as well."""
        home = make_private_dirs(tmp_path / "a" / "b" / "ws", "config", "out")
        for folder in (tmp_path / "a", tmp_path / "a" / "b", home, home / "config", home / "out"):
            assert mode(folder) == 0o700, folder

    def test_a_linked_folder_is_refused_and_the_outside_untouched(self, tmp_path):
        """A symlink planted at out/<ID> is refused naming it; nothing is written where it points."""
        outside = tmp_path / "outside"
        outside.mkdir(mode=0o755)
        (tmp_path / "ws" / "out").mkdir(parents=True)
        (tmp_path / "ws" / "out" / "INC-1").symlink_to(outside)
        with pytest.raises(BadInput, match=r"out/INC-1 is a symbolic link"):
            write_private(tmp_path / "ws" / "out" / "INC-1", "n.eml", b"x", root=tmp_path / "ws")
        assert list(outside.iterdir()) == []
        assert mode(outside) == 0o755

    def test_a_link_at_the_final_name_is_refused(self, tmp_path):
        """A symlink at the file's own name is refused; its target keeps its content and mode."""
        victim = tmp_path / "victim"
        victim.write_text("keep")
        victim.chmod(0o644)
        (tmp_path / "out").mkdir()
        (tmp_path / "out" / "n.eml").symlink_to(victim)
        with pytest.raises(BadInput, match=r"n\.eml is a symbolic link"):
            write_private(tmp_path / "out", "n.eml", b"x", root=tmp_path)
        assert victim.read_text() == "keep" and mode(victim) == 0o644
        assert [p.name for p in (tmp_path / "out").iterdir()] == ["n.eml"]  # no temporary left

    @pytest.mark.parametrize("unnamed", [True, False], ids=["unnamed-first", "temporary-name"])
    def test_put_writes_new_and_replaces_existing_files_privately(self, tmp_path, umask_000, unnamed):
        """With or without unnamed files, put writes 0600 files, replaces old ones, leaves nothing else."""
        with PrivateFolder.open(tmp_path / "out", root=tmp_path) as folder:
            folder.unnamed = folder.unnamed and unnamed
            folder.put("a.md", b"first")
            folder.put("b.md", b"other")
            folder.put("a.md", b"second")  # a re-render after a crash: the same name, replaced
        assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.md", "b.md"]
        assert (tmp_path / "out" / "a.md").read_bytes() == b"second"
        assert mode(tmp_path / "out" / "a.md") == mode(tmp_path / "out" / "b.md") == 0o600

    def test_put_refuses_a_link_at_the_final_name(self, tmp_path):
        """A link planted where put writes is refused, not replaced or followed; no file is left over."""
        victim = tmp_path / "victim"
        victim.write_text("keep")
        (tmp_path / "out").mkdir()
        (tmp_path / "out" / "n.md").symlink_to(victim)
        with PrivateFolder.open(tmp_path / "out") as folder, pytest.raises(BadInput, match="symbolic link"):
            folder.put("n.md", b"x")
        assert victim.read_text() == "keep"
        assert [p.name for p in (tmp_path / "out").iterdir()] == ["n.md"]

    def test_temporary_names_are_unpredictable_and_exclusive(self, tmp_path):
        """Temporary files carry 64 random bits, are created exclusively, and vanish unless committed."""
        names = set()
        with PrivateFolder.open(tmp_path / "out", root=tmp_path) as folder:
            for _ in range(3):
                with folder.temporary("bundle.zip") as temp:
                    names.add(temp.name)
                    assert re.fullmatch(rf"\.bundle\.zip\.{os.getpid()}\.[0-9a-f]{{16}}\.tmp", temp.name)
                    assert mode(tmp_path / "out" / temp.name) == 0o600
            with folder.temporary("bundle.zip") as temp:
                with temp.file() as handle:
                    handle.write(b"zip")
                temp.commit()
        assert len(names) == 3
        assert [p.name for p in (tmp_path / "out").iterdir()] == ["bundle.zip"]

    def test_commit_without_replace_refuses_an_existing_file(self, tmp_path):
        """A commit that must not replace refuses an existing file and leaves no temporary behind."""
        (tmp_path / "out").mkdir()
        (tmp_path / "out" / "b.zip").write_text("old")
        with PrivateFolder.open(tmp_path / "out") as folder, pytest.raises(BadInput, match="exists already"):
            with folder.temporary("b.zip") as temp:
                temp.commit(replace=False)
        assert [p.name for p in (tmp_path / "out").iterdir()] == ["b.zip"]
        assert (tmp_path / "out" / "b.zip").read_text() == "old"

    def test_leftovers_of_dead_writers_are_cleaned(self, tmp_path):
        """Temporary files of a process that is gone are removed; a live one's and links are kept."""
        (tmp_path / "out").mkdir()
        dead = tmp_path / "out" / ".a.eml.999999999.0123456789abcdef.tmp"
        legacy = tmp_path / "out" / ".b.eml.999999999.3.tmp"
        mine = tmp_path / "out" / f".c.eml.{os.getpid()}.0123456789abcdef.tmp"
        for path in (dead, legacy, mine):
            path.write_text("x")
        link = tmp_path / "out" / ".d.eml.999999999.0123456789abcdef.tmp"
        link.symlink_to(tmp_path / "elsewhere")
        assert clean_temporaries(tmp_path / "out") == 2
        assert not dead.exists() and not legacy.exists() and mine.exists() and link.is_symlink()


class TestAppendPrivate:
    def test_log_is_created_0600_and_tightened(self, tmp_path, umask_000):
        """The log file is created 0600 under umask 000, and a 0666 one is brought back to 0600."""
        log = tmp_path / "logs" / "escalation.log"
        append_private(log, "one\n")
        assert mode(log) == 0o600 and mode(log.parent) == 0o700
        log.chmod(0o666)
        append_private(log, "two\n")
        assert log.read_text() == "one\ntwo\n" and mode(log) == 0o600

    def test_a_linked_log_is_refused(self, tmp_path):
        """A symlink at the log file is refused naming it; the file it points at is not appended to."""
        victim = tmp_path / "victim"
        victim.write_text("keep")
        (tmp_path / "escalation.log").symlink_to(victim)
        with pytest.raises(BadInput, match=r"escalation\.log is a symbolic link"):
            append_private(tmp_path / "escalation.log", "x\n")
        assert victim.read_text() == "keep"


class TestTrust:
    @pytest.fixture
    def workspace(self, tmp_path):
        home = make_private_dirs(tmp_path / "ws", "config", "playbooks", "templates")
        (home / "config" / "settings.toml").write_text("")
        (home / "playbooks" / "p.yaml").write_text("id: p\n")
        (home / "templates" / "zh-CN").mkdir()
        (home / "templates" / "zh-CN" / "customer_notice.md.j2").write_text("x")
        return home

    def test_a_private_workspace_is_trusted(self, workspace):
        """A workspace only its owner can write passes."""
        check_trusted(workspace)

    @pytest.mark.parametrize(
        "relative",
        ["", "config", "config/settings.toml", "playbooks/p.yaml", "templates/zh-CN/customer_notice.md.j2"],
    )
    def test_group_or_other_writable_is_refused_with_the_fix(self, workspace, relative):
        """Anything writable by group or others is refused naming it and the chmod that fixes it."""
        path = workspace / relative if relative else workspace
        path.chmod(0o666 if path.is_file() else 0o777)
        with pytest.raises(UntrustedWorkspace) as raised:
            check_trusted(workspace)
        assert str(raised.value).endswith(f"fix with: chmod go-w {path}")

    def test_a_file_owned_by_another_account_is_refused(self, workspace):
        """A playbook owned by another account is refused naming its owner and the chown that fixes it."""
        path = workspace / "playbooks" / "p.yaml"
        os.chown(path, 65534, 65534)
        with pytest.raises(UntrustedWorkspace, match=r"belongs to .*uid 65534.*fix with: chown"):
            check_trusted(workspace)

    def test_a_folder_that_is_no_workspace_is_not_judged(self, tmp_path):
        """A world-writable folder with no workspace in it is not refused: nothing is read from it."""
        tmp_path.chmod(0o777)
        check_trusted(tmp_path)
