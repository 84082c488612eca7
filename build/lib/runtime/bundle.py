"""Open a pipeline bundle (written by ``s2f export bundle``) only after checking it: the
manifest must list every graph with its sha256 and size, and every file must match. A
tampered, truncated or incomplete bundle is refused with a message naming the file."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runtime.errors import InputError

MANIFEST = "manifest.json"
SUPPORTED_FORMATS = (1,)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class Bundle:
    root: Path
    manifest: dict[str, Any]

    def path_of(self, role: str) -> Path | None:
        for name, entry in self.manifest["files"].items():
            if entry["role"] == role:
                return self.root / name
        return None

    def require(self, role: str) -> Path:
        path = self.path_of(role)
        if path is None:
            raise InputError(self.root, f"this bundle has no {role.replace('_', ' ')} (exported without it)")
        return path


def open_bundle(root: str | Path, verify: bool = True) -> Bundle:
    root = Path(root)
    if not root.is_dir():
        raise InputError(root, "bundle directory not found" if not root.exists() else "not a directory")
    manifest_path = root / MANIFEST
    try:
        manifest = json.loads(manifest_path.read_text())
    except FileNotFoundError:
        raise InputError(manifest_path, "missing: not a speech2face bundle (or an incomplete one)") from None
    except (OSError, ValueError) as err:
        raise InputError(manifest_path, f"unreadable manifest ({err})") from None
    if manifest.get("format") not in SUPPORTED_FORMATS or not isinstance(manifest.get("files"), dict):
        raise InputError(manifest_path, f"unsupported bundle format {manifest.get('format')!r}")
    if verify:
        for name, entry in manifest["files"].items():
            path = root / name
            if Path(name).name != name:
                raise InputError(manifest_path, f"refuses file name {name!r} outside the bundle")
            if not path.is_file():
                raise InputError(path, "listed in the manifest but missing: incomplete bundle")
            if path.stat().st_size != entry["bytes"]:
                raise InputError(path, f"is {path.stat().st_size} bytes, the manifest says {entry['bytes']}: "
                                       "truncated or replaced")
            if _sha256(path) != entry["sha256"]:
                raise InputError(path, "sha256 does not match the manifest: the file was modified")
    return Bundle(root, manifest)
