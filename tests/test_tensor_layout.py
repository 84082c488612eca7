"""The banded, tiled permutation must equal the plain numpy transpose for every layout,
including when a tensor spans many bands or an output row spans several (the paths that
keep memory flat), and the sequential writer must write exactly what it was given."""

from __future__ import annotations

import errno
import os

import h5py
import numpy as np
import pytest
from safetensors.numpy import load_file

import s2f.converters.safetensors_stream as stream
import s2f.converters.tensor_layout as layout
from s2f.converters.keras_h5 import KerasWeightsFile
from s2f.converters.safetensors_stream import TensorEntry, write_safetensors

CASES = {
    "conv": ((3, 3, 5, 7), lambda k: k.transpose(3, 2, 0, 1)),
    "fc-conv": ((7, 7, 16, 33), lambda k: k.transpose(3, 2, 0, 1)),
    # an output row (32 * 49 * 4 = 6272 bytes) larger than the smallest stage's region
    "fc-conv-wide": ((7, 7, 32, 5), lambda k: k.transpose(3, 2, 0, 1)),
    "dense": ((130, 70), lambda k: k.T),
    "dense-long": ((1500, 3), lambda k: k.T),
    # Dense after Flatten of a 7x7x16 map: rows H,W,C -> PyTorch columns C,H,W
    "dense-hwc": ((7 * 7 * 16, 33), lambda k: k.reshape(7, 7, 16, 33).transpose(3, 2, 0, 1).reshape(33, -1)),
    "vector": ((33,), lambda k: k),
}
KINDS = {"conv": "conv", "fc-conv": "conv", "fc-conv-wide": "conv", "dense": "dense", "dense-long": "dense",
         "dense-hwc": "dense-hwc", "vector": "vector"}


def _keras_file(path, arrays, compression):
    with h5py.File(path, "w") as handle:
        handle.attrs["layer_names"] = np.array([n.encode() for n in arrays], dtype="S")
        for name, array in arrays.items():
            group = handle.create_group(name)
            group.attrs["weight_names"] = np.array([f"{name}/kernel:0".encode()], dtype="S")
            group.create_dataset(f"{name}/kernel:0", data=array, compression=compression)


@pytest.mark.parametrize("direct", [True, False], ids=["o-direct-if-possible", "page-cache"])
@pytest.mark.parametrize("compression", [None, "gzip"], ids=["memory-map", "through-h5py"])
@pytest.mark.parametrize("stage_bytes", [None, 2 * stream.BLOCK], ids=["default-stage", "smallest-stage"])
def test_permutations_match_numpy(tmp_path, monkeypatch, stage_bytes, compression, direct):
    """Every layout, written in one band or in many (down to slices of one output row), from
    a memory map or through h5py, with or without O_DIRECT, equals numpy's transpose."""
    if stage_bytes:
        monkeypatch.setattr(stream, "STAGE_BYTES", stage_bytes)
    if not direct:
        monkeypatch.setattr(stream, "_enable_direct_io", lambda fd: False)
    rng = np.random.default_rng(0)
    arrays = {name: rng.standard_normal(shape).astype(np.float32) for name, (shape, _) in CASES.items()}
    source = tmp_path / "w.h5"
    _keras_file(source, arrays, compression)
    expected = {name: np.ascontiguousarray(fn(arrays[name])) for name, (_, fn) in CASES.items()}
    with KerasWeightsFile(source) as kfile, layout.KerasArrays(source) as mapped:
        weights = {name: kfile.layer(name).weight("kernel") for name in CASES}
        entries = [TensorEntry(name, np.dtype("<f4"), expected[name].shape) for name in CASES]

        def fill(writer, entry):
            weight = weights[entry.name]
            dims = layout.permutation_dims(KINDS[entry.name], weight.shape, 16)
            layout.write_permuted(writer, mapped.array(weight), dims, entry.dtype)
            mapped.release(weight)

        out = tmp_path / "out.safetensors"
        size = write_safetensors(out, entries, {"format": "pt"}, fill)
    assert out.stat().st_size == size
    loaded = load_file(str(out))
    assert set(loaded) == set(CASES)
    for name in CASES:
        np.testing.assert_array_equal(loaded[name], expected[name], err_msg=name)


def test_writer_falls_back_when_direct_writes_are_refused(tmp_path, monkeypatch):
    """A file system may accept the O_DIRECT flag and then refuse the writes (EINVAL): the
    writer must switch to the page cache and still produce the exact bytes."""
    monkeypatch.setattr(stream, "STAGE_BYTES", 2 * stream.BLOCK)
    real_pwrite, refused = os.pwrite, []

    def pwrite(fd, data, offset):
        if not refused:
            refused.append(offset)
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_pwrite(fd, data, offset)

    monkeypatch.setattr(stream, "_enable_direct_io", lambda fd: True)
    monkeypatch.setattr(stream.os, "pwrite", pwrite)
    payload = np.random.default_rng(1).integers(0, 256, 3 * stream.BLOCK + 123, dtype=np.uint8)
    entries = [TensorEntry("x", np.dtype("u1"), payload.shape)]

    def fill(writer, entry):
        for start in range(0, payload.size, 1000):
            piece = payload[start:start + 1000]
            writer.region(piece.size)[...] = piece
            writer.commit(piece.size)

    out = tmp_path / "x.safetensors"
    write_safetensors(out, entries, {"format": "pt"}, fill)
    assert refused == [0]
    np.testing.assert_array_equal(load_file(str(out))["x"], payload)


def test_a_producer_that_writes_the_wrong_amount_fails_and_leaves_nothing(tmp_path):
    entries = [TensorEntry("x", np.dtype("<f4"), (4,))]

    def fill(writer, entry):
        writer.region(12)[...] = 0
        writer.commit(12)  # one float short

    out = tmp_path / "x.safetensors"
    with pytest.raises(ValueError, match="12 bytes written, 16 expected"):
        write_safetensors(out, entries, {"format": "pt"}, fill)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("advice", [12345, None], ids=["refused-by-the-kernel", "no-madvise"])
def test_arrays_read_without_populate(tmp_path, monkeypatch, advice):
    """Kernels before Linux 5.14 refuse MADV_POPULATE_READ, other systems have no madvise:
    the arrays must read the same."""
    monkeypatch.setattr(layout, "MADV_POPULATE_READ", advice)
    kernel = np.random.default_rng(2).standard_normal((3, 3, 4, 5)).astype(np.float32)
    source = tmp_path / "w.h5"
    _keras_file(source, {"conv": kernel}, None)
    with KerasWeightsFile(source) as kfile, layout.KerasArrays(source) as arrays:
        weight = kfile.layer("conv").weight("kernel")
        np.testing.assert_array_equal(arrays.array(weight), kernel)
        arrays.release(weight)
