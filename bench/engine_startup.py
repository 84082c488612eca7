"""Start-up of each engine, whole processes: ``s2f-runtime speech2face`` from process start
to the PNG on disk for a 6 s clip, full-size VE_conv and decoder (random weights), on
onnxruntime float32, OpenVINO float32 and bf16 (where the CPU has it) with an empty compile
cache and with the cache an earlier start left, and ``--backend auto`` (which opens and
times every engine that passes the probe). Each command is repeated and the median kept;
ratios are against onnxruntime's start.

usage: python bench/engine_startup.py [--workdir DIR] [--repeats 3]
Writes bench/results/engine_startup.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/machine.py
from machine import announce  # noqa: E402
from workdir import bench_workdir  # noqa: E402


def build(workdir: Path) -> tuple[Path, Path]:
    import soundfile
    import torch

    from s2f.data.synth_voice import speech_clip
    from s2f.export.bundle import export_bundle
    from s2f.models.registry import MODELS

    bundle = workdir / "bundle"
    if not (bundle / "manifest.json").is_file():
        torch.manual_seed(0)
        export_bundle(bundle, MODELS["ve_conv"].build("full").eval(), MODELS["face_decoder"].build("full").eval(),
                      overwrite=True)
    voice = workdir / "voice.wav"
    soundfile.write(voice, speech_clip(6.0), 16000)
    return bundle, voice


def start(bundle: Path, voice: Path, out: Path, cache: Path | None, *flags: str) -> float:
    env = {**os.environ, "S2F_OPENVINO_CACHE": str(cache) if cache else "off"}
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "s2f.runtime.cli", "-q", "speech2face", str(voice), "-o", str(out),
                    "--bundle", str(bundle), "--device", "cpu", *flags], check=True, env=env, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    from s2f.runtime.engines.backends import has_bf16

    workdir = bench_workdir(args.workdir, "s2f-engine-startup-")
    os.environ["S2F_CACHE"] = str(workdir / "verify-cache")
    bundle, voice = build(workdir)
    out = workdir / "face.png"
    start(bundle, voice, out, None)  # the bundle's files hashed once, as for every later start
    engines = {"onnxruntime fp32": [], "openvino fp32": ["--backend", "openvino"],
               **({"openvino bf16": ["--backend", "openvino", "--precision", "bf16"]} if has_bf16() else {})}
    results: dict = {"machine": announce(), "starts": {}}
    for name, flags in engines.items():
        row = {}
        if name == "onnxruntime fp32":
            row["median_s"] = round(statistics.median(start(bundle, voice, out, None) for _ in range(args.repeats)), 3)
        else:
            cold = []
            for index in range(args.repeats):
                cache = workdir / f"cache-{name.replace(' ', '-')}-{index}"
                shutil.rmtree(cache, ignore_errors=True)
                cold.append(start(bundle, voice, out, cache, *flags))
            warm = [start(bundle, voice, out, cache, *flags) for _ in range(args.repeats)]
            row = {"empty_cache_s": round(statistics.median(cold), 3), "median_s": round(statistics.median(warm), 3)}
        results["starts"][name] = row
        print(name, row, flush=True)
    auto = [start(bundle, voice, out, workdir / "cache-auto", "--backend", "auto") for _ in range(args.repeats + 1)]
    results["starts"]["auto"] = {"empty_cache_s": round(auto[0], 3), "median_s": round(statistics.median(auto[1:]), 3)}
    reference = results["starts"]["onnxruntime fp32"]["median_s"]
    for row in results["starts"].values():
        row["over_onnxruntime"] = round(row["median_s"] / reference, 2)
    print("auto", results["starts"]["auto"], flush=True)
    (REPO / "bench" / "results" / "engine_startup.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
