"""The graphs besides float32 that an export can add, as a list of variants: how each is made
from the verified float32 graph, and how it is judged against PyTorch float32.

* ``fp16``: float16 weights and arithmetic, float32 at the graph's edges (so callers and
  IOBinding stay the same), for GPUs; judged by relative error (float16 keeps 11 significant
  bits, so its rounding accumulates over the layers).
* ``int8``: onnxruntime's dynamic quantisation of the MatMul and Gemm weights, per output
  channel (its standard CPU path for transformers; convolutions stay float); judged by cosine,
  since int8 weights move every value by a fraction of its tensor's range.

The int8 weights are unsigned (U8U8: uint8 activations times uint8 weights). Signed weights
(U8S8) are onnxruntime's default and its fastest kernel on CPUs with VNNI, but on x86 CPUs
without it (AVX2, and AVX-512 before VNNI) that kernel adds pairs of products in 16-bit
registers that saturate: the same graph then computes something else (an AST's embedding at
cosine 0.59 on an AMD EPYC). U8U8 kernels widen to 16 bits before multiplying and sum in 32
bits on every x86 CPU, so the integer arithmetic is exact everywhere and one bundle's int8
graphs give the same results on every CPU; ``reduce_range`` (7-bit weights) would avoid the
saturation too, at half the weight resolution (bench/int8_kernels.py measures all three).
The measure is taken against PyTorch float64, like every gate.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

FP16_RELATIVE_TOLERANCE = 1e-2
INT8_MIN_COSINE = 0.999
INT8_OPERATORS = ("MatMul", "Gemm")


@dataclass(frozen=True)
class Variant:
    """``make(float32 proto before fusion, fused float32 proto) -> (proto, fusions)``; the
    variant passes when ``measure`` (an ``Agreement`` field) is on the right side of ``limit``."""

    precision: str
    make: Callable
    measure: str  # "max_relative" (at most limit) or "min_cosine" (at least limit)
    limit: float

    def passes(self, value: float) -> bool:
        return value <= self.limit if self.measure == "max_relative" else value >= self.limit


def fp16_variant(tolerance: float = FP16_RELATIVE_TOLERANCE) -> Variant:
    def make(unfused, fused, fusions):
        import copy

        from onnxruntime.transformers.float16 import convert_float_to_float16

        # onnxruntime's converter knows which of its fused kernels take float16
        return convert_float_to_float16(copy.deepcopy(fused), keep_io_types=True), fusions

    return Variant("fp16", make, "max_relative", tolerance)


def int8_variant(portable: bool, min_cosine: float = INT8_MIN_COSINE) -> Variant:
    def make(unfused, fused, fusions):
        source, int8_fusions = int8_source(unfused, portable)
        return quantize_int8(source), int8_fusions

    return Variant("int8", make, "min_cosine", min_cosine)


def int8_source(proto, portable: bool):
    """The float graph to quantise, and its fusions: attention fused into
    ``MultiHeadAttention`` with the Q, K and V projections left as MatMuls (packed into
    ``Attention`` they cannot be quantised), so every weight matrix becomes int8. The full
    AST runs faster this way than from the quantised packed graph (bench/onnx_runtime.py)."""
    if portable:
        return proto, {}
    import onnx_ir as ir

    from s2f.export.ort_fusions import fuse_for_onnxruntime

    model = ir.serde.deserialize_model(proto)
    fusions = fuse_for_onnxruntime(model, pack_qkv=False)
    return ir.serde.serialize_model(model), fusions


INT8_SCHEMES = {  # name -> quantize_dynamic's options; bench/int8_kernels.py compares them
    "u8u8": {"weight_type": "QUInt8"},  # exact on every x86 CPU: what export writes
    "u8s8": {"weight_type": "QInt8"},  # onnxruntime's default: saturates without VNNI
    "u8s8_reduce_range": {"weight_type": "QInt8", "reduce_range": True},  # 7-bit weights: no saturation
}
INT8_SCHEME = "u8u8"


def quantize_int8(proto, scheme: str = INT8_SCHEME):
    """Dynamic int8 quantisation of MatMul and Gemm weights (activations quantised per run),
    per output channel, which keeps the AST's embedding closer to float than one scale per
    tensor at the same speed (bench/int8_recall.py and bench/onnx_runtime.py)."""
    import tempfile

    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # its advice to pre-process for static quantisation does not apply here
    try:
        with tempfile.TemporaryDirectory() as directory:
            target = Path(directory) / "int8.onnx"
            options = dict(INT8_SCHEMES[scheme])
            options["weight_type"] = getattr(QuantType, options["weight_type"])
            quantize_dynamic(proto, target, op_types_to_quantize=list(INT8_OPERATORS), per_channel=True,
                             use_external_data_format=True, **options,
                             extra_options={"MatMulConstBOnly": True})  # weights only, never activation x activation
            return onnx.load(str(target))
    finally:
        root.setLevel(level)
