"""Write a safetensors file tensor by tensor, never holding the whole model in memory.

The header (names, dtypes, shapes, offsets) is known before any data is read, so the file
is written in one pass, front to back: header, then each tensor in order. The file appears
under its final name only when complete.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from s2f.converters.phase_clock import add, phase
from s2f.core.atomic import atomic_output

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


BLOCK = 4096  # O_DIRECT alignment of buffers, offsets and lengths (covers 512 B and 4 KB sectors)
STAGE_BYTES = 8 << 20  # larger stages make the permutation fall out of cache (bench/convert_speed.py)


def _aligned_buffer(nbytes: int) -> np.ndarray:
    raw = np.empty(nbytes + BLOCK, dtype=np.uint8)
    start = -raw.ctypes.data % BLOCK
    return raw[start:start + nbytes]


def _enable_direct_io(fd: int) -> bool:
    """Bypass the page cache for this file where the system and file system allow it."""
    direct = getattr(os, "O_DIRECT", 0)
    if not direct:
        return False
    import fcntl

    try:
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | direct)
    except OSError:
        return False
    return True


def _disable_direct_io(fd: int) -> None:
    direct = getattr(os, "O_DIRECT", 0)
    if direct:
        import fcntl

        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~direct)


class SequentialWriter:
    """Writes a file front to back from two page-aligned staging buffers, on a second thread.

    The producer asks for a ``region`` of the current stage, fills it in place and
    ``commit``s it; a full stage goes to the file while the producer fills the other one.
    Because every write is block-aligned and in order, the file is opened with ``O_DIRECT``
    where possible: the data goes from the stage to the disk without a copy into the page
    cache, without 580 MB of page-cache pages to allocate, and without a writeback left for
    the final fsync. Where ``O_DIRECT`` is refused (tmpfs, macOS) the same writes go through
    the page cache. Use as a context manager; the file ends at exactly ``position`` bytes.
    """

    def __init__(self, fd: int, stage_bytes: int | None = None) -> None:
        stage_bytes = stage_bytes or STAGE_BYTES
        if stage_bytes % BLOCK or stage_bytes < 2 * BLOCK:
            raise ValueError(f"stage_bytes must be a multiple of {BLOCK}, at least {2 * BLOCK}")
        self.fd = fd
        self.direct = _enable_direct_io(fd)
        self.capacity = stage_bytes - BLOCK  # a region this size always fits after a flush
        self.position = 0  # bytes committed so far, i.e. the file's size when finished
        self._stages = [_aligned_buffer(stage_bytes), _aligned_buffer(stage_bytes)]
        self._pending: list[Future | None] = [None, None]
        self._current = 0
        self._fill = 0  # bytes of the current stage in use
        self._stage_offset = 0  # file offset of the current stage's first byte
        self._executor = ThreadPoolExecutor(max_workers=1)

    def region(self, nbytes: int) -> np.ndarray:
        """The next ``nbytes`` of the file, as writable bytes of the stage."""
        if nbytes > self.capacity:
            raise ValueError(f"a region holds at most {self.capacity} bytes, asked for {nbytes}")
        if self._fill + nbytes > len(self._stages[self._current]):
            self._flush()
        return self._stages[self._current][self._fill:self._fill + nbytes]

    def commit(self, nbytes: int) -> None:
        self._fill += nbytes
        self.position += nbytes

    def append(self, data: bytes) -> None:
        view = np.frombuffer(data, dtype=np.uint8)
        for start in range(0, len(view), self.capacity):
            piece = view[start:start + self.capacity]
            self.region(len(piece))[...] = piece
            self.commit(len(piece))

    def _flush(self, final: bool = False) -> None:
        """Hand the current stage's whole blocks to the writer thread and carry the partial
        last block over to the other stage (the final flush pads it instead; the file is
        truncated to ``position`` afterwards)."""
        stage = self._stages[self._current]
        if final:
            length = -(-self._fill // BLOCK) * BLOCK
            stage[self._fill:length] = 0
        else:
            length = self._fill - self._fill % BLOCK
        if length:
            self._pending[self._current] = self._executor.submit(self._write, stage[:length], self._stage_offset)
        if final:
            return
        tail = self._fill - length
        self._current = 1 - self._current
        self._wait(self._current)
        self._stages[self._current][:tail] = stage[length:self._fill]
        self._stage_offset += length
        self._fill = tail

    def _write(self, data: np.ndarray, offset: int) -> None:
        with phase("write"):
            try:
                pwrite_all(self.fd, data, offset)
            except OSError as err:
                if not (self.direct and err.errno == errno.EINVAL):
                    raise
                # the file system accepted O_DIRECT but not these writes: use the page cache
                _disable_direct_io(self.fd)
                self.direct = False
                pwrite_all(self.fd, data, offset)

    def _wait(self, slot: int) -> None:
        pending, self._pending[slot] = self._pending[slot], None
        if pending is not None:
            pending.result()

    def __enter__(self) -> SequentialWriter:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        try:
            if exc_type is None:
                self._flush(final=True)
                for slot in (0, 1):
                    self._wait(slot)
            else:  # the producer failed: let in-flight writes end, keep the producer's error
                for slot in (0, 1):
                    with contextlib.suppress(Exception):
                        self._wait(slot)
        finally:
            self._executor.shutdown(wait=True)
            if self.direct:
                _disable_direct_io(self.fd)  # later header rewrites are small and unaligned
        if exc_type is None:
            os.ftruncate(self.fd, self.position)


def write_safetensors(
    path: str | Path,
    entries: Sequence[TensorEntry],
    metadata: dict[str, str],
    fill: Callable[[SequentialWriter, TensorEntry], None],
    late_metadata: Callable[[], dict[str, str]] | None = None,
) -> int:
    """Create ``path`` atomically; ``fill(writer, entry)`` appends each tensor's bytes, in
    the order of ``entries``, to the ``SequentialWriter``. Returns the file size.

    ``late_metadata`` supplies values known only after the data is written (a digest
    computed alongside); they must serialise to the same length as the placeholders in
    ``metadata``, so the header is rewritten in place.
    """
    prefix, offsets = build_header(entries, metadata)
    started = time.perf_counter()
    with atomic_output(path) as handle:
        fd = handle.fileno()
        with SequentialWriter(fd) as writer:
            writer.append(prefix)
            for entry in entries:
                fill(writer, entry)
                if writer.position != offsets[entry.name] + entry.nbytes:
                    raise ValueError(f"tensor {entry.name!r}: {writer.position - offsets[entry.name]} "
                                     f"bytes written, {entry.nbytes} expected")
        total = writer.position
        if late_metadata is not None:
            final, _ = build_header(entries, {**metadata, **late_metadata()})
            if len(final) != len(prefix):
                raise ValueError("late metadata changed the header length")
            pwrite_all(fd, final, 0)
        closing = time.perf_counter()
    add("fsync and rename, wall", time.perf_counter() - closing)  # atomic_output's exit
    add("writing the file, wall", time.perf_counter() - started)
    return total


def pwrite_all(fd: int, data: memoryview | bytes | np.ndarray, offset: int) -> None:
    view = memoryview(data).cast("B")
    while view:
        written = os.pwrite(fd, view, offset)
        view, offset = view[written:], offset + written
