"""PyTorch -> ONNX for every Speech2Face model, verified before anything is written.

Each export goes through ``torch.onnx.export(dynamo=True)`` with a dynamic batch axis, the
bundle's opset (``s2f.runtime.manifest.OPSET``), named inputs and outputs, and metadata that
lets a torch-free runtime use the graph on its own: the model type and config, input/output names and shapes, and the
preprocessing the inputs need (face-encoder conventions, spectrogram variant, fbank
normalisation). Then the graph must pass ``onnx.checker`` and agree with PyTorch in
onnxruntime on random inputs (batch 1 and 3), plus any real inputs given, within float32
rounding (max |difference| / max |reference| <= 1e-5 per output). Only then are the files
written (temp files + rename): the graph, and its weights beside it in ``NAME.onnx.data``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from s2f.core.agreement import ShapeMismatch, compare
from s2f.core.errors import InputError
from s2f.export.dense_convolutions import with_dense_convolutions
from s2f.export.graph_metadata import set_metadata
from s2f.export.onnx_files import fp16_path, int8_path, variant_path, write_inline, write_with_external_data
from s2f.export.ort_fusions import fuse_for_onnxruntime
from s2f.export.precisions import (
    FP16_RELATIVE_TOLERANCE,
    INT8_MIN_COSINE,
    Variant,
    fp16_variant,
    int8_variant,
)
from s2f.export.subpixel import defer_final_shuffle, with_subpixel_convolutions
from s2f.runtime.manifest import OPSET

__all__ = ["ExportOptions", "ExportReport", "ExportSpec", "export_onnx", "fp16_path", "int8_path", "spec_for"]
RELATIVE_TOLERANCE = 1e-5


class _FaceEncoderOutputs(nn.Module):
    """The face encoder as served: the embedding, plus the classifier's probabilities when
    the weights have a top."""

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, image: torch.Tensor):
        embedding = self.encoder.embed(image)
        if not self.encoder.config.include_top:
            return embedding
        return embedding, torch.softmax(self.encoder.head_logits(embedding), dim=1)


@dataclass
class ExportSpec:
    """What one model looks like from outside: its graph wrapper, names, example input shape."""

    model_type: str
    module: nn.Module
    input_name: str
    output_names: list[str]
    input_shape: tuple[int, ...]  # without the batch axis
    metadata: dict[str, Any] = field(default_factory=dict)
    tolerances: dict[str, float] = field(default_factory=dict)  # per output, where above the default


def spec_for(model: nn.Module) -> ExportSpec:
    """The model's graph interface, from its entry in the model registry."""
    from s2f.models.registry import MODELS

    model_type = getattr(model, "model_type", None)
    if model_type not in MODELS:
        raise InputError(None, f"no ONNX export for a {model_type or type(model).__name__!r} model")
    info = MODELS[model_type].export
    config = model.config
    if not getattr(config, "has_descriptor", True):
        raise InputError(None, "rcmalli VGG16 notop weights have no embedding to export; convert the top")
    module = _FaceEncoderOutputs(model) if model_type == "face_encoder" else model
    return ExportSpec(model_type, module, info.input_name, info.outputs(config), tuple(info.input_shape(config)),
                      {"config": asdict(config), "preprocessing": info.preprocessing(config)},
                      info.tolerances(config))


@dataclass
class ExportReport:
    path: str
    model_type: str
    opset: int
    max_relative_error: dict[str, float]
    inputs_checked: int
    bytes: int
    fusions: dict[str, int] = field(default_factory=dict)
    fp16_max_relative_error: dict[str, float] | None = None
    int8_min_cosine: dict[str, float] | None = None

    def summary(self) -> str:
        worst = ", ".join(f"{name} {error:.1e}" for name, error in self.max_relative_error.items())
        fused = f", fused {', '.join(f'{n} x{c}' for n, c in self.fusions.items())}" if self.fusions else ""
        half = ("; fp16 graph: " + ", ".join(f"{name} {error:.1e}" for name, error in
                                             self.fp16_max_relative_error.items())
                if self.fp16_max_relative_error else "")
        quarter = ("; int8 graph, cosine to PyTorch: " + ", ".join(f"{name} {value:.5f}" for name, value in
                                                                   self.int8_min_cosine.items())
                   if self.int8_min_cosine else "")
        return (f"{self.path}: {self.model_type}, opset {self.opset}, {self.bytes / 1e6:.1f} MB{fused}; "
                f"onnxruntime vs PyTorch on {self.inputs_checked} inputs, max relative error: {worst}{half}{quarter}")


def _random_inputs(spec: ExportSpec, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    if spec.model_type == "face_encoder":  # preprocessed images: pixel-scale values, as real inputs are
        scale = 255.0 if spec.metadata["preprocessing"]["divide_by"] == 1.0 else 1.0
        return [(rng.random((batch, *spec.input_shape)) * scale).astype(np.float32) for batch in (1, 3)]
    return [rng.standard_normal((batch, *spec.input_shape)).astype(np.float32) for batch in (1, 3)]


def _agreements(session, spec: ExportSpec, inputs: list[np.ndarray]) -> dict[str, list]:
    """Per output, how onnxruntime's value agrees with PyTorch's, for every input."""
    found: dict[str, list] = {name: [] for name in spec.output_names}
    for array in inputs:
        got = session.run(spec.output_names, {spec.input_name: array})
        with torch.no_grad():
            expected = spec.module(torch.from_numpy(array))
        expected = expected if isinstance(expected, tuple) else (expected,)
        for name, ours, theirs in zip(spec.output_names, got, expected, strict=True):
            try:
                found[name].append(compare(theirs.numpy(), ours, name))
            except ShapeMismatch as err:
                raise ExportMismatch(str(err).replace("the reference", "PyTorch").replace("the candidate",
                                                                                           "onnxruntime")) from None
    return found

class ExportMismatch(Exception):
    """The exported graph does not compute what the PyTorch model computes."""


@dataclass
class ExportOptions:
    """Args:
        tolerance: the float32 graph's largest relative error against PyTorch, per output
            (a model's registry entry may allow more for one output).
        seed: of the random verification inputs.
        external_data: weights in ``NAME.onnx.data`` (False: one self-contained file).
        portable: standard ONNX operators only (no onnxruntime fused kernels).
        fp16, fp16_tolerance: also write ``NAME.fp16.onnx``, kept within that relative error.
        int8, int8_min_cosine: also write ``NAME.int8.onnx``, kept at least at that cosine.
        rewrite: replace layers onnxruntime runs badly by equivalents (bench/export_rewrites.py).
    """

    tolerance: float = RELATIVE_TOLERANCE
    seed: int = 0
    external_data: bool = True
    portable: bool = False
    fp16: bool = False
    fp16_tolerance: float = FP16_RELATIVE_TOLERANCE
    int8: bool = False
    int8_min_cosine: float = INT8_MIN_COSINE
    rewrite: bool = True

    def variants(self) -> list[Variant]:
        """The graphs besides float32 that this export writes."""
        return ([fp16_variant(self.fp16_tolerance)] if self.fp16 else []) + \
            ([int8_variant(self.portable, self.int8_min_cosine)] if self.int8 else [])


def export_onnx(model: nn.Module, path: str | Path, real_inputs: list[np.ndarray] | None = None,
                options: ExportOptions | None = None, **overrides) -> ExportReport:
    """Export, check, verify, then write ``path`` (and ``path.data`` with the weights unless
    ``external_data=False``); raises ``InputError`` (nothing written) if verification fails.
    ``overrides`` are ``ExportOptions`` fields (``portable=True``, ``int8=True``, ...).

    Stride-s transposed convolutions are exported as convolution + depth-to-space
    (``s2f.export.subpixel``: a faster decoder) and convolutions that cover their whole input
    as Gemm (``s2f.export.dense_convolutions``: VGG-Face's session opens faster); both
    standard operators, same arithmetic (bench/export_rewrites.py). Unless ``portable``, the
    graph is rewritten with onnxruntime's fused kernels (``s2f.export.ort_fusions``): the AST
    runs faster, but only onnxruntime can run the result. Each precision variant
    (``s2f.export.precisions``) is verified on the same inputs against PyTorch float32. The
    verification runs on the graphs that are written.
    """
    import onnx

    options = replace(options or ExportOptions(), **overrides)
    path = Path(path)
    spec = spec_for(model.eval())
    spec.module.eval()
    example = torch.from_numpy(_random_inputs(spec, options.seed)[1])
    batch = torch.export.Dim("batch", min=1, max=4096)
    exported, rewrites = (_rewrite_for_onnxruntime(spec.module, example) if options.rewrite  # verified vs spec.module
                          else (spec.module, {}))
    with torch.no_grad():
        program = torch.onnx.export(exported, (example,), dynamo=True, opset_version=OPSET, verbose=False,
                                    input_names=[spec.input_name], output_names=spec.output_names,
                                    dynamic_shapes=({0: batch},))
    unfused = program.model_proto if options.int8 else None  # the int8 graph is fused its own way
    fusions = {} if options.portable else fuse_for_onnxruntime(program.model)
    proto = program.model_proto
    metadata = {"model_type": spec.model_type, "inputs": {spec.input_name: ["batch", *spec.input_shape]},
                "outputs": spec.output_names, "opset": OPSET, "torch": torch.__version__, "precision": "fp32",
                "onnxruntime_fusions": fusions, "rewrites": rewrites, **spec.metadata}
    set_metadata(proto, metadata)
    onnx.checker.check_model(proto, full_check=True)
    inputs = _random_inputs(spec, options.seed) + [np.asarray(x, np.float32) for x in (real_inputs or [])]
    float32 = Variant("fp32", lambda unfused, fused, fusions: (fused, fusions), "max_relative", options.tolerance)
    errors = _verify(proto, spec, inputs, float32, path)
    report = ExportReport(str(path), spec.model_type, OPSET, errors, len(inputs), 0, fusions)
    graphs = [(proto, path)]
    for variant in options.variants():
        graph, variant_fusions = variant.make(unfused, proto, fusions)
        target = variant_path(path, variant.precision)
        measured = _verify(graph, spec, inputs, variant, target)
        key = "fp16_max_relative_error" if variant.precision == "fp16" else "int8_min_cosine"
        set_metadata(graph, {**metadata, "precision": variant.precision, key: measured,
                             "onnxruntime_fusions": variant_fusions})
        setattr(report, key, measured)
        graphs.append((graph, target))
    for graph, target in graphs:  # only once every graph is verified
        written = (write_with_external_data(graph, target) if options.external_data
                   else write_inline(graph.SerializeToString(), target))
        report.bytes = report.bytes or written
    return report


def _verify(proto, spec: ExportSpec, inputs: list[np.ndarray], variant: Variant, path: Path) -> dict[str, float]:
    """Per output, the variant's measure of ``proto`` in onnxruntime against PyTorch float32
    over every input (the worst); ``InputError`` (export refused) past its limit."""
    import onnxruntime as ort

    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    try:
        found = _agreements(session, spec, inputs)
    except ExportMismatch as err:
        raise InputError(path, f"export refused: {err}") from None
    worst = min if variant.measure == "min_cosine" else max
    measured = {name: worst(getattr(a, variant.measure) for a in agreements) for name, agreements in found.items()}
    if variant.measure == "min_cosine":
        bad = {name: value for name, value in measured.items() if not variant.passes(value)}
        if bad:
            raise InputError(path, f"export refused: the {variant.precision} graph's cosine to PyTorch float32 is "
                                   + ", ".join(f"{k} {v:.5f}" for k, v in bad.items())
                                   + f" (minimum {variant.limit:g})")
        return measured
    allowed = {name: max(variant.limit, spec.tolerances.get(name, 0.0)) for name in measured}
    bad = {name: error for name, error in measured.items() if not error <= allowed[name]}
    if bad:
        what = "onnxruntime" if variant.precision == "fp32" else f"the {variant.precision} graph"
        raise InputError(path, f"export refused: {what} differs from PyTorch by "
                               + ", ".join(f"{k} {v:.2e} (tolerance {allowed[k]:g})" for k, v in bad.items()))
    return measured


def _rewrite_for_onnxruntime(module: nn.Module, example: torch.Tensor) -> tuple[nn.Module, dict[str, int]]:
    """The module as exported: same arithmetic, layers onnxruntime runs badly replaced by
    equivalents it runs well (a copy; ``module`` is untouched); how many of each."""
    module, subpixel = with_subpixel_convolutions(module)
    module, deferred = defer_final_shuffle(module) if subpixel else (module, 0)
    module, dense = with_dense_convolutions(module, example)
    return module, {"transposed_convolution_as_subpixel": subpixel, "depth_to_space_after_rgb": deferred,
                    "convolution_as_gemm": dense}
