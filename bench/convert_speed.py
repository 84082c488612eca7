"""Benchmark: converting a real-size deepface VGG-Face file (random weights, 580 MB).

(a) the original's way (TensorFlow build + load_weights + copy + torch.save) versus
(b) ``s2f convert`` (h5py, streaming, no TensorFlow or torch import), each as a whole
process: wall time and peak RSS (``wait4`` rusage of that process alone), the median of
several alternating runs, and the ratios (a)/(b). Each run writes a new output file (the
previous one is deleted untimed), so neither side pays for freeing an old 580 MB file.
Also checks that both produce identical tensors.

usage: python bench/convert_speed.py [--repeats 5] [--workdir DIR]
Writes bench/results/convert_speed.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def measure(command: list[str]) -> tuple[float, float]:
    """(wall seconds, peak RSS in MB) of one child process.

    Linux carries the parent's peak RSS into a child, so this parent stays small (~30 MB:
    torch is imported only after all measurements)."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(command)}\n{process.stderr.read().decode()[-2000:]}")
    return wall, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--workdir", type=Path)
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="s2f-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    source = workdir / "vgg_face_weights.h5"
    if not source.exists():
        print(f"building a real-size deepface VGG-Face file with random weights: {source}")
        subprocess.run([sys.executable, "-c",
                        "import sys; from s2f.converters.keras_reference import write_random_keras_file;"
                        f"write_random_keras_file({str(source)!r}, 'serengil')"],
                       check=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    with open(source, "rb") as handle:  # warm the page cache so neither side pays the disk read;
        while handle.read(1 << 24):  # in chunks: a child's peak RSS starts at its parent's
            pass
    original = [sys.executable, str(REPO / "bench" / "original_convert.py"), str(source), str(workdir / "original.pth")]
    ours = [sys.executable, "-m", "s2f", "convert", str(source), "-o", str(workdir / "converted.safetensors")]
    results: dict[str, list[tuple[float, float]]] = {"original": [], "s2f": []}
    outputs = {"original": workdir / "original.pth", "s2f": workdir / "converted.safetensors"}
    for run in range(args.repeats):
        for name, command in (("original", original), ("s2f", ours)) if run % 2 == 0 else (
                ("s2f", ours), ("original", original)):
            outputs[name].unlink(missing_ok=True)  # both write a new file, as a first conversion does
            results[name].append(measure(command))
            wall, rss = results[name][-1]
            print(f"run {run + 1} {name:8}: {wall:6.2f} s  {rss:7.0f} MB peak RSS")

    import torch
    from safetensors.torch import load_file

    a = torch.load(workdir / "original.pth", weights_only=True)
    b = load_file(str(workdir / "converted.safetensors"))
    identical = a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)

    def median(name: str, index: int) -> float:
        return statistics.median(r[index] for r in results[name])

    summary = {
        "file_bytes": source.stat().st_size,
        "repeats": args.repeats,
        "original": {"wall_s": median("original", 0), "peak_rss_mb": median("original", 1)},
        "s2f": {"wall_s": median("s2f", 0), "peak_rss_mb": median("s2f", 1)},
        "speedup": median("original", 0) / median("s2f", 0),
        "memory_ratio": median("s2f", 1) / median("original", 1),
        "identical_tensors": identical,
        "machine": f"{os.cpu_count()} cores",
    }
    print(f"\nmedian of {args.repeats}: original {summary['original']['wall_s']:.2f} s / "
          f"{summary['original']['peak_rss_mb']:.0f} MB, s2f {summary['s2f']['wall_s']:.2f} s / "
          f"{summary['s2f']['peak_rss_mb']:.0f} MB")
    print(f"s2f convert is {summary['speedup']:.1f}x faster and uses {summary['memory_ratio']:.3f}x "
          f"the peak memory (targets: >= 8x, < 0.25x); tensors identical: {identical}")
    out = REPO / "bench" / "results" / "convert_speed.json"
    out.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
