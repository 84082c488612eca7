"""Read the legacy Keras 2 HDF5 weight layout without Keras.

Layout (``save_weights``): root attrs ``layer_names`` (possibly split into ``layer_names0``,
``layer_names1``... when large), one group per layer with attr ``weight_names``, datasets at
``<layer>/<weight_name>``. Whole-model files (``model.save``) nest the same under
``model_weights/``. Layer names may contain ``/`` (nested groups), so groups are resolved
through the attributes, never by walking the tree.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from s2f.core.errors import InputError, read_head
from s2f.models.identify import HDF5_SIGNATURE


@dataclass(frozen=True)
class KerasWeight:
    """One stored array. ``offset`` is its byte position in the file when it is stored
    contiguously and uncompressed (the Keras default), which lets the converter read it
    through a memory map in whatever order the output needs."""

    layer: str
    name: str  # e.g. "conv1_1/kernel:0"
    shape: tuple[int, ...]
    dtype: np.dtype
    dataset: h5py.Dataset
    offset: int | None

    @property
    def kind(self) -> str:
        """``kernel``, ``bias``, ``gamma``, ``beta``, ``moving_mean``, ``moving_variance``."""
        return self.name.rsplit("/", 1)[-1].split(":", 1)[0]

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize


@dataclass(frozen=True)
class KerasLayer:
    name: str
    weights: tuple[KerasWeight, ...]

    def weight(self, kind: str) -> KerasWeight | None:
        for weight in self.weights:
            if weight.kind == kind:
                return weight
        return None


def _decode(value: object) -> str:
    return value.decode("utf8") if isinstance(value, bytes) else str(value)


def _string_list_attr(group: h5py.Group, name: str) -> list[str] | None:
    """An attribute that Keras may have split into ``name0``, ``name1``... chunks."""
    if name in group.attrs:
        return [_decode(v) for v in group.attrs[name]]
    if f"{name}0" not in group.attrs:
        return None
    values: list[str] = []
    index = 0
    while f"{name}{index}" in group.attrs:
        values.extend(_decode(v) for v in group.attrs[f"{name}{index}"])
        index += 1
    return values


class KerasWeightsFile:
    """An open Keras HDF5 weights file; use as a context manager."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._check_signature()
        try:
            self._file = h5py.File(self.path, "r")
        except OSError as err:
            reason = str(err).split("(")[0].strip() or "unreadable"
            raise InputError(self.path, f"cannot open as HDF5 ({reason}); truncated or corrupt file?") from None
        try:
            self.whole_model = "layer_names" not in self._file.attrs and "model_weights" in self._file
            self.root = self._file["model_weights"] if self.whole_model else self._file
            names = _string_list_attr(self.root, "layer_names")
            if names is None:
                raise InputError(self.path, "HDF5 file has no Keras 'layer_names' attribute; "
                                            "not a Keras weights file")
            self.keras_version = _decode(self.root.attrs.get("keras_version", "unknown"))
            self.backend = _decode(self.root.attrs.get("backend", "unknown"))
            self.file_size = os.path.getsize(self.path)
            self.layers = [self._read_layer(name) for name in names]
            self._by_name = {layer.name: layer for layer in self.layers}
        except BaseException:
            self._file.close()
            raise

    def _check_signature(self) -> None:
        if read_head(self.path, len(HDF5_SIGNATURE), "weights file") != HDF5_SIGNATURE:
            raise InputError(self.path, "not an HDF5 file (bad signature); expected a Keras .h5 weights file")

    def _read_layer(self, name: str) -> KerasLayer:
        try:
            group = self.root[name]
        except KeyError:
            raise InputError(self.path, f"layer {name!r} is listed in layer_names but has no group") from None
        weight_names = _string_list_attr(group, "weight_names") or []
        weights = []
        for weight_name in weight_names:
            try:
                dataset = group[weight_name]
            except KeyError:
                raise InputError(self.path, f"layer {name!r}: weight {weight_name!r} is missing") from None
            offset = dataset.id.get_offset()
            contiguous = dataset.chunks is None and dataset.compression is None and not dataset.external
            weight = KerasWeight(
                layer=name, name=weight_name, shape=tuple(dataset.shape),
                dtype=np.dtype(dataset.dtype), dataset=dataset,
                offset=offset if contiguous else None,
            )
            if weight.offset is not None and weight.offset + weight.nbytes > self.file_size:
                raise InputError(self.path, f"layer {name!r}: weight {weight_name!r} "
                                            f"{weight.shape} runs past the end of the file "
                                            "(truncated file)")
            weights.append(weight)
        return KerasLayer(name=name, weights=tuple(weights))

    def layer(self, name: str) -> KerasLayer | None:
        return self._by_name.get(name)

    @property
    def weighted_layers(self) -> list[KerasLayer]:
        return [layer for layer in self.layers if layer.weights]

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> KerasWeightsFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
