"""Ed25519 keys and signatures for bundles (cryptography's implementation).

A bundle's manifest (bundle.toml) lists the SHA-256 of every file, so signing the manifest signs
the bundle. The signature sits beside it in `bundle.toml.sig`: the key's id, the algorithm and
the signature, as JSON. A device trusts the public keys it was given (`--trust PUB`), and
refuses a bundle that is unsigned, signed by another key, or whose manifest changed after
signing (docs/deploy.md has the threat model).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeagent.errors import EdgeAgentError
from edgeagent.paths import publishing

ALGORITHM = "ed25519"
PRIVATE_NAME = "signing.key"
PUBLIC_NAME = "signing.pub"


class SignatureError(EdgeAgentError):
    """A bundle whose signature cannot be trusted; `reason` says which way: "unsigned",
    "malformed", "untrusted" or "bad"."""

    def __init__(self, message: str, reason: str, hint: str = "") -> None:
        super().__init__(message, hint=hint)
        self.reason = reason


@dataclass(frozen=True)
class KeyPair:
    private: Path
    public: Path
    key_id: str


def _crypto() -> Any:
    try:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError:  # pragma: no cover (a core dependency)
        raise EdgeAgentError(
            "signing needs the cryptography package", hint="pip install cryptography"
        ) from None
    return serialization, ed25519


def new_keys(out: str | Path) -> KeyPair:
    """A new key pair: `out/signing.key` (PEM, readable by its owner only) and `out/signing.pub`.
    An existing key is never overwritten."""
    serialization, ed25519 = _crypto()
    out = Path(out)
    private_path, public_path = out / PRIVATE_NAME, out / PUBLIC_NAME
    for path in (private_path, public_path):
        if path.exists():
            raise EdgeAgentError(
                f"{path} exists: keys are never overwritten",
                hint="pass another --out, or remove the old keys first",
            )
    out.mkdir(parents=True, exist_ok=True)
    key = ed25519.Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with publishing(private_path) as tmp:
        # created 0600, never readable by others, not even for a moment
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(private_pem)
    with publishing(public_path) as tmp:
        tmp.write_bytes(public_pem)
    return KeyPair(private_path, public_path, key_id(public_path))


def _public_raw(public: Any) -> bytes:
    serialization, _ = _crypto()
    return bytes(public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))


def load_public(path: str | Path) -> Any:
    return _load(path, "public")


def load_private(path: str | Path) -> Any:
    return _load(path, "private")


def _load(path: str | Path, kind: str) -> Any:
    """An Ed25519 key from a PEM file, or an error that names the file and what to pass."""
    serialization, ed25519 = _crypto()
    try:
        data = Path(path).read_bytes()
        if kind == "public":
            key = serialization.load_pem_public_key(data)
        else:
            key = serialization.load_pem_private_key(data, password=None)
    except (OSError, ValueError, TypeError) as exc:
        name = PUBLIC_NAME if kind == "public" else PRIVATE_NAME
        raise EdgeAgentError(
            f"{path}: not a readable {kind} key ({exc})",
            hint=f"pass a {name} written by edgeagent keys new",
        ) from None
    wanted = ed25519.Ed25519PublicKey if kind == "public" else ed25519.Ed25519PrivateKey
    if not isinstance(key, wanted):
        raise EdgeAgentError(f"{path}: not an Ed25519 {kind} key")
    return key


def key_id(public_path: str | Path) -> str:
    """A short name for a public key: the first 16 hex digits of SHA-256 of its raw bytes."""
    return _id(load_public(public_path))


def _id(public: Any) -> str:
    return hashlib.sha256(_public_raw(public)).hexdigest()[:16]


def sign(private_path: str | Path, data: bytes) -> dict[str, str]:
    """The signature record of `data` (written as JSON beside what it signs)."""
    key = load_private(private_path)
    signature = key.sign(data)
    return {
        "algorithm": ALGORITHM,
        "key_id": _id(key.public_key()),
        "signature": base64.b64encode(signature).decode("ascii"),
    }


def check(data: bytes, record_text: str | None, trusted: list[str | Path]) -> str:
    """The id of the trusted key that signed `data`; SignatureError otherwise, saying why."""
    from cryptography.exceptions import InvalidSignature

    if record_text is None:
        raise SignatureError(
            "the bundle is not signed (no bundle.toml.sig)",
            "unsigned",
            hint="build it with --sign KEY",
        )
    try:
        record = json.loads(record_text)
        if record.get("algorithm") != ALGORITHM:
            raise ValueError(f"algorithm {record.get('algorithm')!r}")
        signature = base64.b64decode(record["signature"], validate=True)
        signer = str(record["key_id"])
    except (ValueError, KeyError, TypeError) as exc:
        raise SignatureError(f"the bundle's signature is unreadable ({exc})", "malformed") from None
    keys = {_id(k): k for k in (load_public(p) for p in trusted)}
    if signer not in keys:
        raise SignatureError(
            f"the bundle is signed by key {signer}, which is not among the trusted keys "
            f"({', '.join(sorted(keys)) or 'none given'})",
            "untrusted",
            hint="pass the signer's public key with --trust, if you trust it",
        )
    try:
        keys[signer].verify(signature, data)
    except InvalidSignature:
        raise SignatureError(
            f"the signature by key {signer} does not match the manifest (the manifest was "
            "changed after signing, or the signature is damaged)",
            "bad",
        ) from None
    return signer
