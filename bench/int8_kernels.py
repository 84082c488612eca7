"""Which int8 quantisation is right on every x86 CPU, and what it costs: onnxruntime's dynamic
int8 of the MatMul/Gemm weights in three schemes, on a CPU with VNNI (this one, natively)
and on one without (an emulated AMD EPYC Rome: AVX2 and FMA, no AVX-512, no VNNI).

* ``u8s8``: uint8 activations x int8 weights, onnxruntime's default. Without VNNI its kernel
  adds pairs of products in saturating 16-bit registers.
* ``u8s8_reduce_range``: the same with 7-bit weights, so the pair sums cannot saturate.
* ``u8u8``: uint8 weights too; the kernels widen to 16 bits and sum in 32 on every x86 CPU.

Accuracy: the int8 graph's smallest cosine to PyTorch float64 (the export gate's measure,
bar 0.999) on the export's verification inputs. Natively for the full-size models and the
tiny ones; under qemu (``qemu-x86_64 -cpu EPYC-Rome``) for the tiny AST on one input only,
since its AVX2 emulation is orders of magnitude slower than native (onnxruntime runs the
same graphs there; the float64 references are computed natively and read back).
Speed: median latency at batch 1 and 8 against the float32 graph, natively, 2 threads.
Speed on an AVX2 CPU cannot be measured under emulation and is not reported.

usage: python bench/int8_kernels.py [--workdir DIR] [--runs 10]
Writes bench/results/int8_kernels.json.
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
from machine import EMULATED_AVX2_CPU, announce  # noqa: E402
from workdir import bench_workdir  # noqa: E402

SCHEMES = ("u8u8", "u8s8", "u8s8_reduce_range")
EMULATED_MODELS = ["ast"]  # under qemu: the model int8 is for, on one input (emulation is slow)
MODELS = {"ast": "ast_voice_encoder", "ve_conv": "ve_conv", "face_decoder": "face_decoder"}


def build(workdir: Path, size: str) -> list[str]:
    """Float32 graphs, each scheme's int8 graph and the float64 references, under workdir/size."""
    import numpy as np
    import torch

    from s2f.export.onnx_export import PyTorchReference, export_onnx, spec_for, verification_inputs
    from s2f.export.onnx_files import write_with_external_data
    from s2f.export.precisions import int8_source, quantize_int8
    from s2f.models.registry import MODELS as REGISTRY

    folder = workdir / size
    folder.mkdir(parents=True, exist_ok=True)
    for name, model_type in MODELS.items():
        if (folder / f"{name}.references.npz").is_file():
            continue
        torch.manual_seed(0)
        model = REGISTRY[model_type].build(size).eval()
        export_onnx(model, folder / f"{name}.onnx")  # the float32 graph as a bundle has it (fused)
        spec = spec_for(model)
        inputs = verification_inputs(spec, 0)
        reference = PyTorchReference.compute(spec.module, inputs)
        source, _ = int8_source(_reexport(spec), portable=False)  # what export quantises: fused its own way
        for scheme in SCHEMES:
            write_with_external_data(quantize_int8(source, scheme), folder / f"{name}.{scheme}.onnx")
        arrays = {f"input{i}": x for i, x in enumerate(inputs)}
        arrays.update({f"float64_{i}_{j}": value for i, values in enumerate(reference.float64)
                       for j, value in enumerate(values)})
        np.savez(folder / f"{name}.references.npz", **arrays)
        (folder / f"{name}.outputs.json").write_text(json.dumps(spec.output_names))
    return list(MODELS)


def _reexport(spec):
    """The float graph as export traces it, before onnxruntime's fusions (what int8 quantises)."""
    import torch

    from s2f.export.onnx_export import verification_inputs
    from s2f.runtime.bundle.manifest import OPSET

    example = torch.from_numpy(verification_inputs(spec, 0)[1])
    with torch.no_grad():
        program = torch.onnx.export(spec.module, (example,), dynamo=True, opset_version=OPSET, verbose=False,
                                    input_names=[spec.input_name], output_names=spec.output_names,
                                    dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=4096)},))
    return program.model_proto


def accuracy(folder: Path, models: list[str] | None = None, inputs_used: int | None = None) -> dict:
    """Per model and scheme, the int8 graph's smallest cosine to float64, on this CPU (the
    first ``inputs_used`` verification inputs)."""
    import numpy as np
    import onnxruntime as ort

    from s2f.core.agreement import compare

    found = {}
    for name in models or list(MODELS):
        outputs = json.loads((folder / f"{name}.outputs.json").read_text())
        with np.load(folder / f"{name}.references.npz") as npz:
            arrays = {key: npz[key] for key in npz.files}
        inputs = [arrays[key] for key in sorted(k for k in arrays if k.startswith("input"))][:inputs_used]
        for scheme in SCHEMES:
            session = ort.InferenceSession(str(folder / f"{name}.{scheme}.onnx"), providers=["CPUExecutionProvider"])
            feed = session.get_inputs()[0].name
            cosines = []
            for i, x in enumerate(inputs):
                got = session.run(outputs, {feed: x})
                cosines += [compare(arrays[f"float64_{i}_{j}"], value).min_cosine for j, value in enumerate(got)]
            found[f"{name}/{scheme}"] = min(cosines)
    return found


def latency(folder: Path, runs: int) -> dict:
    """Median seconds per run of the float32 graph and each int8 scheme, batch 1 and 8."""
    import numpy as np

    from s2f.runtime.engines.onnxruntime import create_session

    found = {}
    for name in MODELS:
        with np.load(folder / f"{name}.references.npz") as npz:
            one = npz["input0"]
        for batch in (1, 8):
            x = np.repeat(one, batch, axis=0)
            for precision in ("fp32", *SCHEMES):
                path = folder / (f"{name}.onnx" if precision == "fp32" else f"{name}.{precision}.onnx")
                session = create_session(path, "cpu")
                feed = {session.get_inputs()[0].name: x}
                session.run(None, feed)
                times = []
                for _ in range(runs):
                    begin = time.perf_counter()
                    session.run(None, feed)
                    times.append(time.perf_counter() - begin)
                found[f"{name}/batch{batch}/{precision}"] = statistics.median(times)
    return found


def emulated_accuracy(folder: Path) -> dict:
    """``accuracy(folder)`` in a process on the emulated AVX2 CPU."""
    command = ["qemu-x86_64", "-cpu", EMULATED_AVX2_CPU, sys.executable, str(Path(__file__)), "--accuracy-of",
               str(folder)]
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    if done.returncode != 0:
        raise SystemExit(f"the emulated run failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--accuracy-of", type=Path, help=argparse.SUPPRESS)  # the emulated worker
    args = parser.parse_args()
    if args.accuracy_of:
        from s2f.core.cpu import cpu_description

        print(json.dumps({"cpu": cpu_description(), "models": EMULATED_MODELS, "inputs": 1,
                          "cosine": accuracy(args.accuracy_of, EMULATED_MODELS, inputs_used=1)}))
        return
    import logging

    logging.disable(logging.WARNING)
    machine = announce()
    workdir = bench_workdir(args.workdir, "s2f-int8-")
    results: dict = {"machine": machine, "bar": 0.999, "schemes": list(SCHEMES)}
    for size in ("tiny", "full"):
        build(workdir, size)
    from s2f.core.cpu import cpu_description

    results["native"] = {"cpu": cpu_description(),
                         "cosine": {size: accuracy(workdir / size) for size in ("tiny", "full")},
                         "latency_s": latency(workdir / "full", args.runs)}
    results["emulated_avx2"] = emulated_accuracy(workdir / "tiny")
    results["speed_up_over_fp32"] = {
        key.replace("/fp32", ""): {scheme: round(value / results["native"]["latency_s"][key.replace("fp32", scheme)], 3)
                                   for scheme in SCHEMES}
        for key, value in results["native"]["latency_s"].items() if key.endswith("/fp32")}
    out = REPO / "bench" / "results" / "int8_kernels.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    for size in ("tiny", "full"):
        for key, value in results["native"]["cosine"][size].items():
            emulated = results["emulated_avx2"]["cosine"].get(key) if size == "tiny" else None
            print(f"{size:5} {key:32} cosine {value:.6f} (VNNI)" +
                  (f"  {emulated:.6f} (AVX2, emulated)" if emulated is not None else ""))
    for key, ratios in results["speed_up_over_fp32"].items():
        print(f"{key:22} " + "  ".join(f"{scheme} {ratio:.2f}x" for scheme, ratio in ratios.items()))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
