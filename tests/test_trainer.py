"""The training loop: it learns, checkpoints are complete and atomic, and a resumed run is
bit-for-bit the run that never stopped."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from s2f.data.pairs import DecoderFaces
from s2f.models.face_decoder import FaceDecoder, FaceDecoderConfig
from s2f.train.checkpoint import resolve
from s2f.train.losses import DecoderLossWeights
from s2f.train.tasks import DecoderTask
from s2f.train.trainer import TrainConfig, Trainer

SMALL_DECODER = dict(embedding_dim=16, shared_dims=[32, 24], landmark_dims=[16], texture_channels=[8, 4, 4, 4, 4])


@pytest.fixture(scope="module")
def faces_tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("decoder_data")
    rng = np.random.default_rng(0)
    for person in range(4):
        images = root / f"p{person}" / "images"
        images.mkdir(parents=True)
        for k in range(3):
            colour = rng.integers(0, 255, 3)
            np.save(images / f"f{k}_target.npy", np.broadcast_to(colour, (224, 224, 3)).astype(np.uint8))
            np.save(images / f"f{k}_embedding.npy", np.concatenate([colour / 255, rng.random(13)]).astype(np.float32))
            np.save(images / f"f{k}_landmarks.npy", rng.uniform(0, 224, 144).astype(np.float32))
    return root


def _trainer(tree, run_dir, epochs, weights=None, **overrides):
    torch.manual_seed(0)
    model = FaceDecoder(FaceDecoderConfig(**SMALL_DECODER))
    data = DecoderFaces(tree)
    config = TrainConfig(**{"epochs": epochs, "batch_size": 4, "lr": 1e-3, "seed": 0, "tensorboard": False,
                            **overrides})
    return Trainer(DecoderTask(model, preview=data, weights=weights), data, data, run_dir, config)


def _weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_two_epochs_equal_one_plus_resume(faces_tree, tmp_path):
    straight = _trainer(faces_tree, tmp_path / "straight", epochs=2)
    straight.fit()
    first = _trainer(faces_tree, tmp_path / "resumed", epochs=1)
    first.fit()
    second = _trainer(faces_tree, tmp_path / "resumed", epochs=2)
    assert second.resume()
    assert second.state["epoch"] == 1
    second.fit()
    a, b = _weights(straight.model), _weights(second.model)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    def without_throughput(history):  # wall-clock speed is the one field allowed to differ
        return [{k: v for k, v in row.items() if k != "samples_per_s"} for row in history]

    assert without_throughput(straight.state["history"]) == without_throughput(second.state["history"])


def test_mid_epoch_checkpoint_resumes_exactly(faces_tree, tmp_path):
    straight = _trainer(faces_tree, tmp_path / "a", epochs=1)
    straight.fit()
    interrupted = _trainer(faces_tree, tmp_path / "b", epochs=1, save_every_steps=2)

    class Stop(Exception):
        pass

    original = interrupted.task.losses
    calls = {"n": 0}

    def crash_after_two_steps(model, batch, device):
        calls["n"] += 1
        if calls["n"] == 3:  # the 3rd batch: a checkpoint after step 2 exists
            raise Stop
        return original(model, batch, device)

    interrupted.task.losses = crash_after_two_steps
    with pytest.raises(Stop):
        interrupted.fit()
    resumed = _trainer(faces_tree, tmp_path / "b", epochs=1)
    assert resumed.resume() and resumed.state["batch_in_epoch"] == 2
    resumed.fit()
    for key, value in _weights(straight.model).items():
        assert torch.equal(value, resumed.model.state_dict()[key]), key


@pytest.mark.slow
def test_run_outputs_and_learning(faces_tree, tmp_path):
    # random landmarks cannot be learned; the texture (a colour carried by the embedding) can
    trainer = _trainer(faces_tree, tmp_path / "run", epochs=30, lr=3e-3, weights=DecoderLossWeights(landmarks=0.0))
    history = trainer.fit()
    assert history[-1]["val_texture"] < 0.75 * history[0]["val_texture"]
    rows = list(csv.DictReader(open(tmp_path / "run" / "metrics.csv")))
    assert [int(r["epoch"]) for r in rows] == list(range(1, 31)) and "val_loss" in rows[0]
    assert (tmp_path / "run" / "grids" / "epoch030.png").is_file()
    latest, best = resolve(tmp_path / "run"), resolve(tmp_path / "run", "best.json")
    assert latest.is_dir() and best.is_dir()
    assert json.loads((latest / "state.json").read_text())["epoch"] == 30
    assert len(list((tmp_path / "run" / "checkpoints").iterdir())) <= 2  # latest (+ best), older pruned
    reloaded = FaceDecoder.from_pretrained(latest)
    for key, value in trainer.model.state_dict().items():
        if not key.endswith("num_batches_tracked"):
            assert torch.equal(value, reloaded.state_dict()[key])


def test_crash_while_saving_keeps_previous_checkpoint(faces_tree, tmp_path, monkeypatch):
    trainer = _trainer(faces_tree, tmp_path / "run", epochs=2)
    trainer.config.epochs = 1
    trainer.fit()
    before = resolve(tmp_path / "run")
    import s2f.train.checkpoint as checkpoint

    def broken_save(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint, "_point", broken_save)
    trainer.config.epochs = 2
    with pytest.raises(OSError):
        trainer.fit()
    assert resolve(tmp_path / "run") == before
    again = _trainer(faces_tree, tmp_path / "run", epochs=2)
    assert again.resume() and again.state["epoch"] == 1


def test_early_stopping(faces_tree, tmp_path):
    trainer = _trainer(faces_tree, tmp_path / "run", epochs=50, patience=1, lr=0.0)
    history = trainer.fit()
    assert len(history) == 2  # lr 0: epoch 2 is no better, so training stops


def test_training_curves_read_back_in_tensorboard_without_importing_tensorflow(tmp_path):
    """The scalar log is a TensorBoard event file (read back by TensorBoard's own reader, a resumed
    run's purge included), and writing it never loads TensorFlow, which the keras extra installs."""
    import subprocess
    import sys

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    script = ("import sys\nfrom s2f.train.scalar_log import ScalarWriter\n"
              f"w = ScalarWriter({str(tmp_path / 'a')!r})\n"
              "for step, value in enumerate([3.0, 2.0, 1.5], start=1):\n    w.add_scalar('train/loss', value, step)\n"
              "w.close()\n"
              f"w = ScalarWriter({str(tmp_path / 'a')!r}, purge_step=3)\n"
              "w.add_scalar('train/loss', 0.5, 3)\nw.close()\n"
              "print('tensorflow' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip() == "False", done.stderr[-2000:]
    events = EventAccumulator(str(tmp_path / "a"))
    events.Reload()
    assert [(e.step, e.value) for e in events.Scalars("train/loss")] == [(1, 3.0), (2, 2.0), (3, 0.5)]
