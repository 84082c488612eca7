"""``s2f parity``: prove that a converted PyTorch model computes what the Keras original does.

Runs the upstream Keras model (built by deepface / keras-vggface themselves, see
``keras_reference``) with the ``.h5`` weights and our PyTorch port with the converted
weights on the same inputs (random images and real face photos, preprocessed once by
``s2f.runtime.preprocess.faces``), and compares every layer with weights plus the final outputs:
max |Δ|, max |Δ| relative to the reference's range, and the worst per-image cosine.

The verdict is the rounding rule (``s2f.core.agreement.RoundingRule``): the port, run in
float64, is the exact result of the weights as converted; Keras in float32 must be no further
from it than a small factor times the port's own float32 result is. A conversion bug (a
transposed weight, a wrong epsilon, another padding) puts Keras orders of magnitude further
away; a CPU whose kernels round differently moves both float32 results alike.
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from s2f.core.agreement import RoundingRule, RoundingVerdict
from s2f.core.agreement import compare as agreement
from s2f.core.atomic import atomic_output
from s2f.core.cpu import cpu_description
from s2f.core.errors import InputError
from s2f.core.listing import paths_under
from s2f.runtime.preprocess.faces import preprocess

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}


@dataclass
class Comparison:
    name: str
    shape: tuple[int, ...]
    max_abs: float
    max_rel: float
    min_cosine: float

    def to_dict(self) -> dict:
        return {"name": self.name, "shape": list(self.shape), "max_abs": self.max_abs,
                "max_rel": self.max_rel, "min_cosine": self.min_cosine}


def compare(name: str, reference: np.ndarray, candidate: np.ndarray) -> Comparison:
    """Keras (``reference``) against PyTorch; the relative error is to the reference's range,
    since a layer's activations may sit far from zero (``s2f.core.agreement``)."""
    from s2f.core.agreement import ShapeMismatch
    from s2f.core.agreement import compare as agreement

    try:
        found = agreement(reference, candidate, name)
    except ShapeMismatch:
        raise ValueError(f"{name}: Keras shape {np.shape(reference)} != PyTorch shape {np.shape(candidate)}") from None
    return Comparison(name, tuple(np.shape(reference)), found.max_abs, found.relative_to_range, found.min_cosine)


@dataclass
class ParityReport:
    source: str
    arch: str
    include_top: bool
    inputs: list[str]
    rule: RoundingRule
    gate: str
    verdict: RoundingVerdict | None = None
    outputs: list[Comparison] = field(default_factory=list)
    layers: list[Comparison] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def gated(self) -> Comparison:
        return next(c for c in self.outputs if c.name == self.gate)

    @property
    def passed(self) -> bool:
        return self.verdict is not None and self.verdict.passed

    def to_dict(self) -> dict:
        worst = max(self.layers, key=lambda c: c.max_rel) if self.layers else None
        return {
            "source": self.source, "arch": self.arch, "include_top": self.include_top,
            "inputs": self.inputs, "rule": {"factor": self.rule.factor, "floor": self.rule.floor},
            "gate": self.gate, "verdict": self.verdict.to_dict() if self.verdict else None,
            "passed": self.passed, "cpu": cpu_description(), "outputs": [c.to_dict() for c in self.outputs],
            "worst_layer": worst.to_dict() if worst else None,
            "layers": [c.to_dict() for c in self.layers], "seconds": round(self.seconds, 3),
        }


def load_images(paths: list[str | Path]) -> list[tuple[str, np.ndarray]]:
    """RGB uint8 arrays from image files or directories of them."""
    from PIL import Image, UnidentifiedImageError

    files: list[Path] = []
    for entry in map(Path, paths):
        if entry.is_dir():
            files.extend(paths_under(entry, IMAGE_SUFFIXES))
        elif entry.is_file():
            files.append(entry)
        else:
            raise InputError(entry, "image file or directory not found")
    images = []
    for file in files:
        try:
            with Image.open(file) as image:
                images.append((file.name, np.asarray(image.convert("RGB"))))
        except (UnidentifiedImageError, OSError) as err:
            raise InputError(file, f"cannot read image ({err})") from None
    return images


def random_images(count: int, seed: int) -> list[tuple[str, np.ndarray]]:
    """Noise images of varied sizes and aspect ratios, so resizing paths are exercised."""
    rng = np.random.default_rng(seed)
    sizes = [(224, 224), (180, 260), (300, 200), (97, 131)]
    return [(f"random-{i}-{h}x{w}", rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
            for i, (h, w) in enumerate(sizes[i % len(sizes)] for i in range(count))]


def _keras_activation(layer):
    name = getattr(getattr(layer, "activation", None), "__name__", "linear")
    return {"linear": lambda x: x, "relu": lambda x: np.maximum(x, 0),
            "softmax": lambda x: _softmax(x), "sigmoid": lambda x: 1 / (1 + np.exp(-x))}[name]


def _softmax(x: np.ndarray) -> np.ndarray:
    shifted = np.exp(x - x.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def _channels_first(array: np.ndarray) -> np.ndarray:
    return array.transpose(0, 3, 1, 2) if array.ndim == 4 else array


def run_parity(source: str | Path, arch: str | None = None, images: list[str | Path] | None = None,
               random_count: int = 2, seed: int = 0, rule: RoundingRule | None = None,
               converted: str | Path | None = None) -> ParityReport:
    """Compare the Keras model of ``source`` with its PyTorch conversion.

    ``converted`` is an existing ``s2f convert`` output to check; by default the file is
    converted into a temporary directory first.
    """
    started = time.perf_counter()
    source = Path(source)
    named = random_images(random_count, seed) + (load_images(images) if images else [])
    if not named:
        raise InputError(None, "parity needs at least one input image (random or real)")
    model = _converted_model(source, arch, converted)
    config = model.config
    keras_model = _keras_model(source, config)
    batch = preprocess([image for _, image in named], config.preprocessing)
    pairs = _layer_pairs(keras_model, config)
    keras_values = _keras_values(keras_model, config, pairs, batch.transpose(0, 2, 3, 1).copy())
    captured, output, embedding = _torch_values(model, pairs, batch)
    report = ParityReport(str(source), config.arch, config.include_top, [n for n, _ in named],
                          rule or RoundingRule(), gate="embedding" if embedding is not None else "output")
    for (layer, name), value in zip(pairs, keras_values[:len(pairs)], strict=True):
        activation = _keras_activation(layer)
        report.layers.append(compare(f"{layer.name} -> {name}", _channels_first(value),
                                     activation(captured[name])))
    report.outputs.append(compare("output", _channels_first(keras_values[len(pairs)]), output))
    if embedding is not None:
        reference = keras_values[-1].reshape(len(named), -1)
        report.outputs.append(compare("embedding", reference, embedding))
    keras_gated = reference if embedding is not None else _channels_first(keras_values[len(pairs)])
    from s2f.models.exact import exact_output

    exact = exact_output(model, batch, "embed" if report.gate == "embedding" else "forward")
    report.verdict = report.rule.judge(agreement(exact, keras_gated).max_relative,
                                       agreement(exact, embedding if embedding is not None else output).max_relative)
    report.seconds = time.perf_counter() - started
    return report


def _converted_model(source: Path, arch: str | None, converted: str | Path | None):
    """The PyTorch port: ``converted`` if given, else ``source`` converted into a temp dir."""
    from s2f.converters.convert import convert
    from s2f.models.face_encoder import load_face_encoder

    with tempfile.TemporaryDirectory() as tmp:
        target = Path(converted) if converted else Path(tmp) / "converted.safetensors"
        if converted is None:
            arch = convert(source, target, arch).arch
        model = load_face_encoder(target)
    if arch is not None and arch != model.config.arch:
        raise InputError(target, f"converted file is {model.config.arch}, not {arch}")
    return model


def _keras_model(source: Path, config):
    """The upstream Keras model with ``source``'s weights loaded by Keras itself."""
    from s2f.converters.keras_reference import build_keras_model

    keras_model = build_keras_model(config.arch, config.include_top)
    try:
        keras_model.load_weights(str(source))
    except (ValueError, OSError) as err:
        raise InputError(source, f"Keras could not load these weights into the upstream "
                                 f"{config.arch} model ({str(err).splitlines()[0][:200]})") from None
    return keras_model


def _layer_pairs(keras_model, config) -> list[tuple[Any, str]]:
    """Each Keras layer with weights and the PyTorch module it became."""
    from s2f.models.face_encoder_config import torch_name_for_keras_layer, vgg_conv_names

    weighted = [layer for layer in keras_model.layers if layer.weights]
    if config.spec.named_layers:
        return [(layer, torch_name_for_keras_layer(layer.name)) for layer in weighted]
    # deepface: layers in order (its Keras names are generated)
    torch_names = [name for name, _, _ in vgg_conv_names()] + ["fc6", "fc7"] + (["fc8"] if config.include_top else [])
    return list(zip(weighted, torch_names, strict=True))


def _keras_values(keras_model, config, pairs, keras_input: np.ndarray) -> list[np.ndarray]:
    """Every paired layer's output, the model's output and (when it has one) the descriptor."""
    import tf_keras

    from s2f.converters.keras_reference import keras_descriptor_layer

    descriptor = keras_descriptor_layer(keras_model, config.arch)
    probes = [layer.output for layer, _ in pairs] + [keras_model.output]
    if descriptor is not None:
        probes.append(descriptor.output)
    probe_model = tf_keras.Model(inputs=keras_model.inputs, outputs=probes)
    return [np.asarray(v) for v in probe_model(keras_input, training=False)]


def _torch_values(model, pairs, batch: np.ndarray):
    """The PyTorch port's paired layer outputs (forward hooks), output and embedding."""
    import torch

    captured: dict[str, np.ndarray] = {}

    def capture(name: str):
        def hook(_module, _inputs, output) -> None:
            captured.setdefault(name, output.detach().numpy().copy())
        return hook

    handles = [model.get_submodule(name).register_forward_hook(capture(name)) for _, name in pairs]
    with torch.no_grad():
        tensor = torch.from_numpy(batch)
        output = model(tensor).numpy()
        for handle in handles:
            handle.remove()
        embedding = model.embed(tensor).numpy() if model.config.has_descriptor else None
    return captured, output, embedding


def write_report(report: ParityReport, path: str | Path) -> None:
    with atomic_output(path, "w") as handle:
        json.dump(report.to_dict(), handle, indent=2)


def format_report(report: ParityReport) -> str:
    lines = [f"parity {report.source}: {report.arch} ({'top' if report.include_top else 'notop'}), "
             f"{len(report.inputs)} inputs, {len(report.layers)} layers compared"]
    lines.append(f"  {'':28} {'max |Δ|':>10} {'rel. to range':>14} {'min cosine':>12}")
    worst = max(report.layers, key=lambda c: c.max_rel)
    for c in report.outputs + [Comparison("worst layer: " + worst.name.split(' -> ')[0], worst.shape,
                                          worst.max_abs, worst.max_rel, worst.min_cosine)]:
        lines.append(f"  {c.name[:28]:28} {c.max_abs:10.3g} {c.max_rel:14.3g} {c.min_cosine:12.8f}")
    verdict = "PASS" if report.passed else "FAIL"
    lines.append(f"  {verdict}: Keras's {report.gate} is {report.verdict} (the PyTorch port in float64 is "
                 f"the reference; rule: {report.rule.factor:g} x PyTorch float32's distance, at least "
                 f"{report.rule.floor:.1e})")
    return "\n".join(lines)
