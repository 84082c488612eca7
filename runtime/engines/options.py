"""How to run a bundle, declared once: the Python API takes it (``SpeechToFace(bundle, RunOptions(...))``
or its fields as keywords), ``ServeConfig`` nests it, and every ``s2f-runtime`` command's flags
are generated from it (``s2f.core.config_flags``), so a default or a help text lives here only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from s2f.core.errors import InputError
from s2f.runtime.engines.backends import BACKENDS, PRECISIONS, Engine, check_engine
from s2f.runtime.engines.onnxruntime import DEVICES


@dataclass(frozen=True)
class RunOptions:
    """Args:
        device: auto: CUDA if it really starts, else CPU (with a warning); an explicit GPU choice fails if its
            provider cannot be created.
        threads: CPU threads (default: the cores this process may use).
        backend: openvino: the same graphs on OpenVINO (CPU; needs speech2face[openvino]); auto: per graph, the
            fastest engine and precision that passes the bundle's probe on this machine.
        precision: fp32 (default; auto: any); bf16: bfloat16 arithmetic on CPUs with bf16 units (OpenVINO); fp16:
            the bundle's float16 graphs (exported with --fp16), meant for GPUs; int8: its int8 graphs (exported
            with --int8), meant for CPUs. Anything but fp32 must pass the bundle's probe on open.
        unverified: run a precision other than fp32 on a bundle exported without a probe (logged).
        trust_key: refuse the bundle unless it is signed by this public key ('s2f bundle sign') and holds only the
            files signed; default: $S2F_TRUST_KEY. Needs speech2face[signing].
        verify_cache: trust the record of an earlier verification for files unchanged since (default); --rehash:
            hash every bundle file.
        end_to_end: the bundle's end-to-end graphs (default: when it has them, at fp32 or bf16); --two-stage: the
            encoder and decoder graphs on numpy-prepared inputs (face2face then resizes exactly as OpenCV, and
            batches photos); --end-to-end insists on them.
        prepack: onnxruntime's weight prepacking: sessions open later and large batches run faster
            (bench/onnx_runtime.py, session_open); a one-shot command turns it off.
    """

    device: str = field(default="auto", metadata={"choices": DEVICES})
    threads: int | None = None
    backend: str = field(default="onnxruntime", metadata={"choices": BACKENDS})
    precision: str | None = field(default=None, metadata={"choices": PRECISIONS})
    unverified: bool = False
    trust_key: Path | None = field(default=None, metadata={"metavar": "KEY.pub"})
    verify_cache: bool = field(default=True, metadata={"negative": "--rehash"})
    end_to_end: bool | None = field(default=None, metadata={"negative": "--two-stage"})
    prepack: bool = True

    def __post_init__(self) -> None:
        if self.device not in DEVICES:
            raise InputError(None, f"unknown device {self.device!r}; one of {', '.join(DEVICES)}")
        if self.backend not in BACKENDS:
            raise InputError(None, f"unknown backend {self.backend!r}; one of {', '.join(BACKENDS)}")
        if self.precision is not None and self.precision not in PRECISIONS:
            raise InputError(None, f"unknown precision {self.precision!r}; one of {', '.join(PRECISIONS)}")
        if self.trust_key is not None and not isinstance(self.trust_key, Path):
            object.__setattr__(self, "trust_key", Path(self.trust_key))
        if self.backend != "auto":
            check_engine(Engine(self.backend, self.precision or "fp32"), self.device)

    @property
    def graph_precision(self) -> str | None:
        """The graph files an explicit choice reads (None: auto decides per graph)."""
        if self.backend == "auto" and self.precision is None:
            return None
        return Engine(self.backend, self.precision or "fp32").graph_precision

    @property
    def needs_probe(self) -> bool:
        """Whether opening runs the bundle's probe: ``auto`` times engines on it, and every
        precision but float32 must pass it."""
        return self.backend == "auto" or self.precision not in (None, "fp32")
