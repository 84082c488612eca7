"""Benchmark: converting a real-size deepface VGG-Face file (random weights, 580 MB).

Three ways, each as a whole process, from the command a user would type:
(a) the original's way: TensorFlow build + load_weights + copy + torch.save
    (``bench/original_convert.py``);
(b) plain h5py reading + numpy transposes + ``safetensors.numpy.save_file``
    (``bench/plain_h5py_convert.py``);
(c) ``s2f convert`` (h5py, streaming, no TensorFlow or torch import).
Wall time and peak RSS (``wait4`` rusage of that process alone), the median of several
rotating runs, and the ratios (a)/(c) and (b)/(c). Each run writes a new output file (the
previous one is deleted untimed), so no side pays for freeing an old 580 MB file. Also checks
that all three produce identical tensors, times ``s2f --help`` (the CLI's start-up), and
prints where ``s2f convert``'s time goes: process start, imports, and per phase of the
conversion (read: mapping the source; transpose: permuting it into the output's staging
buffer; write: the writer thread; hash: the source's sha256; fsync) summed over its threads.

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
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/machine.py
from machine import announce  # noqa: E402
from workdir import bench_workdir  # noqa: E402


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


BREAKDOWN = r"""
import json, sys, time
started = time.perf_counter()
from s2f.converters.convert import convert
from s2f.converters import phase_clock
imported = time.perf_counter()
convert(sys.argv[1], sys.argv[2])
done = time.perf_counter()
print(json.dumps({"imports_s": imported - started, "convert_s": done - imported, "phases": phase_clock.totals()}))
"""


def breakdown(source: Path, target: Path, repeats: int) -> dict:
    """Where ``s2f convert``'s time goes: process start, imports, then the conversion's phases
    (seconds summed per phase over the threads that run it; they overlap)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    runs = []
    for _ in range(repeats):
        target.unlink(missing_ok=True)
        done = subprocess.run([sys.executable, "-c", BREAKDOWN, str(source), str(target)], capture_output=True,
                              text=True, check=True, env=env)
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    start = statistics.median(measure([sys.executable, "-c", "pass"])[0] for _ in range(5))
    middle = sorted(runs, key=lambda run: run["convert_s"])[len(runs) // 2]
    return {"process_start_s": round(start, 3), "imports_s": round(middle["imports_s"], 3),
            "convert_s": round(middle["convert_s"], 3),
            "phases_s": {name: round(value, 3) for name, value in sorted(middle["phases"].items())}}


# Over 60 lines on purpose: one measurement procedure read top to bottom (the rotation of the
# three ways is the point of the bench).
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--workdir", type=Path)
    args = parser.parse_args()
    workdir = bench_workdir(args.workdir, "s2f-bench-")
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
    s2f = str(Path(sys.executable).with_name("s2f"))  # the installed command, as a user runs it
    plain = [sys.executable, str(REPO / "bench" / "plain_h5py_convert.py"), str(source),
             str(workdir / "plain.safetensors")]
    ours = [s2f, "convert", str(source), "-o", str(workdir / "converted.safetensors")]
    commands = {"original": original, "plain_h5py": plain, "s2f": ours}
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
    outputs = {"original": workdir / "original.pth", "plain_h5py": workdir / "plain.safetensors",
               "s2f": workdir / "converted.safetensors"}
    names = list(commands)
    for run in range(args.repeats):
        for name in names[run % 3:] + names[:run % 3]:  # rotate the order: no side always runs first
            outputs[name].unlink(missing_ok=True)  # each writes a new file, as a first conversion does
            results[name].append(measure(commands[name]))
            wall, rss = results[name][-1]
            print(f"run {run + 1} {name:10}: {wall:6.2f} s  {rss:7.0f} MB peak RSS")
    help_times = sorted(measure([s2f, "--help"])[0] for _ in range(5))

    import torch
    from safetensors.torch import load_file

    a = torch.load(workdir / "original.pth", weights_only=True)
    b = load_file(str(workdir / "converted.safetensors"))
    c = load_file(str(workdir / "plain.safetensors"))
    identical = a.keys() == b.keys() == c.keys() and all(torch.equal(a[k], b[k]) and torch.equal(c[k], b[k])
                                                         for k in a)

    def median(name: str, index: int) -> float:
        return statistics.median(r[index] for r in results[name])

    summary = {
        "file_bytes": source.stat().st_size,
        "repeats": args.repeats,
        **{name: {"wall_s": median(name, 0), "peak_rss_mb": median(name, 1)} for name in commands},
        "speedup": median("original", 0) / median("s2f", 0),
        "memory_ratio": median("s2f", 1) / median("original", 1),
        "speedup_vs_plain_h5py": median("plain_h5py", 0) / median("s2f", 0),
        "memory_ratio_vs_plain_h5py": median("s2f", 1) / median("plain_h5py", 1),
        "s2f_help_s": statistics.median(help_times),
        "identical_tensors": identical,
    }
    print(f"\nmedian of {args.repeats}: " + ", ".join(
        f"{name} {summary[name]['wall_s']:.2f} s / {summary[name]['peak_rss_mb']:.0f} MB" for name in commands))
    print(f"s2f convert is {summary['speedup']:.1f}x faster than the original way at "
          f"{summary['memory_ratio']:.3f}x its peak memory (targets: >= 10x, <= 0.15x), and "
          f"{summary['speedup_vs_plain_h5py']:.2f}x faster than plain h5py + safetensors at "
          f"{summary['memory_ratio_vs_plain_h5py']:.3f}x its memory; s2f --help {summary['s2f_help_s']:.2f} s; "
          f"tensors identical: {identical}")
    summary["breakdown"] = breakdown(source, workdir / "breakdown.safetensors", args.repeats)
    print("where s2f convert's time goes (phases overlap on threads): " + json.dumps(summary["breakdown"]))
    out = REPO / "bench" / "results" / "convert_speed.json"
    summary["machine"] = announce()
    out.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
