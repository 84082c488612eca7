"""Micro models and the graphs and bundle built from them, for the tests whose outcome depends
on the CPU's vector instructions (``pytest -m isa``; ``make test-avx2`` runs them on an
emulated AVX2 CPU).

Why micro: qemu's AVX2 emulation computes float32 arithmetic orders of magnitude slower than
the CPU it runs on (an FMA is a software float call), so every model here is the real model
class at a size of a few million multiply-adds: VE_conv on 2 s clips with nine thin
convolutions, the AST with one 16-wide layer on 64 frames, decoders with 4-8 channels.

Why built apart: what the graphs and the bundle *are* does not depend on the CPU (the ONNX
export traces Python; int8 quantisation is deterministic numpy), only what the gates compute
on them does. ``build`` writes them in a separate process, which under ``qemu-x86_64`` runs
on the real CPU (qemu-user executes a child natively), and the tests then load the PyTorch
models and judge every graph in-process, under the emulated CPU.

    python tests/support/isa_micro.py OUT      # models/, graphs/, bundle/ under OUT
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # run as a script (a native process): tests/ holds the support package
EMBEDDING = 32


def micro_models() -> dict:
    """name -> a seeded micro model of each type (BatchNorm statistics of real activations)."""
    import torch

    from s2f.models.registry import MODELS
    from support.helpers import mean_face_landmarks

    torch.manual_seed(0)
    voice = MODELS["ve_conv"].build("tiny", seconds=2.0, channels=[4, 4, 8, 8, 8, 8, 8, 8, 8],
                                    stride2_convs=[1, 2, 3], time_pool_after=[], hidden_dim=32,
                                    embedding_dim=EMBEDDING)
    voice.train()
    with torch.no_grad():  # trained-looking running statistics, not the identity
        for _ in range(2):
            voice(torch.randn(3, 2, 257, 198) * 0.5)
    decoder = MODELS["face_decoder"].build("tiny", embedding_dim=EMBEDDING, shared_dims=[32, 32], landmark_dims=[16],
                                           texture_channels=[8, 8, 4, 4, 4])
    warp = MODELS["face_decoder"].build("tiny", embedding_dim=EMBEDDING, shared_dims=[32, 32], landmark_dims=[16],
                                        texture_channels=[8, 8, 4, 4, 4], warp=True, texture_base=True,
                                        mean_landmarks=mean_face_landmarks())
    with torch.no_grad():
        warp.texture_base.normal_(0, 1)
        warp.landmark_out.weight.mul_(0.05)
    ast = MODELS["ast_voice_encoder"].build("tiny", embedding_dim=EMBEDDING, ast={
        "hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 32,
        "max_length": 64})
    return {name: model.eval() for name, model in
            {"ve_conv": voice, "face_decoder": decoder, "warping_decoder": warp, "ast": ast}.items()}


def broken_voice_encoders(voice) -> dict:
    """The classic porting bugs, each a whole model: a kernel transposed (Keras HWIO read as
    OIHW), two same-shaped layers swapped, and Keras's BatchNorm epsilon (1e-3 for 1e-5)."""
    import copy

    import torch

    transposed, swapped, epsilon = (copy.deepcopy(voice) for _ in range(3))
    with torch.no_grad():
        transposed.conv2.weight.copy_(transposed.conv2.weight.transpose(2, 3).clone())
    for kind in ("conv", "bn"):  # layers 5 and 6: 8 -> 8 channels, stride 1
        first, second = swapped._modules[f"{kind}5"], swapped._modules[f"{kind}6"]
        swapped._modules[f"{kind}5"], swapped._modules[f"{kind}6"] = second, first
    for module in epsilon.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.eps = 1e-3
    return {"transposed kernel": transposed, "swapped layers": swapped, "Keras epsilon": epsilon}


def build(out: Path) -> None:
    """Write models/ (save_pretrained), graphs/ (every precision, and the broken ones) and
    bundle/ (micro VE_conv + decoder, int8 and fp16 too) under ``out``."""
    from s2f.export.bundle import export_bundle
    from s2f.export.onnx_export import export_onnx

    models = micro_models()
    (out / "graphs").mkdir(parents=True, exist_ok=True)
    for name, model in models.items():
        model.save_pretrained(out / "models" / name)
        precisions = {"int8": True, "fp16": True} if name in ("ve_conv", "ast") else {}
        export_onnx(model, out / "graphs" / f"{name}.onnx", **precisions)
    for bug, model in broken_voice_encoders(models["ve_conv"]).items():  # faithful graphs of the wrong models,
        folder = out / "broken" / bug  # named as a bundle names its voice encoder
        folder.mkdir(parents=True)
        export_onnx(model, folder / "voice_encoder.onnx")
    export_bundle(out / "bundle", models["ve_conv"], models["face_decoder"], int8=True)
    (out / "done.json").write_text(json.dumps(sorted(models)))


def build_in_a_native_process(out: Path) -> Path:
    """``build(out)`` in a child process: on the real CPU even when this one is emulated."""
    if not (out / "done.json").is_file():
        done = subprocess.run([sys.executable, str(Path(__file__)), str(out)], capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"building the micro artefacts failed:\n{done.stderr[-3000:]}")
    return out


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    build(Path(sys.argv[1]))
