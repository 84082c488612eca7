"""Datasets are linked into our layout, never copied: VoxCeleb's audio and HQ-VoxCeleb's faces
are hundreds of GB, and a link costs an inode."""

from __future__ import annotations

import errno
import os
from pathlib import Path

from s2f.core.errors import InputError

# the errors that mean "no hard link here" (another file system, a file system without them,
# too many links to one file), where a symbolic link does the job
_NO_HARD_LINK = (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP)


def link_file(source: str | Path, target: str | Path) -> str:
    """Make ``target`` name the file ``source`` names (following a symbolic ``source`` to its
    file); ``"hard"`` or ``"symbolic"``, whichever was made. The parent must exist."""
    try:
        os.link(source, target)
        return "hard"
    except OSError as err:
        if err.errno not in _NO_HARD_LINK:
            raise InputError(target, f"cannot link to {source} ({err.strerror})") from None
    os.symlink(Path(source).resolve(), target)
    return "symbolic"
