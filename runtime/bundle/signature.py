"""Check that a bundle was signed by a key you trust (OpenSSF model signing, key-pair method).

The sha256 list in ``manifest.json`` catches accidents: a truncated copy, a flipped bit, an
edited file. It cannot tell who made the bundle, since whoever changes a file can rewrite the
manifest to match. A signature can: ``s2f bundle sign`` (or ``s2f export bundle --sign-key``)
writes ``model.sig``, a standard ``model-signing`` signature (a Sigstore bundle holding a
DSSE envelope) over the sha256 of every other file of the directory, manifest included, made
with an elliptic-curve private key; offline, no transparency log. ``model_signing verify key``
checks it as well as we do.

Why the digests come from the manifest: model-signing's own check hashes every file of the
directory on every open, which for a full-size bundle is most of a cold start and all of a warm
one, and reads the 580 MB face encoder even when only speech -> face runs. Here the signed
digests are compared with the manifest's (``manifest.json`` itself hashed, from the same
bytes that were parsed) and the files on disk must be exactly the manifest's. So the signature
vouches for the manifest, and the manifest for each file: ``Bundle.require`` checks a graph's
and its weights' sha256 (hash cache included) before onnxruntime ever sees them, as it does for
unsigned bundles. A signature made with other hashing settings (blake3, shards) is checked the
standard way instead, hashing every file.

This module imports ``model_signing`` only when a bundle is checked against a key (the
``signing`` extra); the runtime without it runs unsigned bundles.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import re
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Literal

from s2f.core.errors import InputError, read_head
from s2f.core.extras import require
from s2f.runtime.bundle.manifest import MANIFEST, SIGNATURE

if TYPE_CHECKING:
    from s2f.runtime.bundle.reader import Bundle

log = logging.getLogger(__name__)
TRUST_KEY_ENV = "S2F_TRUST_KEY"  # a public key every bundle must be signed with (CLI, serve, Python API)
MAX_KEY_BYTES = 1 << 16  # a PEM key is well under a kilobyte
SUPPORTED_CURVES = ("secp256r1", "secp384r1", "secp521r1")  # those model-signing's key-pair method accepts


def trusted_key(explicit: str | Path | Literal[False] | None) -> Path | None:
    """The public key bundles must be signed with: the one given, else ``$S2F_TRUST_KEY``
    (``False``: none)."""
    if explicit is False:
        return None
    if explicit is not None:
        return Path(explicit)
    from_env = os.environ.get(TRUST_KEY_ENV, "").strip()
    return Path(from_env) if from_env else None


def key_fingerprint(public_key) -> str:
    """sha256 of the key's PEM, the identifier model-signing records as the signature's key hint."""
    from cryptography.hazmat.primitives import serialization

    pem = public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(pem).hexdigest()


def load_public_key(path: Path):
    """The elliptic-curve public key in ``path``, or one line saying what the file is instead."""
    require(f"checking a bundle signature ({path})", "signing")
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import load_pem_private_key, load_pem_public_key

    data = read_key_file(path)
    try:
        key = load_pem_public_key(data)
    except (ValueError, TypeError):
        try:
            load_pem_private_key(data, None)
            is_private = True
        except (ValueError, TypeError):
            is_private = b"PRIVATE KEY" in data
        if is_private:
            raise InputError(path, "is a private key: trust the public key (key.pub), and keep this one secret") \
                from None
        raise InputError(path, "not a PEM public key (expected '-----BEGIN PUBLIC KEY-----')") from None
    check_curve(path, key, ec)
    return key


def read_key_file(path: Path) -> bytes:
    data = read_head(path, MAX_KEY_BYTES + 1, "key file")
    if len(data) > MAX_KEY_BYTES:
        raise InputError(path, "is too large to be a key file")
    return data


def check_curve(path: Path, key, ec) -> None:
    if not isinstance(key, ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey):
        raise InputError(path, f"is a {type(key).__name__.removeprefix('_')} key; bundle signatures use elliptic-curve "
                               f"keys ({', '.join(SUPPORTED_CURVES)}): make one with 's2f bundle keygen'")
    if key.curve.name not in SUPPORTED_CURVES:
        raise InputError(path, f"elliptic curve {key.curve.name} is not supported; use one of "
                               f"{', '.join(SUPPORTED_CURVES)}")


def unsigned_entries(root: Path, listed: set[str]) -> list[str]:
    """Everything in the bundle directory besides ``listed``, the manifest and the signature:
    a file the signature does not vouch for (subdirectories and links included)."""
    allowed = listed | {MANIFEST, SIGNATURE}
    extra = []
    for folder, subfolders, files in os.walk(root):
        relative = Path(folder).relative_to(root)
        for name in files + subfolders:
            path = (relative / name).as_posix()
            if path not in allowed:
                extra.append(path)
        subfolders.clear()  # a subfolder is already one unsigned entry; its contents need no listing
    return sorted(extra)


def verify_signature(bundle: Bundle, key_path: Path) -> str:
    """Refuse ``bundle`` unless ``model.sig`` is a valid signature by ``key_path``'s key over
    exactly its files; returns the key's fingerprint. The files' own sha256 are checked later,
    when they are loaded (see the module docstring)."""
    public_key = load_public_key(key_path)
    signature = bundle.root / SIGNATURE
    if not signature.is_file() or signature.is_symlink():
        raise InputError(bundle.root, f"is not signed (no {SIGNATURE}), and {key_path} is trusted: sign it with "
                                      "'s2f bundle sign'")
    extra = unsigned_entries(bundle.root, set(bundle.manifest.files))
    if extra:
        shown = ", ".join(extra[:5]) + (f" and {len(extra) - 5} more" if len(extra) > 5 else "")
        raise InputError(bundle.root, f"holds files the signature does not cover: {shown}")
    from model_signing import verifying

    def check(config: verifying.Config) -> None:
        with _quiet_stdout():
            config.use_elliptic_key_verifier(public_key=key_path).verify(bundle.root, signature)

    try:
        try:
            check(verifying.Config().set_hashing_config(_digests_from_manifest(bundle)))
        except ValueError as err:
            if not str(err).startswith("Signature mismatch"):
                raise
            log.debug("%s: the signed digests are not the manifest's; checking every file the standard way", signature)
            check(verifying.Config())
    except Exception as err:  # noqa: BLE001 - whatever model-signing raises on a forged or broken signature
        raise InputError(signature, _reason(err, key_path)) from None
    return key_fingerprint(public_key)


def _reason(err: Exception, key_path: Path) -> str:
    """model-signing's exception as one line a user can act on."""
    text = str(err).strip()
    if text.startswith("Key mismatch") or type(err).__name__ == "InvalidSignature":
        return f"not signed by the trusted key {key_path} (signed by another key, or the signature was altered)"
    if text.startswith("Signature mismatch"):
        return f"the bundle is not what was signed: {_mismatch(text)}"
    detail = re.sub(r"\s+", " ", text)[:200] or type(err).__name__
    return f"unreadable signature ({type(err).__name__}: {detail})"


def _mismatch(text: str) -> str:
    """model-signing's list of differences, without the digests' reprs."""
    parts = []
    text = text.replace("\\'", "'")  # the differences arrive as the repr of a list of strings
    changed = re.findall(r"Hash mismatch for '([^']+)'", text)
    if changed:
        parts.append(f"changed since signing: {', '.join(changed)}")
    for kind, names in re.findall(r"(Extra|Missing) files (?:found )?in model '[^']*': ([^\"\]]+)", text):
        parts.append(f"{'not signed' if kind == 'Extra' else 'signed but missing'}: {names.strip().rstrip(',')}")
    return "; ".join(parts) or "its files differ from the signed ones"


def _digests_from_manifest(bundle: Bundle):
    """model-signing's hashing step, answered from the bundle manifest (see the module docstring).

    ``Digest`` lives in a private module of model-signing: the ``signing`` extra pins the
    minor version, and tests verify our signatures with model-signing's own full check."""
    from model_signing import hashing, manifest
    from model_signing._hashing.hashing import Digest

    class ManifestDigests(hashing.Config):
        def hash(self, model_path, *, files_to_hash=None) -> manifest.Manifest:
            digests = {name: entry.sha256 for name, entry in bundle.manifest.files.items()}
            digests[MANIFEST] = bundle.manifest_sha256
            items = [manifest.FileManifestItem(path=PurePosixPath(name), digest=Digest("sha256", bytes.fromhex(d)))
                     for name, d in digests.items()]
            serialization = manifest.SerializationType.from_args(
                {"method": "files", "hash_type": "sha256", "allow_symlinks": False, "ignore_paths": [SIGNATURE]})
            return manifest.Manifest(bundle.root.name, items, serialization)

    return ManifestDigests()


@contextlib.contextmanager
def _quiet_stdout():
    """model-signing prints a warning for old signature formats; a library logs instead."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        yield
    if buffer.getvalue().strip():
        log.warning("%s", buffer.getvalue().strip())
