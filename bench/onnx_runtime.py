"""The runtime's engines (onnxruntime float32 and the ``--int8`` graphs; OpenVINO float32 and,
where the CPU has bf16 units, bf16) against PyTorch's modes (eager, bf16 autocast,
``torch.compile``, ``torch.compile`` + bf16 autocast), full-size models, each measurement in
its own process (in one process the engines fight over threads and the numbers lie):

* latency per model (face encoder, VE_conv, AST, face decoder) and for the whole
  speech->face pipeline (features + voice encoder + decoder), batch 1 and 8, with each
  engine's agreement with PyTorch eager float32 (min cosine of the embedding, or levels of
  the face); torch.compile's compile time (its first call) is reported apart from its
  steady-state latency; PyTorch loads weights without initialising first (meta device,
  ``assign=True``); the CPU features found (bf16, AMX, VNNI) are in ``machine``;
* the ceiling on those ratios: each model's FLOPs, and its weight plus activation bytes (every
  layer's output written once and read once), against this machine's measured peak (a large
  PyTorch sgemm) and memory read bandwidth, so a ratio can be read against the best any
  runtime could do here;
* session open time with and without onnxruntime's weight prepacking;
* cold start, process start to PNG on disk: ``s2f-runtime speech2face`` (bundle hashed by
  this process, and hashed by an earlier one) vs the same job through PyTorch; peak RSS;
* install footprint: a runtime-only environment against a training environment.

Random full-size weights (latency does not depend on the values). Writes
bench/results/onnx_runtime_<class>.json, one file per CPU class (``s2f.core.cpu.int8_class``:
vnni, avx2, ...), since which engine wins depends on the CPU's vector units.

usage: python bench/onnx_runtime.py [--workdir DIR] [--repeats 3] [--skip-footprint]
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

sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

MODELS = ("face_encoder", "voice_encoder", "ast", "face_decoder")
BACKENDS = ("torch", "torch_bf16", "torch_compile", "torch_compile_bf16", "onnxruntime", "onnxruntime_int8",
            "openvino", "openvino_bf16")
TORCH_MODES = BACKENDS[:4]
RUNTIME_ENGINES = BACKENDS[4:]  # what s2f.runtime runs: (backend, precision) of each
ENGINES = {"onnxruntime": ("onnxruntime", "fp32"), "onnxruntime_int8": ("onnxruntime", "int8"),
           "openvino": ("openvino", "fp32"), "openvino_bf16": ("openvino", "bf16")}


def available_backends() -> tuple[str, ...]:
    """Every backend this machine can run: OpenVINO bf16 only where the CPU reports bf16."""
    from s2f.runtime.engines.backends import has_bf16

    return tuple(b for b in BACKENDS if b != "openvino_bf16" or has_bf16())


def build(workdir: Path) -> dict[str, Path]:
    """Full-size models with random weights, saved and exported once."""
    import torch

    from s2f.export.bundle import export_bundle
    from s2f.export.onnx_export import export_onnx
    from s2f.models.face_encoder import build_face_encoder, he_normal_init_
    from s2f.models.face_encoder_config import FaceEncoderConfig
    from s2f.models.registry import MODELS

    paths = {}
    if not (workdir / "bundle" / "manifest.json").is_file():
        torch.manual_seed(0)
        face = he_normal_init_(build_face_encoder(FaceEncoderConfig.for_arch("serengil", True)), 0)
        voice, decoder = MODELS["ve_conv"].build("full"), MODELS["face_decoder"].build("full")
        for name, model in (("face_encoder", face), ("voice_encoder", voice), ("face_decoder", decoder)):
            model.save_pretrained(workdir / "torch" / name)
        manifest = export_bundle(workdir / "bundle", voice, decoder, face, overwrite=True, fp16=True, int8=True)
        errors = {role: {"fp32": manifest["verification"][role], "fp16": manifest["verification_fp16"][role],
                         "int8_cosine": manifest["verification_int8_cosine"][role]}
                  for role in manifest["verification"]}
        (workdir / "verification.json").write_text(json.dumps(errors))
    if not (workdir / "ast.onnx").is_file():
        # seeded on its own: the int8 graph's cosine on random weights lies between 0.9989 and
        # 0.9993 depending on the draw, and export refuses those under 0.999
        torch.manual_seed(0)
        ast = MODELS["ast_voice_encoder"].build("full")
        ast.save_pretrained(workdir / "torch" / "ast")
        report = export_onnx(ast.eval(), workdir / "ast.onnx", fp16=True, int8=True)
        (workdir / "verification_ast.json").write_text(json.dumps({"fp32": report.max_relative_error,
                                                                   "fp16": report.fp16_max_relative_error,
                                                                   "int8_cosine": report.int8_min_cosine}))
    for name in MODELS:
        paths[name] = _graph(workdir, name)
    return paths


def _graph(workdir: Path, model: str, precision: str = "fp32") -> Path:
    suffix = "" if precision == "fp32" else f".{precision}"
    return workdir / "bundle" / f"{model}{suffix}.onnx" if model != "ast" else workdir / f"ast{suffix}.onnx"


def _bytes(output) -> int:
    import torch

    if isinstance(output, torch.Tensor):
        return output.numel() * output.element_size()
    if isinstance(output, (tuple, list)):
        return sum(_bytes(item) for item in output)
    return 0


def roofline(workdir: Path) -> dict:
    """FLOPs and weight bytes per model (batch 1), and what this machine can do at most: the
    fp32 GEMM rate of a 4096^3 matmul (PyTorch's, and onnxruntime's own MLAS) and the memory
    read bandwidth (summing 1 GiB on all threads)."""
    import numpy as np
    import onnx
    import torch
    from onnx import TensorProto, helper
    from torch.utils.flop_counter import FlopCounterMode

    from s2f.models.loading import load_model
    from s2f.runtime.engines.onnxruntime import create_session

    models = {}
    for name in MODELS:
        model = load_model(workdir / "torch" / name).eval()
        x = torch.from_numpy(_inputs(name, 1))
        written = []
        hooks = [m.register_forward_hook(lambda _m, _i, out, sink=written: sink.append(_bytes(out)))
                 for m in model.modules() if not list(m.children())]
        with torch.inference_mode(), FlopCounterMode(display=False) as counter:
            model(x)
        for hook in hooks:
            hook.remove()
        models[name] = {"gflop": counter.get_total_flops() / 1e9,
                        "weight_mb": sum(p.numel() * p.element_size() for p in model.parameters()) / 1e6,
                        "activation_mb": 2 * sum(written) / 1e6}  # each layer output written, then read

    def best_rate(run, work: float) -> float:
        run()
        rates = []
        for _ in range(4):
            begin = time.perf_counter()
            run()
            rates.append(work / (time.perf_counter() - begin))
        return max(rates)

    n = 4096
    a, b = torch.randn(n, n), torch.randn(n, n)
    square = [n, n]
    graph = helper.make_graph([helper.make_node("MatMul", ["a", "b"], ["c"])], "gemm",
                              [helper.make_tensor_value_info(k, TensorProto.FLOAT, square) for k in "ab"],
                              [helper.make_tensor_value_info("c", TensorProto.FLOAT, square)])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), workdir / "gemm.onnx")
    session = create_session(workdir / "gemm.onnx", "cpu")
    feeds = {"a": a.numpy(), "b": b.numpy()}
    block = torch.ones(1 << 28)
    return {"models": models, "peak_gflops": best_rate(lambda: a @ b, 2 * n**3 / 1e9),
            "onnxruntime_gemm_gflops": best_rate(lambda: session.run(None, feeds), 2 * n**3 / 1e9),
            "read_gb_s": max(best_rate(lambda: block.sum(), block.numel() * 4 / 1e9),
                             best_rate(lambda: np.asarray(block).sum(), block.numel() * 4 / 1e9))}


def _inputs(model: str, batch: int):
    import numpy as np

    shape = {"face_encoder": (3, 224, 224), "voice_encoder": (2, 257, 598), "ast": (1024, 128),
             "face_decoder": (4096,)}[model]
    return np.random.default_rng(0).random((batch, *shape), dtype=np.float32)


def peak_rss_mb() -> float:
    """This process's own peak RSS (VmHWM restarts at exec; ru_maxrss of a child would
    include the memory of the parent it was forked from)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


RUNTIME_WRAPPER = ("import json, sys; from s2f.runtime.cli import main; code = main(sys.argv[1:]); "
                   "status = open('/proc/self/status').read().split('VmHWM:')[1].split()[0]; "
                   "print(json.dumps({'peak_rss_mb': int(status) / 1024})); sys.exit(code)")


# Over 60 lines on purpose: each measurement kind is a few lines run in its own process, kept side
# by side so that the kinds are measured alike.
def worker(args: argparse.Namespace) -> None:
    """One measurement in this process; prints JSON."""

    workdir = Path(args.workdir)
    started = time.perf_counter()
    extra: dict = {}
    if args.worker == "roofline":
        return print(json.dumps({**roofline(workdir), "peak_rss_mb": peak_rss_mb()}))
    if args.worker == "session":
        from s2f.runtime.engines.onnxruntime import create_session

        started = time.perf_counter()
        session = create_session(_graph(workdir, args.model), "cpu", prepack=bool(args.prepack))
        opened = time.perf_counter() - started
        name = session.get_inputs()[0].name
        one, eight = _inputs(args.model, 1), _inputs(args.model, 8)
        started = time.perf_counter()
        session.run(None, {name: one})
        first = time.perf_counter() - started
        batch8 = statistics.median(_time(lambda: session.run(None, {name: eight}), 2))
        return print(json.dumps({"open_s": opened, "first_run_batch1_s": first, "run_batch8_s": batch8,
                                 "peak_rss_mb": peak_rss_mb()}))
    elif args.worker in ("latency", "pipeline"):
        run, output = (_latency_job if args.worker == "latency" else _pipeline_job)(args, workdir)
        extra["compile_s"] = _first_call(run) if args.backend.startswith("torch_compile") else None
        times = _time(run, args.repeats)
        _save_output(workdir, args, output())
    else:  # cold: torch path from process start to PNG (the runtime path is the s2f-runtime command)
        import torch
        from PIL import Image

        from s2f.models.loading import load_model
        from s2f.runtime.preprocess.voice_input import VoiceInputSpec

        encoder = load_model(workdir / "torch" / "voice_encoder")
        decoder = load_model(workdir / "torch" / "face_decoder")
        features = VoiceInputSpec("ve_conv", "paper").features_from_file(workdir / "voice.wav")
        with torch.inference_mode():
            _, texture = decoder(encoder(torch.from_numpy(features)[None]))
        image = (texture[0].permute(1, 2, 0).clamp(0, 1) * 255).round().byte().numpy()
        Image.fromarray(image).save(workdir / "torch.png")
        times = [time.perf_counter() - started]
    print(json.dumps({"median_s": statistics.median(times), "times": times, "peak_rss_mb": peak_rss_mb(), **extra}))


def _latency_job(args: argparse.Namespace, workdir: Path):
    """(run, output) for one model on one backend: ``run`` is timed, ``output`` judged."""

    x = _inputs(args.model, args.batch)
    if args.backend in ENGINES:
        from s2f.runtime.engines.backends import Engine, open_session

        engine = Engine(*ENGINES[args.backend])
        session = open_session(_graph(workdir, args.model, engine.graph_precision), engine, "cpu", None)
        name = session.get_inputs()[0].name
        judged = 1 if args.model == "face_decoder" else 0  # texture; else the embedding

        def run():
            return session.run(None, {name: x})

        def output():
            return run()[judged]
    else:
        import torch

        from s2f.models.loading import load_model

        model = load_model(workdir / "torch" / args.model)
        tensor = torch.from_numpy(x)
        forward = model.embed if args.model == "face_encoder" else model
        if args.backend.startswith("torch_compile"):
            model = torch.compile(model)

        def run():
            with torch.inference_mode(), _autocast(args.backend):
                return model(tensor)

        def output():
            with torch.inference_mode(), _autocast(args.backend):
                value = forward(tensor)
            return (value[1] if args.model == "face_decoder" else value).float().numpy()
    return run, output


def _pipeline_job(args: argparse.Namespace, workdir: Path):
    """(run, output) for speech->face on one backend."""
    import numpy as np

    from s2f.data.synth_voice import speech_clip

    voice = speech_clip(6.0)
    if args.backend in ENGINES:
        from s2f.runtime.pipeline import SpeechToFace

        backend, precision = ENGINES[args.backend]
        model = SpeechToFace(workdir / "bundle", device="cpu", precision=precision, backend=backend)

        def run():
            return model.generate_batch([model.prepare(voice, 16000)] * args.batch)

        def output():
            return np.stack([face.image for face in run()])
    else:
        import torch

        from s2f.models.loading import load_model
        from s2f.runtime.preprocess.voice_input import VoiceInputSpec

        encoder, decoder = load_model(workdir / "torch" / "voice_encoder"), load_model(workdir / "torch" /
                                                                                      "face_decoder")
        if args.backend.startswith("torch_compile"):
            encoder, decoder = torch.compile(encoder), torch.compile(decoder)
        spec = VoiceInputSpec("ve_conv", "paper")

        def run():
            features = torch.from_numpy(np.stack([spec.features(voice)] * args.batch))
            with torch.inference_mode(), _autocast(args.backend):
                return decoder(encoder(features))

        def output():
            from s2f.runtime.pipeline import texture_to_image

            return np.stack([texture_to_image(t) for t in run()[1].float().numpy()])
    return run, output


def _autocast(backend: str):
    """PyTorch's bf16 mode: autocast on the CPU (matmuls and convolutions in bfloat16)."""
    import contextlib

    import torch

    return torch.autocast("cpu", dtype=torch.bfloat16) if backend.endswith("_bf16") else contextlib.nullcontext()


def _output_path(workdir: Path, kind: str, model: str | None, batch: int, backend: str) -> Path:
    return workdir / "outputs" / f"{kind}-{model or 'speech2face'}-{batch}-{backend}.npy"


def _save_output(workdir: Path, args: argparse.Namespace, value) -> None:
    """What this backend computed, for the agreement with PyTorch eager float32."""
    import numpy as np

    path = _output_path(workdir, args.worker, args.model, args.batch, args.backend)
    path.parent.mkdir(exist_ok=True)
    np.save(path, np.asarray(value))


def _agreement(workdir: Path, kind: str, model: str | None, batch: int, backend: str) -> dict:
    """Min cosine to PyTorch eager float32 (embeddings, textures) or the most levels apart (faces)."""
    import numpy as np

    ours = np.load(_output_path(workdir, kind, model, batch, backend)).astype(np.float64)
    reference = np.load(_output_path(workdir, kind, model, batch, "torch")).astype(np.float64)
    if kind == "pipeline":
        return {"max_levels": int(np.abs(ours - reference).max())}
    a, b = ours.reshape(len(ours), -1), reference.reshape(len(reference), -1)
    cosine = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    return {"min_cosine": round(float(cosine.min()), 6)}


def _first_call(run) -> float:
    """torch.compile compiles on its first call: that call's time is the compile time."""
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def _time(run, repeats: int) -> list[float]:
    run()  # warm-up
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return times


def measure(command: list[str]) -> tuple[dict, float, float]:
    """Run a process; (its last JSON line, wall seconds, its own peak RSS in MB)."""
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{command} failed:\n{done.stderr[-3000:]}")
    out = json.loads([line for line in done.stdout.splitlines() if line.startswith("{")][-1])
    return out, wall, out["peak_rss_mb"]


def footprint(workdir: Path) -> dict:
    """Site-packages size of a runtime-only and of a training environment."""
    sizes = {}
    for extra in ("runtime", "train"):
        env = workdir / f"env-{extra}"
        if not (env / "bin" / "python").exists():
            subprocess.run([sys.executable, "-m", "venv", str(env)], check=True)
            packages = [f"{REPO}[{extra}]"] if extra == "runtime" else ["torch==2.13.0", f"{REPO}[{extra}]"]
            subprocess.run([str(env / "bin" / "python"), "-m", "pip", "install", "-q", *packages], check=True)
        site = next((env / "lib").glob("python*/site-packages"))
        total = sum(p.stat().st_size for p in site.rglob("*") if p.is_file() and not p.is_symlink())
        sizes[extra] = round(total / 1e6, 1)
    return {"runtime_mb": sizes["runtime"], "train_mb": sizes["train"],
            "ratio": round(sizes["runtime"] / sizes["train"], 3)}


def _timed_row(me: list[str], kind: str, workdir: Path, model: str | None, batch: int) -> dict:
    """One model or pipeline at one batch size: every backend in its own process, with speedups
    over PyTorch eager float32, agreement with it, and the runtime's best engine against
    PyTorch's best mode."""
    row: dict = {}
    flags = [*(["--model", model] if model else []), "--batch", str(batch)]
    backends = available_backends()
    for backend in list(backends):
        try:
            out, _, rss = measure([*me, "--worker", kind, "--backend", backend, *flags])
        except RuntimeError as err:  # e.g. an engine the bundle's probe refuses: recorded, not timed
            row[backend] = {"error": str(err).strip().splitlines()[-1]}
            backends = tuple(b for b in backends if b != backend)
            continue
        row[backend] = {"median_s": round(out["median_s"], 4), "peak_rss_mb": round(rss),
                        **(_agreement(workdir, kind, model, batch, backend) if backend != "torch" else {})}
        if out.get("compile_s") is not None:
            row[backend]["compile_s"] = round(out["compile_s"], 1)
    for backend in backends[1:]:
        row[f"{backend}_speedup"] = round(row["torch"]["median_s"] / row[backend]["median_s"], 2)
    row["speedup"] = row["onnxruntime_speedup"]
    best_torch = min((b for b in backends if b in TORCH_MODES), key=lambda b: row[b]["median_s"])
    best_runtime = min((b for b in backends if b in RUNTIME_ENGINES), key=lambda b: row[b]["median_s"])
    row["best"] = {"torch": best_torch, "runtime": best_runtime,
                   "runtime_over_torch": round(row[best_torch]["median_s"] / row[best_runtime]["median_s"], 2)}
    return row


def _row_line(label: str, row: dict) -> str:
    return (f"{label}: torch {row['torch']['median_s']:.3f} s; "
            + ", ".join(f"{b} {row[b + '_speedup']}x" for b in BACKENDS[1:] if b in row)
            + f"; best runtime ({row['best']['runtime']}) {row['best']['runtime_over_torch']}x best torch "
              f"({row['best']['torch']})")


def _latency(me: list[str], workdir: Path) -> dict:
    latency = {}
    for model in MODELS:
        for batch in (1, 8):
            row = latency[f"{model} batch {batch}"] = _timed_row(me, "latency", workdir, model, batch)
            print(_row_line(f"{model:14s} batch {batch}", row), flush=True)
    return latency


def _add_roofline(latency: dict, roof: dict) -> None:
    """Each latency row against what this machine's peak compute and memory bandwidth allow."""
    for key, row in latency.items():
        model, batch = key.split()[0], int(key.split()[-1])
        cost = roof["models"][model]
        compute_s = cost["gflop"] * batch / roof["peak_gflops"]
        memory_s = (cost["weight_mb"] + cost["activation_mb"] * batch) / 1e3 / roof["read_gb_s"]
        best = max(compute_s, memory_s)
        row["bound_by"] = "compute" if compute_s >= memory_s else "memory"
        row["onnxruntime_share_of_ceiling"] = round(best / row["onnxruntime"]["median_s"], 2)
        row["ceiling_speedup"] = round(row["torch"]["median_s"] / best, 2)
        row["torch_gflops"] = round(cost["gflop"] * batch / row["torch"]["median_s"])
        row["onnxruntime_gflops"] = round(cost["gflop"] * batch / row["onnxruntime"]["median_s"])
    print(f"roofline: peak {roof['peak_gflops']:.0f} GFLOP/s (onnxruntime's GEMM "
          f"{roof['onnxruntime_gemm_gflops']:.0f}), read {roof['read_gb_s']:.1f} GB/s; ceilings "
          + ", ".join(f"{k} {r['ceiling_speedup']}x" for k, r in latency.items()), flush=True)


def _session_open(me: list[str]) -> dict:
    results = {}
    for model in MODELS:
        row = {}
        for prepack in (1, 0):
            out, _, _ = measure([*me, "--worker", "session", "--model", model, "--prepack", str(prepack)])
            row["prepacked" if prepack else "in_place"] = {k: round(v, 3) for k, v in out.items()
                                                          if k.endswith("_s")}
        row["open_ratio"] = round(row["prepacked"]["open_s"] / row["in_place"]["open_s"], 1)
        row["batch8_run_ratio"] = round(row["in_place"]["run_batch8_s"] / row["prepacked"]["run_batch8_s"], 2)
        results[model] = row
    print(f"session open: {json.dumps(results)}", flush=True)
    return results


def _pipeline(me: list[str], workdir: Path) -> dict:
    results = {}
    for batch in (1, 8):
        row = results[f"speech->face batch {batch}"] = _timed_row(me, "pipeline", workdir, None, batch)
        print(_row_line(f"speech->face   batch {batch}", row), flush=True)
    return results


def _cold_start(me: list[str], workdir: Path, repeats: int) -> dict:
    """From the command to the PNG, whole processes: PyTorch, and s2f-runtime with and without
    the record of files it hashed before."""
    import soundfile

    from s2f.data.synth_voice import speech_clip

    soundfile.write(workdir / "voice.wav", speech_clip(6.0), 16000)
    runtime_cli = [sys.executable, "-c", RUNTIME_WRAPPER, "speech2face", str(workdir / "voice.wav"), "-o",
                   str(workdir / "s2f.runtime.png"), "--bundle", str(workdir / "bundle"), "--device", "cpu"]
    commands = {"torch": [*me, "--worker", "cold"], "onnxruntime, hashing the bundle": [*runtime_cli, "--rehash"],
                "onnxruntime, bundle verified before": runtime_cli}
    cold: dict[str, list] = {backend: [] for backend in commands}
    for _ in range(repeats):
        for backend, command in commands.items():
            _, wall, rss = measure(command)
            cold[backend].append((wall, rss))
    results = {backend: {"median_s": round(statistics.median(w for w, _ in runs), 3),
                         "peak_rss_mb": round(max(r for _, r in runs))} for backend, runs in cold.items()}
    for backend in list(cold)[1:]:
        results[backend]["speedup"] = round(results["torch"]["median_s"] / results[backend]["median_s"], 2)
    print(f"cold start to PNG: {json.dumps(results)}", flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-footprint", action="store_true")
    parser.add_argument("--worker", choices=("latency", "pipeline", "cold", "roofline", "session"),
                        help=argparse.SUPPRESS)
    parser.add_argument("--prepack", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--backend", choices=BACKENDS, help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)
    workdir = bench_workdir(args.workdir, "s2f-onnx-runtime-")
    os.environ["S2F_CACHE"] = str(workdir / "verify-cache")  # the runtime's record of hashed files
    os.environ["S2F_OPENVINO_CACHE"] = "off"  # every OpenVINO process compiles, as a first start would
    build(workdir)
    verification = {**json.loads((workdir / "verification.json").read_text()),
                    "ast": json.loads((workdir / "verification_ast.json").read_text())}
    me = [sys.executable, str(Path(__file__).resolve()), "--workdir", str(workdir), "--repeats", str(args.repeats)]
    results: dict = {"machine": announce(), "verification_max_relative_error": verification,
                     "latency": _latency(me, workdir)}
    results["roofline"] = measure([*me, "--worker", "roofline"])[0]
    _add_roofline(results["latency"], results["roofline"])
    results["session_open"] = _session_open(me)
    results["pipeline"] = _pipeline(me, workdir)
    results["cold_start"] = _cold_start(me, workdir, args.repeats)
    if not args.skip_footprint:
        results["footprint"] = footprint(workdir)
        print(f"install footprint: {results['footprint']}")
    import torch

    results["threads"] = torch.get_num_threads()
    from s2f.core.cpu import int8_class

    (REPO / "bench" / "results" / f"onnx_runtime_{int8_class()}.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
