"""Running the deadline scan on a schedule with APScheduler 3.x, until SIGINT or SIGTERM.

APScheduler only *triggers* the scan: one interval job in a memory job store, ``coalesce=True`` (a
backlog of missed ticks runs once) and ``max_instances=1`` (a slow scan is never overlapped by the next
one). The deadlines themselves live in our own table, never as one job per deadline: APScheduler's job
stores must not be shared between processes (its FAQ), while several checkers may share our table.

Signals only set an event; the main thread then shuts the scheduler down and waits for a scan in
progress to finish, so a stop never leaves a claim half-done (and if it did, the outbox lease covers it).
"""

from __future__ import annotations

import re
import signal
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from types import FrameType

from engine.errors import BadInput

__all__ = ["parse_interval", "run_every"]

_INTERVAL = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|secs|seconds?|m|min|mins|minutes?|h|hours?)?\s*$")
_SECONDS = {"s": 1, "m": 60, "h": 3600}
JOB_ID = "deadline-scan"


def parse_interval(text: str) -> float:
    """Read "30s", "5m", "1h" or a bare number of seconds; at least one second, at most a day."""
    match = _INTERVAL.match(text or "")
    if match is None:
        raise BadInput(f"malformed interval {text!r}: use e.g. 30s, 5m or 1h")
    seconds = float(match.group(1)) * _SECONDS[(match.group(2) or "s")[0]]
    if not 1 <= seconds <= 86400:
        raise BadInput(f"interval {text!r} is out of range: between 1s and 24h")
    return seconds


def run_every(
    job: Callable[[], None], every_seconds: float, *, on_stop: Callable[[str], None] | None = None
) -> str:
    """Run ``job`` now and every ``every_seconds`` until SIGINT or SIGTERM; return the signal's name.

    ``job`` runs in the scheduler's single worker thread; an exception in it is the job's business
    (APScheduler logs it and the next tick runs as usual).
    """
    from apscheduler.executors.pool import ThreadPoolExecutor
    from apscheduler.jobstores.memory import MemoryJobStore
    from apscheduler.schedulers.background import BackgroundScheduler

    stop = threading.Event()
    received: list[str] = []

    def _handle(signum: int, _frame: FrameType | None) -> None:
        received.append(signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, _handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    scheduler = BackgroundScheduler(
        jobstores={"default": MemoryJobStore()},
        executors={"default": ThreadPoolExecutor(max_workers=1)},
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": max(1, int(every_seconds))},
        timezone=UTC,
    )
    scheduler.add_job(job, "interval", seconds=every_seconds, id=JOB_ID, next_run_time=datetime.now(UTC))
    try:
        scheduler.start()
        while not stop.wait(timeout=1.0):
            pass
    finally:
        # Waits for a scan in progress: its claims and deliveries are recorded before we exit.
        if scheduler.running:
            scheduler.shutdown(wait=True)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    name = received[0] if received else "stop"
    if on_stop is not None:
        on_stop(name)
    return name
