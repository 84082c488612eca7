"""The banded, tiled permutation must equal the plain numpy transpose for every layout,
including when a tensor spans many bands (the memory-saving path)."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from safetensors.numpy import load_file

import s2f.converters.tensor_layout as layout
from s2f.converters.keras_h5 import KerasWeightsFile
from s2f.converters.safetensors_stream import TensorEntry, write_safetensors

CASES = {
    "conv": ((3, 3, 5, 7), lambda k: k.transpose(3, 2, 0, 1)),
    "fc-conv": ((7, 7, 16, 33), lambda k: k.transpose(3, 2, 0, 1)),
    "dense": ((130, 70), lambda k: k.T),
    # Dense after Flatten of a 7x7x16 map: rows H,W,C -> PyTorch columns C,H,W
    "dense-hwc": ((7 * 7 * 16, 33), lambda k: k.reshape(7, 7, 16, 33).transpose(3, 2, 0, 1).reshape(33, -1)),
    "vector": ((33,), lambda k: k),
}


@pytest.mark.parametrize("compression", [None, "gzip"], ids=["by-offset", "through-h5py"])
@pytest.mark.parametrize("band_bytes", [1 << 30, 4096], ids=["one-band", "many-bands"])
def test_permutations_match_numpy(tmp_path, monkeypatch, band_bytes, compression):
    monkeypatch.setattr(layout, "BAND_BYTES", band_bytes)
    monkeypatch.setattr(layout, "IOV_MAX", 3)  # exercise scatter-reads split over several calls
    rng = np.random.default_rng(0)
    arrays = {name: rng.standard_normal(shape).astype(np.float32) for name, (shape, _) in CASES.items()}
    source = tmp_path / "w.h5"
    with h5py.File(source, "w") as handle:
        handle.attrs["layer_names"] = np.array([n.encode() for n in CASES], dtype="S")
        for name, array in arrays.items():
            group = handle.create_group(name)
            group.attrs["weight_names"] = np.array([f"{name}/kernel:0".encode()], dtype="S")
            group.create_dataset(f"{name}/kernel:0", data=array, compression=compression)
    kinds = {"conv": "conv", "fc-conv": "conv", "dense": "dense", "dense-hwc": "dense-hwc", "vector": "vector"}
    expected = {name: np.ascontiguousarray(fn(arrays[name])) for name, (_, fn) in CASES.items()}
    with KerasWeightsFile(source) as kfile:
        weights = {name: kfile.layer(name).weight("kernel") for name in CASES}
        entries = [TensorEntry(name, np.dtype("<f4"), expected[name].shape) for name in CASES]

        def fill(writer, entry, offset):
            weight = weights[entry.name]
            dims = layout.permutation_dims(kinds[entry.name], weight.shape, 16)
            rows = layout.SourceRows(weight, dims[2], str(source))
            layout.write_permuted(writer, offset, rows, dims, entry.dtype)
            rows.close()

        out = tmp_path / "out.safetensors"
        write_safetensors(out, entries, {"format": "pt"}, fill)
    loaded = load_file(str(out))
    for name in CASES:
        np.testing.assert_array_equal(loaded[name], expected[name], err_msg=name)
