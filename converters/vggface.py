"""Map Keras VGGFace weight files (serengil/deepface, rcmalli/keras-vggface) to PyTorch.

The mapping is generated from ``s2f.models.face_encoder_config.parameter_layout``, the same
table the PyTorch modules are built from. rcmalli layers are matched by name; deepface's
VGG-Face layers carry no names of their own, so its weighted layers are matched in order,
as Keras itself loads them.
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from s2f.converters.keras_h5 import KerasWeight, KerasWeightsFile
from s2f.converters.phase_clock import phase
from s2f.converters.safetensors_stream import SequentialWriter, TensorEntry, write_safetensors
from s2f.converters.tensor_layout import KerasArrays, permutation_dims, write_permuted
from s2f.core.errors import InputError
from s2f.models.face_encoder_config import (
    ARCHITECTURES,
    FaceEncoderConfig,
    ParamSpec,
    keras_layers_in_order,
    metadata_for,
    parameter_layout,
)
from s2f.models.provenance import source_metadata, source_record


@dataclass(frozen=True)
class Detection:
    arch: str
    include_top: bool
    evidence: str


def detect_architecture(kfile: KerasWeightsFile) -> Detection:
    """Recognise the architecture from the file's layers alone."""
    weighted = kfile.weighted_layers
    names = {layer.name for layer in weighted}
    if "conv1/7x7_s2" in names:
        se = any(name.endswith("_1x1_down") for name in names)
        arch = "rcmalli-senet50" if se else "rcmalli-resnet50"
        evidence = "layer conv1/7x7_s2" + (" and squeeze-excitation layers *_1x1_down" if se else "")
        return Detection(arch, "classifier" in names, evidence)
    if "conv1_1" in names:
        top = bool(names & {"fc6", "fc7", "fc8"})
        return Detection("rcmalli-vgg16", top, "named layers conv1_1 ... conv5_3")
    kernels = [layer.weight("kernel") for layer in weighted]
    if (
        len(weighted) in (15, 16)
        and all(k is not None and len(k.shape) == 4 for k in kernels)
        and kernels[0].shape == (3, 3, 3, 64)
        and kernels[13].shape[:2] == (7, 7)
    ):
        return Detection("serengil", len(weighted) == 16,
                         f"{len(weighted)} unnamed convolution layers ending in a 7x7 fc6")
    sample = ", ".join(layer.name for layer in weighted[:3]) or "none"
    raise InputError(kfile.path, f"unrecognised layer layout (first layers with weights: {sample}); "
                                 f"pass --arch, one of {', '.join(ARCHITECTURES)}")


def _layers_by_spec(kfile: KerasWeightsFile, config: FaceEncoderConfig) -> dict[str, str]:
    """Keras layer name of the layout -> layer name in this file."""
    wanted = keras_layers_in_order(config)
    if config.spec.named_layers:
        return {name: name for name in wanted}
    weighted = kfile.weighted_layers
    if len(weighted) != len(wanted):
        top = "with" if config.include_top else "without"
        raise InputError(kfile.path, f"serengil {top} top has {len(wanted)} layers with weights, "
                                     f"this file has {len(weighted)}")
    return {name: layer.name for name, layer in zip(wanted, weighted, strict=True)}


def plan_conversion(kfile: KerasWeightsFile, config: FaceEncoderConfig) -> list[tuple[ParamSpec, KerasWeight]]:
    """Pair every PyTorch tensor with its Keras array, checking presence and shape first so
    a bad file fails before anything is written."""
    file_layer = _layers_by_spec(kfile, config)
    plan = []
    for spec in parameter_layout(config):
        name = file_layer[spec.keras_layer]
        layer = kfile.layer(name)
        if layer is None or not layer.weights:
            raise InputError(kfile.path, f"missing layer {name!r} (needed by {config.arch})")
        weight = layer.weight(spec.keras_weight)
        if weight is None:
            raise InputError(kfile.path, f"layer {name!r} has no {spec.keras_weight!r} weight")
        if weight.shape != spec.keras_shape:
            raise InputError(kfile.path, f"layer {name!r} {spec.keras_weight}: shape {weight.shape}, "
                                         f"{config.arch} expects {spec.keras_shape}")
        if weight.dtype.kind != "f":
            raise InputError(kfile.path, f"layer {name!r} {spec.keras_weight}: "
                                         f"dtype {weight.dtype} is not floating point")
        plan.append((spec, weight))
    used = set(file_layer.values())
    extra = [layer.name for layer in kfile.weighted_layers if layer.name not in used]
    if extra:
        raise InputError(kfile.path, f"layer {extra[0]!r} has weights but is not part of {config.arch}"
                                     f"{'' if config.include_top else ' (notop)'}")
    return plan


@dataclass(frozen=True)
class ConversionResult:
    arch: str
    include_top: bool
    detected: Detection
    tensors: int
    parameters: int
    output_bytes: int
    source_sha256: str
    seconds: float
    notes: tuple[str, ...] = ()


HASH_CHUNK = 1 << 20  # stays in L2 while hashed, unlike a whole memory map (bench/convert_speed.py)


def _sha256(handle) -> str:
    """sha256 of an open (unbuffered) file, read into one reused buffer."""
    digest = hashlib.sha256()
    buffer = memoryview(bytearray(HASH_CHUNK))
    while read := handle.readinto(buffer):
        digest.update(buffer[:read])
    return digest.hexdigest()


class Sha256InBackground:
    """Hash the source on the second core while the first converts (hashlib drops the GIL)."""

    def __init__(self, path: Path) -> None:
        self.digest = ""
        self.error: OSError | None = None
        self._thread = threading.Thread(target=self._run, args=(path,), daemon=True)
        self._thread.start()

    def _run(self, path: Path) -> None:
        try:
            with phase("hash"), open(path, "rb", buffering=0) as handle:
                self.digest = _sha256(handle)
        except OSError as err:
            self.error = err

    def result(self) -> str:
        self._thread.join()
        if self.error is not None:
            raise self.error
        return self.digest


def convert_keras_file(source: str | Path, output: str | Path, arch: str | None = None) -> ConversionResult:
    """Convert a Keras VGGFace ``.h5`` (``save_weights`` or whole-model ``save``) into a
    speech2face safetensors file, streaming one band of one tensor at a time, in file order."""
    started = time.perf_counter()
    source, output = Path(source), Path(output)
    if arch is not None and arch not in ARCHITECTURES:
        raise InputError(None, f"unknown --arch {arch!r}; choose from {', '.join(ARCHITECTURES)}")
    with KerasWeightsFile(source) as kfile:
        try:
            detected = detect_architecture(kfile)
        except InputError:
            if arch is None:
                raise
            detected = None
        if arch is not None and detected is not None and detected.arch != arch:
            raise InputError(source, f"--arch {arch} does not match the file, whose layers "
                                     f"({detected.evidence}) are {detected.arch}")
        include_top = detected.include_top if detected else True
        config = FaceEncoderConfig.for_arch(arch or detected.arch, include_top)
        plan = plan_conversion(kfile, config)
        hasher = Sha256InBackground(source)
        entries = [TensorEntry(spec.torch_key, weight.dtype.newbyteorder("<"), spec.shape)
                   for spec, weight in plan]
        by_key = {spec.torch_key: (spec, weight) for spec, weight in plan}

        def fill(writer: SequentialWriter, entry: TensorEntry) -> None:
            spec, weight = by_key[entry.name]
            dims = permutation_dims(spec.layout, spec.keras_shape, spec.flatten_channels)
            write_permuted(writer, arrays.array(weight), dims, entry.dtype)
            arrays.release(weight)

        def record(sha256: str) -> dict[str, str]:
            return source_metadata(source_record("keras-h5-whole-model" if kfile.whole_model else "keras-h5-weights",
                                                 source.name, sha256, keras_version=kfile.keras_version))

        # the sha256 is filled in once the background hash is done: a placeholder of its length first
        metadata = {**metadata_for(config), **record("0" * 64)}
        with KerasArrays(source) as arrays:
            size = write_safetensors(output, entries, metadata, fill, late_metadata=lambda: record(hasher.result()))
    parameters = sum(int(np.prod(entry.shape)) for entry in entries)
    return ConversionResult(config.arch, config.include_top, detected or Detection(config.arch, include_top, "--arch"),
                            len(entries), parameters, size, hasher.result(),
                            time.perf_counter() - started)
