"""Where a benchmark builds its models, clips and outputs: ``--workdir`` when given (kept, so
a rerun reuses what it built), else a temporary directory deleted when the bench exits, since
several benches write gigabytes there."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path


def bench_workdir(given: Path | None, prefix: str) -> Path:
    if given is not None:
        given.mkdir(parents=True, exist_ok=True)
        return given
    scratch = Path(tempfile.mkdtemp(prefix=prefix))
    atexit.register(shutil.rmtree, scratch, ignore_errors=True)
    return scratch
