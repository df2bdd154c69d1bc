"""Who has been notified: a notice task is complete only when every recipient of its audience has it.

Recipients are reached by the channel they chose: email through ``breach notices send``, SMS, post and
public announcement outside breach, recorded by an operator (``breach notices record``). A person counts
as notified once any of their deliveries is done (sent, or skipped on purpose in a drill), so a letter
sent after a bounced email counts too. Until everyone counts, the task stays open and the operator is
told who is missing, by channel; then it is completed through the flow, which meets its deadline in the
same transaction.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import exists, func, select

from engine.errors import NotAllowed
from engine.incidents.hooks import Hooks
from engine.incidents.tables import Task
from engine.incidents.tasks import complete_task
from engine.notices.delivery import DELIVERY, DONE, TASKS
from engine.notices.passes import AUDIENCE
from engine.notices.people import PERSON
from engine.store.db import Store

__all__ = ["complete_notice_tasks", "missing_by_channel"]


def missing_by_channel(store: Store, incident_id: str, kind: str) -> tuple[int, dict[str, int]]:
    """The size of ``kind``'s audience, and those of it without a done delivery, counted per channel."""
    p, c = PERSON.c, DELIVERY.c
    done = exists().where(
        c.person_id == p.id, c.incident_id == incident_id, c.kind == kind, c.status.in_(DONE)
    )
    audience = (p.incident_id == incident_id) & (p.type == AUDIENCE[kind])
    with store.read() as session:
        total = session.execute(select(func.count()).where(audience)).scalar_one()
        missing = session.execute(
            select(p.channel, func.count()).where(audience, ~done).group_by(p.channel).order_by(p.channel)
        ).all()
    return int(total), {str(channel): int(n) for channel, n in missing}


def _task_status(store: Store, incident_id: str, task: str) -> str | None:
    with store.read() as session:
        return session.execute(
            select(Task.status).where(Task.incident_id == incident_id, Task.key == task)  # type: ignore[call-overload]
        ).scalar_one_or_none()


def _task_opened(store: Store, incident_id: str, task: str) -> datetime | None:
    with store.read() as session:
        opened: datetime | None = session.execute(
            select(Task.opened_at).where(Task.incident_id == incident_id, Task.key == task)  # type: ignore[call-overload]
        ).scalar_one_or_none()
        return opened


def complete_notice_tasks(
    store: Store,
    incident_id: str,
    *,
    actor: str,
    hooks: Hooks,
    at: datetime | None = None,
    reason: str | None = None,
    zone: str = "UTC",
) -> dict[str, str]:
    """Complete each notice task whose whole audience is notified; say per task what happened or is missing.

    Kinds without an audience (no client companies among the recipients) are left to the operator.
    ``at`` is when the last notices really went out (``notices record --at``): the task is done then,
    or when it opened if that was later (notices sent before their phase count from its start).
    """
    outcome: dict[str, str] = {}
    for kind, task in TASKS.items():
        total, missing = missing_by_channel(store, incident_id, kind)
        if not total:
            continue
        status = _task_status(store, incident_id, task)
        if missing:
            if status == "open":
                waiting = ", ".join(f"{channel} {n}" for channel, n in missing.items())
                outcome[task] = (
                    f"open: {sum(missing.values())} of {total} recipients not notified yet ({waiting}); "
                    "SMS, post and announcements are recorded with 'breach notices record'"
                )
            continue
        if status != "open":
            outcome[task] = "done already" if status == "done" else "not open in the current phase"
            continue
        note = f"notices delivered to all {total} recipients (breach notices send / record)"
        when = None
        if at is not None:
            opened = _task_opened(store, incident_id, task)
            when = max(at, opened) if opened is not None else at
        try:
            complete_task(
                store,
                incident_id,
                task,
                actor=actor,
                note=note,
                hooks=hooks,
                at=when,
                reason=reason,
                zone=zone,
            )
            outcome[task] = "completed"
        except NotAllowed as exc:  # completed by someone else meanwhile
            outcome[task] = str(exc)
    return outcome
