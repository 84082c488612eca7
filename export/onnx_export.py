"""PyTorch -> ONNX for every Speech2Face model, verified before anything is written.

Each export goes through ``torch.onnx.export(dynamo=True)`` with a dynamic batch axis,
opset 18, named inputs and outputs, and metadata that lets a torch-free runtime use the
graph on its own: the model type and config, input/output names and shapes, and the
preprocessing the inputs need (face-encoder conventions, spectrogram variant, fbank
normalisation). Then the graph must pass ``onnx.checker`` and agree with PyTorch in
onnxruntime on random inputs (batch 1 and 3), plus any real inputs given, within float32
rounding (max |difference| / max |reference| <= 1e-5 per output). Only then are the files
written (temp files + rename): the graph, and its weights beside it in ``NAME.onnx.data``.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from s2f.core.atomic import atomic_output
from s2f.core.errors import InputError
from s2f.export.dense_convolutions import with_dense_convolutions
from s2f.export.graph_metadata import set_metadata
from s2f.export.subpixel import defer_final_shuffle, with_subpixel_convolutions
from s2f.runtime.manifest import OPSET

RELATIVE_TOLERANCE = 1e-5
FP16_RELATIVE_TOLERANCE = 1e-2  # float16 keeps 11 significant bits: ~5e-4 per rounding, accumulated over layers
INT8_OPERATORS = ("MatMul", "Gemm")
INT8_MIN_COSINE = 0.999  # int8 weights move values by ~1/255 of each tensor's range: judged by direction


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


def _output_pairs(session, spec: ExportSpec, inputs: list[np.ndarray]):
    """(output name, onnxruntime's value, PyTorch's value) for every input and output."""
    for array in inputs:
        got = session.run(spec.output_names, {spec.input_name: array})
        with torch.no_grad():
            expected = spec.module(torch.from_numpy(array))
        expected = expected if isinstance(expected, tuple) else (expected,)
        for name, ours, theirs in zip(spec.output_names, got, expected, strict=True):
            theirs = theirs.numpy()
            if ours.shape != theirs.shape:
                raise ExportMismatch(f"{name}: onnxruntime gives shape {ours.shape}, PyTorch {theirs.shape}")
            yield name, ours, theirs


def _compare(session, spec: ExportSpec, inputs: list[np.ndarray]) -> dict[str, float]:
    worst = dict.fromkeys(spec.output_names, 0.0)
    for name, ours, theirs in _output_pairs(session, spec, inputs):
        scale = float(np.max(np.abs(theirs))) or 1.0
        worst[name] = max(worst[name], float(np.max(np.abs(ours - theirs))) / scale)
    return worst


class ExportMismatch(Exception):
    """The exported graph does not compute what the PyTorch model computes."""


def export_onnx(model: nn.Module, path: str | Path, real_inputs: list[np.ndarray] | None = None,
                tolerance: float = RELATIVE_TOLERANCE, seed: int = 0, external_data: bool = True,
                portable: bool = False, fp16: bool = False,
                fp16_tolerance: float = FP16_RELATIVE_TOLERANCE, rewrite: bool = True, int8: bool = False,
                int8_min_cosine: float = INT8_MIN_COSINE) -> ExportReport:
    """Export, check, verify, then write ``path`` (and ``path.data`` with the weights unless
    ``external_data=False``); raises ``InputError`` (nothing written) if verification fails.

    Stride-s transposed convolutions are exported as convolution + depth-to-space
    (``s2f.export.subpixel``: a faster decoder) and convolutions that cover their whole input
    as Gemm (``s2f.export.dense_convolutions``: VGG-Face's session opens faster); both
    standard operators, same arithmetic (bench/export_rewrites.py). Unless
    ``portable``, the graph is rewritten with onnxruntime's fused kernels (attention,
    skip-layer-norm, bias-GELU; see ``_fuse_for_onnxruntime``): the AST runs faster, but
    only onnxruntime can run the result. The verification runs on the graph that is written.

    ``fp16=True`` also writes ``NAME.fp16.onnx`` (float16 weights and arithmetic, float32
    inputs and outputs) for GPUs, with its own measured error against PyTorch float32, which
    must stay under ``fp16_tolerance``. ``int8=True`` also writes ``NAME.int8.onnx``:
    onnxruntime's dynamic quantisation of the MatMul/Gemm weights (its standard CPU path for
    transformers; convolutions stay float), kept only if every output's cosine to PyTorch
    float32 is at least ``int8_min_cosine`` on every input. ``rewrite=False`` exports the layers as they are
    (``bench/export_rewrites.py`` measures what the rewrites buy).
    """
    import onnx

    path = Path(path)
    spec = spec_for(model.eval())
    spec.module.eval()
    example = torch.from_numpy(_random_inputs(spec, seed)[1])
    batch = torch.export.Dim("batch", min=1, max=4096)
    exported, rewrites = (_rewrite_for_onnxruntime(spec.module, example) if rewrite  # verified against spec.module
                          else (spec.module, {}))
    with torch.no_grad():
        program = torch.onnx.export(exported, (example,), dynamo=True, opset_version=OPSET, verbose=False,
                                    input_names=[spec.input_name], output_names=spec.output_names,
                                    dynamic_shapes=({0: batch},))
    unfused = program.model_proto if int8 else None  # the int8 graph is fused its own way
    fusions = {} if portable else _fuse_for_onnxruntime(program.model)
    proto = program.model_proto
    metadata = {"model_type": spec.model_type, "inputs": {spec.input_name: ["batch", *spec.input_shape]},
                "outputs": spec.output_names, "opset": OPSET, "torch": torch.__version__, "precision": "fp32",
                "onnxruntime_fusions": fusions, "rewrites": rewrites, **spec.metadata}
    set_metadata(proto, metadata)
    onnx.checker.check_model(proto, full_check=True)
    inputs = _random_inputs(spec, seed) + [np.asarray(x, np.float32) for x in (real_inputs or [])]
    errors = _verify(proto, spec, inputs, tolerance, path)
    report = ExportReport(str(path), spec.model_type, OPSET, errors, len(inputs), 0, fusions)
    graphs = [(proto, path)]
    if fp16:
        half, half_path = _to_fp16(proto), fp16_path(path)
        half_errors = _verify(half, spec, inputs, fp16_tolerance, half_path, "the fp16 graph")
        set_metadata(half, {**metadata, "precision": "fp16", "fp16_max_relative_error": half_errors})
        report.fp16_max_relative_error = half_errors
        graphs.append((half, half_path))
    if int8:
        source, int8_fusions = _int8_source(unfused, portable)
        quantized, quantized_path = _to_int8(source), int8_path(path)
        cosines = _verify_cosine(quantized, spec, inputs, int8_min_cosine, quantized_path)
        set_metadata(quantized, {**metadata, "precision": "int8", "int8_min_cosine": cosines,
                                 "onnxruntime_fusions": int8_fusions})
        report.int8_min_cosine = cosines
        graphs.append((quantized, quantized_path))
    for graph, target in graphs:  # only once every graph is verified
        written = (_write_with_external_data(graph, target) if external_data
                   else _write_inline(graph.SerializeToString(), target))
        report.bytes = report.bytes or written
    return report


def int8_path(path: str | Path) -> Path:
    """``ast.onnx`` -> ``ast.int8.onnx``."""
    path = Path(path)
    return path.with_name(path.stem + ".int8" + path.suffix)


def _to_int8(proto):
    """Dynamic int8 quantisation of MatMul and Gemm weights (activations quantised per run).

    Per output channel: on the full AST it keeps the embedding's cosine at 0.9993 where one
    scale per tensor gives 0.9990, at the same speed."""
    import tempfile

    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # its advice to pre-process for static quantisation does not apply here
    try:
        with tempfile.TemporaryDirectory() as directory:
            target = Path(directory) / "int8.onnx"
            quantize_dynamic(proto, target, op_types_to_quantize=list(INT8_OPERATORS), weight_type=QuantType.QInt8,
                             per_channel=True, use_external_data_format=True,
                             extra_options={"MatMulConstBOnly": True})  # weights only, never activation x activation
            return onnx.load(str(target))
    finally:
        root.setLevel(level)


def _cosines(session, spec: ExportSpec, inputs: list[np.ndarray]) -> dict[str, float]:
    """Per output, the smallest cosine between onnxruntime's and PyTorch's value of one sample."""
    worst = dict.fromkeys(spec.output_names, 1.0)
    for name, ours, theirs in _output_pairs(session, spec, inputs):
        a = ours.reshape(len(ours), -1).astype(np.float64)
        b = theirs.reshape(len(ours), -1).astype(np.float64)
        norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
        cosine = np.where(norms > 0, (a * b).sum(axis=1) / np.where(norms > 0, norms, 1.0), 1.0)
        worst[name] = min(worst[name], float(cosine.min()))
    return worst


def _verify_cosine(proto, spec: ExportSpec, inputs: list[np.ndarray], minimum: float, path: Path) -> dict[str, float]:
    import onnxruntime as ort

    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    try:
        cosines = _cosines(session, spec, inputs)
    except ExportMismatch as err:
        raise InputError(path, f"export refused: {err}") from None
    bad = {name: value for name, value in cosines.items() if not value >= minimum}
    if bad:
        raise InputError(path, "export refused: the int8 graph's cosine to PyTorch float32 is "
                               + ", ".join(f"{k} {v:.5f}" for k, v in bad.items()) + f" (minimum {minimum:g})")
    return cosines


def fp16_path(path: str | Path) -> Path:
    """``voice_encoder.onnx`` -> ``voice_encoder.fp16.onnx``."""
    path = Path(path)
    return path.with_name(path.stem + ".fp16" + path.suffix)


def _verify(proto, spec: ExportSpec, inputs: list[np.ndarray], tolerance: float, path: Path,
            what: str = "onnxruntime") -> dict[str, float]:
    """Worst relative error per output of ``proto`` in onnxruntime against PyTorch float32;
    ``InputError`` (export refused) above ``tolerance``."""
    import onnxruntime as ort

    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    try:
        errors = _compare(session, spec, inputs)
    except ExportMismatch as err:
        raise InputError(path, f"export refused: {err}") from None
    allowed = {name: max(tolerance, spec.tolerances.get(name, 0.0)) for name in errors}
    bad = {name: error for name, error in errors.items() if not error <= allowed[name]}
    if bad:
        raise InputError(path, f"export refused: {what} differs from PyTorch by "
                               + ", ".join(f"{k} {v:.2e} (tolerance {allowed[k]:g})" for k, v in bad.items()))
    return errors


def _to_fp16(proto):
    """Float16 weights and arithmetic, float32 at the graph's edges (so callers and IOBinding
    stay the same). onnxruntime's converter knows which of its fused kernels take float16."""
    import copy

    from onnxruntime.transformers.float16 import convert_float_to_float16

    return convert_float_to_float16(copy.deepcopy(proto), keep_io_types=True)


def _rewrite_for_onnxruntime(module: nn.Module, example: torch.Tensor) -> tuple[nn.Module, dict[str, int]]:
    """The module as exported: same arithmetic, layers onnxruntime runs badly replaced by
    equivalents it runs well (a copy; ``module`` is untouched); how many of each."""
    module, subpixel = with_subpixel_convolutions(module)
    module, deferred = defer_final_shuffle(module) if subpixel else (module, 0)
    module, dense = with_dense_convolutions(module, example)
    return module, {"transposed_convolution_as_subpixel": subpixel, "depth_to_space_after_rgb": deferred,
                    "convolution_as_gemm": dense}


def _int8_source(proto, portable: bool):
    """The float graph to quantise, and its fusions: attention fused into
    ``MultiHeadAttention`` with the Q, K and V projections left as MatMuls (packed into
    ``Attention`` they cannot be quantised), so every weight matrix becomes int8. The full
    AST runs faster this way than from the quantised packed graph (bench/onnx_runtime.py)."""
    if portable:
        return proto, {}
    import onnx_ir as ir

    model = ir.serde.deserialize_model(proto)
    fusions = _fuse_for_onnxruntime(model, pack_qkv=False)
    return ir.serde.serialize_model(model), fusions


def _fuse_for_onnxruntime(model, pack_qkv: bool = True) -> dict[str, int]:
    """Replace subgraphs by onnxruntime's fused contrib kernels, in place; returns how many
    nodes of each fused (``com.microsoft``) operator the graph now has.

    The dynamo exporter writes attention as MatMul, Softmax and a NaN guard (IsNaN/Where)
    per head group; onnxruntime runs that unfused, and the AST slower than fused
    (bench/export_rewrites.py). ``onnxscript``'s ORT fusions turn it into
    ``com.microsoft.Attention`` (plus SkipLayerNormalization and BiasGelu). Convolutional
    models have nothing to fuse and come out unchanged.
    """
    from collections import Counter

    from onnxscript.rewriter.ort_fusions import _core, optimize_for_ort

    packing = _core.fuse_attention
    if not pack_qkv:  # the last attention step packs Q, K, V weights into one Attention node: skip it
        _core.fuse_attention = lambda model, debug=False, **options: 0
    try:
        optimize_for_ort(model)
    finally:
        _core.fuse_attention = packing
    fused = Counter(node.op_type for node in model.graph.all_nodes() if node.domain == "com.microsoft")
    return dict(sorted(fused.items()))


def _write_inline(data: bytes, path: Path) -> int:
    with atomic_output(path) as handle:
        handle.write(data)
    return len(data)


def _write_with_external_data(proto, path: Path) -> int:
    """``NAME.onnx`` (the graph) + ``NAME.onnx.data`` (the weights, one file): onnxruntime
    maps the weights instead of parsing them out of a protobuf, so a large model opens faster
    (bench/onnx_runtime.py, session_open). Both are written under temporary names; the data file is renamed
    first, the graph last, so a present graph always has its complete weights."""
    import os
    import tempfile

    import onnx

    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise InputError(path, f"output directory {str(directory)!r} does not exist")
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".partial", dir=directory))
    try:
        data_name = path.name + ".data"
        onnx.save_model(proto, str(staging / path.name), save_as_external_data=True, all_tensors_to_one_file=True,
                        location=data_name, size_threshold=1024)
        for name in (data_name, path.name):  # the staging directory's files are private (0600)
            os.chmod(staging / name, 0o644)
        os.replace(staging / data_name, directory / data_name)
        os.replace(staging / path.name, path)
        return path.stat().st_size + (directory / data_name).stat().st_size
    finally:
        import shutil

        shutil.rmtree(staging, ignore_errors=True)
