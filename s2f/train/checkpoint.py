"""Training checkpoints that survive crashes and resume bit for bit.

A checkpoint is a fresh directory ``checkpoints/step-NNNNNNNN/`` holding the model
(``save_pretrained``: config.json + model.safetensors), the optimiser's and scheduler's
tensors (``optimizer.safetensors``) and everything else as JSON (``state.json``: optimiser
hyper-parameters, scheduler counters, epoch, step, best metric, history, RNG states). Only
when all files are complete does ``latest.json`` (and ``best.json``) switch to it, by an
atomic rename; a crash mid-write leaves the previous checkpoint in charge. Nothing is
pickled: tensors go to safetensors, the rest to JSON.
"""

from __future__ import annotations

import json
import logging
import os
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from s2f.core.atomic import atomic_output
from s2f.core.errors import InputError
from s2f.models.run_pointers import BEST, LATEST, resolve

log = logging.getLogger(__name__)

CHECKPOINTS = "checkpoints"
STATE_FILE, OPTIMIZER_FILE = "state.json", "optimizer.safetensors"


def _split_tensors(value: Any, prefix: str, tensors: dict[str, torch.Tensor]) -> Any:
    """JSON-able copy of ``value`` with every tensor moved into ``tensors`` under a key."""
    if isinstance(value, torch.Tensor):
        key = f"{prefix}"
        tensors[key] = value.detach().cpu().contiguous()
        return {"__tensor__": key}
    if isinstance(value, dict):
        return {"__dict__": [[_split_tensors(k, f"{prefix}.k{i}", tensors),
                              _split_tensors(v, f"{prefix}.{i}", tensors)] for i, (k, v) in enumerate(value.items())]}
    if isinstance(value, list | tuple):
        return {"__list__" if isinstance(value, list) else "__tuple__":
                [_split_tensors(v, f"{prefix}.{i}", tensors) for i, v in enumerate(value)]}
    if isinstance(value, float) and not np.isfinite(value):
        return {"__float__": repr(value)}
    return value


def _join_tensors(value: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(value, dict):
        if "__tensor__" in value:
            return tensors[value["__tensor__"]]
        if "__dict__" in value:
            return {_join_tensors(k, tensors): _join_tensors(v, tensors) for k, v in value["__dict__"]}
        if "__list__" in value:
            return [_join_tensors(v, tensors) for v in value["__list__"]]
        if "__tuple__" in value:
            return tuple(_join_tensors(v, tensors) for v in value["__tuple__"])
        if "__float__" in value:
            return float(value["__float__"])
    return value


def rng_state() -> dict[str, Any]:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, np.integer | np.floating):
        return value.item()
    return value


def save_checkpoint(run_dir: Path, model, optimizer: torch.optim.Optimizer, scheduler, state: dict[str, Any],
                    is_best: bool, keep: int = 1) -> Path:
    """Write a complete checkpoint, then point ``latest`` (and ``best``) at it."""
    from safetensors.torch import save

    run_dir = Path(run_dir)
    directory = run_dir / CHECKPOINTS / f"step-{state['step']:08d}"
    if directory.exists():
        shutil.rmtree(directory)
    model.save_pretrained(directory)
    # save_pretrained leaves BatchNorm's step counters out; a resumed run needs them
    tensors: dict[str, torch.Tensor] = {f"buffer.{key}": value.detach().cpu() for key, value
                                        in model.state_dict().items() if key.endswith("num_batches_tracked")}
    payload = {
        "optimizer": _split_tensors(optimizer.state_dict(), "optimizer", tensors),
        "scheduler": _split_tensors(scheduler.state_dict() if scheduler else None, "scheduler", tensors),
        "rng": _split_tensors(_jsonable(rng_state()), "rng", tensors),
        **_jsonable(state),
    }
    with atomic_output(directory / OPTIMIZER_FILE) as handle:
        handle.write(save(tensors) if tensors else save({"empty": torch.zeros(0)}))
    with atomic_output(directory / STATE_FILE, "w") as handle:
        json.dump(payload, handle)
    _point(run_dir / LATEST, directory)
    if is_best:
        _point(run_dir / BEST, directory)
    _prune(run_dir, keep)
    return directory


def remove_leftovers(run_dir: Path) -> int:
    """What killed saves left in ``run_dir``: temporaries (``.latest.json.x1y2.partial``) and
    checkpoint folders whose state file, written last, never arrived. The run directory is
    this run's alone, so everything of that kind in it is ours. Returns how many went."""
    from s2f.core.atomic import partial_target

    removed = 0
    for folder, subfolders, files in os.walk(run_dir):
        for name in [*files, *subfolders]:
            if partial_target(name) is None:
                continue
            path = Path(folder) / name
            shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink(missing_ok=True)
            removed += 1
        subfolders[:] = [name for name in subfolders if partial_target(name) is None]
    protected = {p for p in (resolve(run_dir, LATEST), resolve(run_dir, BEST)) if p is not None}
    for directory in sorted(Path(run_dir, CHECKPOINTS).glob("step-*")):
        if directory not in protected and not (directory / STATE_FILE).is_file():
            shutil.rmtree(directory)
            removed += 1
    if removed:
        log.info("%s: removed %d leftovers of interrupted saves", run_dir, removed)
    return removed


def _point(pointer: Path, directory: Path) -> None:
    with atomic_output(pointer, "w") as handle:
        json.dump({"checkpoint": str(directory.relative_to(pointer.parent))}, handle)


def _prune(run_dir: Path, keep: int) -> None:
    """Drop old checkpoints, never the ones ``latest`` or ``best`` point to."""
    protected = {p for p in (resolve(run_dir, LATEST), resolve(run_dir, BEST)) if p is not None}
    steps = sorted((run_dir / CHECKPOINTS).glob("step-*"))
    for directory in steps[:-keep] if keep > 0 else steps:
        if directory not in protected:
            shutil.rmtree(directory, ignore_errors=True)


def _same_parameters(optimizer: torch.optim.Optimizer, state: dict[str, Any]) -> bool:
    ours = [len(group["params"]) for group in optimizer.param_groups]
    theirs = [len(group["params"]) for group in state["param_groups"]]
    return ours == theirs


def load_checkpoint(directory: Path, model, optimizer: torch.optim.Optimizer, scheduler) -> dict[str, Any]:
    """Restore model, optimiser, scheduler and RNG in place; returns the remaining state."""
    from safetensors.torch import load_file

    from s2f.models.pretrained import WEIGHTS_NAME, load_state_strict

    directory = Path(directory)
    try:
        payload = json.loads((directory / STATE_FILE).read_text())
        tensors = load_file(str(directory / OPTIMIZER_FILE))
    except (OSError, ValueError) as err:
        raise InputError(directory, f"incomplete or unreadable checkpoint ({err})") from None
    weights = load_file(str(directory / WEIGHTS_NAME))
    weights.update({key[len("buffer."):]: value for key, value in tensors.items() if key.startswith("buffer.")})
    load_state_strict(model, weights, directory / WEIGHTS_NAME)
    optimizer_state = _join_tensors(payload.pop("optimizer"), tensors)
    scheduler_state = _join_tensors(payload.pop("scheduler"), tensors)
    if _same_parameters(optimizer, optimizer_state):
        optimizer.load_state_dict(optimizer_state)
        if scheduler is not None and scheduler_state is not None:
            scheduler.load_state_dict(scheduler_state)
    else:  # another set of trainable parameters (AST's second stage): a fresh optimiser
        log.info("%s: the trainable parameters changed since this checkpoint; starting a fresh optimiser", directory)
    set_rng_state(_join_tensors(payload.pop("rng"), tensors))
    return payload
