"""The wheel, installed (not editable) into a fresh venv, works from any directory.

The wheel is built from this checkout into a temporary folder and installed with ``--no-deps`` into a new
venv whose ``.pth`` file makes the test venv's site-packages visible, so the dependencies resolve without
a network. Every ``breach`` command then runs from an unrelated temporary directory, and the built-in
playbooks, templates and config must be found inside the installed package, never in the checkout.
"""

from __future__ import annotations

import json
import os
import site
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
BUILTIN_DIRS = ("playbooks", "templates", "config")
# pip's words when it cannot fetch the build backend (hatchling): no index reachable, nothing cached.
NETWORK_TROUBLE = ("No matching distribution found", "Could not find a version", "NewConnectionError")


@dataclass(frozen=True)
class Installed:
    """A fresh venv with the wheel in it, and a directory that has nothing to do with the checkout."""

    wheel: Path
    venv: Path
    site_packages: Path
    elsewhere: Path

    @property
    def breach(self) -> str:
        """The console script the wheel installed."""
        return str(self.venv / "bin" / "breach")

    def env(self) -> dict[str, str]:
        """The caller's environment without anything that points back at the checkout or a workspace."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("BREACH_", "PYTHON", "VIRTUAL_ENV"))}
        env["TMPDIR"] = str(self.elsewhere)  # breach demo's throwaway workspace goes here
        env["COLUMNS"] = "200"
        return env

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run a program from the unrelated directory; fail with its output when it exits non-zero."""
        result = subprocess.run(
            args, capture_output=True, text=True, cwd=self.elsewhere, env=self.env(), timeout=120
        )
        assert result.returncode == 0, f"{' '.join(args)} exited {result.returncode}:\n{result.stderr}"
        return result


def _pip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    """Build the wheel, install it into a fresh venv, and hand over an unrelated working directory."""
    root = tmp_path_factory.mktemp("packaging")
    dist = root / "dist"
    built = _pip("wheel", "--no-deps", "--quiet", "--wheel-dir", str(dist), str(REPO))
    if built.returncode != 0:
        if any(needle in built.stderr for needle in NETWORK_TROUBLE):
            pytest.skip(f"cannot build the wheel: the build backend is not reachable ({built.stderr[-300:]})")
        raise AssertionError(f"pip wheel failed:\n{built.stderr}")
    (wheel,) = dist.glob("breach-*.whl")
    venv = root / "fresh"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    install = _pip("--python", str(python), "install", "--no-deps", "--no-index", "--quiet", str(wheel))
    assert install.returncode == 0, install.stderr
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    site_packages = Path(purelib)
    # Plain paths in a .pth are appended to sys.path without running that folder's own .pth files, so the
    # test venv's editable hook for this checkout stays inactive in the fresh venv.
    deps = [p for p in site.getsitepackages() if Path(p) != site_packages]
    (site_packages / "zz_test_venv_deps.pth").write_text("\n".join(deps) + "\n", encoding="utf-8")
    elsewhere = root / "elsewhere"
    elsewhere.mkdir()
    yield Installed(wheel, venv, site_packages, elsewhere)


class TestWheel:
    def test_wheel_carries_the_builtin_data(self, installed: Installed) -> None:
        """The wheel holds the built-in playbooks, templates and config under engine/_builtin/."""
        names = zipfile.ZipFile(installed.wheel).namelist()
        for folder in BUILTIN_DIRS:
            assert any(n.startswith(f"engine/_builtin/{folder}/") for n in names), folder
        assert "engine/_builtin/playbooks/cn-agency-firm.yaml" in names
        assert "engine/_builtin/config/settings.toml" in names
        assert any(n.startswith("engine/migrations/versions/") for n in names)

    def test_engine_comes_from_the_fresh_venv(self, installed: Installed) -> None:
        """The fresh venv imports the installed package, not the checkout, and finds its data inside it."""
        probe = (
            "import json, engine, engine.workspace as w\n"
            "root = w.builtin_root()\n"
            "print(json.dumps({'engine': engine.__file__, 'root': str(root),\n"
            "  'templates': sorted(str(p.relative_to(root)) for p in (root / 'templates').rglob('*.j2')),\n"
            "  'settings': str(w.Workspace.resolve('.').config_file('settings.toml'))}))"
        )
        out = json.loads(installed.run(str(installed.venv / "bin" / "python"), "-I", "-c", probe).stdout)
        builtin = installed.site_packages / "engine" / "_builtin"
        assert Path(out["engine"]).is_relative_to(installed.site_packages), out["engine"]
        assert Path(out["root"]) == builtin
        assert out["templates"], "no templates shipped"
        assert Path(out["settings"]) == builtin / "config" / "settings.toml"
        assert str(REPO) not in json.dumps(out)


class TestInstalledCli:
    def test_version(self, installed: Installed) -> None:
        """breach --version prints the package version."""
        from engine import __version__

        assert installed.run(installed.breach, "--version").stdout.strip() == f"breach {__version__}"

    def test_init_and_playbook_list(self, installed: Installed) -> None:
        """breach init makes a workspace; the built-in playbook is listed from the installed package."""
        home = installed.elsewhere / "ws"
        installed.run(installed.breach, "init", str(home))
        assert (home / "breach.db").is_file()
        assert all((home / folder).is_dir() for folder in BUILTIN_DIRS)
        listed = json.loads(
            installed.run(installed.breach, "--home", str(home), "playbook", "list", "--json").stdout
        )
        by_id = {p["id"]: p for p in listed}
        assert "cn-agency-firm" in by_id
        path = Path(by_id["cn-agency-firm"]["path"])
        assert path.is_relative_to(installed.site_packages / "engine" / "_builtin" / "playbooks"), path

    def test_demo(self, installed: Installed) -> None:
        """breach demo walks the sample incident to closed with an intact audit trail."""
        out = installed.run(installed.breach, "demo").stdout
        assert "closed" in out
        assert "intact" in out
        assert str(installed.elsewhere) in out  # its throwaway workspace, in TMPDIR
