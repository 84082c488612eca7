"""How closely two arrays agree: the one comparison behind export verification (PyTorch
against onnxruntime), end-to-end verification (the one-graph pipeline against the two-stage
one) and parity (Keras against PyTorch), so that every reported error means the same thing;
and the rounding rule that turns such a comparison into a verdict on any CPU.

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


FLOAT32_UNIT_ROUNDOFF = 2.0 ** -24  # half of float32's machine epsilon


@dataclass(frozen=True)
class RoundingRule:
    """When a float32 computation counts as the same computation as a float32 reference:
    it may be ``factor`` times as far from the exact (float64) result as the reference is,
    and is never held to less than ``floor`` (relative to the result's largest value).

    Why this and not a fixed tolerance: how far float32 lands from the exact result depends on
    the model and on the CPU's kernels (AVX-512, AVX2, ARM sum in other orders and widths), so
    a fixed number set on one machine refuses correct graphs on another. The reference's own
    distance to float64, measured on the same CPU and inputs, is the float32 rounding of *this*
    model *here*; another float32 implementation of the same arithmetic lands within a small
    multiple of it. A graph computing something else (a transposed weight, layers in another
    order, a BatchNorm epsilon of 1e-3 for 1e-5) misses by orders of magnitude more.
    The floor (64 unit roundoffs) covers outputs float32 reproduces (nearly) exactly.
    """

    factor: float = 8.0
    floor: float = 64 * FLOAT32_UNIT_ROUNDOFF

    def allowed(self, reference_error: float) -> float:
        return max(self.factor * reference_error, self.floor)

    def judge(self, error: float, reference_error: float) -> RoundingVerdict:
        return RoundingVerdict(float(error), float(reference_error), self.allowed(reference_error))


@dataclass(frozen=True)
class RoundingVerdict:
    """``error``: the candidate's max relative distance to float64; ``reference_error``: the
    float32 reference's; ``allowed``: the rule's bound for this reference."""

    error: float
    reference_error: float
    allowed: float

    @property
    def passed(self) -> bool:
        return self.error <= self.allowed  # False for NaN

    def to_dict(self) -> dict[str, float]:
        return {"error": self.error, "float32_reference_error": self.reference_error, "allowed": self.allowed}

    def __str__(self) -> str:
        return (f"{self.error:.2e} from float64 (float32 reference {self.reference_error:.2e}, "
                f"allowed {self.allowed:.2e})")
