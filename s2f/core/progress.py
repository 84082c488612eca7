"""Progress bars for long work, which a command line's ``--quiet`` switches off everywhere.

tqdm reads its environment overrides when it is imported, which is before a command line has
parsed ``--quiet``, so the switch lives here and every bar is made through ``progress_bar``.
"""

from __future__ import annotations

from typing import Any

_enabled = True


def show_progress(enabled: bool) -> None:
    global _enabled
    _enabled = enabled


def progress_bar(iterable: Any = None, disable: bool = False, **kwargs: Any):
    """``tqdm(iterable, **kwargs)``, silent under ``--quiet``."""
    from tqdm import tqdm

    kwargs.setdefault("dynamic_ncols", True)
    return tqdm(iterable, disable=disable or not _enabled, **kwargs)
