"""Multi-process training through PyTorch's own engine: torchrun + DistributedDataParallel
with distributed samplers, on CPU with the gloo backend and two processes."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import numpy as np
from conftest import REPO


def test_torchrun_two_processes_gloo(tmp_path):
    rng = np.random.default_rng(0)
    for person in range(4):
        images = tmp_path / "pre" / f"p{person}" / "images"
        images.mkdir(parents=True)
        for k in range(3):
            np.save(images / f"f{k}_target.npy", rng.integers(0, 255, (224, 224, 3), dtype=np.uint8))
            np.save(images / f"f{k}_embedding.npy", rng.random(16, dtype=np.float32))
            np.save(images / f"f{k}_landmarks.npy", rng.uniform(0, 224, 144).astype(np.float32))
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "s2f", "train", "decoder", str(tmp_path / "pre"), "-o", str(tmp_path / "run"),
               "--size", "tiny", "--epochs", "2", "--batch-size", "2", "--device", "cpu"]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    # the trainer itself checks that both replicas hold identical weights after training
    assert done.stderr.count("decoder: ") == 1  # rank 0 reports; rank 1 stays quiet
    rows = list(csv.DictReader(open(tmp_path / "run" / "metrics.csv")))
    assert [int(row["epoch"]) for row in rows] == [1, 2]
    # 12 faces, 2 processes x batch 2: each rank takes 3 batches per epoch -> 3 optimiser steps
    assert [int(row["step"]) for row in rows] == [3, 6]
    latest = json.loads((tmp_path / "run" / "latest.json").read_text())["checkpoint"]
    assert (tmp_path / "run" / latest / "model.safetensors").is_file()
