"""What every benchmark prints first and stores with its results: the machine and versions
its figures belong to."""

from __future__ import annotations

import importlib
import os
import platform
from pathlib import Path


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# the CPU features the engines' fast paths depend on (bf16 and int8 units, AVX-512)
FEATURES = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8", "avx512_fp16")


def cpu_features() -> list[str]:
    """Which of ``FEATURES`` /proc/cpuinfo lists for this CPU."""
    try:
        flags = next(line.split(":", 1)[1].split() for line in Path("/proc/cpuinfo").read_text().splitlines()
                     if line.startswith("flags"))
    except (OSError, StopIteration):
        return []
    return [feature for feature in FEATURES if feature in flags]


def _version(module: str) -> str | None:
    try:
        return importlib.import_module(module).__version__
    except ImportError:
        return None


def machine() -> dict:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"cores": cores, "cpu": _cpu_model(), "python": platform.python_version(),
            "cpu_features": " ".join(cpu_features()) or "none of " + " ".join(FEATURES),
            "numpy": _version("numpy"), "onnxruntime": _version("onnxruntime"), "openvino": _version("openvino"),
            "torch": _version("torch")}


def announce() -> dict:
    """Print the machine on one line and return it for the results file."""
    info = machine()
    print("machine: " + ", ".join(f"{key} {value}" for key, value in info.items() if value is not None), flush=True)
    return info
