"""The legacy HDF5 layout details the reader must handle without Keras."""

from __future__ import annotations

import h5py
import numpy as np

from s2f.converters.keras_h5 import KerasWeightsFile


def test_split_attributes_and_slashes_in_layer_names(tmp_path):
    """Keras splits big attributes into name0, name1...; '/' in layer names nests groups."""
    path = tmp_path / "split.h5"
    with h5py.File(path, "w") as handle:
        handle.attrs["layer_names0"] = np.array([b"conv1/7x7_s2"], dtype="S")
        handle.attrs["layer_names1"] = np.array([b"conv1/7x7_s2/bn", b"pool"], dtype="S")
        handle.attrs["keras_version"] = b"2.2.4"
        conv = handle.create_group("conv1/7x7_s2")
        conv.attrs["weight_names"] = np.array([b"conv1/7x7_s2/kernel:0"], dtype="S")
        conv["conv1/7x7_s2/kernel:0"] = np.ones((7, 7, 3, 64), np.float32)
        bn = handle["conv1/7x7_s2"].create_group("bn")
        bn.attrs["weight_names0"] = np.array([b"conv1/7x7_s2/bn/gamma:0"], dtype="S")
        bn.attrs["weight_names1"] = np.array([b"conv1/7x7_s2/bn/beta:0"], dtype="S")
        bn["conv1/7x7_s2/bn/gamma:0"] = np.ones(64, np.float32)
        bn["conv1/7x7_s2/bn/beta:0"] = np.zeros(64, np.float32)
        handle.create_group("pool").attrs["weight_names"] = np.array([], dtype="S")
    with KerasWeightsFile(path) as kfile:
        assert [layer.name for layer in kfile.layers] == ["conv1/7x7_s2", "conv1/7x7_s2/bn", "pool"]
        assert [layer.name for layer in kfile.weighted_layers] == ["conv1/7x7_s2", "conv1/7x7_s2/bn"]
        bn_layer = kfile.layer("conv1/7x7_s2/bn")
        assert [w.kind for w in bn_layer.weights] == ["gamma", "beta"]
        assert kfile.layer("conv1/7x7_s2").weight("kernel").shape == (7, 7, 3, 64)
        assert kfile.keras_version == "2.2.4" and not kfile.whole_model


def test_compressed_datasets_are_read_through_h5py(tmp_path):
    """Chunked/compressed arrays have no single file offset; conversion must still work."""
    from s2f.converters.tensor_layout import KerasArrays

    path = tmp_path / "gz.h5"
    kernel = np.random.default_rng(0).standard_normal((3, 3, 4, 8)).astype(np.float32)
    with h5py.File(path, "w") as handle:
        handle.attrs["layer_names"] = np.array([b"c"], dtype="S")
        group = handle.create_group("c")
        group.attrs["weight_names"] = np.array([b"c/kernel:0"], dtype="S")
        group.create_dataset("c/kernel:0", data=kernel, compression="gzip", chunks=(3, 3, 4, 4))
    with KerasWeightsFile(path) as kfile, KerasArrays(path) as arrays:
        weight = kfile.layer("c").weight("kernel")
        assert weight.offset is None
        np.testing.assert_array_equal(arrays.array(weight), kernel)
