"""Convolutions that are really matrix products, exported as matrix products.

deepface's VGG-Face keeps its fully connected layers as convolutions (fc6: 7x7 over a 7x7
map, fc7/fc8: 1x1 over 1x1), as its Keras file does. onnxruntime re-lays every
convolution's weights into its blocked NCHWc format when a session opens: for fc6/fc7's
weights that copy dominates the time the face encoder's session takes to open
(bench/export_rewrites.py). A convolution whose
kernel covers its whole (unpadded) input produces one pixel, the dot product of the
flattened input with each flattened filter: a Gemm with ``weight.reshape(out, -1)``, same
products and sums. Which layers qualify is read off one forward pass at the export's
input size; the exported graph fixes that size (only the batch is dynamic).
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class ConvAsLinear(nn.Module):
    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        self.linear = nn.Linear(conv.weight[0].numel(), conv.out_channels, bias=conv.bias is not None)
        self.linear.weight = nn.Parameter(conv.weight.detach().reshape(conv.out_channels, -1).clone())
        if conv.bias is not None:
            self.linear.bias = nn.Parameter(conv.bias.detach().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(torch.flatten(x, 1))[:, :, None, None]


def _covers_input(conv: nn.Conv2d, shapes: set[tuple[int, ...]]) -> bool:
    if len(shapes) != 1 or conv.groups != 1 or conv.dilation != (1, 1) or conv.padding not in ((0, 0), "valid"):
        return False
    (shape,) = shapes
    return tuple(shape[-2:]) == tuple(conv.kernel_size)


def with_dense_convolutions(module: nn.Module, example: torch.Tensor) -> tuple[nn.Module, int]:
    """A copy of ``module`` with every whole-input convolution (at ``example``'s size) as a
    Gemm; (copy, how many)."""
    seen: dict[str, set[tuple[int, ...]]] = {}

    def record(name: str):
        return lambda _, args: seen.setdefault(name, set()).add(tuple(args[0].shape))

    convolutions = {name: m for name, m in module.named_modules() if isinstance(m, nn.Conv2d)}
    hooks = [m.register_forward_pre_hook(record(name)) for name, m in convolutions.items()]
    try:
        with torch.no_grad():
            module(example)
    finally:
        for hook in hooks:
            hook.remove()
    targets = [name for name, shapes in seen.items() if _covers_input(convolutions[name], shapes)]
    if not targets:
        return module, 0
    module = copy.deepcopy(module)
    for name in targets:
        parent_name, _, child = name.rpartition(".")
        parent = module.get_submodule(parent_name)
        setattr(parent, child, ConvAsLinear(getattr(parent, child)))
    return module, len(targets)
