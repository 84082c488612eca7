"""Load on ``s2f-runtime serve``: N concurrent clients posting a voice clip for a fixed time
(after two untimed rounds of N requests) against a server on 127.0.0.1, with
micro-batching on (``--max-batch 8``) and off (``--max-batch 1``), each server a fresh
process. Reports throughput, p50/p99 latency, errors (valid requests: must be 0), 503s
(counted apart) and the server's peak RSS.

The bundle is exported here from the registry's models with random weights: ``--size full``
(the paper's VE_conv and decoder) or ``--size tiny`` (where HTTP and decoding dominate).
Each ``--engines`` entry other than onnxruntime (``openvino``, ``openvino:bf16``; bf16 only
where the CPU has it) is measured batched, with its throughput over onnxruntime's.

usage: python bench/serve_load.py [--size full|tiny] [--clients 1 8 32] [--seconds 20]
                                  [--engines onnxruntime openvino openvino:bf16]
Writes bench/results/serve_load_SIZE.json.
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/machine.py
from machine import announce  # noqa: E402
from workdir import bench_workdir  # noqa: E402

from s2f.runtime.serve.process import ServerProcess  # noqa: E402


def build_bundle(directory: Path, size: str) -> Path:
    import soundfile
    import torch

    from s2f.data.synth_voice import speech_clip
    from s2f.export.bundle import export_bundle
    from s2f.models.registry import MODELS

    bundle = directory / f"bundle-{size}"
    if not (bundle / "manifest.json").is_file():
        torch.manual_seed(0)
        export_bundle(bundle, MODELS["ve_conv"].build(size, embedding_dim=4096).eval(),
                      MODELS["face_decoder"].build(size, embedding_dim=4096).eval(), overwrite=True)
    clip = directory / "clip.wav"
    soundfile.write(clip, speech_clip(4.0, 16000, f0=140.0), 16000)
    return bundle


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _warm_up(port: int, clip: bytes, clients: int) -> None:
    """One untimed round of ``clients`` concurrent requests, twice: onnxruntime plans memory
    for each batch shape the first time it sees it, which would otherwise land in the timing."""
    def one() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        connection.request("POST", "/v1/speech2face", body=clip, headers={"Content-Type": "audio/wav"})
        connection.getresponse().read()
        connection.close()

    for _ in range(2):
        threads = [threading.Thread(target=one) for _ in range(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()


def run_load(bundle: Path, clip: bytes, max_batch: int, clients: int, seconds: float,
             engine: str = "onnxruntime") -> dict:
    backend, _, precision = engine.partition(":")
    server = ServerProcess(bundle, "--max-batch", str(max_batch), "--max-queue", "256", "--backend", backend,
                           *(["--precision", precision] if precision else []), quiet=True)
    port = server.port
    try:
        _warm_up(port, clip, clients)
        latencies: list[float] = []
        counts = {"ok": 0, "busy": 0, "errors": 0}
        lock = threading.Lock()
        stop_at = time.monotonic() + seconds

        def client() -> None:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            while time.monotonic() < stop_at:
                started = time.perf_counter()
                connection.request("POST", "/v1/speech2face", body=clip, headers={"Content-Type": "audio/wav"})
                response = connection.getresponse()
                response.read()
                elapsed = time.perf_counter() - started
                with lock:
                    if response.status == 200:
                        counts["ok"] += 1
                        latencies.append(elapsed)
                    elif response.status == 503:
                        counts["busy"] += 1
                    else:
                        counts["errors"] += 1
            connection.close()

        began = time.monotonic()
        threads = [threading.Thread(target=client) for _ in range(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.monotonic() - began
        rss = _peak_rss_mb(server.process.pid)
    finally:
        server.stop()
    latencies.sort()
    return {"requests_per_s": round(counts["ok"] / wall, 3), "ok": counts["ok"], "errors": counts["errors"],
            "busy_503": counts["busy"],
            "p50_s": round(statistics.median(latencies), 4) if latencies else None,
            "p99_s": round(latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))], 4) if latencies else None,
            "server_peak_rss_mb": round(rss, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=("tiny", "full"), default="full")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--engines", nargs="+", default=["onnxruntime", "openvino", "openvino:bf16"])
    args = parser.parse_args()
    from s2f.runtime.engines.backends import has_bf16

    engines = [e for e in args.engines if e != "onnxruntime" and (not e.endswith(":bf16") or has_bf16())]
    workdir = bench_workdir(args.workdir, "s2f-serve-bench-")
    bundle = build_bundle(workdir, args.size)
    clip = (workdir / "clip.wav").read_bytes()
    results: dict[str, dict] = {}
    for clients in args.clients:
        for label, max_batch in (("batched", 8), ("unbatched", 1)):
            row = run_load(bundle, clip, max_batch, clients, args.seconds)
            results[f"{clients} clients {label}"] = row
            print(f"{clients:3} clients {label:9}: {row['requests_per_s']:7.2f} req/s  p50 {row['p50_s']} s  "
                  f"p99 {row['p99_s']} s  errors {row['errors']}  503 {row['busy_503']}  "
                  f"server RSS {row['server_peak_rss_mb']} MB", flush=True)
        ratio = results[f"{clients} clients batched"]["requests_per_s"] / \
            max(results[f"{clients} clients unbatched"]["requests_per_s"], 1e-9)
        results[f"{clients} clients batched"]["speedup_vs_unbatched"] = round(ratio, 2)
        print(f"    batching: {ratio:.2f}x the unbatched throughput", flush=True)
        for engine in engines:
            row = run_load(bundle, clip, 8, clients, args.seconds, engine)
            row["over_onnxruntime"] = round(row["requests_per_s"] / max(
                results[f"{clients} clients batched"]["requests_per_s"], 1e-9), 2)
            results[f"{clients} clients batched {engine}"] = row
            print(f"{clients:3} clients batched {engine}: {row['requests_per_s']:7.2f} req/s  p50 {row['p50_s']} s  "
                  f"p99 {row['p99_s']} s  errors {row['errors']}  {row['over_onnxruntime']}x onnxruntime", flush=True)

    summary = {"size": args.size, "seconds": args.seconds, "machine": announce(), "results": results}
    out = REPO / "bench" / "results" / f"serve_load_{args.size}.json"
    out.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
