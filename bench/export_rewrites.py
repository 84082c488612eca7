"""What the export's graph rewrites buy in onnxruntime (CPU), each against the plain export
of the same model in the same run, every measurement in its own process:

* face decoder: transposed convolutions as convolution + depth-to-space (``s2f.export.subpixel``),
  and that plus the last depth-to-space moved after the RGB convolution (the export's default),
  so the second step is measured on its own too;
* face encoder (deepface VGG-Face): whole-input convolutions as Gemm
  (``s2f.export.dense_convolutions``), which matters when the session opens without prepacking;
* AST voice encoder: attention, skip-layer-norm and GELU fused into onnxruntime's kernels
  (the default; ``--portable`` turns it off).

Full-size models with random weights. Writes bench/results/export_rewrites.json.

usage: python bench/export_rewrites.py [--workdir DIR] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/machine.py
from machine import announce  # noqa: E402

sys.path.insert(0, str(REPO))

CASES = {  # model -> input shape without the batch axis, what is compared
    "face_decoder": ((4096,), "transposed convolutions -> convolution + depth-to-space, shuffle after RGB"),
    "face_encoder": ((3, 224, 224), "whole-input convolutions -> Gemm"),
    "ast": ((1024, 128), "attention / layer norm / GELU -> onnxruntime fused kernels"),
}


def build(workdir: Path) -> None:
    import torch

    from s2f.export.onnx_export import export_onnx
    from s2f.models.face_encoder import build_face_encoder, he_normal_init_
    from s2f.models.face_encoder_config import FaceEncoderConfig
    from s2f.models.registry import MODELS

    torch.manual_seed(0)
    factories = {"face_decoder": lambda: MODELS["face_decoder"].build("full"),
                 "face_encoder": lambda: he_normal_init_(build_face_encoder(
                     FaceEncoderConfig.for_arch("serengil", True)), 0),
                 "ast": lambda: MODELS["ast_voice_encoder"].build("full")}
    for name, factory in factories.items():
        if (workdir / f"{name}.plain.onnx").is_file():
            continue
        model = factory().eval()
        plain = {"portable": True} if name == "ast" else {"rewrite": False}
        export_onnx(model, workdir / f"{name}.rewritten.onnx")
        export_onnx(model, workdir / f"{name}.plain.onnx", **plain)
        if name == "face_decoder":  # sub-pixel convolutions, each shuffle right after its convolution
            from s2f.export.subpixel import with_subpixel_convolutions

            export_onnx(with_subpixel_convolutions(model)[0], workdir / f"{name}.subpixel.onnx", rewrite=False)


def worker(path: Path, model: str, repeats: int) -> None:
    import numpy as np

    from s2f.runtime.engines.onnxruntime import create_session

    started = time.perf_counter()
    session = create_session(path, "cpu", prepack=False)
    opened = time.perf_counter() - started
    name = session.get_inputs()[0].name
    result = {"open_in_place_s": opened}
    for batch in (1, 8):
        x = np.random.default_rng(0).random((batch, *CASES[model][0]), dtype=np.float32)
        session.run(None, {name: x})
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            session.run(None, {name: x})
            times.append(time.perf_counter() - started)
        result[f"batch{batch}_s"] = statistics.median(times)
    print(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args.worker, args.model, args.repeats)
    scratch = tempfile.TemporaryDirectory() if args.workdir is None else None
    workdir = Path(scratch.name) if scratch else args.workdir
    workdir.mkdir(parents=True, exist_ok=True)
    build(workdir)
    results = {}
    for model, (_, what) in CASES.items():
        row = {"rewrite": what}
        variants = ("plain", "subpixel", "rewritten") if model == "face_decoder" else ("plain", "rewritten")
        for variant in variants:
            done = subprocess.run([sys.executable, __file__, "--worker", str(workdir / f"{model}.{variant}.onnx"),
                                   "--model", model, "--repeats", str(args.repeats)],
                                  capture_output=True, text=True, check=True)
            row[variant] = {k: round(v, 4) for k, v in json.loads(done.stdout.splitlines()[-1]).items()}
        for key in ("open_in_place_s", "batch1_s", "batch8_s"):
            row[f"speedup_{key[:-2]}"] = round(row["plain"][key] / row["rewritten"][key], 2)
            if "subpixel" in row:
                row[f"deferred_shuffle_speedup_{key[:-2]}"] = round(row["subpixel"][key] / row["rewritten"][key], 2)
        results[model] = row
        print(f"{model:13s} {what}: open {row['speedup_open_in_place']}x, batch 1 {row['speedup_batch1']}x, "
              f"batch 8 {row['speedup_batch8']}x", flush=True)
        if "subpixel" in row:
            print(f"{'':13s} of which the last shuffle after the RGB convolution: batch 1 "
                  f"{row['deferred_shuffle_speedup_batch1']}x, batch 8 {row['deferred_shuffle_speedup_batch8']}x",
                  flush=True)
    results["machine"] = announce()
    (REPO / "bench" / "results" / "export_rewrites.json").write_text(json.dumps(results, indent=2))
    if scratch:
        scratch.cleanup()


if __name__ == "__main__":
    main()
