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


# An AMD EPYC Rome for qemu-user (qemu-x86_64 -cpu ...): AVX2 and FMA, no AVX-512, no VNNI, the
# features qemu's TCG cannot emulate switched off (else it warns about each). `make test-avx2`
# and bench/int8_kernels.py read it from here: python bench/machine.py --emulated-avx2-cpu
EMULATED_AVX2_CPU = ("EPYC-Rome,-rdseed,-sha-ni,-rdpid,-fxsr-opt,-misalignsse,-3dnowprefetch,-osvw,-topoext,"
                     "-perfctr-core,-clzero,-xsaveerptr,-wbnoinvd,-ibpb,-amd-stibp,-nrip-save,-xsavec,-xsaves")


def cpu_features() -> list[str]:
    """The vector extensions this process can use, read with CPUID (``s2f.core.cpu``): under
    an emulated CPU, the emulated one's."""
    try:
        from s2f.core.cpu import cpu_features as found
    except ImportError:  # the bench's own machine line, before speech2face is installed
        return []
    return list(found())


def _version(module: str) -> str | None:
    try:
        return importlib.import_module(module).__version__
    except ImportError:
        return None


def machine() -> dict:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"cores": cores, "cpu": _cpu_model(), "python": platform.python_version(),
            "cpu_features": " ".join(cpu_features()) or "none reported",
            "numpy": _version("numpy"), "onnxruntime": _version("onnxruntime"), "openvino": _version("openvino"),
            "torch": _version("torch")}


def announce() -> dict:
    """Print the machine on one line and return it for the results file."""
    info = machine()
    print("machine: " + ", ".join(f"{key} {value}" for key, value in info.items() if value is not None), flush=True)
    return info


if __name__ == "__main__":
    import sys

    if sys.argv[1:] == ["--emulated-avx2-cpu"]:
        print(EMULATED_AVX2_CPU)
    else:
        announce()
