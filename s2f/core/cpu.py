"""Which CPU a measurement was made on, as the kernels saw it.

float32 results depend on the vector width and fused multiply-adds the kernels use, int8
results on whether the CPU sums int8 products without saturating (VNNI, AMX), bf16 on bf16
units. So a manifest or a bench records these next to what it measured. The features are
read with CPUID, through numpy's own dispatcher, not from ``/proc/cpuinfo``: under an
emulated CPU (``qemu-x86_64 -cpu EPYC-Rome``) the file describes the host, CPUID the CPU the
process really runs on.
"""

from __future__ import annotations

import platform
from functools import lru_cache

# numpy's names -> the usual (Linux flag) names, for the features that change results or speed
_NUMPY_FEATURES = {"AVX2": "avx2", "FMA3": "fma", "AVX512F": "avx512f", "AVX512VNNI": "avx512_vnni",
                   "AVX512BF16": "avx512_bf16", "AVX512FP16": "avx512_fp16", "ASIMD": "asimd",
                   "ASIMDDP": "asimddp", "SVE": "sve"}
_AMX = ("amx_bf16", "amx_int8")  # numpy does not report AMX; taken from the kernel's list on AVX-512 CPUs


def _proc_cpuinfo() -> tuple[str | None, set[str]]:
    name, flags = None, set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and name is None:
                    name = value.strip()
                elif key.strip() in ("flags", "Features") and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    return name, flags


@lru_cache(maxsize=1)
def cpu_features() -> tuple[str, ...]:
    """The result-changing vector extensions this process can use (CPUID), e.g.
    ``("avx2", "fma")`` on an AMD EPYC Rome, ``("avx2", "fma", "avx512f", "avx512_vnni", ...)`` on a
    recent Xeon."""
    try:
        from numpy._core._multiarray_umath import __cpu_features__ as found
    except ImportError:  # numpy < 2
        from numpy.core._multiarray_umath import __cpu_features__ as found
    features = [ours for theirs, ours in _NUMPY_FEATURES.items() if found.get(theirs)]
    if "avx512f" in features:
        features += [flag for flag in _AMX if flag in _proc_cpuinfo()[1]]
    return tuple(features)


def int8_class() -> str:
    """``vnni`` where int8 dot products sum into 32 bits without saturating, else the widest
    x86 vector set (``avx2``), or the machine (``aarch64``)."""
    features = cpu_features()
    if "avx512_vnni" in features or "amx_int8" in features:
        return "vnni"
    if "avx2" in features:
        return "avx512" if "avx512f" in features else "avx2"
    return platform.machine()


def cpu_description() -> dict[str, object]:
    """What a manifest records as the CPU a verification ran on."""
    name = _proc_cpuinfo()[0] or platform.processor() or platform.machine()
    return {"model": name, "machine": platform.machine(), "features": list(cpu_features()), "class": int8_class()}
