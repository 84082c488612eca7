"""What an export is asked for, torch-free, so the command line builds its flags from these
dataclasses without importing the exporter: which graphs besides float32 (``GraphChoices``)
and, for a bundle, overwrite and signing (``BundleExport``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True, kw_only=True)
class GraphChoices:
    """What both export commands offer about the graphs they write.

    Args:
        portable: standard ONNX operators only, for runtimes other than onnxruntime (default: attention, layer
            norm and GELU fused into onnxruntime's kernels, which run the AST faster: bench/export_rewrites.py).
        fp16: also write float16 graphs (NAME.fp16.onnx, float32 inputs and outputs) for GPUs, each with its
            measured error against PyTorch float64 (refused above 1e-2).
        int8: also write int8 graphs (NAME.int8.onnx): dynamic quantisation of the MatMul/Gemm weights for CPUs,
            exact on every x86 CPU (no int8 saturation without VNNI), kept only with a cosine >= 0.999 to
            PyTorch float64 on every output.
        verify_with: voice clips and face photos to verify on besides random inputs; in a bundle the decoder is
            checked on the embeddings the encoders make of them.
    """

    portable: bool = False
    fp16: bool = False
    int8: bool = False
    verify_with: tuple[Path, ...] = field(default=(), metadata={"metavar": "FILE"})

    def __post_init__(self) -> None:  # the command line and callers give lists
        object.__setattr__(self, "verify_with", tuple(Path(f) for f in self.verify_with or ()))


@dataclass(frozen=True, kw_only=True)
class BundleExport(GraphChoices):
    """How ``export_bundle`` writes a bundle: the graph choices, plus

    Args:
        overwrite: replace an existing bundle at the destination (only a bundle).
        sign_key: sign the bundle with this elliptic-curve private key (writes model.sig; see 's2f bundle'); an
            encrypted key's passphrase is read from $S2F_SIGN_KEY_PASSWORD.
    """

    overwrite: bool = False
    sign_key: Path | None = field(default=None, metadata={"metavar": "KEY.pem"})
