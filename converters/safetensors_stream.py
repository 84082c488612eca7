"""Write a safetensors file tensor by tensor, never holding the whole model in memory.

The header (names, dtypes, shapes, offsets) is known before any data is read, so it is
written first; each tensor is then written in place with ``pwrite`` in whatever order and
pieces its producer likes. The file appears under its final name only when complete.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

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


def write_safetensors(
    path: str | Path,
    entries: Sequence[TensorEntry],
    metadata: dict[str, str],
    fill: Callable[[int, TensorEntry, int], None],
    late_metadata: Callable[[], dict[str, str]] | None = None,
) -> int:
    """Create ``path`` atomically; ``fill(fd, entry, offset)`` writes each tensor's bytes at
    ``offset`` of the open descriptor. Returns the file size.

    ``late_metadata`` supplies values known only after the data is written (a digest
    computed alongside); they must serialise to the same length as the placeholders in
    ``metadata``, so the header is rewritten in place.
    """
    prefix, offsets = build_header(entries, metadata)
    total = len(prefix) + sum(entry.nbytes for entry in entries)
    with atomic_output(path) as handle:
        fd = handle.fileno()
        os.pwrite(fd, prefix, 0)
        os.ftruncate(fd, total)
        with ThreadPoolExecutor(max_workers=1) as writeback:
            for entry in entries:
                fill(fd, entry, offsets[entry.name])
                # start this tensor's writeback to disk on another thread while the next
                # one is prepared, so the final fsync has little left to wait for
                writeback.submit(os.posix_fadvise, fd, offsets[entry.name], entry.nbytes,
                                 os.POSIX_FADV_DONTNEED)
        if late_metadata is not None:
            final, _ = build_header(entries, {**metadata, **late_metadata()})
            if len(final) != len(prefix):
                raise ValueError("late metadata changed the header length")
            os.pwrite(fd, final, 0)
    return total


def pwrite_all(fd: int, data: memoryview | bytes, offset: int) -> None:
    view = memoryview(data).cast("B")
    while view:
        written = os.pwrite(fd, view, offset)
        view, offset = view[written:], offset + written
