"""onnxruntime sessions on the device asked for, never silently elsewhere.

onnxruntime quietly falls back to CPU when a GPU provider cannot be created (missing CUDA
libraries, no device) and only logs a warning. Here an explicit ``cuda`` or ``tensorrt``
checks ``session.get_providers()`` and fails loudly; ``auto`` takes the best available and
says once, visibly, when that is the CPU although a GPU build is installed.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

from s2f.core.errors import InputError

DEVICES = ("auto", "cpu", "cuda", "tensorrt")
_PROVIDERS = {
    "cpu": ["CPUExecutionProvider"],
    "cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"],
    "tensorrt": ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
}
_warned: set[str] = set()
log = logging.getLogger(__name__)


def session_options(threads: int | None = None, prepack: bool = True):
    """``prepack=False``: use the weights in place (memory-mapped from ``.onnx.data``)
    instead of copying them into GEMM-blocked layouts: opens much faster, runs large batches
    somewhat slower (bench/onnx_runtime.py, session_open)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if not prepack:
        options.add_session_config_entry("session.disable_prepacking", "1")
    if threads is None and hasattr(os, "sched_getaffinity"):
        threads = len(os.sched_getaffinity(0))  # the cores this process may use, not the machine's
    if threads:
        options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # a failing run reaches the user as our one-line error; onnxruntime's own log line on stderr
    # would be a second, raw copy of it (its warnings show with -v)
    options.log_severity_level = 2 if log.isEnabledFor(logging.DEBUG) else 4
    return options


def onnxruntime_errors() -> tuple[type[Exception], ...]:
    """What onnxruntime raises for a graph it cannot load or run (its own exception types)."""
    from onnxruntime.capi import onnxruntime_pybind11_state as state

    names = ("Fail", "InvalidArgument", "NoSuchFile", "NoModel", "EngineError", "RuntimeException",
             "InvalidProtobuf", "NotImplemented", "InvalidGraph", "EPFail")
    return tuple(getattr(state, name) for name in names if hasattr(state, name))


def onnxruntime_reason(err: BaseException, path: str | Path | None = None) -> str:
    """onnxruntime's message in one line, without its error-code prefix or our file's path."""
    text = " ".join(str(err).split()) or type(err).__name__
    text = text.split(" : ", 3)[-1] if text.startswith("[ONNXRuntimeError]") else text
    text = re.sub(r"/onnxruntime_src/\S+:\d+ (?:[^()]*\([^)]*\) )?", "", text)  # source file and C++ function
    if path is not None:
        text = text.replace(f"Load model from {path} failed:", "").replace(str(path), "the graph")
    return text.strip()[:300]


def gpu_available() -> bool:
    """Whether this onnxruntime build has the CUDA provider (whether it starts shows on open)."""
    import onnxruntime as ort

    return "CUDAExecutionProvider" in ort.get_available_providers()


def create_session(path: str | Path, device: str = "auto", threads: int | None = None, prepack: bool = True):
    """An InferenceSession that really runs on ``device``."""
    import onnxruntime as ort

    if device not in DEVICES:
        raise InputError(None, f"unknown device {device!r}; one of {', '.join(DEVICES)}")
    available = ort.get_available_providers()
    if device == "auto":
        wanted = "cuda" if "CUDAExecutionProvider" in available else "cpu"
    else:
        wanted = device
    providers = _PROVIDERS[wanted]
    if device != "auto" and providers[0] not in available:
        raise InputError(path, f"--device {device}: {providers[0]} is not in this onnxruntime build "
                               f"(installed: {', '.join(available)}); install onnxruntime-gpu instead of onnxruntime")
    try:
        session = ort.InferenceSession(str(path), sess_options=session_options(threads, prepack), providers=providers)
    except (*onnxruntime_errors(), RuntimeError, MemoryError) as err:
        raise InputError(path, f"onnxruntime cannot load this graph ({onnxruntime_reason(err, path)})") from None
    session.graph_path = Path(path)  # what run failures and output checks name
    active = session.get_providers()
    if providers[0] not in active:
        if device != "auto":
            raise InputError(path, f"--device {device}: onnxruntime could not create {providers[0]} "
                                   f"(running providers: {', '.join(active)}; installed: {', '.join(available)})")
        if "cpu-fallback" not in _warned:
            _warned.add("cpu-fallback")
            log.warning("warning: %s is installed but could not start; running on CPU", providers[0])
    return session


def run_graph(session, outputs: list[str], feeds: dict) -> list:
    """``session.run``, a failure of onnxruntime becoming one ``InputError`` naming the graph."""
    try:
        return session.run(outputs, feeds)
    except (*onnxruntime_errors(), RuntimeError, MemoryError) as err:
        path = getattr(session, "graph_path", None)
        raise InputError(path, f"onnxruntime failed to run this graph ({onnxruntime_reason(err, path)})") from None
