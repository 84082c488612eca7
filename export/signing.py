"""Sign bundles with an elliptic-curve key (OpenSSF model signing), and make such keys.

The signature is model-signing's own (``signing.Config().use_elliptic_key_signer``): sha256 of
every file of the bundle, ``model.sig`` excluded, so ``model_signing verify key`` and
``s2f-runtime --trust-key`` (``s2f.runtime.bundle.signature``) both check it. A bundle is verified
against its manifest before it is signed: a signature must never vouch for a file that was
already altered. The key is checked before an export's minutes of work, and ``model.sig``
appears whole or not at all.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from s2f.core.atomic import atomic_output
from s2f.core.errors import InputError
from s2f.core.extras import require
from s2f.runtime.bundle.manifest import SIGNATURE

PASSWORD_ENV = "S2F_SIGN_KEY_PASSWORD"  # the passphrase of an encrypted private key


def _password() -> bytes | None:
    value = os.environ.get(PASSWORD_ENV)
    return value.encode() if value else None


def check_signing_key(path: Path) -> str:
    """Refuse a key that cannot sign before any work is done; returns its public fingerprint."""
    require(f"signing a bundle ({path})", "signing")
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    from s2f.runtime.bundle.signature import check_curve, key_fingerprint, read_key_file

    data = read_key_file(path)
    if b"PUBLIC KEY" in data and b"PRIVATE KEY" not in data:
        raise InputError(path, "is a public key: sign with the private key (key.pem)")
    try:
        key = load_pem_private_key(data, _password())
    except TypeError:
        if _password() is None:
            raise InputError(path, f"is encrypted: put its passphrase in ${PASSWORD_ENV}") from None
        raise InputError(path, f"is not encrypted, but ${PASSWORD_ENV} is set: unset it") from None
    except ValueError as err:
        reason = "wrong passphrase in $" + PASSWORD_ENV if "decrypt" in str(err).lower() else "not a PEM private key"
        raise InputError(path, reason) from None
    check_curve(path, key, ec)
    return key_fingerprint(key.public_key())


def sign_bundle(root: str | Path, key: str | Path) -> str:
    """Write ``root/model.sig``, signed with the private key ``key``, after checking every
    file against the manifest; returns the key's fingerprint."""
    from s2f.runtime.bundle.reader import open_bundle

    root, key = Path(root), Path(key)
    fingerprint = check_signing_key(key)
    open_bundle(root, verify=True, cache=False, trust_key=False)
    from model_signing import hashing, signing

    config = signing.Config().use_elliptic_key_signer(private_key=key, password=_password())
    config.set_hashing_config(hashing.Config().set_ignored_paths(paths=[SIGNATURE]))
    with tempfile.TemporaryDirectory() as scratch:  # outside the bundle, which is being hashed
        written = Path(scratch) / SIGNATURE
        config.sign(root, written)
        with atomic_output(root / SIGNATURE) as handle:
            handle.write(written.read_bytes())
    return fingerprint


def generate_key_pair(private_path: str | Path, public_path: str | Path | None = None) -> tuple[Path, Path]:
    """A new P-256 key pair: the private key readable by its owner only, the public key beside
    it (``key.pem`` -> ``key.pub``). Never overwrites a key."""
    require("making a signing key", "signing")
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    private_path = Path(private_path)
    public_path = Path(public_path) if public_path else private_path.with_suffix(".pub")
    for path in (private_path, public_path):
        if path.exists():
            raise InputError(path, "already exists: a key is never overwritten (remove it yourself)")
    key = ec.generate_private_key(ec.SECP256R1())
    encryption = (serialization.BestAvailableEncryption(_password()) if _password()
                  else serialization.NoEncryption())
    private_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    public_pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
    with atomic_output(private_path, permissions=0o600) as handle:
        handle.write(private_pem)
    with atomic_output(public_path) as handle:
        handle.write(public_pem)
    return private_path, public_path
