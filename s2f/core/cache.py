"""The one per-user cache folder: downloaded weights and the runtime's record of hashed files.

``S2F_CACHE`` overrides it; otherwise it is the platform's user cache folder (platformdirs:
``~/.cache/speech2face`` on Linux, ``~/Library/Caches/speech2face`` on macOS, the local app data
folder on Windows), so every part of the toolkit agrees on one place and one variable.
"""

from __future__ import annotations

import os
from pathlib import Path

CACHE_VARIABLE = "S2F_CACHE"


def cache_dir() -> Path:
    """Where speech2face keeps what it may rebuild (not created here)."""
    override = os.environ.get(CACHE_VARIABLE)
    if override:
        return Path(override)
    import platformdirs

    return platformdirs.user_cache_path("speech2face", appauthor=False)
