"""A preprocessed tree remembers the settings it was made with, so a resumed run cannot
silently mix, say, paper and original spectrograms in one dataset."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from s2f.core.atomic import atomic_output
from s2f.core.errors import InputError


def claim_settings(path: Path, settings: dict[str, Any], overwrite: bool = False) -> None:
    """Write ``settings`` to ``path``; if the tree already has different ones, refuse
    (unless ``overwrite``, which also means finished files are redone)."""
    if path.is_file() and not overwrite:
        try:
            existing = json.loads(path.read_text())
        except (OSError, ValueError) as err:
            raise InputError(path, f"unreadable settings file ({err}); remove it or pass --overwrite") from None
        if existing != json.loads(json.dumps(settings)):
            changed = sorted(key for key in settings.keys() | existing.keys()
                             if existing.get(key) != json.loads(json.dumps(settings.get(key))))
            raise InputError(path.parent, f"was made with other settings ({', '.join(changed)} differ); "
                                          "use another output directory or --overwrite")
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path, "w") as handle:
        json.dump(settings, handle, indent=2, sort_keys=True)


def read_settings(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise InputError(path, f"unreadable settings file ({err})") from None
