"""Move one Keras array into PyTorch layout, straight from the HDF5 file to the output file.

Every layout the VGGFace files need is one permutation: view the Keras array as
(HW, C, O) and write it as (O, C, HW).

* Conv2D kernel HWIO -> OIHW: HW = kh*kw, C = in, O = out.
* Dense kernel (in, out) -> (out, in): HW = 1.
* Dense after a channels-last Flatten of an HxWxC map: rows are in H,W,C order and PyTorch
  flattens N,C,H,W, so (H*W*C, out) -> (out, C*H*W): HW = H*W, C = channels.

The output is produced front to back, a band of output rows at a time, straight into the
writer's staging buffer: the file is written once, in order, so it can bypass the page cache
(``SequentialWriter``). The source is read through a memory map of the HDF5 file, so the
permutation reads the page cache in place instead of copying each band out first; only
chunked or compressed datasets, which have no single file offset, go through h5py.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import sys
from collections.abc import Iterator

import numpy as np

from s2f.converters.keras_h5 import KerasWeight
from s2f.converters.phase_clock import phase
from s2f.converters.safetensors_stream import SequentialWriter
from s2f.core.errors import InputError

# Channels per block of the permutation, chosen on the VGGFace shapes (bench/convert_speed.py):
# plain 2-D transposes (HW = 1) take wide blocks; kernels (HW = 9, 49) read HW x block source
# rows a multiple of 4 KB apart, which share L1 cache sets, so their blocks stay narrow.
TILE_CHANNELS_2D = 64
TILE_CHANNELS = 8
# madvise advice where the platform has it (None: skip); Python's mmap does not name
# MADV_POPULATE_READ (Linux >= 5.14, 22), and Windows has no madvise at all
MADV_POPULATE_READ = getattr(mmap, "MADV_POPULATE_READ", 22 if sys.platform.startswith("linux") else None)
MADV_WILLNEED = getattr(mmap, "MADV_WILLNEED", None)
MADV_DONTNEED = getattr(mmap, "MADV_DONTNEED", None)


def permutation_dims(layout: str, keras_shape: tuple[int, ...], flatten_channels: int) -> tuple[int, int, int]:
    """(HW, C, O) of the permutation that takes the Keras array to PyTorch layout."""
    if layout == "conv":
        kh, kw, cin, cout = keras_shape
        return kh * kw, cin, cout
    if layout == "dense":
        return 1, keras_shape[0], keras_shape[1]
    if layout == "dense-hwc":
        return keras_shape[0] // flatten_channels, flatten_channels, keras_shape[1]
    if layout == "vector":
        return 1, 1, int(np.prod(keras_shape))
    raise ValueError(f"unknown layout {layout!r}")


class KerasArrays:
    """The arrays of one HDF5 file as numpy views: of a read-only memory map of the file for
    contiguous datasets (the Keras default), loaded through h5py otherwise. Use as a context
    manager; views must not outlive it."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = str(path)
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            self._map = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) if size else None

    def array(self, weight: KerasWeight) -> np.ndarray:
        if weight.offset is None:
            try:
                return weight.dataset[()]
            except OSError as err:
                raise InputError(self.path, f"layer {weight.layer!r}: cannot read weight "
                                            f"{weight.name!r} ({err})") from None
        if self._map is None or weight.offset + weight.nbytes > len(self._map):
            raise InputError(self.path, f"layer {weight.layer!r}: file ends inside "
                                        f"weight {weight.name!r} (truncated file)")
        with phase("read"):
            self._populate(weight)
        count = int(np.prod(weight.shape, dtype=np.int64))
        return np.frombuffer(self._map, weight.dtype, count, weight.offset).reshape(weight.shape)

    def _populate(self, weight: KerasWeight) -> None:
        """Map the whole array before the permutation's scattered reads touch it: one call
        that reads what is not cached yet and maps all its pages, instead of a page fault
        every few rows. Kernels before Linux 5.14 get a read-ahead hint instead."""
        try:
            self._advise(weight, MADV_POPULATE_READ)
        except OSError:
            self._advise(weight, MADV_WILLNEED)

    def release(self, weight: KerasWeight) -> None:
        """Unmap a finished array's pages from this process (they stay in the page cache),
        so resident memory holds at most one source array at a time."""
        self._advise(weight, MADV_DONTNEED)

    def _advise(self, weight: KerasWeight, advice: int | None) -> None:
        if advice is None or weight.offset is None or self._map is None or not hasattr(self._map, "madvise"):
            return
        start = weight.offset - weight.offset % mmap.PAGESIZE
        self._map.madvise(advice, start, min(len(self._map), weight.offset + weight.nbytes) - start)

    def close(self) -> None:
        if self._map is not None:
            # a view still referenced (by a traceback) keeps the map; it is unmapped when freed
            with contextlib.suppress(BufferError):
                self._map.close()

    def __enter__(self) -> KerasArrays:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _bands(outputs: int, channels: int, hw: int, itemsize: int, capacity: int) -> Iterator[tuple[int, int, int, int]]:
    """(o0, o1, c0, c1) pieces of the (O, C, HW) output in file order, each at most
    ``capacity`` bytes: whole output rows when a row fits, else one row in channel slices."""
    row_bytes = channels * hw * itemsize
    if row_bytes <= capacity:
        rows = capacity // row_bytes
        for o0 in range(0, outputs, rows):
            yield o0, min(outputs, o0 + rows), 0, channels
        return
    width = max(1, capacity // (hw * itemsize))
    for o in range(outputs):
        for c0 in range(0, channels, width):
            yield o, o + 1, c0, min(channels, c0 + width)


def _permute(source: np.ndarray, out: np.ndarray) -> None:
    """out[o, c, h] = source[h, c, o], in blocks of channels that keep both sides in cache
    (numpy's strided copy of the whole band thrashes the cache; bench/convert_speed.py)."""
    hw, channels, _ = source.shape
    step = TILE_CHANNELS_2D if hw == 1 else TILE_CHANNELS
    for c0 in range(0, channels, step):
        out[:, c0:c0 + step, :] = source[:, c0:c0 + step, :].transpose(2, 1, 0)


def write_permuted(writer: SequentialWriter, source: np.ndarray, dims: tuple[int, int, int],
                   out_dtype: np.dtype) -> None:
    """Append the (O, C, HW) permutation of the (HW, C, O) ``source`` to ``writer``, band by
    band, each permuted straight into the writer's staging buffer."""
    hw, channels, outputs = dims
    source = source.reshape(hw, channels, outputs)
    itemsize = out_dtype.itemsize
    for o0, o1, c0, c1 in _bands(outputs, channels, hw, itemsize, writer.capacity):
        nbytes = (o1 - o0) * (c1 - c0) * hw * itemsize
        band = writer.region(nbytes).view(out_dtype).reshape(o1 - o0, c1 - c0, hw)
        with phase("transpose"):
            if hw == 1 and channels == 1:  # a vector: copy as is
                band[:, 0, 0] = source[0, 0, o0:o1]
            else:
                _permute(source[:, c0:c1, o0:o1], band)
        writer.commit(nbytes)
