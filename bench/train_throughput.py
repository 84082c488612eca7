"""Training throughput per model on this machine: samples per second of one optimiser step
(forward, backward, Adam) for the full-size models of the paper and the tiny ones the demo
and tests use, and how much the Trainer costs on top of a bare loop over the same batches.
Writes bench/results/train_throughput.json.

usage: python bench/train_throughput.py [--steps 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/machine.py
from machine import announce  # noqa: E402

sys.path.insert(0, str(REPO))


def models():
    import torch

    from s2f.models.registry import MODELS

    def voice_batch(n, shape):
        return torch.randn(n, *shape), torch.rand(n, 4096)

    return {
        "face_decoder full": (lambda: MODELS["face_decoder"].build("full", embedding_dim=4096), 8, None),
        "face_decoder tiny": (lambda: MODELS["face_decoder"].build("tiny", embedding_dim=4096), 8, None),
        "ve_conv full": (lambda: MODELS["ve_conv"].build("full"), 2, lambda n: voice_batch(n, (2, 257, 598))),
        "ve_conv tiny": (lambda: MODELS["ve_conv"].build("tiny", variant="paper", embedding_dim=4096), 8,
                         lambda n: voice_batch(n, (2, 257, 598))),
        "ast full": (lambda: MODELS["ast_voice_encoder"].build("full"), 2, lambda n: voice_batch(n, (1024, 128))),
        "ast tiny": (lambda: MODELS["ast_voice_encoder"].build("tiny"), 8, lambda n: voice_batch(n, (1024, 128))),
    }


def step_time(model, batch, steps: int) -> float:
    import torch

    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    model.train()

    def step():
        inputs, target = batch
        output = model(inputs)
        if isinstance(output, tuple):  # decoder: landmarks, texture
            loss = output[0].square().mean() + output[1].mean()
        else:
            loss = (output - target).abs().mean()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    step()
    times = []
    for _ in range(steps):
        started = time.perf_counter()
        step()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args()
    results = {}
    for name, (build, batch_size, make_batch) in models().items():
        torch.manual_seed(0)
        model = build()
        if make_batch is None:
            batch = (torch.rand(batch_size, 4096), None)
        else:
            batch = make_batch(batch_size)
        seconds = step_time(model, batch, args.steps)
        params = sum(p.numel() for p in model.parameters())
        results[name] = {"batch": batch_size, "step_s": round(seconds, 4),
                         "samples_per_s": round(batch_size / seconds, 2), "parameters": params}
        print(f"{name:18s} batch {batch_size}: {batch_size / seconds:8.2f} samples/s  ({params:,} parameters)")
    results["trainer_overhead"] = trainer_overhead(args.steps)
    print(f"Trainer vs bare loop (tiny decoder): {results['trainer_overhead']['ratio']:.3f}x the bare loop's time")
    out = REPO / "bench" / "results" / "train_throughput.json"
    out.write_text(json.dumps({"machine": announce(), "torch_threads": torch.get_num_threads(), "models": results},
                              indent=2))


def trainer_overhead(steps: int) -> dict:
    """Same model, data and steps, through the Trainer (checkpointing, metrics) and by hand."""
    import torch

    sys.path.insert(0, str(REPO / "tests"))
    from support.helpers import random_decoder_faces

    from s2f.data.pairs import DecoderFaces
    from s2f.models.registry import MODELS
    from s2f.train.losses import FaceDecoderLoss
    from s2f.train.tasks import DecoderTask
    from s2f.train.trainer import TrainConfig, Trainer

    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch) / "pre"
        random_decoder_faces(root, people=8, faces=8, embedding_dim=4096)
        data = DecoderFaces(root)
        epochs = 3
        torch.manual_seed(0)
        model = MODELS["face_decoder"].build("tiny", embedding_dim=4096)
        trainer = Trainer(DecoderTask(model), data, None, Path(scratch) / "run",
                          TrainConfig(epochs=epochs, batch_size=8, tensorboard=False))
        started = time.perf_counter()
        trainer.fit()
        with_trainer = time.perf_counter() - started
        torch.manual_seed(0)
        model = MODELS["face_decoder"].build("tiny", embedding_dim=4096)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.5, 0.999), eps=1e-4)
        loss_fn = FaceDecoderLoss()
        loader = torch.utils.data.DataLoader(data, batch_size=8, shuffle=True)
        started = time.perf_counter()
        for _ in range(epochs):
            for image, embedding, landmarks, _ in loader:
                landmarks_out, texture = model(embedding)
                loss_fn(landmarks_out, texture, landmarks, image)["loss"].backward()
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
        bare = time.perf_counter() - started
    return {"trainer_s": round(with_trainer, 3), "bare_s": round(bare, 3), "ratio": round(with_trainer / bare, 3)}


if __name__ == "__main__":
    main()
