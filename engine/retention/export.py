"""Evidence bundles: a zip of everything the engine holds about one incident.

``export_bundle`` writes the incident, its audit events, tasks, deadlines, documents and their files with
a manifest of SHA-256 hashes, optionally signed with the workspace key; the export itself is an audit
event carrying the manifest's hash. Checking a bundle is :mod:`engine.retention.verify`, which needs none
of the database this module writes through.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import zipfile
from pathlib import Path
from typing import Any

from engine.errors import BadInput
from engine.files import PrivateFolder, os_error, read_bytes
from engine.incidents.audit import append_event, canonical_json
from engine.incidents.repository import flush_or_conflict, get_incident
from engine.incidents.tables import Incident
from engine.record.signing import SigningKey, public_pem
from engine.retention.incident_rows import incident_rows, incident_tables, jsonable
from engine.store.db import Store, table_of, utcnow

__all__ = [
    "BUNDLE_FORMAT",
    "SIGNATURE_FILE",
    "SIGNATURE_FORMAT",
    "bundle_signature",
    "export_bundle",
]

BUNDLE_FORMAT = "breach-evidence/1"
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
            {c.name: jsonable(getattr(incident, c.name)) for c in table_of(Incident).columns}
        ).encode("utf-8"),
    }
    documents: list[dict[str, Any]] = []
    for table in incident_tables():
        rows = incident_rows(session, table, incident_id)
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
