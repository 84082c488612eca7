"""Many paths in two numpy arrays instead of a Python object each.

A training set over VoxCeleb2 indexes over a million clips. As ``Path`` objects that is about
a kilobyte each (the object, its parts tuple, its strings), a gigabyte per DataLoader worker
on platforms that copy the dataset into each worker; here it is the paths' UTF-8 bytes plus
eight bytes of offset, and a worker that forks shares the two arrays' pages untouched (a list
of objects is copied page by page as reference counts change).
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable
from pathlib import Path

import numpy as np


class PathTable:
    """An append-once, read-many sequence of paths under ``root``, stored as relative strings.

    Build it with ``extend`` (any iterable of relative POSIX strings), then ``freeze``; read it
    by index (a ``Path``) or slice (a list of them).
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self._building: tuple[bytearray, array] | None = (bytearray(), array("q"))  # blob, end offsets
        self._blob = np.zeros(0, np.uint8)
        self._ends = np.zeros(0, np.int64)

    def extend(self, relative_names: Iterable[str]) -> int:
        """Append names; returns how many were added."""
        if self._building is None:
            raise RuntimeError("PathTable is frozen")
        blob, ends = self._building
        before = len(ends)
        for name in relative_names:
            blob += name.encode("utf-8", "surrogateescape")
            ends.append(len(blob))
        return len(ends) - before

    def truncate(self, length: int) -> None:
        """Drop the entries from ``length`` on (an identity that turned out to have no faces)."""
        if self._building is None:
            raise RuntimeError("PathTable is frozen")
        blob, ends = self._building
        del blob[ends[length - 1] if length else 0:], ends[length:]

    def freeze(self) -> PathTable:
        """Pack what was appended into the two arrays; the table is read-only afterwards."""
        if self._building is not None:
            blob, ends = self._building
            self._blob = np.frombuffer(bytes(blob), np.uint8)
            self._ends = np.frombuffer(ends, np.int64).copy() if ends else np.zeros(0, np.int64)
            self._building = None
        return self

    @property
    def nbytes(self) -> int:
        return int(self._blob.nbytes + self._ends.nbytes)

    def name(self, index: int) -> str:
        """The relative name of entry ``index``."""
        index = int(index)
        start = int(self._ends[index - 1]) if index > 0 else 0
        return self._blob[start:int(self._ends[index])].tobytes().decode("utf-8", "surrogateescape")

    def __len__(self) -> int:
        return len(self._ends) if self._building is None else len(self._building[1])

    def __getitem__(self, index: int | slice) -> Path | list[Path]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        length = len(self)
        if not -length <= int(index) < length:
            raise IndexError(f"index {index} out of range for {length} paths")
        return self.root / self.name(int(index) % length)

    def __iter__(self):
        return (self[i] for i in range(len(self)))
