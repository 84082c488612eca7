"""A model's exact result: the same weights computed in float64, on a copy.

Every float32 computation of a model (an ONNX graph, another engine, Keras) is judged by its
distance to this result (``s2f.core.agreement.RoundingRule``); export, the probe and parity
all take it from here.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn


def float64_copy(module: nn.Module) -> nn.Module:
    """A float64 copy of ``module`` in eval mode (``module`` itself stays as it is)."""
    return copy.deepcopy(module).double().eval()


def exact_output(module: nn.Module, array: np.ndarray, method: str = "forward"):
    """``module``'s ``method`` on ``array`` in float64: a numpy array, or a tuple of them."""
    with torch.no_grad():
        value = getattr(float64_copy(module), method)(torch.from_numpy(np.asarray(array)).double())
    return tuple(v.numpy() for v in value) if isinstance(value, tuple) else value.numpy()
