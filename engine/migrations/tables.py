"""Every table breach keeps, in one explicit list: the migrations, the schema check and tests use it.

Each table is defined beside the service that owns it; listing them here (instead of relying on whatever
modules happen to be imported) means a table is never missing from a migration or from ``create_all``.
"""

from __future__ import annotations

from sqlalchemy import MetaData
from sqlmodel import SQLModel

from engine.approvals.tables import ApprovalRequest
from engine.deadlines.tables import Deadline, Escalation, EscalationDelivery
from engine.documents.registry import Document
from engine.formal.report_data import ReportItemRecord
from engine.formal.responsible import ResponsiblePerson
from engine.incidents.tables import Event, Incident, IncidentCounter, PlaybookSnapshot, Task
from engine.incidents.worklog import WorkspaceLog, WorkspaceLogHead
from engine.notices.content import NoticeContentRecord
from engine.notices.correction import NoticeCorrection, NoticeRevision
from engine.notices.delivery import Delivery
from engine.notices.people import Person
from engine.register.table import FormalIssue
from engine.store.db import Store
from engine.tokens import AccessToken

__all__ = ["METADATA", "TABLES", "create_all"]

TABLES: tuple[type[SQLModel], ...] = (
    PlaybookSnapshot,
    Incident,
    IncidentCounter,
    Task,
    Event,
    WorkspaceLog,
    WorkspaceLogHead,
    Deadline,
    Escalation,
    EscalationDelivery,
    Person,
    NoticeContentRecord,
    NoticeRevision,
    NoticeCorrection,
    Document,
    Delivery,
    ResponsiblePerson,
    FormalIssue,
    ReportItemRecord,
    AccessToken,
    ApprovalRequest,
)

# SQLModel registers every table class on one MetaData; the list above makes sure they are all imported.
METADATA: MetaData = SQLModel.metadata


def create_all(store: Store) -> None:
    """Create every table directly (tests and benchmarks; workspaces use the migrations)."""
    METADATA.create_all(store.engine)
