"""Directory mode: every file under a directory through a pipeline, in batches, with the next
batch decoded while the current one runs.

Decoding (audio codecs, resampling, JPEG) and PNG encoding are C work that releases the GIL,
and onnxruntime releases it while it runs, so a small thread pool keeps up to two batches of
inputs decoded ahead of inference, and one more thread writes a batch's images while the next
batch runs. Batches go through the same ``generate_batch`` the HTTP
server's micro-batcher calls, so both paths give the same faces. A file that cannot be read
is reported and skipped; the others are written (PNG, atomically) in input order.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from s2f.core.errors import InputError

log = logging.getLogger(__name__)
DEFAULT_BATCH_SIZE = 8  # bench/onnx_runtime.py: batch 8 is where every model's per-item time bottoms out here


@dataclass
class DirectoryRun:
    """What a directory run did."""

    written: int = 0
    failed: list[tuple[Path, str]] = field(default_factory=list)


def _decoded(files: list[Path], prepare: Callable[[Path], np.ndarray], pool: ThreadPoolExecutor,
             lookahead: int) -> Iterator[tuple[Path, Future]]:
    """(file, future of its prepared input), at most ``lookahead`` decoding at a time."""
    pending: deque[tuple[Path, Future]] = deque()
    remaining = iter(files)
    for path in remaining:
        pending.append((path, pool.submit(prepare, path)))
        if len(pending) >= lookahead:
            break
    while pending:
        path, future = pending.popleft()
        following = next(remaining, None)
        if following is not None:
            pending.append((following, pool.submit(prepare, following)))
        yield path, future


def run_directory(model: Any, files: list[Path], save: Callable[[Path, Any], None],
                  batch_size: int = DEFAULT_BATCH_SIZE, decode_threads: int = 2,
                  on_file: Callable[[Path, str | None], None] | None = None) -> DirectoryRun:
    """``model.prepare_file`` every file (ahead, in threads), ``model.generate_batch`` them
    ``batch_size`` at a time, and ``save(file, face)`` each result (on a writer thread, in
    input order). ``on_file(file, error)`` is called once per file, on the calling thread
    (for progress bars and skip messages)."""
    if batch_size < 1:
        raise InputError(None, f"--batch-size must be at least 1, got {batch_size}")
    run = DirectoryRun()
    batch: list[tuple[Path, np.ndarray]] = []
    saving: deque[tuple[Path, Future]] = deque()

    def settle(keep: int) -> None:
        """Report finished saves in input order; wait while more than ``keep`` are pending."""
        while saving and (len(saving) > keep or saving[0][1].done()):
            path, future = saving.popleft()
            future.result()
            run.written += 1
            if on_file:
                on_file(path, None)

    def flush() -> None:
        faces = model.generate_batch([array for _, array in batch])
        for (path, _), face in zip(batch, faces, strict=True):
            saving.append((path, writer.submit(save, path, face)))
        batch.clear()
        settle(keep=2 * batch_size)

    with ThreadPoolExecutor(max(1, decode_threads), thread_name_prefix="decode") as pool, \
            ThreadPoolExecutor(1, thread_name_prefix="save") as writer:
        for path, future in _decoded(files, model.prepare_file, pool, lookahead=2 * batch_size):
            try:
                batch.append((path, future.result()))
            except InputError as err:
                run.failed.append((path, str(err)))
                if on_file:
                    on_file(path, str(err))
                continue
            if len(batch) == batch_size:
                flush()
        if batch:
            flush()
        settle(keep=0)
    return run
