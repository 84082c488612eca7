"""One way to list the files of a corpus, for every command that reads one.

Preprocessing, training, evaluation, the scorecard, the runtime's corpus reader and the
VoxCeleb ingest must agree on which files a tree holds, or a corpus is preprocessed one way
and trained another. The rules, in one place:

* every subfolder is entered, at any depth (VoxCeleb nests clips as ``<id>/<video>/<clip>``);
* symbolic links are followed, to files and to folders (people link rather than copy
  datasets), with a guard against loops: a folder that is one of its own ancestors is not
  entered again;
* hidden names (``.x``, which includes our own ``.x.partial`` temporaries) and unfinished
  downloads (``*.partial``, ``*.part``, ``*.tmp``, ``*.crdownload``) are skipped, as are broken links;
* the order is the sorted order of the relative paths' parts, the same on every machine.

``os.scandir`` keeps it fast on VoxCeleb2's million clips: one system call per folder, and a
``stat`` only for folders (the loop guard).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Collection, Iterator
from pathlib import Path

log = logging.getLogger(__name__)

PARTIAL_SUFFIXES = (".partial", ".part", ".tmp", ".crdownload")


def _skipped(name: str) -> bool:
    return name.startswith(".") or name.lower().endswith(PARTIAL_SUFFIXES)


def iter_names(root: str | Path, endings: Collection[str] | None = None) -> Iterator[str]:
    """Files under ``root`` whose lower-cased name ends with one of ``endings`` (``.wav``,
    ``_embedding.npy``; all files when None), as relative POSIX path strings, in sorted order,
    streamed: memory stays that of the deepest folder, not of the tree. Strings, not ``Path``
    objects: building a ``Path`` per file costs more than listing the file."""
    wanted = tuple(ending.lower() for ending in endings) if endings is not None else None
    try:
        top = os.stat(root)
    except OSError:
        return
    yield from _walk(os.fspath(root), "", [(top.st_dev, top.st_ino)], wanted)


def iter_files(root: str | Path, endings: Collection[str] | None = None) -> Iterator[Path]:
    """``iter_names`` as paths relative to ``root``."""
    return map(Path, iter_names(root, endings))


def list_files(root: str | Path, endings: Collection[str] | None = None) -> list[Path]:
    """``iter_files`` as a list."""
    return list(iter_files(root, endings))


def paths_under(root: str | Path, endings: Collection[str] | None = None) -> list[Path]:
    """The same files as paths that include ``root`` (``root / relative``), for readers that open
    them; ``[]`` when ``root`` does not exist."""
    root = Path(root)
    return [root / name for name in iter_names(root, endings)]


def _walk(folder: str, prefix: str, ancestors: list[tuple[int, int]],
          wanted: tuple[str, ...] | None) -> Iterator[str]:
    try:
        with os.scandir(folder) as scan:
            entries = sorted((entry for entry in scan if not _skipped(entry.name)), key=lambda entry: entry.name)
    except OSError as err:  # unreadable folder: said, not fatal
        log.warning("cannot list %s (%s); skipped", folder, err.strerror)
        return
    for entry in entries:
        try:
            is_dir = entry.is_dir()  # follows symbolic links
            is_file = not is_dir and entry.is_file()
        except OSError:
            continue
        if is_file:
            if wanted is None or entry.name.lower().endswith(wanted):
                yield prefix + entry.name
        elif is_dir:
            try:
                info = entry.stat()
            except OSError:
                continue
            key = (info.st_dev, info.st_ino)
            if key in ancestors:
                log.warning("%s links back to a folder above it; not entered again", entry.path)
                continue
            ancestors.append(key)
            yield from _walk(entry.path, prefix + entry.name + "/", ancestors, wanted)
            ancestors.pop()
