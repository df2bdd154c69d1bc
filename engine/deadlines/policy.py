"""The alert policy of missed deadlines: repeats every N minutes, and levels that escalate after delays.

``[alerts]`` in settings.toml names the levels (level 1: the on-call or the task's owner, level 2: the
DPO, level 3: management ...), each with its delay after the due time, its channels and its recipients,
and how often a missed deadline's alert repeats until it is met or acknowledged.

The schedule is a pure function of the deadline's due time, the moment the checker marked it missed and
the clock, so any number of checkers compute the same alert for the same moment. Each alert has its own
outbox kind, unique per deadline: ``missed`` (level 1, first), ``missed#3`` (level 1, third repeat),
``missed:L2`` (level 2, first), ``missed:L2#1`` ... (with ``@r<round>`` after a recomputed due time).
The outbox's unique key then makes each (deadline, level, repeat) alert exist once, whoever decides it.
As with warnings, points a stopped checker slept through are skipped: only the latest is sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

__all__ = ["AlertPolicy", "Level", "MissedAlert", "missed_alert", "missed_kind", "parse_kind"]


@dataclass(frozen=True)
class Level:
    """One escalation level: who hears of a missed deadline from ``after`` past its due time."""

    number: int
    name: str
    after: timedelta
    channels: tuple[str, ...]


@dataclass(frozen=True)
class AlertPolicy:
    """Levels (the first starts at the due time) and the repeat interval (None: no repeats)."""

    levels: tuple[Level, ...]
    repeat: timedelta | None = None
    max_repeats: int = 0  # repeats per level at most; 0: until met, acknowledged or the next level

    @classmethod
    def single(cls, channels: list[str]) -> AlertPolicy:
        """Today's behaviour without ``[alerts]``: one level on the given channels, no repeats."""
        return cls((Level(1, "", timedelta(0), tuple(channels)),))

    def level(self, number: int) -> Level:
        """The level of that number (1 is the first)."""
        return self.levels[number - 1]


@dataclass(frozen=True)
class MissedAlert:
    """The alert a missed deadline owes now, and when the checker must look at it again."""

    level: int
    repeat: int
    kind: str
    next_check_at: datetime | None


def missed_kind(level: int, repeat: int, alert_round: int = 1) -> str:
    """The outbox kind of a missed deadline's alert at ``level`` (1-based), repeat ``repeat`` (0: first)."""
    text = "missed" + (f":L{level}" if level > 1 else "") + (f"#{repeat}" if repeat else "")
    return text + ("" if alert_round <= 1 else f"@r{alert_round}")


def parse_kind(kind: str) -> tuple[int, int]:
    """(level, repeat) of an outbox kind; warnings are level 1, repeat 0."""
    base = kind.split("@", 1)[0]
    if not base.startswith("missed"):
        return 1, 0
    rest, _, repeat = base.partition("#")
    level = rest.partition(":L")[2]
    return int(level or 1), int(repeat or 0)


def missed_alert(
    policy: AlertPolicy, *, due_at: datetime, missed_at: datetime, now: datetime, alert_round: int = 1
) -> MissedAlert:
    """The alert owed at ``now`` by a deadline due at ``due_at`` and marked missed at ``missed_at``.

    The level is the highest whose delay has passed; repeats at a level count from when it started (or
    from the miss being noticed, if later), every ``policy.repeat``.
    """
    index = max(i for i, lv in enumerate(policy.levels) if i == 0 or due_at + lv.after <= now)
    start = max(due_at + policy.levels[index].after, missed_at)
    repeat = 0
    upcoming: list[datetime] = []
    if policy.repeat is not None and policy.repeat > timedelta(0):
        repeat = max(0, int((now - start) / policy.repeat))
        if policy.max_repeats:
            repeat = min(repeat, policy.max_repeats)
        if not policy.max_repeats or repeat < policy.max_repeats:
            upcoming.append(start + (repeat + 1) * policy.repeat)
    if index + 1 < len(policy.levels):
        upcoming.append(due_at + policy.levels[index + 1].after)
    later = [at for at in upcoming if at > now]
    return MissedAlert(
        index + 1, repeat, missed_kind(index + 1, repeat, alert_round), min(later) if later else None
    )
