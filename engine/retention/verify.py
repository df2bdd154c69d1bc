"""Checking an evidence bundle: every file against the manifest, the audit chain inside the bundle
recomputed, and the signature against the workspace's public key when one is given.

It stands alone because it reads only the bundle (``breach audit verify --bundle`` works far from the
workspace that wrote it) and because a bundle is untrusted input: its size and members are bounded
before anything in it is read.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import zipfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from engine.errors import BadInput
from engine.files import current_limits, load_json, os_error
from engine.incidents.audit import canonical_json, verify_rows
from engine.incidents.tables import Event
from engine.record.signing import fingerprint, signature_valid
from engine.retention.export import SIGNATURE_FILE

__all__ = ["BundleReport", "verify_bundle"]


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
