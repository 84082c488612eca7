"""The split file (``s2f data split``): which identities train, validate and test.

Read in one place because training, evaluation, preprocessing and the torch-free scorecard
all take ``--split``, and a hand-edited file must fail the same way in each of them.
"""

from __future__ import annotations

import json
from pathlib import Path

PARTS = ("train", "val", "test")


def read_split(path: str | Path | None) -> dict[str, list[str]] | None:
    """The identity names of every part (None without a file); ``InputError`` names the file
    and the fault."""
    from s2f.core.errors import InputError

    if path is None:
        return None
    try:
        split = json.loads(Path(path).read_text())
        parts = {part: list(split[part]) for part in PARTS}
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise InputError(path, f"not a split file from 's2f data split' ({type(err).__name__}: {err})") from None
    if not all(isinstance(name, str) for names in parts.values() for name in names):
        raise InputError(path, "identity names in a split file must be strings")
    return parts
