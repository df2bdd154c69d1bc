"""The dashboard in a real browser: Debian's headless Chromium driven by Selenium against `breach serve`.

The pages must load without a console error, draw one SVG bar per clock, and count down to the due
time the database holds. A screenshot of each page is kept in ``test-artifacts/`` (or
``$BREACH_TEST_ARTIFACTS``) for a person to look at; it is not compared pixel by pixel.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from conftest import BREACH, REPO

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
ARTIFACTS = Path(os.environ.get("BREACH_TEST_ARTIFACTS", REPO / "test-artifacts"))
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1280,1600",
)

pytestmark = pytest.mark.skipif(
    not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)),
    reason="Debian's chromium and chromium-driver are not installed (bash .ci/setup installs them)",
)


@pytest.fixture
def browser():
    """Headless Chromium with a fresh profile, its console captured."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="breach-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def served(tmp_path):
    """`breach serve` on a free loopback port over a SQLite workspace; stopped (by its pid) afterwards."""
    from conftest import Cli

    home = tmp_path / "ws"
    home.mkdir()
    cli = Cli(home, None)
    cli("init", str(home), check=True)
    env = {**os.environ, "BREACH_HOME": str(home)}
    env.pop("BREACH_DATABASE_URL", None)

    def start() -> str:
        proc = subprocess.Popen(
            [BREACH, "serve", "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        started.append(proc)
        line = proc.stdout.readline() if proc.stdout else ""
        found = re.search(r"serving (http://\S+/)", line)
        assert found, (line, proc.stderr.read() if proc.poll() is not None and proc.stderr else "")
        return found.group(1)

    started: list[subprocess.Popen[str]] = []
    yield cli, start
    for proc in started:
        proc.terminate()
        proc.wait(timeout=20)


def console_errors(driver) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def remaining_seconds(text: str) -> int:
    """Seconds a zh-CN countdown ("剩余 3小时20分钟") says are left."""
    units = {"天": 86400, "小时": 3600, "分钟": 60}
    return sum(int(n) * units[u] for n, u in re.findall(r"(\d+)(天|小时|分钟)", text))


class TestDashboardInChromium:
    def test_index_and_incident_page(self, served, browser):
        """Both incidents listed; the incident page has a bar per clock and counts down to the due time."""
        from selenium.webdriver.common.by import By

        cli, start = served
        an_hour_ago = (datetime.now(ZoneInfo("Asia/Shanghai")) - timedelta(hours=1)).strftime(
            "%Y-%m-%d %H:%M"
        )
        incident = cli.open_incident("--set", "people_affected=8000", discovered_at=an_hour_ago)
        drill = cli.open_incident("--drill", title="演练")
        cli("task", "done", incident, "stop_transfer", check=True)
        url = start()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)

        browser.get(url)
        rows = browser.find_elements(By.CSS_SELECTOR, "tr.incident")
        assert {r.get_attribute("data-id") for r in rows} == {incident, drill}
        assert "演练" in browser.find_element(By.CSS_SELECTOR, f'tr[data-id="{drill}"]').text
        assert console_errors(browser) == []
        browser.save_screenshot(str(ARTIFACTS / "dashboard-index.png"))

        browser.find_element(By.LINK_TEXT, incident).click()
        assert browser.current_url.endswith(f"/incidents/{incident}")
        shown = cli.json("incident", "show", incident)
        clocks = shown["deadlines"]
        assert len(clocks) >= 2
        bars = browser.find_elements(By.CSS_SELECTOR, '#chart-clocks svg g[id^="clock-bar-"]')
        assert len(bars) == len(clocks)
        assert len(browser.find_elements(By.CSS_SELECTOR, '#chart-clocks svg g[id^="now-line-"]')) == len(
            clocks
        )

        running = [d for d in clocks if d["status"] in ("pending", "warned")]
        nearest = min(running, key=lambda d: datetime.fromisoformat(d["due_at"]))
        countdown = browser.find_element(By.CSS_SELECTOR, "#nearest .countdown")
        due = datetime.fromisoformat(countdown.get_attribute("data-due"))
        assert due == datetime.fromisoformat(nearest["due_at"]).replace(microsecond=0)
        expected = (due - datetime.now(UTC)).total_seconds()
        assert abs(remaining_seconds(countdown.text) - expected) <= 120, countdown.text
        assert int(countdown.get_attribute("data-remaining")) == pytest.approx(expected, abs=120)
        assert console_errors(browser) == []
        browser.save_screenshot(str(ARTIFACTS / "dashboard-incident.png"))
        assert (ARTIFACTS / "dashboard-incident.png").stat().st_size > 10_000
