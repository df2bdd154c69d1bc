"""The workspace's Ed25519 signing key: created by ``breach init``, kept 0600 outside the database.

The key signs what leaves the database (anchors of the chain heads, evidence bundles), so someone who
can rewrite the database but not read this file cannot produce a record that verifies against what was
signed before. Its public half is written beside it and printed by ``breach audit key``, for the
operator to keep elsewhere (``audit verify --bundle FILE --key PUBKEY`` checks against such a copy).
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from engine.errors import BadInput
from engine.files import make_private_dirs, read_bytes, write_private
from engine.workspace import Workspace

__all__ = [
    "PUBLIC_SUFFIX",
    "SigningKey",
    "create_key",
    "fingerprint",
    "key_path",
    "load_key",
    "load_public_key",
    "public_pem",
    "signature_valid",
]

PUBLIC_SUFFIX = ".pub"
DEFAULT_KEY = "keys/signing.key"


def key_path(workspace: Workspace) -> Path:
    """Where the workspace's private key lives (``[audit] signing_key``, relative to the workspace)."""
    configured = str((workspace.settings.get("audit") or {}).get("signing_key") or DEFAULT_KEY)
    path = Path(configured).expanduser()
    return path if path.is_absolute() else workspace.home / path


def fingerprint(public: Ed25519PublicKey) -> str:
    """The SHA-256 of the raw public key, hex: how anchors and bundles name the key that signed them."""
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def public_pem(public: Ed25519PublicKey) -> bytes:
    """The public key as PEM text, to keep elsewhere."""
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


class SigningKey:
    """The private key, able to sign, with its public half."""

    def __init__(self, private: Ed25519PrivateKey) -> None:
        self.private = private
        self.public = private.public_key()
        self.fingerprint = fingerprint(self.public)

    def sign(self, payload: bytes) -> str:
        """The signature of ``payload``, base64."""
        return base64.b64encode(self.private.sign(payload)).decode("ascii")


def create_key(workspace: Workspace) -> Path | None:
    """Create the workspace's key pair unless it exists; return the private key's path when created."""
    path = key_path(workspace)
    if path.exists() or path.is_symlink():
        return None
    make_private_dirs(path.parent)
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    write_private(path.parent, path.name, pem)
    write_private(path.parent, path.name + PUBLIC_SUFFIX, public_pem(private.public_key()))
    return path


def load_key(workspace: Workspace) -> SigningKey:
    """The workspace's signing key; a clear refusal when it is missing or not a key."""
    path = key_path(workspace)
    if not path.exists():
        raise BadInput(f"no signing key at {path}: run 'breach init' in the workspace to create one")
    try:
        private = serialization.load_pem_private_key(
            read_bytes(path, what="signing key", limit_key="data_file_bytes"), password=None
        )
    except ValueError:
        raise BadInput(f"{path} is not a PEM private key") from None
    if not isinstance(private, Ed25519PrivateKey):
        raise BadInput(f"{path} is not an Ed25519 key")
    return SigningKey(private)


def load_public_key(path: Path) -> Ed25519PublicKey:
    """A public key from a PEM file (``audit key`` prints one), or the public half of a private key."""
    data = read_bytes(path, what="signing key", limit_key="data_file_bytes")
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError:
        try:
            private = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError):
            raise BadInput(f"{path} is not a PEM public key") from None
        key = private.public_key()
    if not isinstance(key, Ed25519PublicKey):
        raise BadInput(f"{path} is not an Ed25519 public key")
    return key


def signature_valid(public: Ed25519PublicKey, payload: bytes, signature: str) -> bool:
    """Whether ``signature`` (base64) is ``public``'s signature of ``payload``."""
    try:
        public.verify(base64.b64decode(signature, validate=True), payload)
    except (InvalidSignature, ValueError):
        return False
    return True
