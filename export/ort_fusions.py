"""onnxruntime's fused kernels (attention, skip-layer-norm, bias-GELU) through onnxscript.

The dynamo exporter writes attention as MatMul, Softmax and a NaN guard (IsNaN/Where) per
head group; onnxruntime runs that unfused, and the AST slower than fused
(bench/export_rewrites.py). ``onnxscript.rewriter.ort_fusions.optimize_for_ort`` (public)
turns it into ``com.microsoft.Attention``. For int8 graphs the last step, packing Q, K and V
into one Attention node, must be skipped (packed weights cannot be quantised); onnxscript has
no public switch for that, so ``_skip_qkv_packing`` swaps out its private ``fuse_attention``
for one call, only on the onnxscript versions it was checked against, and falls back to the
public fusion (quantising fewer weights) with a warning on any other.
"""

from __future__ import annotations

import contextlib
import logging
from collections import Counter
from collections.abc import Iterator

log = logging.getLogger(__name__)
# onnxscript versions (major, minor) whose private ort_fusions._core.fuse_attention is the
# attention-packing step (tests/test_export_onnx.py checks the installed one)
CHECKED_ONNXSCRIPT = ((0, 3), (0, 7))


def onnxscript_version() -> tuple[int, int]:
    import onnxscript

    major, minor = (int(part) for part in onnxscript.__version__.split(".")[:2])
    return major, minor


@contextlib.contextmanager
def _skip_qkv_packing() -> Iterator[bool]:
    """Within the block, onnxscript's ORT fusions leave Q, K and V unpacked; yields whether
    that was possible on this onnxscript."""
    from onnxscript.rewriter.ort_fusions import _core

    low, high = CHECKED_ONNXSCRIPT
    packing = getattr(_core, "fuse_attention", None)
    if not (low <= onnxscript_version() <= high) or packing is None:
        log.warning("onnxscript %s.%s is not one this export was checked with (%s.%s to %s.%s): attention is "
                    "fused packed, and its Q, K and V weights stay float in the int8 graph",
                    *onnxscript_version(), *low, *high)
        yield False
        return
    _core.fuse_attention = lambda model, debug=False, **options: 0
    try:
        yield True
    finally:
        _core.fuse_attention = packing


def fuse_for_onnxruntime(model, pack_qkv: bool = True) -> dict[str, int]:
    """Fuse ``model`` (an ``onnx_ir`` model) in place; how many nodes of each fused
    (``com.microsoft``) operator it now has. Convolutional models come out unchanged."""
    from onnxscript.rewriter.ort_fusions import optimize_for_ort

    if pack_qkv:
        optimize_for_ort(model)
    else:
        with _skip_qkv_packing():
            optimize_for_ort(model)
    fused = Counter(node.op_type for node in model.graph.all_nodes() if node.domain == "com.microsoft")
    return dict(sorted(fused.items()))
