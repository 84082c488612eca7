"""Open a pipeline bundle (written by ``s2f export bundle``) only after checking it.

The manifest must list every file with its sha256 and size. Opening a bundle checks the
manifest, that every listed file is present and has its size (cheap), and that no name
points outside the bundle. Before a graph is loaded, ``require`` checks the sha256 of that
graph and of its weights file. Only what is used is hashed (speech -> face does not read
the 580 MB face encoder), and the files are hashed in parallel. A file hashed by an earlier
process and unchanged since (same inode, size, mtime and ctime) is not hashed again
(``s2f.runtime.bundle.verify_cache``; ``cache=False`` always hashes). A tampered, truncated or
incomplete bundle is refused with a message naming the file. With a trusted key, the bundle
must also be signed by it (``s2f.runtime.bundle.signature``): the sha256 say the files are what the
manifest lists, the signature says who wrote the manifest.
"""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from s2f.core.errors import InputError
from s2f.runtime.bundle.manifest import MANIFEST, BundleManifest
from s2f.runtime.bundle.onnx_refs import check_weight_locations
from s2f.runtime.bundle.verify_cache import VerifyCache, file_identity

MAX_MANIFEST_BYTES = 16 << 20  # a real one is a few kB; never read a huge file whole


def sha256_of(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()  # releases the GIL: threads hash in parallel


@dataclass
class Bundle:
    root: Path
    manifest: BundleManifest
    cache: VerifyCache | None = None
    verified: set[str] = field(default_factory=set)
    manifest_sha256: str = ""  # of the bytes parsed, which a signature covers
    signed_by: str | None = None  # the trusted key's fingerprint, when the signature was checked

    def has(self, role: str, precision: str = "fp32") -> bool:
        return self.path_of(role, precision) is not None

    def path_of(self, role: str, precision: str = "fp32") -> Path | None:
        name = self.manifest.path_of(role, precision)
        return None if name is None else self.root / name

    def require(self, *roles: str, precision: str = "fp32") -> list[Path]:
        """The graphs for ``roles``, after verifying their and their weights' sha256 (all
        files hashed in parallel)."""
        paths, names = [], []
        for role in roles:
            path = self.path_of(role, precision)
            if path is None:
                what = f"{precision} {role.replace('_', ' ')}" if precision != "fp32" else role.replace("_", " ")
                hint = f"export it with --{precision}" if precision != "fp32" else "exported without it"
                raise InputError(self.root, f"this bundle has no {what} ({hint})")
            paths.append(path)
            names += [path.name] + self.manifest.files[path.name].weight_files
        self.verify(names)
        for path in paths:  # hashed graphs may still name other files than their hashed weights
            check_weight_locations(path, self.manifest.files[path.name].weight_files)
        return paths

    def verify(self, names: list[str] | None = None) -> None:
        names = [n for n in (names or list(self.manifest.files)) if n not in self.verified]
        expected = {name: self.manifest.files[name].sha256 for name in names}
        if self.cache is not None:
            self.verified.update(n for n in names if self.cache.knows(self.root / n, expected[n]))
            names = [n for n in names if n not in self.verified]
        if not names:
            return
        identities = {name: file_identity(self.root / name) for name in names}
        with ThreadPoolExecutor(len(names)) as pool:
            digests = list(pool.map(lambda name: sha256_of(self.root / name), names))
        for name, digest in zip(names, digests, strict=True):
            if digest != expected[name]:
                raise InputError(self.root / name, "sha256 does not match the manifest: the file was modified")
            self.verified.add(name)
            if self.cache is not None:
                self.cache.remember(self.root / name, digest, identities[name])
        if self.cache is not None:
            self.cache.save()


def _require_plain_file(path: Path) -> None:
    """A listed file must be a regular file of the bundle itself: not missing, not a symbolic
    link (which could point anywhere) and not hard-linked (its other name may be outside)."""
    import stat

    try:
        status = path.lstat()
    except FileNotFoundError:
        raise InputError(path, "listed in the manifest but missing: incomplete bundle") from None
    if stat.S_ISLNK(status.st_mode):
        raise InputError(path, "is a symbolic link: a bundle's files must be its own regular files")
    if not stat.S_ISREG(status.st_mode):
        raise InputError(path, "listed in the manifest but not a regular file")
    if status.st_nlink > 1:
        raise InputError(path, f"has {status.st_nlink} hard links: a bundle's files must be its own (copy the "
                               "bundle instead of linking it)")


def open_bundle(root: str | Path, verify: bool = True, cache: bool = True,
                trust_key: str | Path | Literal[False] | None = None) -> Bundle:
    """``verify=True`` hashes every file now; ``False`` leaves hashing to ``require``.
    ``cache=False`` ignores (and does not update) the record of files hashed before.
    ``trust_key`` (default ``$S2F_TRUST_KEY``): a public key the bundle must be signed with
    (``s2f.runtime.bundle.signature``); unsigned bundles, other keys and files the signature does not
    cover are refused. ``False``: no signature check, whatever the environment says."""
    from s2f.runtime.bundle.signature import trusted_key, verify_signature

    root = Path(root)
    key = trusted_key(trust_key)
    if not root.is_dir():
        raise InputError(root, "bundle directory not found" if not root.exists() else "not a directory")
    manifest_path = root / MANIFEST
    try:
        if manifest_path.stat().st_size > MAX_MANIFEST_BYTES:
            raise InputError(manifest_path, f"is {manifest_path.stat().st_size} bytes: not a bundle manifest")
        raw = manifest_path.read_bytes()
        manifest = json.loads(raw)
    except FileNotFoundError:
        raise InputError(manifest_path, "missing: not a speech2face bundle (or an incomplete one)") from None
    except (OSError, ValueError, RecursionError) as err:
        raise InputError(manifest_path, f"unreadable manifest ({err})") from None
    manifest = BundleManifest.parse(manifest_path, manifest)
    for name, entry in manifest.files.items():
        path = root / name
        _require_plain_file(path)
        if path.stat().st_size != entry.bytes:
            raise InputError(path, f"is {path.stat().st_size} bytes, the manifest says {entry.bytes}: "
                                   "truncated or replaced")
    bundle = Bundle(root, manifest, VerifyCache() if cache else None, manifest_sha256=hashlib.sha256(raw).hexdigest())
    if key is not None:
        bundle.signed_by = verify_signature(bundle, key)
    if verify:
        bundle.verify()
    return bundle
