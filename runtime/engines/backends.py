"""Which engine runs a graph: onnxruntime, or OpenVINO on the same ``.onnx`` files.

OpenVINO (``pip install 'speech2face[openvino]'``, no torch) runs our exported graphs as they
are, and on CPUs with bfloat16 units (AVX512-BF16, AMX) its bf16 inference precision is the
fastest way to run them (bench/onnx_runtime.py). Its compiled model is wrapped here in the
few methods of onnxruntime's ``InferenceSession`` the pipeline calls, so everything above
this module (end-to-end and two-stage paths, batching, output checks) is one code path.

Two OpenVINO defaults are overridden on purpose:
- on a bf16 CPU its default inference precision is already bf16; ``fp32`` here means float32,
  so the precision hint is always set explicitly;
- its compiled-model cache is keyed by our own digest of the graph and weight files (their
  manifest sha256, already checked) besides OpenVINO's key, so an edited bundle at the same
  path never reuses a stale compilation.
"""

from __future__ import annotations

import hashlib
import logging
import os
import queue
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from s2f.core.errors import InputError
from s2f.runtime.bundle.manifest import GRAPH_PRECISIONS

BACKENDS = ("onnxruntime", "openvino", "auto")
# what a run may ask for: a graph's stored precision, or bf16: the float32 graphs run with
# bfloat16 arithmetic (OpenVINO)
PRECISIONS = (*GRAPH_PRECISIONS, "bf16")
CACHE_ENV = "S2F_OPENVINO_CACHE"  # where compiled models are kept; "off" disables the cache
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Engine:
    """One way to run a graph: the backend and the precision it runs at."""

    backend: str
    precision: str

    @property
    def graph_precision(self) -> str:
        """Which of the bundle's files it reads (bf16 computes on the float32 graph)."""
        return "fp32" if self.precision == "bf16" else self.precision

    @property
    def exported_as_is(self) -> bool:
        """What export itself verified: onnxruntime on the graph file as written."""
        return self.backend == "onnxruntime"

    def __str__(self) -> str:
        return f"{self.backend} {self.precision}"


def openvino_core():
    """OpenVINO's Core, or a one-line error naming the extra."""
    from s2f.core.extras import MissingExtra, missing

    if missing("openvino"):
        raise MissingExtra("--backend openvino", "OpenVINO", "openvino")
    return _core()


@cache
def _core():
    import openvino as ov

    return ov.Core()


def cpu_capabilities() -> list[str]:
    """OpenVINO's ``OPTIMIZATION_CAPABILITIES`` of this CPU (``BF16`` where it has bf16 units)."""
    return list(openvino_core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"))


def has_bf16() -> bool:
    return "BF16" in cpu_capabilities()


def check_engine(engine: Engine, device: str) -> None:
    """Refuse, with one line, an engine this machine or this build cannot run."""
    if engine.backend == "onnxruntime" and engine.precision == "bf16":
        raise InputError(None, "--precision bf16 runs on OpenVINO only: add --backend openvino "
                               "(pip install 'speech2face[openvino]')")
    if engine.backend != "openvino":
        return
    if device not in ("auto", "cpu"):
        raise InputError(None, f"--backend openvino runs on the CPU; --device {device} needs --backend onnxruntime")
    if engine.precision == "bf16" and not has_bf16():
        raise InputError(None, "--precision bf16: this CPU has no bfloat16 units (OpenVINO's "
                               f"OPTIMIZATION_CAPABILITIES: {', '.join(cpu_capabilities())}); use fp32 or int8")


def cache_dir() -> Path | None:
    """The compiled-model cache: ``$S2F_OPENVINO_CACHE``, else the user's cache folder."""
    setting = os.environ.get(CACHE_ENV)
    if setting == "off":
        return None
    if setting:
        return Path(setting)
    import platformdirs

    return Path(platformdirs.user_cache_dir("speech2face")) / "openvino"


class _Port:
    """What ``get_inputs()``/``get_outputs()`` items offer in onnxruntime: a name."""

    def __init__(self, name: str) -> None:
        self.name = name


def _onnx_name(port, wanted: set[str] | None = None) -> str:
    """The ONNX tensor name of an OpenVINO port (it keeps every name a tensor had)."""
    names = port.get_names()
    return next((n for n in sorted(names) if wanted and n in wanted), port.get_any_name())


class OpenVINOSession:
    """An OpenVINO compiled model behind the ``InferenceSession`` methods the pipeline uses.

    ``run`` is safe from several threads at once, as onnxruntime's is: each call takes an
    infer request from a pool (one compiled model, many requests)."""

    def __init__(self, path: Path, precision: str, threads: int | None, names: dict[str, list[str]],
                 cache_key: str = "") -> None:
        core = openvino_core()
        config = {"INFERENCE_PRECISION_HINT": "bf16" if precision == "bf16" else "f32",
                  "PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": "1"}
        if threads is None and hasattr(os, "sched_getaffinity"):
            threads = len(os.sched_getaffinity(0))
        if threads:
            config["INFERENCE_NUM_THREADS"] = str(threads)
        folder = cache_dir()
        if folder is not None and cache_key:
            config["CACHE_DIR"] = str(folder / cache_key)
        try:
            self.compiled = core.compile_model(str(path), "CPU", config)
        except (RuntimeError, ValueError, MemoryError) as err:
            raise InputError(path, f"OpenVINO cannot load this graph ({_reason(err)})") from None
        self.graph_path = path
        self.precision = precision
        self._inputs = [_onnx_name(port, set(names.get("inputs", []))) for port in self.compiled.inputs]
        self._outputs = [_onnx_name(port, set(names.get("outputs", []))) for port in self.compiled.outputs]
        self._requests: queue.SimpleQueue = queue.SimpleQueue()

    def get_inputs(self) -> list[_Port]:
        return [_Port(name) for name in self._inputs]

    def get_outputs(self) -> list[_Port]:
        return [_Port(name) for name in self._outputs]

    def get_providers(self) -> list[str]:
        return [f"OpenVINO CPU ({self.precision})"]

    def run(self, outputs: list[str] | None, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        try:
            request = self._requests.get_nowait()
        except queue.Empty:
            request = self.compiled.create_infer_request()
        try:
            result = request.infer({self._inputs.index(name): value for name, value in feeds.items()})
            by_name = {name: np.asarray(result[port]) for name, port in zip(self._outputs, self.compiled.outputs,
                                                                            strict=True)}
        finally:
            self._requests.put(request)
        return [by_name[name] for name in (outputs or self._outputs)]


def _reason(err: BaseException) -> str:
    """OpenVINO's message in one line, without its source locations."""
    import re

    text = " ".join(str(err).split()) or type(err).__name__
    text = re.sub(r"Exception from \S+:\d+:\s*", "", text)
    return re.sub(r"\S+\.(?:cpp|hpp):\d+:?\s*", "", text).strip()[:300]


def cache_key(digests: list[str], engine: Engine) -> str:
    """A folder name for one graph's compiled model: its files' sha256, the engine and OpenVINO's version."""
    import openvino

    text = "\n".join([*digests, str(engine), openvino.__version__])
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def open_session(path: Path, engine: Engine, device: str, threads: int | None, prepack: bool = True,
                 names: dict[str, list[str]] | None = None, digests: list[str] | None = None):
    """A session on ``path`` for ``engine``; onnxruntime sessions come from ``providers``."""
    from s2f.runtime.engines.onnxruntime import create_session

    check_engine(engine, device)
    if engine.backend == "onnxruntime":
        return create_session(path, device, threads, prepack)
    openvino_core()  # the missing extra named before anything imports openvino
    return OpenVINOSession(path, engine.precision, threads, names or {},
                           cache_key(digests, engine) if digests else "")


def backend_available(backend: str) -> bool:
    from s2f.core.extras import missing

    return not missing("openvino" if backend == "openvino" else "runtime")
