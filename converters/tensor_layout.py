"""Move one Keras array into PyTorch layout, straight from the HDF5 file to the output file.

Every layout the VGGFace files need is one permutation: view the Keras array as
(HW, C, O) and write it as (O, C, HW).

* Conv2D kernel HWIO -> OIHW: HW = kh*kw, C = in, O = out.
* Dense kernel (in, out) -> (out, in): HW = 1.
* Dense after a channels-last Flatten of an HxWxC map: rows are in H,W,C order and PyTorch
  flattens N,C,H,W, so (H*W*C, out) -> (out, C*H*W): HW = H*W, C = channels.

The array is processed in bands of C (all HW rows of a band are contiguous runs in the
file), so memory stays at three band buffers (~96 MB each) however large the layer. A band
is gathered in (C, HW) order by scatter-reads, transposed with cache-sized tiles (several
times faster than numpy's strided copy of the whole array), and each output row's piece is
written in place by the ``BandWriter``'s thread while the next band is read and transposed.
"""

from __future__ import annotations

import os

import numpy as np

from s2f.converters.keras_h5 import KerasWeight
from s2f.converters.phase_clock import phase
from s2f.converters.safetensors_stream import BandWriter, reusable
from s2f.runtime.errors import InputError

BAND_BYTES = 96 * 1024 * 1024
IOV_MAX = 1024  # Linux's limit on buffers per preadv
TILE = 64


class SourceRows:
    """Rows of a Keras array viewed as 2-D (rows, O), read by file offset when the dataset
    is contiguous (the Keras default) and through h5py otherwise."""

    def __init__(self, weight: KerasWeight, columns: int, path: str) -> None:
        self.weight = weight
        self.columns = columns
        self.path = path
        self.row_bytes = columns * weight.dtype.itemsize
        self._fd = os.open(path, os.O_RDONLY) if weight.offset is not None else -1
        self._loaded: np.ndarray | None = None

    def _truncated(self) -> InputError:
        return InputError(self.path, f"layer {self.weight.layer!r}: file ends inside "
                                     f"weight {self.weight.name!r} (truncated file)")

    def _preadv(self, buffers: list[memoryview], row: int) -> None:
        expected = sum(buffer.nbytes for buffer in buffers)
        if os.preadv(self._fd, buffers, self.weight.offset + row * self.row_bytes) != expected:
            raise self._truncated()

    def _all_rows(self) -> np.ndarray:
        if self._loaded is None:
            try:
                self._loaded = self.weight.dataset[()].reshape(-1, self.columns)
            except OSError as err:
                raise InputError(self.path, f"layer {self.weight.layer!r}: cannot read weight "
                                            f"{self.weight.name!r} ({err})") from None
        return self._loaded

    def read(self, start: int, out: np.ndarray) -> None:
        """Fill ``out`` (rows x O, source dtype) from row ``start`` on."""
        with phase("read"):
            self._read(start, out)

    def _read(self, start: int, out: np.ndarray) -> None:
        if self._fd >= 0:
            self._preadv([memoryview(out).cast("B")], start)
        else:
            out[...] = self._all_rows()[start:start + out.shape[0]]

    def read_band(self, c0: int, channels: int, out: np.ndarray) -> None:
        """Fill ``out`` (width, HW, O) with rows ``h * channels + c0 + c``: the band in
        (C, HW) order, which is PyTorch's order, gathered by scatter-reads (one ``preadv``
        per HW position) so no reordering pass is needed afterwards."""
        with phase("read"):
            self._read_band(c0, channels, out)

    def _read_band(self, c0: int, channels: int, out: np.ndarray) -> None:
        width, hw, _ = out.shape
        if self._fd < 0:
            rows = self._all_rows().reshape(hw, channels, -1)
            np.copyto(out, rows[:, c0:c0 + width].transpose(1, 0, 2))
        elif hw == 1:
            self._preadv([memoryview(out).cast("B")], c0)
        else:
            for h in range(hw):
                for first in range(0, width, IOV_MAX):
                    chunk = range(first, min(width, first + IOV_MAX))
                    self._preadv([memoryview(out[c, h]).cast("B") for c in chunk], h * channels + c0 + first)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


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


_SCRATCH: dict[str, np.ndarray] = {}


def _scratch(role: str, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    return reusable(_SCRATCH, role, shape, dtype)


def release_scratch() -> None:
    _SCRATCH.clear()


def _tile_transpose(src: np.ndarray, dst: np.ndarray) -> None:
    """dst[:] = src.T, tile by tile so both sides stay in cache."""
    rows, cols = src.shape
    for r in range(0, rows, TILE):
        for c in range(0, cols, TILE):
            dst[c:c + TILE, r:r + TILE] = src[r:r + TILE, c:c + TILE].T


def write_permuted(writer: BandWriter, offset: int, source: SourceRows, dims: tuple[int, int, int],
                   out_dtype: np.dtype) -> None:
    """Write the (O, C, HW) permutation of the (HW, C, O) source at ``offset``: each band is
    read and transposed here while the writer's thread writes the previous one."""
    hw, channels, outputs = dims
    src_dtype = source.weight.dtype
    if hw == 1 and channels == 1:  # a vector: copy as is
        data = writer.buffer((1, outputs), out_dtype)
        if src_dtype == out_dtype:
            source.read(0, data)
        else:
            staged = np.empty((1, outputs), dtype=src_dtype)
            source.read(0, staged)
            data[...] = staged
        writer.write(data, offset)
        return
    itemsize = out_dtype.itemsize
    band = max(1, min(channels, BAND_BYTES // (hw * outputs * src_dtype.itemsize)))
    row_bytes = channels * hw * itemsize

    for c0 in range(0, channels, band):
        width = min(band, channels - c0)
        block = _scratch("block", (width, hw, outputs), src_dtype)
        source.read_band(c0, channels, block)
        pieces = writer.buffer((outputs, width * hw), out_dtype)
        with phase("transpose"):
            if src_dtype == out_dtype:
                _tile_transpose(block.reshape(width * hw, outputs), pieces)
            else:
                flipped = _scratch("flipped", (outputs, width * hw), src_dtype)
                _tile_transpose(block.reshape(width * hw, outputs), flipped)
                pieces[...] = flipped
        if width == channels:  # one band holds whole output rows: a single write
            writer.write(pieces, offset)
        else:  # each output row's piece of this band, in place
            writer.write(pieces, offset + c0 * hw * itemsize, row_stride=row_bytes)
