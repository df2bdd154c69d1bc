"""Claims under a lease: the one fenced update both outboxes (escalations, notice deliveries) rely on.

A sender owns a row while its ``claim_token`` is on it and its lease has not run out. Every change it
makes afterwards is an ``UPDATE ... WHERE id = ? AND claim_token = ?`` at the database's clock, so a
sender whose claim was taken over changes nothing. The hand-off (the last step before the point of no
return of a send) also requires the lease to be alive, and renews it: each send then has a whole lease
to finish however long the batch before it took, and nobody may take the row over meanwhile.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Table, func, update
from sqlmodel import Session

from engine.store.db import Store, changed_rows

__all__ = ["NOW", "fenced_update", "take_claim"]


class _DatabaseNow:
    """Stands for the database's now() among the values of a fenced update."""

    def __repr__(self) -> str:
        return "NOW"


NOW = _DatabaseNow()


def fenced_update(
    store: Store,
    table: Table,
    row_id: int,
    token: str,
    values: dict[str, Any],
    *,
    lease_seconds: float,
    hand_off: bool = False,
) -> int:
    """Update our own claim in a short transaction; return 1 if we still held it, else 0.

    With ``hand_off`` the lease must still be alive (status ``sending``) and is renewed from now.
    """
    c = table.c
    with store.write() as session:
        now = store.db_now(session)
        query = update(table).where(c.id == row_id, c.claim_token == token)
        resolved = {k: (now if v is NOW else v) for k, v in values.items()}
        if hand_off:
            query = query.where(c.status == "sending", c.lease_until > now)
            resolved["lease_until"] = now + timedelta(seconds=lease_seconds)
        return changed_rows(session.execute(query.values(resolved)))


def take_claim(
    session: Session,
    table: Table,
    row: Any,
    token: str,
    now: datetime,
    *,
    in_doubt: bool,
    lease_seconds: float,
    settle: str | None = None,
) -> bool:
    """Take ``row`` under ``token`` in the caller's transaction; False when someone changed it first.

    The row must still have the status and claim token it was read with (a compare-and-set). Taken, it
    is ``sending`` under a lease of ``lease_seconds`` with one more attempt counted; with ``settle`` it
    takes that status instead (held in doubt, cancelled) without a lease or an attempt.
    """
    c = table.c
    won = session.execute(
        update(table)
        .where(
            c.id == row.id,
            c.status == row.status,
            func.coalesce(c.claim_token, "") == (row.claim_token or ""),
        )
        .values(
            status=settle or "sending",
            claim_token=token,
            lease_until=None if settle else now + timedelta(seconds=lease_seconds),
            attempts=c.attempts + (0 if settle else 1),
            handed_off_at=None,
            in_doubt=in_doubt,
        )
    )
    return changed_rows(won) == 1
