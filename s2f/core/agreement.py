"""How closely two arrays agree: the one comparison behind export verification (PyTorch
against onnxruntime), end-to-end verification (the one-graph pipeline against the two-stage
one) and parity (Keras against PyTorch), so that every reported error means the same thing.

numpy is the only import (a base dependency of the package), so every layer may use it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Agreement:
    """``max_relative``: max |difference| / max |reference| (0 when both are 0);
    ``relative_to_range``: max |difference| / (max - min of the reference), parity's measure;
    ``min_cosine``: the smallest cosine between the two, sample by sample along the first axis."""

    max_abs: float
    max_relative: float
    relative_to_range: float
    min_cosine: float


class ShapeMismatch(ValueError):
    pass


def compare(reference, candidate, name: str = "output") -> Agreement:
    """Compare in float64; ``ShapeMismatch`` names ``name`` and both shapes."""
    reference = np.asarray(reference, dtype=np.float64)
    candidate = np.asarray(candidate, dtype=np.float64)
    if reference.shape != candidate.shape:
        raise ShapeMismatch(f"{name}: the reference has shape {reference.shape}, the candidate {candidate.shape}")
    if reference.size == 0:
        return Agreement(0.0, 0.0, 0.0, 1.0)
    max_abs = float(np.max(np.abs(reference - candidate)))
    scale = float(np.max(np.abs(reference)))
    span = float(reference.max() - reference.min())
    rows = max(reference.shape[0], 1) if reference.ndim else 1
    a, b = reference.reshape(rows, -1), candidate.reshape(rows, -1)
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    cosines = np.where(norms > 0, (a * b).sum(axis=1) / np.where(norms > 0, norms, 1.0), 1.0)
    return Agreement(max_abs, max_abs / scale if scale > 0 else max_abs, max_abs / span if span > 0 else max_abs,
                     float(cosines.min()))
