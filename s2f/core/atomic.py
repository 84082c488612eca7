"""Write-then-rename, so a crash or a bad input never leaves a half-written output behind."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from s2f.core.errors import InputError

PARTIAL = ".partial"


@contextlib.contextmanager
def atomic_output(path: str | Path, mode: str = "wb", durable: bool = True, permissions: int = 0o644) -> Iterator:
    """Open a temporary sibling of ``path``; on clean exit fsync it and rename it into place.

    The temporary file lives in the destination directory so the final ``os.replace`` is
    atomic on POSIX. On any exception the temporary file is removed and the destination is
    left untouched (an older file of the same name survives). ``durable=False`` skips the
    fsync: still all-or-nothing if the process dies, not guaranteed across a power cut.
    ``permissions``: 0o600 for a secret (the temporary file is never readable by others).
    """
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise InputError(path, f"output directory {str(directory)!r} does not exist")
    if path.is_dir():
        raise InputError(path, "output path is a directory")
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=PARTIAL, dir=directory)
    except OSError as err:
        raise InputError(path, f"cannot write output ({err.strerror})") from None
    try:
        with os.fdopen(fd, mode) as handle:
            yield handle
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        os.chmod(tmp_name, permissions)
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise


def partial_target(name: str) -> str | None:
    """The output a temporary of ``atomic_output`` was for (``.clip.npy.k3x9_a2.partial`` ->
    ``clip.npy``), or None for any other name."""
    if not (name.startswith(".") and name.endswith(PARTIAL)):
        return None
    target, dot, _random = name[1:-len(PARTIAL)].rpartition(".")
    return target if dot and target else None


class PartialSweeper:
    """Removes the temporaries that killed runs left for given outputs, and only those.

    A run killed while writing leaves ``.<output>.<random>.partial`` beside the output it was
    writing; over a million files and many pre-emptions that is gigabytes. Before a resumed
    run writes an output, ``sweep`` deletes that output's leftovers. Each folder is listed
    once (the few most recent folders are remembered), so the cost is one directory scan per
    output folder, not one per file; a partial file of any other name is never touched.
    """

    def __init__(self, remembered_folders: int = 64) -> None:
        from collections import OrderedDict

        self._folders: OrderedDict[str, dict[str, list[str]]] = OrderedDict()
        self._limit = remembered_folders
        self.removed = 0

    def _leftovers(self, folder: str) -> dict[str, list[str]]:
        if folder in self._folders:
            self._folders.move_to_end(folder)
            return self._folders[folder]
        found: dict[str, list[str]] = {}
        try:
            with os.scandir(folder) as scan:
                for entry in scan:
                    target = partial_target(entry.name)
                    if target is not None:
                        found.setdefault(target, []).append(entry.name)
        except OSError:  # the folder does not exist yet: nothing left in it
            pass
        self._folders[folder] = found
        if len(self._folders) > self._limit:
            self._folders.popitem(last=False)
        return found

    def sweep(self, outputs) -> None:
        for output in outputs:
            folder, name = os.path.split(os.fspath(output))
            for leftover in self._leftovers(folder or ".").pop(name, ()):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(os.path.join(folder, leftover))
                    self.removed += 1


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step (Linux ``renameat2(RENAME_EXCHANGE)``); False where the
    system or the file system cannot."""
    import ctypes
    import ctypes.util
    import sys

    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    done = renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange)
    return done == 0


def replace_directory(staged: Path, target: Path) -> None:
    """Put the complete directory ``staged`` at ``target``, replacing what is there, such that
    ``target`` always holds either the old or the new directory, never neither: the two are
    exchanged atomically, then the old one (now at ``staged``) is removed. Where the system
    cannot exchange, the old directory is renamed aside first and put back if the second
    rename fails."""
    import shutil

    if not target.exists():
        os.replace(staged, target)
        return
    if _exchange(staged, target):
        shutil.rmtree(staged)
        return
    aside = staged.with_name(staged.name + ".old")
    os.replace(target, aside)
    try:
        os.replace(staged, target)
    except BaseException:
        os.replace(aside, target)
        raise
    shutil.rmtree(aside)


def parent_dir(path: Path) -> Path:
    """The directory ``path`` is to be created in, which must exist."""
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise InputError(path, f"parent directory {str(parent)!r} does not exist")
    return parent


@contextlib.contextmanager
def atomic_directory(target: Path) -> Iterator[Path]:
    """A temporary sibling of ``target`` to fill. On a clean exit it becomes ``target``
    (``replace_directory``: never a moment without a complete one); on any error it is
    removed, so a failed run leaves no partial directory behind."""
    import shutil

    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial", dir=parent_dir(target)))
    try:
        yield staging
        os.chmod(staging, 0o755)
        replace_directory(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
