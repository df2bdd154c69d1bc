"""When a step really happened: the ``--at`` time an operator gives for work done outside breach.

The audit chain keeps its recording order (``Event.at``); the entered time is stored beside it
(``Event.occurred_at``) and is what deadlines, documents and the timeline use. A time is refused when it
cannot be true: in the future, before the incident was discovered, or before the step could have happened
(the task opened, the state was entered). A time far in the past needs a written reason.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from engine.clocks.durations import format_instant
from engine.errors import BadInput

__all__ = ["REASON_AFTER", "check_step_time"]

# A step entered more than this long after it happened is explained in the audit trail.
REASON_AFTER = timedelta(hours=24)


def check_step_time(
    at: datetime,
    *,
    now: datetime,
    discovered_at: datetime,
    zone: str,
    reason: str | None,
    floors: list[tuple[datetime, str]] | None = None,
) -> datetime:
    """Return ``at`` if it can be when the step happened; ``BadInput`` (one line) says why not.

    ``floors`` are the moments the step cannot precede, each with words for it ("task X opened").
    """
    shown = format_instant(at, zone)
    if at > now:
        raise BadInput(f"--at {shown} is in the future (now {format_instant(now, zone)})")
    if at < discovered_at:
        raise BadInput(
            f"--at {shown} is before the incident was discovered ({format_instant(discovered_at, zone)})"
        )
    for floor, what in floors or []:
        if at < floor:
            raise BadInput(f"--at {shown} is before {what} ({format_instant(floor, zone)})")
    if now - at > REASON_AFTER and not (reason or "").strip():
        raise BadInput(
            f"--at {shown} is more than 24 hours before now: give --reason (why it is recorded late)"
        )
    return at
