"""One short GPU check (run on a lent CUDA machine by bench/gpu_check.sh):

* training steps per task on CUDA, float32 against AMP (bfloat16 autocast, as the Trainer
  uses it), full-size models, the tasks' own losses and teachers: the face decoder with the
  VGG-Face embedding loss, VE_conv with fc8 distillation and the decoder's first layer, the AST;
* inference of the full speech->face pipeline (VE_conv + decoder) in PyTorch on the GPU,
  float32 against bfloat16 autocast, batch 1 and 8, with the image difference the cast makes;
* onnxruntime on CUDA when an onnxruntime-gpu build is importable (CPU-only builds are
  reported as such, not measured on the CPU and labelled GPU).

Every figure is the median of timed repeats after warm-ups, with ``torch.cuda.synchronize``.
Writes bench/results/gpu_check.json (or the path given).

usage: python bench/gpu_check.py [--out FILE] [--steps 10]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from functools import partial
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


DEVICE = "cuda"
SMALL = False  # --small: the same code on tiny batches, to check the script without a GPU


def _sync() -> None:
    import torch

    if DEVICE == "cuda":
        torch.cuda.synchronize()


def _timed(step, repeats: int, warmup: int = 3) -> float:
    for _ in range(1 if SMALL else warmup):
        step()
    _sync()
    times = []
    for _ in range(1 if SMALL else repeats):
        started = time.perf_counter()
        step()
        _sync()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _train_step(model, task, batch, device, optimizer, amp: bool) -> float:
    """One optimiser step as the Trainer takes it (autocast around the forward and the loss)."""
    import torch

    optimizer.zero_grad(set_to_none=True)
    with torch.autocast(DEVICE, dtype=torch.bfloat16, enabled=amp):
        losses = task.losses(model, batch, device)
    losses["loss"].backward()
    optimizer.step()
    return float(losses["loss"].detach())  # a sync, as a logged loss is


def _texture(encoder, decoder, features, amp: bool):
    import torch

    with torch.inference_mode(), torch.autocast(DEVICE, dtype=torch.bfloat16, enabled=amp):
        return decoder(encoder(features))[1]


def training(steps: int) -> dict:
    import torch

    from s2f.models.face_encoder import build_face_encoder, he_normal_init_
    from s2f.models.face_encoder_config import FaceEncoderConfig
    from s2f.models.registry import MODELS
    from s2f.train.tasks import DecoderTask, FaceHead, VoiceTask

    torch.manual_seed(0)
    vgg = he_normal_init_(build_face_encoder(FaceEncoderConfig.for_arch("serengil", True)), 0).eval()
    results = {}

    def decoder_case(batch: int):
        decoder = MODELS["face_decoder"].build("full", embedding_dim=4096).train()
        task = DecoderTask(decoder, face_encoder=vgg)
        data = (torch.rand(batch, 3, 224, 224), torch.randn(batch, 4096), torch.rand(batch, 144) * 224, None)
        return decoder, task, data

    def voice_case(kind: str, batch: int):
        if kind == "ve_conv":
            model = MODELS["ve_conv"].build("full").train()
            features = torch.randn(batch, 2, 257, 598)
        else:
            model = MODELS["ast_voice_encoder"].build("full").train()
            features = torch.randn(batch, 1024, 128)
        decoder = MODELS["face_decoder"].build("full", embedding_dim=4096).eval()
        task = VoiceTask(model, FaceHead(vgg), decoder)
        return model, task, (features, torch.randn(batch, 4096), None)

    scale = 16 if SMALL else 1
    cases = {"face_decoder (VGG-Face embedding loss)": lambda: decoder_case(32 // scale),
             "ve_conv (fc8 distillation + decoder layer)": lambda: voice_case("ve_conv", 32 // scale),
             "ast (fc8 distillation + decoder layer)": lambda: voice_case("ast", 16 // scale)}
    for name, build in cases.items():
        try:
            results[name] = _train_case(build, steps)
        except Exception as err:  # one broken case must not cost the whole (rationed) GPU run
            results[name] = {"error": f"{type(err).__name__}: {err}"[:500]}
    return results


def _train_case(build, steps: int) -> dict:
    import torch

    device = torch.device(DEVICE)
    model, task, data = build()
    for module in task.modules():
        module.to(device)
    batch = tuple(x.to(device) if x is not None else torch.zeros(1) for x in data)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    row = {"batch": int(batch[0].shape[0])}
    for label, amp in (("fp32", False), ("amp_bf16", True)):
        step = partial(_train_step, model, task, batch, device, optimizer, amp)
        seconds = _timed(step, steps)
        row[label] = {"step_s": round(seconds, 4), "samples_per_s": round(row["batch"] / seconds, 1),
                      "loss_finite": bool(torch.isfinite(torch.tensor(step())))}
    row["amp_speedup"] = round(row["fp32"]["step_s"] / row["amp_bf16"]["step_s"], 2)
    return row


def inference(repeats: int) -> dict:
    import torch

    from s2f.models.registry import MODELS

    device = torch.device(DEVICE)
    torch.manual_seed(0)
    encoder = MODELS["ve_conv"].build("full").eval().to(device)
    decoder = MODELS["face_decoder"].build("full").eval().to(device)
    results = {}
    for batch in (1, 2) if SMALL else (1, 8):
        features = torch.randn(batch, 2, 257, 598, device=device)
        row = {}
        outputs = {}
        for label, amp in (("fp32", False), ("bf16_autocast", True)):
            run = partial(_texture, encoder, decoder, features, amp)
            row[label + "_ms"] = round(1000 * _timed(run, repeats), 3)
            outputs[label] = run().float().clamp(0, 1).mul(255).round()
        row["bf16_speedup"] = round(row["fp32_ms"] / row["bf16_autocast_ms"], 2)
        row["bf16_image_levels_max"] = float((outputs["fp32"] - outputs["bf16_autocast"]).abs().max())
        results[f"batch {batch}"] = row
    return results


def onnxruntime_cuda() -> dict:
    import onnxruntime as ort

    providers = ort.get_available_providers()
    if "CUDAExecutionProvider" not in providers:
        return {"measured": False, "onnxruntime": ort.__version__, "providers": providers,
                "why": "this machine's onnxruntime is a CPU build; onnxruntime-gpu (CUDA 12 build) needs "
                       "cuBLAS/cuDNN for CUDA 12, which this CUDA 13 image lacks and which are far over "
                       "the 64 MiB that can be carried to it"}
    return {"measured": False, "onnxruntime": ort.__version__, "providers": providers,
            "why": "CUDA provider present; run bench/onnx_runtime.py there for its figures"}


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "gpu_check.json")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--small", action="store_true", help="tiny batches on the CPU: checks the script only")
    args = parser.parse_args()
    global DEVICE, SMALL
    if args.small:
        DEVICE, SMALL = "cpu", True
    torch.backends.cuda.matmul.allow_tf32 = False  # fp32 means fp32 here; AMP is the fast column
    torch.backends.cudnn.allow_tf32 = False
    report = {"gpu": torch.cuda.get_device_name(0) if DEVICE == "cuda" else "none (--small, CPU)",
              "torch": torch.__version__, "cuda": torch.version.cuda}
    print(json.dumps(report), flush=True)
    report["training"] = training(args.steps)
    print(json.dumps(report["training"], indent=1), flush=True)
    report["inference_pytorch"] = inference(20)
    print(json.dumps(report["inference_pytorch"], indent=1), flush=True)
    report["onnxruntime_cuda"] = onnxruntime_cuda()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report["onnxruntime_cuda"]))


if __name__ == "__main__":
    main()
