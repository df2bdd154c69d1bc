"""A mail server out of reach during a mailing: said at once, waited for a bounded time, then given up.

When the server refuses the connection, times out, fails TLS or refuses the login, no recipient can be
reached, so the mailing pauses as a whole rather than charging each recipient a failed attempt. The
operator hears about it on the first failure; the sender waits with a growing pause for at most
``[notices] give_up_seconds`` (not at all when waiting cannot help, as with a refused login) and then
stops, every delivery still pending for the next ``breach notices send``.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from engine.outbox.smtp import ServerUnavailable

__all__ = ["Outage"]

_FIRST_PAUSE = 0.5
_LONGEST_PAUSE = 10.0


class Outage:
    """How long the mail server has been out of reach in this run, and whether to wait for it more."""

    def __init__(self, give_up_seconds: float, on_problem: Callable[[str], None] | None = None) -> None:
        self.give_up_seconds = give_up_seconds
        self.on_problem = on_problem
        self.since: float | None = None
        self.pause = _FIRST_PAUSE

    def wait(self, failure: ServerUnavailable) -> bool:
        """Tell the operator on the first failure; sleep and return True while waiting may still help,
        else return False: the run should stop."""
        now = time.monotonic()
        if self.since is None:
            self.since = now
            self.pause = _FIRST_PAUSE
            if self.on_problem:
                plan = (
                    f"trying again for up to {self.give_up_seconds:g} s"
                    if failure.waiting_helps and self.give_up_seconds > 0
                    else "stopping"
                )
                self.on_problem(f"{failure}; {plan}, nothing is lost: every delivery stays pending")
        left = self.give_up_seconds - (now - self.since)
        if not failure.waiting_helps or left <= 0:
            return False
        time.sleep(min(self.pause, left))
        self.pause = min(self.pause * 2, _LONGEST_PAUSE)
        return True

    def over(self) -> None:
        """The server answered again: a later outage is reported afresh."""
        self.since = None
