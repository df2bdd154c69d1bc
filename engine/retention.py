"""Keeping the record as long as the law asks: evidence bundles and purging after retention.

``export_bundle`` writes a zip of everything the engine holds about one incident (the incident, its audit
events, tasks, deadlines, documents and their files) with a manifest of SHA-256 hashes; the export itself
is an audit event carrying the manifest's hash. ``verify_bundle`` checks every file against the manifest
and recomputes the audit chain inside the bundle. ``purge_incident`` deletes an incident only when its
retention period (config/legal/retention.yaml, PIPL Art 55-56) has passed, leaving a tombstone in the
workspace log.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
import zipfile
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import delete, select

from engine.errors import BadInput, NotAllowed
from engine.files import PrivateFolder, current_limits, load_json, load_yaml, os_error, read_bytes, read_text
from engine.incidents.audit import append_event, canonical_json, verify_rows
from engine.incidents.repository import flush_or_conflict, get_incident
from engine.incidents.tables import Event, Incident
from engine.incidents.worklog import append_log
from engine.migrations.tables import METADATA
from engine.record.signing import SigningKey, fingerprint, public_pem, signature_valid
from engine.store.db import Store, table_of, utcnow
from engine.workspace import Workspace

__all__ = [
    "BundleReport",
    "Retention",
    "bundle_signature",
    "export_bundle",
    "load_retention",
    "purge_incident",
    "verify_bundle",
]

BUNDLE_FORMAT = "breach-evidence/1"


@dataclass(frozen=True)
class Retention:
    """The retention rule in force, with its legal basis."""

    rule: str
    article: str
    source: str
    verified: bool
    minimum_years: int

    def keep_until(self, closed_at: datetime) -> date:
        """The first day the incident may be purged."""
        day = closed_at.astimezone(UTC).date()
        try:
            return day.replace(year=day.year + self.minimum_years)
        except ValueError:  # 29 February closes; the period ends on 28 February (Civil Code month rule)
            return day.replace(year=day.year + self.minimum_years, day=28)


def load_retention(workspace: Workspace) -> Retention:
    """Read ``legal/retention.yaml`` (the workspace's copy shadowing the built-in one)."""
    path = workspace.config_file("legal/retention.yaml")
    raw = load_yaml(read_text(path, what="retention data file"), str(path))
    try:
        years = int(raw["minimum_years"])
        if years < 0:
            raise ValueError("minimum_years must not be negative")
        return Retention(
            str(raw["id"]), str(raw["article"]), str(raw["source"]), bool(raw["verified"]), years
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise BadInput(f"{path}: invalid retention data: {exc}") from None


def _incident_tables() -> list[Any]:
    """Tables holding rows of one incident, children before parents (the order deletes need)."""
    tables = [t for t in reversed(METADATA.sorted_tables) if "incident_id" in t.c]
    return [t for t in tables if t.name != "workspace_log"]


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC).isoformat()
    return value


def _rows(session: Any, table: Any, incident_id: str) -> list[dict[str, Any]]:
    order = [table.c[name] for name in ("seq", "id") if name in table.c]
    result = session.execute(select(table).where(table.c.incident_id == incident_id).order_by(*order))
    return [{k: _jsonable(v) for k, v in row._mapping.items()} for row in result]


SIGNATURE_FORMAT = "breach-evidence-signature/1"
SIGNATURE_FILE = "signature.json"


def bundle_signature(signer: SigningKey, manifest: dict[str, Any], digest: str) -> bytes:
    """The bundle's signature file: the manifest hash and chain head, signed by the workspace key."""
    statement = {
        "format": SIGNATURE_FORMAT,
        "incident": manifest["incident"],
        "manifest_sha256": digest,
        "audit_head": manifest["audit_head"],
        "event_count": manifest["event_count"],
    }
    return json.dumps(
        {
            "statement": statement,
            "key": signer.fingerprint,
            "public_key": public_pem(signer.public).decode("ascii"),
            "signature": signer.sign(canonical_json(statement).encode()),
        },
        ensure_ascii=False,
        indent=2,
        sort_keys=True,
    ).encode("utf-8")


def export_bundle(
    store: Store,
    incident_id: str,
    out: Path,
    *,
    actor: str,
    root: Path | None = None,
    signer: SigningKey | None = None,
) -> tuple[Path, str]:
    """Write the evidence bundle of an incident (mode 0600); return its path and manifest hash.

    With ``signer`` (the workspace key), the bundle carries ``signature.json``: the manifest's hash and
    the chain head, signed, with the public key's fingerprint, so a bundle whose files and manifest were
    both rewritten no longer verifies against a copy of the public key kept elsewhere.

    The bundle is written under an unpredictable temporary name, created exclusively and without
    following a link, in the folder of ``out`` (no link followed below ``root``, the workspace). It
    takes its name inside the transaction that records the "exported" event: either both happen or
    neither, and no temporary file is left behind.

    :raises BadInput: when ``out`` exists already (a bundle is evidence: never overwritten), is a
        folder or a link, or cannot be written (a full disk says so).
    """
    target = Path(os.path.abspath(out))
    with PrivateFolder.open(target.parent, root=root) as folder:
        if folder.exists(target.name):
            if os.path.islink(target):
                raise BadInput(f"{target} is a symbolic link: breach never writes through links; remove it")
            kind = "a folder" if target.is_dir() else "a file"
            raise BadInput(f"{target} exists already ({kind}): give --out a new file name")
        with folder.temporary(target.name) as temp:
            placed = False
            try:
                with store.write() as session, session.no_autoflush:
                    incident, parts = _bundle_parts(session, incident_id)
                    manifest = {
                        "format": BUNDLE_FORMAT,
                        "incident": incident_id,
                        "created_at": utcnow().isoformat(),
                        "audit_head": incident.audit_head,
                        "event_count": incident.event_count,
                        "files": {n: hashlib.sha256(d).hexdigest() for n, d in sorted(parts.items())},
                    }
                    manifest_bytes = json.dumps(
                        manifest, ensure_ascii=False, indent=2, sort_keys=True
                    ).encode()
                    digest = hashlib.sha256(manifest_bytes).hexdigest()
                    try:
                        with (
                            temp.file() as handle,
                            zipfile.ZipFile(handle, "w", zipfile.ZIP_DEFLATED) as bundle,
                        ):
                            bundle.writestr("manifest.json", manifest_bytes)
                            if signer is not None:
                                bundle.writestr(SIGNATURE_FILE, bundle_signature(signer, manifest, digest))
                            for name, data in parts.items():
                                bundle.writestr(name, data)
                    except OSError as exc:
                        raise os_error(target, exc, "cannot write") from None
                    # The export is itself on the record, with the hash that identifies this bundle.
                    append_event(
                        session,
                        incident,
                        kind="exported",
                        actor=actor,
                        at=utcnow(),
                        from_state=incident.state,
                        to_state=incident.state,
                        inputs={"bundle": target.name, "manifest_sha256": digest},
                    )
                    flush_or_conflict(session, incident_id)
                    temp.commit(replace=False)
                    placed = True
            except BaseException:
                if placed:  # the event did not commit: the bundle it would name goes too
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(target.name, dir_fd=folder.fd)
                raise
    return target, digest


def _bundle_parts(session: Any, incident_id: str) -> tuple[Incident, dict[str, bytes]]:
    """The incident row and every file of its bundle but the manifest."""
    incident = get_incident(session, incident_id)
    parts: dict[str, bytes] = {
        "incident.json": canonical_json(
            {c.name: _jsonable(getattr(incident, c.name)) for c in table_of(Incident).columns}
        ).encode("utf-8"),
    }
    documents: list[dict[str, Any]] = []
    for table in _incident_tables():
        rows = _rows(session, table, incident_id)
        parts[f"{table.name}.json"] = canonical_json(rows).encode("utf-8")
        if table.name == "document":
            documents = rows
    for doc in documents:
        path = Path(str(doc.get("path") or ""))
        if path.is_file():
            parts[f"files/{doc['id']}-{path.name}"] = read_bytes(
                path, what="document", limit_key="document_file_bytes"
            )
    return incident, parts


@dataclass(frozen=True)
class _ExportedEnd:
    """The end of an exported chain, as the bundle's incident.json records it."""

    id: str
    event_count: int
    audit_head: str


@dataclass(frozen=True)
class BundleReport:
    """The outcome of checking a bundle."""

    incident_id: str
    manifest_sha256: str
    events: int
    problems: list[str]
    signed_by: str | None = None
    key_checked: bool = False

    @property
    def ok(self) -> bool:
        """True when nothing is wrong."""
        return not self.problems


def _check_bundle_shape(path: Path, bundle: zipfile.ZipFile) -> None:
    """Refuse a bundle whose members would inflate past the limits, before any is read."""
    limits = current_limits()
    members = bundle.infolist()
    if len(members) > limits.bundle_members:
        raise BadInput(
            f"{path}: {len(members):,} members, over the limit of {limits.describe('bundle_members')}"
        )
    total = 0
    for info in members:
        total += info.file_size
        if total > limits.bundle_unpacked_bytes:
            raise BadInput(
                f"{path}: inflates past the limit of {limits.describe('bundle_unpacked_bytes')}: "
                "refused unread"
            )
        # A small member may compress well by chance; a large one inflating by a huge ratio is a bomb.
        if info.file_size > 1024 * 1024 and info.file_size > info.compress_size * limits.bundle_ratio:
            raise BadInput(
                f"{path}: member {info.filename} inflates {info.file_size // max(info.compress_size, 1):,} "
                f"times, over the limit of {limits.describe('bundle_ratio')}: refused unread"
            )
        if info.filename.endswith(".json") and info.file_size > limits.bundle_json_bytes:
            raise BadInput(
                f"{path}: member {info.filename} is {info.file_size:,} bytes, over the limit of "
                f"{limits.describe('bundle_json_bytes')}"
            )


def _member_sha256(bundle: zipfile.ZipFile, name: str) -> str:
    """The SHA-256 of a member, read in chunks (never the whole member in memory)."""
    digest = hashlib.sha256()
    with bundle.open(name) as member:
        for chunk in iter(lambda: member.read(1024 * 1024), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_bundle(path: Path, public: Ed25519PublicKey | None = None) -> BundleReport:
    """Check each file against the manifest, the audit chain inside the bundle, and its signature
    (against ``public``, a copy of the workspace's public key kept elsewhere, when given).

    The bundle must be a regular file within ``[limits] bundle_bytes``; its members are checked for
    count, inflated size and compression ratio before any is read (a zip bomb is refused unread).

    :raises BadInput: naming the bundle and the limit, or what makes it no evidence bundle.
    """
    limits = current_limits()
    try:
        info = os.stat(path)
    except OSError as exc:
        raise os_error(path, exc, "cannot read bundle") from None
    if not stat.S_ISREG(info.st_mode):
        raise BadInput(f"bundle {path} is not a regular file (a folder, device or pipe): give a file")
    if info.st_size > limits.bundle_bytes:
        raise BadInput(
            f"bundle {path} is {info.st_size:,} bytes, over the limit of {limits.describe('bundle_bytes')}"
        )
    try:
        bundle = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile, ValueError) as exc:
        raise BadInput(f"{path}: not an evidence bundle ({exc})") from None
    with bundle:
        _check_bundle_shape(path, bundle)
        try:
            return _verify_members(path, bundle, public)
        except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, RuntimeError) as exc:
            raise BadInput(f"{path}: damaged bundle ({exc})") from None


def _check_signature(
    raw: bytes | None, digest: str, manifest: dict[str, Any], public: Ed25519PublicKey | None
) -> tuple[list[str], str | None]:
    """Problems with the bundle's signature, and the fingerprint of the key that signed it."""
    if raw is None:
        return (["not signed: the bundle has no signature.json"] if public is not None else []), None
    try:
        entry = json.loads(raw)
        statement, signature, fingerprint_ = entry["statement"], str(entry["signature"]), str(entry["key"])
        embedded = serialization.load_pem_public_key(str(entry["public_key"]).encode("ascii"))
    except (ValueError, KeyError, TypeError):
        return ["signature.json: not a breach signature"], None
    problems = []
    if statement.get("manifest_sha256") != digest:
        problems.append("signature.json: signs another manifest (the manifest was rewritten)")
    if statement.get("audit_head") != manifest.get("audit_head"):
        problems.append("signature.json: signs another chain head than the manifest states")
    payload = canonical_json(statement).encode()
    if public is not None:
        if fingerprint(public) != fingerprint_:
            problems.append(
                f"signed by key {fingerprint_[:16]}, not by the key given ({fingerprint(public)[:16]})"
            )
        elif not signature_valid(public, payload, signature):
            problems.append("signature.json: the signature does not verify with the key given")
    elif not isinstance(embedded, Ed25519PublicKey) or not signature_valid(embedded, payload, signature):
        problems.append("signature.json: the signature does not verify")
    return problems, fingerprint_


def _verify_members(path: Path, bundle: zipfile.ZipFile, public: Ed25519PublicKey | None) -> BundleReport:
    names = set(bundle.namelist())
    if "manifest.json" not in names:
        raise BadInput(f"{path}: not an evidence bundle (no manifest.json)")
    manifest_bytes = bundle.read("manifest.json")
    manifest = load_json(manifest_bytes, f"{path}: manifest.json")
    listed = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(listed, dict) or not all(isinstance(v, str) for v in listed.values()):
        raise BadInput(f"{path}: manifest.json is not a breach manifest")
    problems = [
        f"{name}: not listed in the manifest"
        for name in sorted(names - set(listed) - {"manifest.json", SIGNATURE_FILE})
    ]
    signature_problems, signed_by = _check_signature(
        bundle.read(SIGNATURE_FILE) if SIGNATURE_FILE in names else None,
        hashlib.sha256(manifest_bytes).hexdigest(),
        manifest,
        public,
    )
    problems += signature_problems
    for name, expected in sorted(listed.items()):
        if name not in names:
            problems.append(f"{name}: missing")
        elif _member_sha256(bundle, name) != expected:
            problems.append(f"{name}: content does not match its hash")
    events = 0
    if "incident.json" in names and "event.json" in names:
        incident_row = load_json(bundle.read("incident.json"), f"{path}: incident.json")
        rows = load_json(bundle.read("event.json"), f"{path}: event.json")
        try:
            incident = _ExportedEnd(
                id=incident_row["id"],
                event_count=incident_row["event_count"],
                audit_head=incident_row["audit_head"],
            )
            chain = [
                Event(
                    **{
                        **r,
                        "at": datetime.fromisoformat(r["at"]),
                        "occurred_at": datetime.fromisoformat(r["occurred_at"])
                        if r.get("occurred_at")
                        else None,
                    }
                )
                for r in rows
            ]
        except (KeyError, TypeError, ValueError):
            problems.append("incident.json or event.json: not the rows breach exports")
        else:
            events = len(chain)
            report = verify_rows(incident, chain)
            if not report.ok:
                problems.append(f"audit trail: {report.problem}")
    else:
        problems.append("incident.json or event.json: missing")
    return BundleReport(
        str(manifest.get("incident")),
        hashlib.sha256(manifest_bytes).hexdigest(),
        events,
        problems,
        signed_by,
        public is not None,
    )


def purge_incident(
    store: Store,
    incident_id: str,
    *,
    actor: str,
    reason: str,
    retention: Retention,
    now: datetime | None = None,
) -> list[Path]:
    """Delete a closed incident whose retention has passed; return the document files removed."""
    if not reason.strip():
        raise BadInput("purging needs --reason")
    now = now or utcnow()
    with store.write() as session:
        incident = get_incident(session, incident_id)
        if incident.closed_at is None:
            raise NotAllowed(f"{incident_id} is not closed; only closed incidents can be purged")
        until = retention.keep_until(incident.closed_at)
        if now.date() < until:
            raise NotAllowed(
                f"{incident_id} must be kept until {until.isoformat()} ({retention.article}: "
                f"{retention.minimum_years} years after closing, {retention.rule})"
            )
        files = [
            Path(r["path"])
            for t in _incident_tables()
            if t.name == "document"
            for r in _rows(session, t, incident_id)
            if r.get("path")
        ]
        detail = (
            f"closed {incident.closed_at.isoformat()}, {incident.event_count} events, audit head "
            f"{incident.audit_head}; reason: {reason.strip()}"
        )
        # The tombstone first: the database lets an incident's events go only once the append-only
        # workspace log holds its purge (migration 0014).
        append_log(session, actor=actor, kind="purged", incident_id=incident_id, detail=detail)
        for table in _incident_tables():
            session.execute(delete(table).where(table.c.incident_id == incident_id))
        session.execute(delete(table_of(Incident)).where(table_of(Incident).c.id == incident_id))
    removed = []
    for path in files:  # after the commit: a crash here leaves files, never rows pointing nowhere
        if path.is_file():
            path.unlink()
            removed.append(path)
    return removed
