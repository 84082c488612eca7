"""PyTorch -> ONNX for every Speech2Face model, verified before anything is written.

Each export goes through ``torch.onnx.export(dynamo=True)`` with a dynamic batch axis, the
bundle's opset (``s2f.runtime.bundle.manifest.OPSET``), named inputs and outputs, and metadata that
lets a torch-free runtime use the graph on its own: the model type and config, input/output names and shapes, and the
preprocessing the inputs need (face-encoder conventions, spectrogram variant, fbank
normalisation). Then the graph must pass ``onnx.checker`` and agree with PyTorch in
onnxruntime on random inputs (batch 1 and 3), plus any real inputs given, within float32
rounding: per output, no further from PyTorch in float64 than a small factor times PyTorch's
own float32 result is (``s2f.core.agreement.RoundingRule``), so the gate means the same on
every CPU's kernels. Only then are the files
written (temp files + rename): the graph, and its weights beside it in ``NAME.onnx.data``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from s2f.core.agreement import RoundingRule, RoundingVerdict, compare
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
from s2f.models.exact import float64_copy
from s2f.runtime.bundle.manifest import OPSET

__all__ = ["ExportOptions", "ExportReport", "ExportSpec", "export_onnx", "fp16_path", "int8_path", "spec_for",
           "verify_graph"]


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
                      {"config": asdict(config), "preprocessing": info.preprocessing(config)})


@dataclass
class ExportReport:
    """What verification measured. ``float32``: per output, the float32 graph's distance to
    PyTorch float64 under the rounding rule; ``fp16_max_relative_error`` and
    ``int8_min_cosine``: the variants' distance to float64, where written."""

    path: str
    model_type: str
    opset: int
    float32: dict[str, RoundingVerdict]
    inputs_checked: int
    bytes: int
    fusions: dict[str, int] = field(default_factory=dict)
    fp16_max_relative_error: dict[str, float] | None = None
    int8_min_cosine: dict[str, float] | None = None

    @property
    def max_relative_error(self) -> dict[str, float]:
        """Per output, the float32 graph's max |difference| / max |float64 result|."""
        return {name: verdict.error for name, verdict in self.float32.items()}

    def summary(self) -> str:
        worst = ", ".join(f"{name} {verdict.error:.1e} (allowed {verdict.allowed:.1e})"
                          for name, verdict in self.float32.items())
        fused = f", fused {', '.join(f'{n} x{c}' for n, c in self.fusions.items())}" if self.fusions else ""
        half = ("; fp16 graph: " + ", ".join(f"{name} {error:.1e}" for name, error in
                                             self.fp16_max_relative_error.items())
                if self.fp16_max_relative_error else "")
        quarter = ("; int8 graph, cosine to float64: " + ", ".join(f"{name} {value:.5f}" for name, value in
                                                                   self.int8_min_cosine.items())
                   if self.int8_min_cosine else "")
        return (f"{self.path}: {self.model_type}, opset {self.opset}, {self.bytes / 1e6:.1f} MB{fused}; "
                f"onnxruntime vs PyTorch float64 on {self.inputs_checked} inputs, max relative error: "
                f"{worst}{half}{quarter}")


def verification_inputs(spec: ExportSpec, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    if spec.model_type == "face_encoder":  # preprocessed images: pixel-scale values, as real inputs are
        scale = 255.0 if spec.metadata["preprocessing"]["divide_by"] == 1.0 else 1.0
        return [(rng.random((batch, *spec.input_shape)) * scale).astype(np.float32) for batch in (1, 3)]
    return [rng.standard_normal((batch, *spec.input_shape)).astype(np.float32) for batch in (1, 3)]


def _as_arrays(value) -> tuple[np.ndarray, ...]:
    return tuple(v.numpy() for v in (value if isinstance(value, tuple) else (value,)))


@dataclass
class PyTorchReference:
    """PyTorch's outputs for every verification input: in float32 (the model as trained and
    served) and in float64 (the exact result every graph is judged against)."""

    float32: list[tuple[np.ndarray, ...]]
    float64: list[tuple[np.ndarray, ...]]

    @classmethod
    def compute(cls, module: nn.Module, inputs: list[np.ndarray]) -> PyTorchReference:
        exact = float64_copy(module)
        with torch.no_grad():
            single = [_as_arrays(module(torch.from_numpy(array))) for array in inputs]
            double = [_as_arrays(exact(torch.from_numpy(array).double())) for array in inputs]
        return cls(single, double)


def _graph_outputs(proto, spec: ExportSpec, inputs: list[np.ndarray], reference: PyTorchReference,
                   path: Path) -> list[tuple[np.ndarray, ...]]:
    """The graph's outputs in onnxruntime for every input, their shapes checked against PyTorch's."""
    import onnxruntime as ort

    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    found = []
    for array, expected in zip(inputs, reference.float64, strict=True):
        got = session.run(spec.output_names, {spec.input_name: array})
        for name, ours, theirs in zip(spec.output_names, got, expected, strict=True):
            if np.shape(ours) != np.shape(theirs):
                raise InputError(path, f"export refused: {name}: PyTorch gives shape {list(np.shape(theirs))}, "
                                       f"onnxruntime {list(np.shape(ours))}")
        found.append(tuple(got))
    return found


@dataclass
class ExportOptions:
    """Args:
        rule: when the float32 graph computes what the model computes (``RoundingRule``: no
            further from PyTorch float64 than a factor times PyTorch float32 is, with a floor).
        seed: of the random verification inputs.
        external_data: weights in ``NAME.onnx.data`` (False: one self-contained file).
        portable: standard ONNX operators only (no onnxruntime fused kernels).
        fp16, fp16_tolerance: also write ``NAME.fp16.onnx``, kept within that relative error
            of float64.
        int8, int8_min_cosine: also write ``NAME.int8.onnx``, kept at least at that cosine to
            float64.
        rewrite: replace layers onnxruntime runs badly by equivalents (bench/export_rewrites.py).
    """

    rule: RoundingRule = field(default_factory=RoundingRule)
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
    runs faster, but only onnxruntime can run the result. Every graph is judged against
    PyTorch in float64 on the same inputs: the float32 graph by the rounding rule, each
    precision variant (``s2f.export.precisions``) by its own measure. The verification runs
    on the graphs that are written.
    """
    import onnx

    options = replace(options or ExportOptions(), **overrides)
    path = Path(path)
    spec = spec_for(model.eval())
    spec.module.eval()
    example = torch.from_numpy(verification_inputs(spec, options.seed)[1])
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
    inputs = verification_inputs(spec, options.seed) + [np.asarray(x, np.float32) for x in (real_inputs or [])]
    reference = PyTorchReference.compute(spec.module, inputs)
    verdicts = _verify_float32(proto, spec, inputs, reference, options.rule, path)
    report = ExportReport(str(path), spec.model_type, OPSET, verdicts, len(inputs), 0, fusions)
    graphs = [(proto, path)]
    for variant in options.variants():
        graph, variant_fusions = variant.make(unfused, proto, fusions)
        target = variant_path(path, variant.precision)
        measured = _verify_variant(graph, spec, inputs, reference, variant, target)
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


def verify_graph(graph, model: nn.Module, inputs: list[np.ndarray] | None = None,
                 rule: RoundingRule | None = None, seed: int = 0, precision: str = "fp32") -> dict[str, Any]:
    """Judge an ONNX graph (a ``ModelProto`` or a file) as a port of ``model``, on random
    inputs of the model's shape (batch 1 and 3) and ``inputs``, against PyTorch float64: at
    ``fp32`` per output by ``rule`` (a ``RoundingVerdict`` each), at ``fp16`` or ``int8`` by
    the variant's measure (the value each). Raises ``InputError`` naming the outputs that
    miss. Export runs the same checks; this is for graphs made elsewhere or on another CPU."""
    import onnx

    spec = spec_for(model.eval())
    spec.module.eval()
    path = Path(graph) if isinstance(graph, str | Path) else Path(f"<{spec.model_type} graph>")
    proto = onnx.load(str(graph)) if isinstance(graph, str | Path) else graph
    inputs = verification_inputs(spec, seed) + [np.asarray(x, np.float32) for x in (inputs or [])]
    reference = PyTorchReference.compute(spec.module, inputs)
    if precision == "fp32":
        return _verify_float32(proto, spec, inputs, reference, rule or RoundingRule(), path)
    variants = {"fp16": fp16_variant(), "int8": int8_variant(portable=True)}
    if precision not in variants:
        raise InputError(path, f"unknown precision {precision!r}; one of fp32, {', '.join(variants)}")
    return _verify_variant(proto, spec, inputs, reference, variants[precision], path)


def _verify_float32(proto, spec: ExportSpec, inputs: list[np.ndarray], reference: PyTorchReference,
                    rule: RoundingRule, path: Path) -> dict[str, RoundingVerdict]:
    """Per output, the graph's worst distance to float64 over the inputs, judged by ``rule``
    against PyTorch float32's worst; ``InputError`` (export refused) when one misses."""
    got = _graph_outputs(proto, spec, inputs, reference, path)
    verdicts = {}
    for index, name in enumerate(spec.output_names):
        error = max(compare(exact[index], ours[index]).max_relative
                    for exact, ours in zip(reference.float64, got, strict=True))
        own = max(compare(exact[index], single[index]).max_relative
                  for exact, single in zip(reference.float64, reference.float32, strict=True))
        verdicts[name] = rule.judge(error, own)
    bad = {name: verdict for name, verdict in verdicts.items() if not verdict.passed}
    if bad:
        raise InputError(path, "export refused: onnxruntime computes something else than PyTorch: "
                               + "; ".join(f"{name} is {verdict}" for name, verdict in bad.items()))
    return verdicts


def _verify_variant(proto, spec: ExportSpec, inputs: list[np.ndarray], reference: PyTorchReference,
                    variant: Variant, path: Path) -> dict[str, float]:
    """Per output, the variant's measure of ``proto`` against PyTorch float64 over every input
    (the worst); ``InputError`` (export refused) past its limit."""
    got = _graph_outputs(proto, spec, inputs, reference, path)
    worst = min if variant.measure == "min_cosine" else max
    measured = {name: worst(getattr(compare(exact[index], ours[index]), variant.measure)
                            for exact, ours in zip(reference.float64, got, strict=True))
                for index, name in enumerate(spec.output_names)}
    bad = {name: value for name, value in measured.items() if not variant.passes(value)}
    if bad:
        what = "cosine to PyTorch float64" if variant.measure == "min_cosine" else "relative error to PyTorch float64"
        bound = "minimum" if variant.measure == "min_cosine" else "tolerance"
        raise InputError(path, f"export refused: the {variant.precision} graph's {what} is "
                               + ", ".join(f"{k} {v:.5g}" for k, v in bad.items()) + f" ({bound} {variant.limit:g})")
    return measured


def _rewrite_for_onnxruntime(module: nn.Module, example: torch.Tensor) -> tuple[nn.Module, dict[str, int]]:
    """The module as exported: same arithmetic, layers onnxruntime runs badly replaced by
    equivalents it runs well (a copy; ``module`` is untouched); how many of each."""
    module, subpixel = with_subpixel_convolutions(module)
    module, deferred = defer_final_shuffle(module) if subpixel else (module, 0)
    module, dense = with_dense_convolutions(module, example)
    return module, {"transposed_convolution_as_subpixel": subpixel, "depth_to_space_after_rgb": deferred,
                    "convolution_as_gemm": dense}
