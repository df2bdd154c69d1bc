"""Access tokens for the web dashboard and its HTTP API: created once, shown once, stored as a hash.

A token is 32 random bytes (``brt_`` + URL-safe base64). Only its SHA-256 is kept: a copy of the database
gives nobody a working token, and a slow password hash would add nothing to a secret of that length.
Creating and revoking a token are recorded in the workspace log (``engine.incidents.worklog``), as is
every request the server refuses for want of a valid one.

Roles: ``viewer`` may open the dashboard pages and the API; ``api`` only the API (a script's token
never opens pages meant for people).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Column, Table, insert, select, update
from sqlmodel import Field, SQLModel

from engine.errors import BadInput, NotFound
from engine.incidents.worklog import append_log
from engine.store.db import Store, UTCDateTime, table_of, utcnow

__all__ = [
    "PREFIX",
    "ROLES",
    "TOKEN",
    "AccessToken",
    "TokenInfo",
    "create_token",
    "digest",
    "list_tokens",
    "revoke_token",
]

ROLES = {"viewer": "dashboard pages and the API", "api": "the API only"}
PREFIX = "brt_"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


class AccessToken(SQLModel, table=True):
    """A token for the web dashboard or API: its name, role and hash; never the token itself."""

    __tablename__ = "access_token"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=64, unique=True)
    role: str = Field(max_length=16)
    token_sha256: str = Field(max_length=64, unique=True)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    created_by: str = Field(max_length=100)
    revoked_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    revoked_by: str | None = Field(default=None, max_length=100)


TOKEN: Table = table_of(AccessToken)


@dataclass(frozen=True)
class TokenInfo:
    """What ``breach token list`` shows of a token (never the token)."""

    name: str
    role: str
    created_at: datetime
    created_by: str
    revoked_at: datetime | None


def digest(token: str) -> str:
    """The stored form of a token."""
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def _checked_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise BadInput(
            f"token name {name[:70]!r}: use 1 to 64 letters, digits, '.', '_' or '-', starting with a letter "
            "or digit"
        )
    return name


def create_token(store: Store, *, name: str, role: str, actor: str) -> str:
    """Create a token and return it: the only time it exists outside the caller's hands."""
    _checked_name(name)
    if role not in ROLES:
        choices = ", ".join(f"{r} ({what})" for r, what in ROLES.items())
        raise BadInput(f"--role {role!r} is not one of {choices}")
    token = PREFIX + secrets.token_urlsafe(32)
    t = TOKEN.c
    with store.write() as session:
        if session.execute(select(t.id).where(t.name == name)).first() is not None:
            raise BadInput(f"a token named {name!r} exists: revoke it first or choose another name")
        session.execute(
            insert(TOKEN).values(
                name=name, role=role, token_sha256=digest(token), created_at=utcnow(), created_by=actor
            )
        )
        append_log(session, actor=actor, kind="token_created", incident_id="", detail=f"{name} ({role})")
    return token


def list_tokens(store: Store) -> list[TokenInfo]:
    """Every token, revoked ones included, oldest first."""
    t = TOKEN.c
    with store.read() as session:
        rows = session.execute(
            select(t.name, t.role, t.created_at, t.created_by, t.revoked_at).order_by(t.id)
        ).all()
    return [TokenInfo(r.name, r.role, r.created_at, r.created_by, r.revoked_at) for r in rows]


def revoke_token(store: Store, *, name: str, actor: str) -> None:
    """Revoke a token at once: the next request carrying it is refused."""
    t = TOKEN.c
    with store.write() as session:
        row = session.execute(select(t.id, t.revoked_at).where(t.name == name)).first()
        if row is None:
            raise NotFound(f"no token named {name[:70]!r}: see breach token list")
        if row.revoked_at is not None:
            raise BadInput(f"token {name!r} was already revoked")
        session.execute(update(TOKEN).where(t.id == row.id).values(revoked_at=utcnow(), revoked_by=actor))
        append_log(session, actor=actor, kind="token_revoked", incident_id="", detail=name)
