"""Which checkpoint of a training run directory is meant: ``latest.json`` and ``best.json``
each name one checkpoint directory. Loading a model from a run needs this as much as
training does, so it lives with the models (training writes the pointers)."""

from __future__ import annotations

import json
from pathlib import Path

from s2f.core.errors import InputError

LATEST, BEST = "latest.json", "best.json"


def resolve(run_dir: Path, which: str = LATEST) -> Path | None:
    """The checkpoint directory ``which`` points to, or None when there is no such pointer."""
    pointer = Path(run_dir) / which
    if not pointer.is_file():
        return None
    try:
        name = json.loads(pointer.read_text())["checkpoint"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise InputError(pointer, f"unreadable checkpoint pointer ({err})") from None
    if not isinstance(name, str) or Path(name).is_absolute() or ".." in Path(name).parts:
        raise InputError(pointer, f"field 'checkpoint' must be a path inside the run directory, got {name!r}")
    return Path(run_dir) / name
