"""Write a safetensors file tensor by tensor, never holding the whole model in memory.

The header (names, dtypes, shapes, offsets) is known before any data is read, so it is
written first; each tensor is then written in place with ``pwrite`` in whatever order and
pieces its producer likes. The file appears under its final name only when complete.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from s2f.converters.phase_clock import add, phase
from s2f.runtime.atomic import atomic_output

SAFETENSORS_DTYPES = {
    np.dtype("<f2"): "F16", np.dtype("<f4"): "F32", np.dtype("<f8"): "F64",
    np.dtype("<i8"): "I64", np.dtype("<i4"): "I32", np.dtype("u1"): "U8",
}


@dataclass(frozen=True)
class TensorEntry:
    name: str
    dtype: np.dtype  # little-endian
    shape: tuple[int, ...]

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize


def build_header(entries: Sequence[TensorEntry], metadata: dict[str, str]) -> tuple[bytes, dict[str, int]]:
    """Serialised header (8-byte aligned, as the reference implementation pads it) and the
    absolute file offset of each tensor's data."""
    header: dict[str, object] = {"__metadata__": dict(metadata)}
    relative, cursor = {}, 0
    for entry in entries:
        header[entry.name] = {
            "dtype": SAFETENSORS_DTYPES[entry.dtype],
            "shape": list(entry.shape),
            "data_offsets": [cursor, cursor + entry.nbytes],
        }
        relative[entry.name] = cursor
        cursor += entry.nbytes
    raw = json.dumps(header, separators=(",", ":")).encode("utf8")
    raw += b" " * (-(len(raw) + 8) % 8)
    prefix = len(raw).to_bytes(8, "little") + raw
    return prefix, {name: len(prefix) + offset for name, offset in relative.items()}


def reusable(store: dict, key: object, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """An array of ``shape`` over a buffer kept in ``store[key]`` and grown as needed: fresh
    multi-MB arrays cost a page fault per 4 KB on first touch, which for a 580 MB model adds
    up to a noticeable share of a conversion."""
    nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
    buffer = store.get(key)
    if buffer is None or buffer.nbytes < nbytes:
        buffer = store[key] = np.empty(nbytes, dtype=np.uint8)
    return buffer[:nbytes].view(dtype).reshape(shape)


class BandWriter:
    """Writes on a second thread, so the producer reads and transposes the next band while
    this one goes to the page cache (numpy's copies and ``pwrite`` both release the GIL).

    The producer asks for a buffer, fills it and hands it to ``write``; two buffers
    alternate, and a buffer is handed out again only once its write has finished. Writes
    run in order on one thread; work given to ``after`` starts on a third thread once the
    writes queued before it are done, so slow disk writeback never holds up the writes.
    """

    def __init__(self, fd: int, executor: ThreadPoolExecutor, background: ThreadPoolExecutor) -> None:
        self.fd, self._executor, self._background = fd, executor, background
        self._buffers: dict[int, np.ndarray] = {}
        self._pending: list[Future | None] = [None, None]
        self._slot = 1

    def buffer(self, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        """The next of the two buffers, once its previous write is done."""
        self._slot = 1 - self._slot
        self._wait(self._slot)
        return reusable(self._buffers, self._slot, shape, dtype)

    def write(self, data: np.ndarray, offset: int, row_stride: int = 0) -> None:
        """Write ``data`` (the buffer last handed out) at ``offset``; with ``row_stride``,
        row ``r`` of ``data`` goes to ``offset + r * row_stride`` instead of one run."""
        self._pending[self._slot] = self._executor.submit(_write_rows, self.fd, data, offset, row_stride)

    def after(self, function: Callable, *args) -> None:
        """Run ``function(*args)`` in the background once every write so far is done."""
        self._executor.submit(self._background.submit, function, *args)

    def _wait(self, slot: int) -> None:
        pending, self._pending[slot] = self._pending[slot], None
        if pending is not None:
            pending.result()

    def finish(self) -> None:
        for slot in (0, 1):
            self._wait(slot)


def _write_rows(fd: int, data: np.ndarray, offset: int, row_stride: int) -> None:
    with phase("write"):
        if not row_stride:
            pwrite_all(fd, data, offset)
            return
        for row in range(data.shape[0]):
            pwrite_all(fd, data[row], offset + row * row_stride)


def _writeback(fd: int, offset: int, length: int) -> None:
    """Start this range's writeback to disk now, so the final fsync has little left."""
    with phase("writeback"):
        os.posix_fadvise(fd, offset, length, os.POSIX_FADV_DONTNEED)


def write_safetensors(
    path: str | Path,
    entries: Sequence[TensorEntry],
    metadata: dict[str, str],
    fill: Callable[[BandWriter, TensorEntry, int], None],
    late_metadata: Callable[[], dict[str, str]] | None = None,
) -> int:
    """Create ``path`` atomically; ``fill(writer, entry, offset)`` writes each tensor's bytes
    at ``offset`` through the ``BandWriter``. Returns the file size.

    ``late_metadata`` supplies values known only after the data is written (a digest
    computed alongside); they must serialise to the same length as the placeholders in
    ``metadata``, so the header is rewritten in place.
    """
    prefix, offsets = build_header(entries, metadata)
    total = len(prefix) + sum(entry.nbytes for entry in entries)
    started = time.perf_counter()
    with atomic_output(path) as handle:
        fd = handle.fileno()
        os.pwrite(fd, prefix, 0)
        os.ftruncate(fd, total)
        with ThreadPoolExecutor(max_workers=1) as writeback, ThreadPoolExecutor(max_workers=1) as executor:
            writer = BandWriter(fd, executor, writeback)
            for entry in entries:
                fill(writer, entry, offsets[entry.name])
                # once written, start this tensor's writeback to disk while the next one is
                # prepared, so the final fsync has little left to wait for
                writer.after(_writeback, fd, offsets[entry.name], entry.nbytes)
            writer.finish()
        if late_metadata is not None:
            final, _ = build_header(entries, {**metadata, **late_metadata()})
            if len(final) != len(prefix):
                raise ValueError("late metadata changed the header length")
            os.pwrite(fd, final, 0)
        closing = time.perf_counter()
    add("fsync and rename, wall", time.perf_counter() - closing)  # atomic_output's exit
    add("writing the file, wall", time.perf_counter() - started)
    return total


def pwrite_all(fd: int, data: memoryview | bytes, offset: int) -> None:
    view = memoryview(data).cast("B")
    while view:
        written = os.pwrite(fd, view, offset)
        view, offset = view[written:], offset + written
