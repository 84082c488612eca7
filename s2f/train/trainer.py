"""One training loop for every Speech2Face model: device choice, mixed precision on CUDA,
gradient accumulation, optimiser and schedule from a config, DistributedDataParallel under
``torchrun``, checkpoints every epoch (and every N steps) that resume bit for bit, early
stopping, progress bars, metrics to CSV and TensorBoard.

What differs between models is a ``TrainTask``: how a batch becomes losses, and what to
draw at the end of an epoch.
"""

from __future__ import annotations

import csv
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler, RandomSampler, SequentialSampler

from s2f.core.atomic import atomic_output
from s2f.core.errors import InputError
from s2f.core.progress import progress_bar
from s2f.models.run_pointers import BEST, LATEST, resolve
from s2f.train.checkpoint import load_checkpoint, remove_leftovers, save_checkpoint
from s2f.train.options import TrainConfig

log = logging.getLogger(__name__)


class TrainTask(Protocol):
    """What a trainer needs to know about one model."""

    model: nn.Module  # the trainable module; has save_pretrained

    def losses(self, model: nn.Module, batch: Any, device: torch.device) -> dict[str, torch.Tensor]:
        """Batch -> {"loss": scalar to minimise, other named terms to log}. ``model`` is
        ``self.model`` or its DistributedDataParallel wrapper: call it, not ``self.model``,
        so gradients are synchronised."""

    def modules(self) -> list[nn.Module]:
        """Every module ``losses`` and ``end_of_epoch`` run (the model first, then frozen
        teachers); the trainer places them all on its device once."""

    def end_of_epoch(self, epoch: int, run_dir: Path) -> None:
        """Draw pictures, etc. Runs on rank 0 only, model in eval mode."""


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(None, f"--device {name} asked for, but torch sees no CUDA device")
    return torch.device(name)


@dataclass
class Distributed:
    """Under ``torchrun`` (WORLD_SIZE > 1): one process per device, gloo on CPU, nccl on CUDA."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @classmethod
    def from_env(cls, device: torch.device) -> Distributed:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls()
        import torch.distributed as dist

        if not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        return cls(dist.get_rank(), world, int(os.environ.get("LOCAL_RANK", "0")))

    @property
    def main(self) -> bool:
        return self.rank == 0


@dataclass
class Trainer:
    task: TrainTask
    train_data: Dataset
    val_data: Dataset | None
    run_dir: Path
    config: TrainConfig = field(default_factory=TrainConfig)
    collate: Callable | None = None

    def __post_init__(self) -> None:
        self.run_dir = Path(self.run_dir)
        self.device = pick_device(self.config.device)
        self.dist = Distributed.from_env(self.device)
        if self.device.type == "cuda" and self.dist.world_size > 1:
            self.device = torch.device("cuda", self.dist.local_rank)
            torch.cuda.set_device(self.device)
        for module in self.task.modules():  # the model and every frozen teacher, placed once
            module.to(self.device)
        self.model = self.task.model
        self.trainable = [p for p in self.model.parameters() if p.requires_grad]
        if not self.trainable:
            raise ValueError("nothing to train: every parameter is frozen")
        self.optimizer = self._optimizer()
        self.steps_per_epoch = math.ceil(self._batches_per_epoch() / self.config.accumulate)
        self.scheduler = self._scheduler()
        self.wrapped = self.model
        if self.dist.world_size > 1:
            from torch.nn.parallel import DistributedDataParallel

            self.wrapped = DistributedDataParallel(self.model, device_ids=[self.device.index]
                                                   if self.device.type == "cuda" else None)
        amp = self.config.amp and self.device.type == "cuda"
        self.amp_dtype = torch.bfloat16 if amp and torch.cuda.is_bf16_supported() else torch.float16
        self.amp = amp
        self.scaler = torch.amp.GradScaler("cuda", enabled=amp and self.amp_dtype == torch.float16)
        self.state: dict[str, Any] = {"epoch": 0, "step": 0, "batch_in_epoch": 0, "best": None,
                                      "stale_epochs": 0, "history": []}

    # construction -------------------------------------------------------------------------
    def _optimizer(self) -> torch.optim.Optimizer:
        c = self.config
        if c.optimizer == "sgd":
            return torch.optim.SGD(self.trainable, lr=c.lr, momentum=c.betas[0], weight_decay=c.weight_decay)
        cls = torch.optim.Adam if c.optimizer == "adam" else torch.optim.AdamW
        return cls(self.trainable, lr=c.lr, betas=c.betas, eps=c.eps, weight_decay=c.weight_decay)

    def _scheduler(self):
        total = max(1, self.steps_per_epoch * self.config.epochs)
        if self.config.schedule == "cosine":
            return torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, T_max=total)
        if self.config.schedule == "step":
            return torch.optim.lr_scheduler.StepLR(self.optimizer, step_size=max(1, total // 3), gamma=0.1)
        return None

    def _sampler(self, epoch: int):
        if self.dist.world_size > 1:
            sampler = DistributedSampler(self.train_data, self.dist.world_size, self.dist.rank, shuffle=True,
                                         seed=self.config.seed)
            sampler.set_epoch(epoch)
            return sampler
        # the order of an epoch depends on (seed, epoch) only: a resumed run replays it exactly
        generator = torch.Generator().manual_seed(self.config.seed * 100_003 + epoch)
        return RandomSampler(self.train_data, generator=generator)

    def _per_process(self) -> int:
        return math.ceil(len(self.train_data) / self.dist.world_size)

    def _drops_last(self) -> bool:
        """A last training batch of one sample is dropped: BatchNorm cannot normalise it."""
        per_process = self._per_process()
        return per_process % self.config.batch_size == 1 and per_process > 1

    def _batches_per_epoch(self) -> int:
        return self._per_process() // self.config.batch_size + \
            (self._per_process() % self.config.batch_size > 0 and not self._drops_last())

    def _loader(self, data: Dataset, sampler, training: bool = False) -> DataLoader:
        # an own generator: DataLoader would otherwise draw its worker seed from the global RNG
        # at every iterator, so a resumed run would see different dropout than a straight one
        drop_last = training and self._drops_last()
        return DataLoader(data, batch_size=self.config.batch_size, sampler=sampler, num_workers=self.config.workers,
                          collate_fn=self.collate, pin_memory=self.device.type == "cuda", drop_last=drop_last,
                          generator=torch.Generator().manual_seed(self.config.seed))

    # checkpoints --------------------------------------------------------------------------
    def resume(self, which: str = LATEST) -> bool:
        if self.dist.main and self.run_dir.is_dir():
            remove_leftovers(self.run_dir)
        directory = resolve(self.run_dir, which)
        if directory is None:
            return False
        self.state = load_checkpoint(directory, self.model, self.optimizer, self.scheduler)
        return True

    def _save(self, is_best: bool) -> None:
        if self.dist.main:
            save_checkpoint(self.run_dir, self.model, self.optimizer, self.scheduler, self.state, is_best,
                            self.config.keep_checkpoints)
        if self.dist.world_size > 1:
            torch.distributed.barrier()

    # the loop ------------------------------------------------------------------------------
    def fit(self) -> list[dict[str, Any]]:
        """Train to ``config.epochs`` (continuing a resumed state); returns the per-epoch history."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        writer = self._tensorboard()
        try:
            while self.state["epoch"] < self.config.epochs:
                if self.config.patience and self.state["stale_epochs"] >= self.config.patience:
                    if self.dist.main:
                        log.info("early stop: no better validation loss for %d epochs", self.config.patience)
                    break
                record = self._train_epoch(writer)
                if record is None:
                    break
        finally:
            if writer is not None:
                writer.close()
        self._check_ranks_agree()
        return self.state["history"]

    def _check_ranks_agree(self) -> None:
        """DDP keeps replicas identical only if every forward went through the wrapper;
        compare a checksum of the weights across processes instead of trusting that."""
        if self.dist.world_size == 1:
            return
        local = torch.tensor([sum(float(p.double().sum()) for p in self.model.parameters()),
                              sum(float(p.double().square().sum()) for p in self.model.parameters())],
                             dtype=torch.float64)
        gathered = [torch.zeros_like(local) for _ in range(self.dist.world_size)]
        torch.distributed.all_gather(gathered, local)
        if any(not torch.equal(gathered[0], other) for other in gathered[1:]):
            raise RuntimeError(f"model replicas diverged across processes: {[g.tolist() for g in gathered]}")

    def _train_epoch(self, writer) -> dict[str, Any] | None:
        epoch = self.state["epoch"]
        self.wrapped.train()
        skip = self.state["batch_in_epoch"]  # > 0 only when resuming a mid-epoch checkpoint
        if hasattr(self.train_data, "set_epoch"):  # per-epoch augmentation (random crops) from (seed, epoch)
            self.train_data.set_epoch(epoch)
        loader = self._loader(self.train_data, self._sampler(epoch), training=True)
        totals: dict[str, float] = {}
        count, samples, started = 0, 0, time.perf_counter()
        bar = progress_bar(total=len(loader), initial=skip, desc=f"epoch {epoch + 1}/{self.config.epochs}",
                           disable=not self.dist.main, leave=False)
        accumulate = self.config.accumulate
        self.optimizer.zero_grad(set_to_none=True)
        for index, batch in enumerate(loader):
            if index < skip:
                continue
            with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp):
                terms = self.task.losses(self.wrapped, batch, self.device)
            if not torch.isfinite(terms["loss"]):
                raise FloatingPointError(f"loss became {terms['loss'].item()} at epoch {epoch + 1}, batch {index}")
            self.scaler.scale(terms["loss"] / accumulate).backward()
            last = index + 1 == len(loader)
            if (index + 1) % accumulate == 0 or last:
                self.scaler.step(self.optimizer)
                self.scaler.update()
                self.optimizer.zero_grad(set_to_none=True)
                if self.scheduler is not None:
                    self.scheduler.step()
                self.state["step"] += 1
            for key, value in terms.items():
                totals[key] = totals.get(key, 0.0) + float(value.detach())
            count += 1
            samples += _batch_size(batch)
            self.state["batch_in_epoch"] = index + 1
            bar.update()
            bar.set_postfix(loss=f"{totals['loss'] / count:.4g}")
            every = self.config.save_every_steps
            if every and (index + 1) % accumulate == 0 and self.state["step"] % every == 0 and not last:
                self._save(is_best=False)
        bar.close()
        seconds = time.perf_counter() - started
        totals, count, samples = self._all_processes(totals, count, samples)
        record = {"epoch": epoch + 1, "step": self.state["step"], "lr": self.optimizer.param_groups[0]["lr"],
                  "samples_per_s": round(samples / max(seconds, 1e-9), 3),
                  **{f"train_{k}": v / max(count, 1) for k, v in totals.items()}}
        record.update({f"val_{k}": v for k, v in self.evaluate().items()})
        score = record.get("val_loss", record.get("train_loss"))
        best = self.state["best"]
        is_best = best is None or score < best
        self.state.update(epoch=epoch + 1, batch_in_epoch=0, best=score if is_best else best,
                          stale_epochs=0 if is_best else self.state["stale_epochs"] + 1)
        self.state["history"].append(record)
        if self.dist.main:
            self._log(record, writer)
            self.model.eval()
            with torch.no_grad():
                self.task.end_of_epoch(epoch + 1, self.run_dir)
        self._save(is_best)
        return record

    def _all_processes(self, totals: dict[str, float], count: int, samples: int) -> tuple[dict[str, float], int, int]:
        """Sum the epoch's statistics over all processes, so every rank takes the same
        best-checkpoint and early-stopping decisions (a rank that stops alone deadlocks the rest)."""
        if self.dist.world_size == 1:
            return totals, count, samples
        keys = sorted(totals)
        packed = torch.tensor([totals[k] for k in keys] + [count, samples], dtype=torch.float64)
        torch.distributed.all_reduce(packed)
        values = packed.tolist()
        return dict(zip(keys, values[:-2], strict=True)), int(values[-2]), int(values[-1])

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """Mean of each loss term over the validation set (every process sees all of it)."""
        if self.val_data is None or len(self.val_data) == 0:
            return {}
        self.model.eval()
        totals: dict[str, float] = {}
        count = 0
        for batch in self._loader(self.val_data, SequentialSampler(self.val_data)):
            with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp):
                terms = self.task.losses(self.model, batch, self.device)
            size = _batch_size(batch)
            for key, value in terms.items():
                totals[key] = totals.get(key, 0.0) + float(value) * size
            count += size
        self.wrapped.train()
        return {key: value / count for key, value in totals.items()}

    # logging -------------------------------------------------------------------------------
    def _tensorboard(self):
        if not (self.config.tensorboard and self.dist.main):
            return None
        try:
            from s2f.train.scalar_log import ScalarWriter

            return ScalarWriter(self.run_dir / "tensorboard", purge_step=self.state["epoch"] + 1)
        except ImportError:
            log.info("TensorBoard logging off: the 'tensorboard' package is not installed (metrics.csv still written)")
            return None

    def _log(self, record: dict[str, Any], writer) -> None:
        path = self.run_dir / "metrics.csv"
        rows = self.state["history"]
        keys = sorted({key for row in rows for key in row}, key=lambda k: (k not in ("epoch", "step"), k))
        with atomic_output(path, "w") as handle:  # rewritten whole: a resumed run never duplicates rows
            writer_csv = csv.DictWriter(handle, fieldnames=keys)
            writer_csv.writeheader()
            writer_csv.writerows(rows)
        with atomic_output(self.run_dir / "config.json", "w") as handle:
            import json

            json.dump({"train": asdict(self.config)}, handle, indent=2)
        if writer is not None:
            for key, value in record.items():
                if key not in ("epoch", "step") and isinstance(value, int | float):
                    writer.add_scalar(key.replace("_", "/", 1), value, record["epoch"])
            writer.flush()
        summary = ", ".join(f"{k} {v:.4g}" for k, v in record.items() if k.endswith("loss") or k == "samples_per_s")
        log.info("epoch %s: %s", record["epoch"], summary)


def shutdown_distributed() -> None:
    """Leave the process group together: a gloo rank whose peer tears down first can abort
    ("terminate called without an active exception") instead of exiting cleanly."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()


def _batch_size(batch: Any) -> int:
    first = batch[0] if isinstance(batch, list | tuple) else batch
    return int(first.shape[0])


__all__ = ["BEST", "LATEST", "TrainConfig", "TrainTask", "Trainer", "pick_device"]
