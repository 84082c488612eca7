"""What bounds the face decoder in onnxruntime: its full-size graph at batch 8, profiled node by
node (onnxruntime's own profiler, 2 threads, after warm-up), with each convolution's and
matrix product's FLOPs and bytes moved (inputs + output) turned into GFLOP/s and GB/s, next to
this machine's peak GEMM rate and read bandwidth (``bench/onnx_runtime.py``'s roofline).

usage: python bench/decoder_profile.py [--workdir DIR] [--batch 8]
Writes bench/results/decoder_profile.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/machine.py
from machine import announce  # noqa: E402
from workdir import bench_workdir  # noqa: E402


def _shapes(entries: list[dict]) -> list[list[int]]:
    return [next(iter(entry.values())) for entry in entries]


def node_cost(op: str, inputs: list[list[int]], output: list[int]) -> float:
    """FLOPs of one node from its shapes (convolutions and matrix products; 0 otherwise)."""
    import numpy as np

    if op in ("Conv", "FusedConv") and len(inputs) >= 2:
        weight = inputs[1]  # O, C/groups, kh, kw
        return 2.0 * float(np.prod(output)) * float(np.prod(weight[1:]))
    if op in ("Gemm", "MatMul", "FusedMatMul", "FusedGemm") and len(inputs) >= 2:
        k = inputs[0][-1]
        return 2.0 * float(np.prod(output)) * k
    return 0.0


# Over 60 lines on purpose: one profiling procedure read top to bottom.
def main() -> None:
    import numpy as np
    import onnxruntime as ort
    import torch

    from s2f.export.onnx_export import export_onnx
    from s2f.models.registry import MODELS

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--batch", type=int, default=8)
    args = parser.parse_args()
    workdir = bench_workdir(args.workdir, "s2f-decoder-profile-")
    graph = workdir / "face_decoder.onnx"
    if not graph.is_file():
        torch.manual_seed(0)
        export_onnx(MODELS["face_decoder"].build("full").eval(), graph)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    options.enable_profiling = True
    options.profile_file_prefix = str(workdir / "profile")
    session = ort.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).standard_normal((args.batch, 4096)).astype(np.float32)
    for _ in range(2):
        session.run(None, {"embedding": x})
    runs = 5
    for _ in range(runs):
        session.run(None, {"embedding": x})
    events = json.loads(Path(session.end_profiling()).read_text())
    per_node: dict[str, dict] = {}
    for event in events:
        if event.get("cat") != "Node" or not event["name"].endswith("_kernel_time"):
            continue
        name = event["name"][: -len("_kernel_time")]
        info = event["args"]
        row = per_node.setdefault(name, {"op": info.get("op_name", "?"), "us": [], "flop": 0.0, "bytes": 0.0})
        row["us"].append(event["dur"])
        inputs = _shapes(info.get("input_type_shape", []))
        outputs = _shapes(info.get("output_type_shape", []))
        if outputs:
            row["flop"] = node_cost(row["op"], inputs, outputs[0])
            row["bytes"] = 4.0 * (sum(float(np.prod(s)) for s in inputs) + sum(float(np.prod(s)) for s in outputs))
            row["shapes"] = {"inputs": inputs, "output": outputs[0]}
    total_us = sum(sorted(r["us"])[len(r["us"]) // 2] for r in per_node.values() if r["us"])
    by_op: dict[str, float] = defaultdict(float)
    nodes = []
    for name, row in per_node.items():
        median_us = sorted(row["us"])[len(row["us"]) // 2]
        by_op[row["op"]] += median_us
        seconds = median_us / 1e6
        nodes.append({"node": name, "op": row["op"], "ms": round(median_us / 1e3, 2),
                      "share": round(median_us / total_us, 3),
                      "gflop_s": round(row["flop"] / seconds / 1e9, 1) if row["flop"] else None,
                      "gb_s": round(row["bytes"] / seconds / 1e9, 1), "shapes": row.get("shapes")})
    nodes.sort(key=lambda node: -node["ms"])
    roofline_file = REPO / "bench" / "results" / "onnx_runtime_vnni.json"
    roof = json.loads(roofline_file.read_text()).get("roofline", {}) if roofline_file.is_file() else {}
    report = {"machine": announce(), "batch": args.batch, "kernel_ms": round(total_us / 1e3, 1),
              "by_op_ms": {op: round(us / 1e3, 1) for op, us in sorted(by_op.items(), key=lambda kv: -kv[1])},
              "peak_gflops": roof.get("peak_gflops"), "onnxruntime_gemm_gflops": roof.get("onnxruntime_gemm_gflops"),
              "read_gb_s": roof.get("read_gb_s"), "top_nodes": nodes[:12]}
    print(json.dumps({k: v for k, v in report.items() if k != "top_nodes"}, indent=1))
    for node in nodes[:12]:
        print(f"{node['ms']:7.2f} ms {node['share']:5.1%} {node['op']:14s} GFLOP/s {node['gflop_s']!s:>7} "
              f"GB/s {node['gb_s']:6.1f}  {node['shapes']['output'] if node['shapes'] else ''}")
    (REPO / "bench" / "results" / "decoder_profile.json").write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
