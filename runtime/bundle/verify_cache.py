"""Remember which bundle files were hashed, so a second process start skips the sha256.

Hashing a full-size bundle is a large part of a cold start (measured in bench/onnx_runtime.py),
and a server restarted in place reads the same unchanged files again. A file's sha256 is
taken from this cache only when everything ``stat`` says about it is unchanged since it was
hashed: device, inode, size, mtime and ctime (nanoseconds). Any write to a
file, or a rename over it, moves its ctime to "now", and no unprivileged program can set a
ctime back; a copy gets a new inode. A file whose timestamps are younger than
``RACY_SECONDS`` is never cached: a write in the same clock tick as the hash would keep the
ctime (git's "racily clean" problem). Entries are stored per user in
``verified.json`` of the user's cache folder (``s2f.core.cache``: ``S2F_CACHE`` overrides); an
unwritable cache only means rehashing.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from s2f.core.cache import cache_dir

RACY_SECONDS = 2.0
MAX_ENTRIES = 256


def cache_path() -> Path:
    return cache_dir() / "verified.json"


def file_identity(path: Path) -> list[int]:
    """What must be unchanged for an earlier hash to still describe the file."""
    status = path.stat()
    return [status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns, status.st_ctime_ns]


class VerifyCache:
    def __init__(self, path: Path | None = None) -> None:
        self.path = path or cache_path()
        try:
            entries = json.loads(self.path.read_text())
            self.entries: dict[str, dict] = entries if isinstance(entries, dict) else {}
        except (OSError, ValueError):
            self.entries = {}
        self.changed = False

    def knows(self, path: Path, sha256: str) -> bool:
        """True when ``path`` was hashed to ``sha256`` and has not changed since."""
        entry = self.entries.get(str(path.resolve()))
        try:
            return entry is not None and entry.get("sha256") == sha256 and entry.get("stat") == file_identity(path)
        except OSError:
            return False

    def remember(self, path: Path, sha256: str, identity_before: list[int]) -> None:
        """Record a hash; ``identity_before`` was taken before hashing, and a file that changed
        meanwhile, or changed too recently to be told apart from a later write, is skipped."""
        try:
            identity = file_identity(path)
        except OSError:
            return
        newest = max(identity[3], identity[4]) / 1e9
        if identity != identity_before or time.time() - newest < RACY_SECONDS:
            return
        key = str(path.resolve())
        self.entries.pop(key, None)
        self.entries[key] = {"sha256": sha256, "stat": identity}
        while len(self.entries) > MAX_ENTRIES:
            self.entries.pop(next(iter(self.entries)))
        self.changed = True

    def save(self) -> None:
        if not self.changed:
            return
        from s2f.core.atomic import atomic_output
        from s2f.core.errors import InputError

        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_output(self.path, "w", durable=False) as handle:
                json.dump(self.entries, handle)
        except (OSError, InputError):
            pass  # a read-only home only costs the next process a rehash
        self.changed = False
