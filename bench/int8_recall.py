"""Does int8 cost retrieval? The AST voice encoder trained on the synthetic corpus (the demo's
pipeline with ``encoder="ast"``), three seeds; for each, speech->face recall@5 among the
held-out identities with PyTorch float32, with its onnxruntime float32 export, and with its
``--int8`` export (each exported graph verified before it is written), on the same queries
and distractors. The run-to-run noise is the spread of the float32 recall over the seeds;
int8 passes if its difference from float32 stays inside it.

usage: python bench/int8_recall.py [--workdir DIR] [--seeds 0 1 2]
Writes bench/results/int8_recall.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/machine.py
from machine import announce  # noqa: E402
from workdir import bench_workdir  # noqa: E402


def onnx_encoder(path: Path):
    """An onnxruntime graph behind the ``nn.Module`` call the evaluation code makes."""
    import onnxruntime as ort
    import torch

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name

    class Graph(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.from_numpy(session.run(["embedding"], {name: x.numpy()})[0])

    return Graph()


def one_seed(workdir: Path, seed: int) -> dict:
    from s2f.export.onnx_export import export_onnx
    from s2f.models.loading import load_model
    from s2f.pipeline import PipelineConfig, run_pipeline
    from s2f.train.evaluate import evaluate_voice_encoder

    run = workdir / f"seed{seed}"
    config = PipelineConfig(encoder="ast", seed=seed)
    result = run_pipeline(run, config, serve=False)
    model = load_model(run / "runs" / "voice")
    report = export_onnx(model, run / "ast.onnx", int8=True)
    split = json.loads((run / "split.json").read_text())
    scored = {"pytorch_fp32": result["recall@5"]}
    for name, graph in (("onnxruntime_fp32", run / "ast.onnx"), ("onnxruntime_int8", run / "ast.int8.onnx")):
        scored[name] = evaluate_voice_encoder(onnx_encoder(graph), run / "preprocessed", split["test"],
                                              config.candidates)["recall@5"]
    return {**scored, "chance@5": result["chance@5"], "int8_min_cosine": report.int8_min_cosine["embedding"],
            "queries": result["queries"]}


def main() -> None:
    import logging

    from s2f.core.command_line import configure_logging

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    configure_logging(logging.WARNING)
    workdir = bench_workdir(args.workdir, "s2f-int8-recall-")
    seeds = {}
    for seed in args.seeds:
        seeds[seed] = one_seed(workdir, seed)
        print(f"seed {seed}: {seeds[seed]}", flush=True)
    fp32 = [row["pytorch_fp32"] for row in seeds.values()]
    noise = statistics.pstdev(fp32) if len(fp32) > 1 else float("nan")
    worst = max(abs(row["onnxruntime_int8"] - row["pytorch_fp32"]) for row in seeds.values())
    summary = {"machine": announce(), "seeds": seeds, "fp32_recall5_mean": statistics.mean(fp32),
               "run_to_run_noise_std": noise, "fp32_recall5_range": [min(fp32), max(fp32)],
               "largest_int8_change": worst, "int8_within_noise": worst <= max(noise, 0.0)}
    print(json.dumps({k: v for k, v in summary.items() if k != "seeds"}, indent=2))
    (REPO / "bench" / "results" / "int8_recall.json").write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
