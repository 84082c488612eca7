"""The aligned textures of Cole et al. (2017): every preprocessed face's 224x224 target
warped from its own landmarks to the mean landmarks, the frame the warping decoder's
texture head draws in.

The mean is taken over the training identities of a split when one is given (so held-out
faces do not shape the frame), else over every face, and is stored beside the data as
``mean_landmarks.npy``. A new mean (another split, more faces) rewrites every aligned
texture; the same mean only fills in missing ones, so reruns resume.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from s2f.core.errors import InputError
from s2f.core.listing import iter_files
from s2f.core.progress import progress_bar
from s2f.data.jobs import save_array
from s2f.data.layout import ALIGNED_SUFFIX, LANDMARKS_SUFFIX, MEAN_LANDMARKS, TARGET_SUFFIX

log = logging.getLogger(__name__)


def read_mean_landmarks(root: Path) -> np.ndarray:
    """The stored mean landmarks (flat 2K float32 pixels) of a preprocessed tree."""
    path = Path(root) / MEAN_LANDMARKS
    if not path.is_file():
        raise InputError(root, f"no {MEAN_LANDMARKS}: the warping decoder trains on aligned textures; run "
                               "'s2f preprocess faces' again (it writes them), or train with --no-warp")
    try:
        mean = np.load(path, allow_pickle=False).astype(np.float32).reshape(-1)
    except (OSError, ValueError) as err:
        raise InputError(path, f"not a landmarks array ({err})") from None
    if mean.size < 6 or mean.size % 2 or not np.isfinite(mean).all():
        raise InputError(path, f"expected an even number (>= 6) of finite coordinates, got {mean.size}")
    return mean


def _bases(out_dir: Path, identities: set[str] | None) -> list[str]:
    bases = []
    for relative in iter_files(out_dir, (LANDMARKS_SUFFIX,)):
        path = out_dir / relative
        if identities is not None and relative.parts[0] not in identities:
            continue
        base = str(path)[: -len(LANDMARKS_SUFFIX)]
        if Path(base + TARGET_SUFFIX).is_file():
            bases.append(base)
    return bases


def _load(path: Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise InputError(path, f"unreadable array ({err})") from None


def align_faces(out_dir: Path, train_identities: list[str] | None = None, batch_size: int = 32,
                overwrite: bool = False) -> int:
    """Write ``mean_landmarks.npy`` and every face's ``<stem>_aligned.npy``; returns how many
    aligned textures were written."""
    import torch

    from s2f.models.landmark_warp import LandmarkWarp

    out_dir = Path(out_dir)
    every = _bases(out_dir, None)
    if not every:
        return 0
    pool = _bases(out_dir, set(train_identities)) if train_identities is not None else every
    if not pool:
        raise InputError(out_dir, "no preprocessed face belongs to the split's training identities")
    mean = np.mean([_load(Path(base + LANDMARKS_SUFFIX)).astype(np.float64).reshape(-1) for base in pool],
                   axis=0).astype(np.float32)
    stored = out_dir / MEAN_LANDMARKS
    same = stored.is_file() and not overwrite and np.array_equal(read_mean_landmarks(out_dir), mean)
    todo = [base for base in every if not (same and Path(base + ALIGNED_SUFFIX).is_file())]
    if not same:
        save_array(stored, mean)
        log.info("mean landmarks of %d faces (%s) -> %s", len(pool),
                 "the split's training identities" if train_identities is not None else "every face", stored)
    size = _load(Path(every[0] + TARGET_SUFFIX)).shape[0]
    warp = LandmarkWarp(mean, size)
    with torch.no_grad(), progress_bar(total=len(todo), desc="aligned textures", unit="face") as bar:
        for start in range(0, len(todo), batch_size):
            chunk = todo[start:start + batch_size]
            targets = np.stack([_load(Path(base + TARGET_SUFFIX)) for base in chunk])
            points = np.stack([_load(Path(base + LANDMARKS_SUFFIX)).astype(np.float32).reshape(-1) for base in chunk])
            if points.shape[1] != mean.size:
                raise InputError(Path(chunk[0] + LANDMARKS_SUFFIX), f"{points.shape[1] // 2} landmarks where the "
                                                                    f"tree's mean has {mean.size // 2}")
            images = torch.from_numpy(targets).permute(0, 3, 1, 2).float() / 255
            aligned = warp.align(images, torch.from_numpy(points))
            pixels = (aligned.permute(0, 2, 3, 1) * 255).round().clamp(0, 255).to(torch.uint8).numpy()
            for base, image in zip(chunk, pixels, strict=True):
                save_array(Path(base + ALIGNED_SUFFIX), image)
            bar.update(len(chunk))
    return len(todo)
