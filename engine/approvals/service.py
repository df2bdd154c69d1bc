"""Requesting a step that needs approval, and approving it under the approver's own identity.

The request is recorded on the incident's trail (``approval_requested``) and in ``approval_request``.
``approve`` checks, in this order, that the request is still pending and not expired, that the approver
is not the requester (either side of an entry made with ``--as`` counts), that the approver is the person
the request names, and that they hold the role the step needs; any refusal is kept in the workspace log
(``approval_refused``). The step itself then runs, and the request is marked approved in the same
transaction, so an approval never exists without its step, nor a step without its approval.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import update
from sqlmodel import Session, select

from engine.access import RoleMap, identity_key, normal_name, same_person
from engine.approvals.tables import ApprovalRequest
from engine.deadlines.tables import Deadline
from engine.errors import BadInput, Conflict, NotAllowed, NotFound
from engine.incidents.audit import append_event
from engine.incidents.flow import AdvanceResult, RoleRefused, advance
from engine.incidents.hooks import Hooks
from engine.incidents.repository import flush_or_conflict, get_incident, incident_playbook
from engine.incidents.worklog import append_log
from engine.store.db import Store, utcnow

__all__ = ["Approved", "approve", "expires_after", "request_deadline_waiver", "request_trigger"]

REQUEST = ApprovalRequest.__table__  # type: ignore[attr-defined]


def _record_request(
    session: Session,
    incident: Any,
    *,
    kind: str,
    step: str,
    detail: dict[str, Any],
    approver: str,
    role: str,
    actor: str,
    lifetime: timedelta,
) -> ApprovalRequest:
    now = utcnow()
    row = ApprovalRequest(
        incident_id=incident.id,
        kind=kind,
        step=step,
        detail=detail,
        approver=approver,
        role=role,
        requested_by=actor,
        requested_at=now,
        expires_at=now + lifetime,
    )
    session.add(row)
    session.flush()
    append_event(
        session,
        incident,
        kind="approval_requested",
        actor=actor,
        at=now,
        from_state=incident.state,
        to_state=incident.state,
        reason=detail.get("reason"),
        inputs={"request": row.id, "kind": kind, "step": step, "approver": approver, "role": role},
    )
    flush_or_conflict(session, incident.id)
    return row


def _named_approver(approver: str, actor: str) -> str:
    if not approver.strip():
        raise BadInput("this step needs --approver NAME (the account the approver runs breach under)")
    named = normal_name(approver, what="approver")
    if same_person(named, actor):
        raise NotAllowed(f"the approver must be someone other than the operator ({actor})")
    return named


def request_trigger(
    store: Store,
    incident_id: str,
    trigger: str,
    *,
    actor: str,
    approver: str,
    reason: str | None,
    inputs: dict[str, str],
    lifetime: timedelta,
) -> ApprovalRequest:
    """Ask for approval of a trigger that names an approver; the step waits for ``approve``."""
    with store.write() as session, session.no_autoflush:
        incident = get_incident(session, incident_id)
        playbook = incident_playbook(session, incident).playbook
        spec = playbook.transition(trigger, incident.state)
        if spec is None or not spec.approver:
            raise NotAllowed(f"trigger {trigger!r} needs no approval in state {incident.state}")
        if spec.reason == "required" and not (reason or "").strip():
            raise BadInput(f"trigger {trigger!r} needs --reason (a written rationale)")
        named = _named_approver(approver, actor)
        role = next((str(param) for name, param in spec.guards if name == "approver_role"), "")
        return _record_request(
            session,
            incident,
            kind="trigger",
            step=trigger,
            detail={"reason": (reason or "").strip() or None, "inputs": dict(inputs)},
            approver=named,
            role=role,
            actor=actor,
            lifetime=lifetime,
        )


def request_deadline_waiver(
    store: Store,
    incident_id: str,
    rule_id: str,
    *,
    actor: str,
    approver: str,
    reason: str,
    subject: str | None,
    role: str,
    lifetime: timedelta,
) -> ApprovalRequest:
    """Ask for approval of a deadline waiver; the deadline is waived when ``approve`` runs."""
    if not reason.strip():
        raise BadInput("a waiver needs --reason (a written rationale)")
    named = _named_approver(approver, actor)
    with store.write() as session, session.no_autoflush:
        incident = get_incident(session, incident_id)
        rows = list(session.exec(select(Deadline).where(Deadline.incident_id == incident_id)))
        matching = [r for r in rows if r.rule_id == rule_id and (subject is None or r.subject == subject)]
        if not matching:
            known = ", ".join(sorted({r.rule_id for r in rows}))
            raise NotFound(f"{incident_id} has no deadline {rule_id} (its deadlines: {known or 'none'})")
        if all(r.status not in ("pending", "warned", "missed") for r in matching):
            raise NotAllowed(f"deadline {rule_id} is {matching[0].status}: only a running one can be waived")
        return _record_request(
            session,
            incident,
            kind="deadline_waiver",
            step=rule_id,
            detail={"reason": reason.strip(), "subject": subject},
            approver=named,
            role=role,
            actor=actor,
            lifetime=lifetime,
        )


@dataclass(frozen=True)
class Approved:
    """What an approval did."""

    request: int
    kind: str
    step: str
    requested_by: str
    trigger: AdvanceResult | None


def _refuse(store: Store, request: ApprovalRequest, account: str, why: str, hint: str = "") -> NotAllowed:
    with store.write() as session:
        append_log(
            session,
            actor=account,
            kind="approval_refused",
            incident_id=request.incident_id,
            detail=f"request {request.id} ({request.step}): {why}",
        )
    told = f"; {hint}" if hint else ""
    return NotAllowed(f"request {request.id} not approved: {why} (the refusal is recorded){told}")


def _mark(request_id: int, account: str) -> Any:
    """A hook marking the request approved inside the step's own transaction."""

    def mark(session: Session) -> None:
        won = session.connection().execute(
            update(REQUEST)
            .where(REQUEST.c.id == request_id, REQUEST.c.status == "pending")
            .values(status="approved", decided_by=account, decided_at=utcnow())
        )
        if won.rowcount != 1:
            raise Conflict(f"request {request_id} was decided meanwhile: nothing was done")

    return mark


def approve(
    store: Store,
    incident_id: str,
    request_id: int,
    *,
    account: str,
    roles: RoleMap,
    hooks: Hooks,
    zone: str,
    waive: Any,
) -> Approved:
    """Approve a pending request as ``account`` and take the step it asks for, in one transaction.

    ``waive`` is :func:`engine.deadlines.waiver.waive` (passed in, so this package needs no deadline code).
    """
    with store.read() as session:
        request = session.exec(
            select(ApprovalRequest).where(
                ApprovalRequest.id == request_id, ApprovalRequest.incident_id == incident_id
            )
        ).first()
    if request is None:
        raise NotFound(f"{incident_id} has no approval request {request_id}")
    if request.status != "pending":
        raise NotAllowed(f"request {request_id} is {request.status}, not pending")
    if utcnow() > request.expires_at:
        with store.write() as session:
            session.connection().execute(
                update(REQUEST)
                .where(REQUEST.c.id == request_id, REQUEST.c.status == "pending")
                .values(status="expired", decided_at=utcnow())
            )
        raise _refuse(store, request, account, f"it expired at {request.expires_at.isoformat()}")
    if same_person(account, request.requested_by):
        raise _refuse(store, request, account, f"{account} asked for it and cannot approve it")
    if identity_key(account) != identity_key(request.approver):
        raise _refuse(store, request, account, f"it asks {request.approver}, not {account}, to approve")
    if request.role and not roles.holds(account, request.role):
        raise _refuse(
            store,
            request,
            account,
            f"{account} does not hold the role {request.role}",
            roles.how_to_grant(account, [request.role]),
        )
    mark = _mark(request_id, account)
    if request.kind == "trigger":
        with_mark = Hooks(
            after_change=[*hooks.after_change, lambda step: mark(step.session)],
            on_open=hooks.on_open,
            roles=hooks.roles,
            situation=hooks.situation,
        )
        try:
            result = advance(
                store,
                incident_id,
                request.step,
                actor=request.requested_by,
                zone=zone,
                reason=request.detail.get("reason"),
                approver=account,
                inputs=dict(request.detail.get("inputs") or {}),
                hooks=with_mark,
            )
        except RoleRefused as refused:
            # The step is the requester's: the role it lacks is theirs to be granted.
            hint = roles.how_to_grant(request.requested_by, refused.missing)
            raise NotAllowed(f"{refused}; {hint}") from None
        return Approved(request_id, request.kind, request.step, request.requested_by, result)
    waive(
        store,
        incident_id,
        request.step,
        reason=str(request.detail.get("reason") or ""),
        approver=account,
        actor=request.requested_by,
        subject=request.detail.get("subject"),
        within=mark,
    )
    return Approved(request_id, request.kind, request.step, request.requested_by, None)


def expires_after(settings: dict[str, Any]) -> timedelta:
    """How long a request waits for its approver (``[approvals] expire_hours``, 72 by default)."""
    hours = (settings.get("approvals") or {}).get("expire_hours", 72)
    if not isinstance(hours, int | float) or isinstance(hours, bool) or not 0 < hours <= 24 * 365:
        raise BadInput("[approvals] expire_hours must be a number of hours between 0 and 8760")
    return timedelta(hours=float(hours))
