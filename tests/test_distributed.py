"""Multi-process training through PyTorch's own engine: torchrun + DistributedDataParallel
with distributed samplers, on CPU with the gloo backend and two processes."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import pytest
from support.helpers import REPO, random_decoder_faces

pytestmark = pytest.mark.slow  # end-to-end: models, processes or servers built per module


def _faces(root):
    """4 people x 3 preprocessed faces with random targets, 16-D embeddings and landmarks."""
    random_decoder_faces(root)


def test_torchrun_two_processes_gloo(tmp_path):
    _faces(tmp_path / "pre")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "s2f", "train", "decoder", str(tmp_path / "pre"), "-o", str(tmp_path / "run"),
               "--size", "tiny", "--epochs", "2", "--batch-size", "2", "--device", "cpu",
               "--no-warp"]  # a hand-made tree: photos and landmarks, no aligned textures
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


UNSYNCED = """
import sys
import torch
from s2f.data.pairs import DecoderFaces
from s2f.models.registry import MODELS
from s2f.train.options import TrainConfig
from s2f.train.tasks import DecoderTask
from s2f.train.trainer import Trainer

torch.manual_seed(0)
task = DecoderTask(MODELS["face_decoder"].build("tiny", embedding_dim=16))
real_losses = task.losses
# the bug the check exists for: a forward that bypasses the DistributedDataParallel wrapper,
# so gradients are never averaged across processes and the replicas drift apart
task.losses = lambda model, batch, device: real_losses(task.model, batch, device)
Trainer(task, DecoderFaces(sys.argv[1]), None, sys.argv[2], TrainConfig(epochs=1, batch_size=2, device="cpu")).fit()
"""


def test_broken_gradient_sync_is_caught(tmp_path):
    """The trainer's end-of-training replica check fires when gradients were not synchronised."""
    _faces(tmp_path / "pre")
    script = tmp_path / "unsynced.py"
    script.write_text(UNSYNCED)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               str(script), str(tmp_path / "pre"), str(tmp_path / "run")]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode != 0
    assert "model replicas diverged across processes" in done.stderr
