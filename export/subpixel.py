"""Transposed convolutions rewritten as one convolution + depth-to-space, for export.

onnxruntime's CPU ConvTranspose (a GEMM, then a col2im scatter) runs the face decoder's
four 5x5 stride-2 layers far slower than its Conv kernel runs the same work, so the decoder
runs faster rewritten (bench/export_rewrites.py). A stride-s transposed convolution is exactly
a convolution over the input with s*s*C_out output channels, one group per output phase (a, b), whose
taps are the kernel entries landing on that phase, followed by ``pixel_shuffle`` (ONNX
DepthToSpace). Same products, same sums, only in another order: the outputs agree within
float32 rounding (checked by the export's verification, like every graph).

The face decoder's last depth-to-space is moved past its final ReLU and 1x1 RGB
convolution (``defer_final_shuffle``): both act on each pixel alone, so they commute with
depth-to-space, and the shuffle then moves 3 channels instead of 32 at 224x224. Before, that
6-D transpose was onnxruntime's slowest node in the decoder (bench/decoder_profile.py).
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn


def _phase_taps(kernel: int, stride: int, padding: int) -> tuple[int, int]:
    """Input offsets d (output row s*i + a reads input row i + d) any phase needs."""
    return math.ceil((padding - kernel + 1) / stride), (stride - 1 + padding) // stride


def rewritable(layer: nn.ConvTranspose2d) -> bool:
    """Square kernel and stride, no dilation or groups, output exactly ``stride`` x the input."""
    (kernel, kernel_w), (stride, stride_w) = layer.kernel_size, layer.stride
    (padding, padding_w), (extra, extra_w) = layer.padding, layer.output_padding
    return (kernel == kernel_w and stride == stride_w > 1 and padding == padding_w and extra == extra_w
            and layer.dilation == (1, 1) and layer.groups == 1 and kernel + extra - 2 * padding == stride)


class SubPixelConvTranspose2d(nn.Module):
    def __init__(self, layer: nn.ConvTranspose2d) -> None:
        super().__init__()
        self.shuffle = True  # False: return the phases, for a later PhaseConv1x1 to shuffle
        if not rewritable(layer):
            raise ValueError(f"cannot rewrite {layer}")
        kernel, stride, padding = layer.kernel_size[0], layer.stride[0], layer.padding[0]
        first, last = _phase_taps(kernel, stride, padding)
        taps = last - first + 1
        weight = layer.weight.detach()  # C_in x C_out x k x k
        c_in, c_out = weight.shape[:2]
        phases = weight.new_zeros(c_out, stride, stride, c_in, taps, taps)
        for a in range(stride):
            for t in range(taps):
                ky = a + padding - stride * (t + first)
                if not 0 <= ky < kernel:
                    continue
                for b in range(stride):
                    for u in range(taps):
                        kx = b + padding - stride * (u + first)
                        if 0 <= kx < kernel:
                            phases[:, a, b, :, t, u] = weight[:, :, ky, kx].T
        self.stride = stride
        symmetric = -first == last
        self.pad = None if symmetric else (-first, last, -first, last)  # left, right, top, bottom
        self.conv = nn.Conv2d(c_in, c_out * stride * stride, taps, padding=last if symmetric else 0,
                              bias=layer.bias is not None)
        self.conv.weight = nn.Parameter(phases.reshape(c_out * stride * stride, c_in, taps, taps))
        if layer.bias is not None:
            self.conv.bias = nn.Parameter(layer.bias.detach().repeat_interleave(stride * stride))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        phases = self.conv(x if self.pad is None else F.pad(x, self.pad))
        return F.pixel_shuffle(phases, self.stride) if self.shuffle else phases


class PhaseConv1x1(nn.Module):
    """A 1x1 convolution applied to the phases of a pending ``pixel_shuffle`` (channel
    ``c * s*s + p`` is channel ``c`` of phase ``p``), then the shuffle: equal to the
    convolution after the shuffle, with each output the same sum over the same channels."""

    def __init__(self, layer: nn.Conv2d, stride: int) -> None:
        super().__init__()
        out_channels, in_channels = layer.weight.shape[:2]
        phases = stride * stride
        weight = layer.weight.detach()[:, :, 0, 0]
        expanded = weight.new_zeros(out_channels, phases, in_channels, phases)
        for p in range(phases):
            expanded[:, p, :, p] = weight
        self.stride = stride
        self.conv = nn.Conv2d(in_channels * phases, out_channels * phases, 1, bias=layer.bias is not None)
        self.conv.weight = nn.Parameter(expanded.reshape(out_channels * phases, in_channels * phases, 1, 1))
        if layer.bias is not None:
            self.conv.bias = nn.Parameter(layer.bias.detach().repeat_interleave(phases))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pixel_shuffle(self.conv(x), self.stride)


def _pointwise(layer: nn.Module) -> bool:
    return (isinstance(layer, nn.Conv2d) and layer.kernel_size == (1, 1) and layer.stride == (1, 1)
            and layer.padding == (0, 0) and layer.dilation == (1, 1) and layer.groups == 1)


def defer_final_shuffle(module: nn.Module) -> tuple[nn.Module, int]:
    """In a face decoder already rewritten by ``with_subpixel_convolutions``, move the last
    depth-to-space after the RGB convolution; (module, 1) if done, (module, 0) if not
    applicable. Valid because ``FaceDecoder.forward`` applies only a ReLU between the last
    transposed convolution and ``texture_rgb``, and the export's verification checks it."""
    from s2f.models.face_decoder import FaceDecoder

    if not isinstance(module, FaceDecoder) or not _pointwise(module.texture_rgb):
        return module, 0
    last = module.texture_deconvs[-1]
    if not isinstance(last, SubPixelConvTranspose2d):
        return module, 0
    last.shuffle = False
    module.texture_rgb = PhaseConv1x1(module.texture_rgb, last.stride)
    return module, 1


def with_subpixel_convolutions(module: nn.Module) -> tuple[nn.Module, int]:
    """A copy of ``module`` with every rewritable ConvTranspose2d replaced; (copy, how many).
    The caller may then ``defer_final_shuffle`` of the copy."""
    if not any(isinstance(m, nn.ConvTranspose2d) and rewritable(m) for m in module.modules()):
        return module, 0
    module = copy.deepcopy(module)
    count = 0
    for parent in list(module.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.ConvTranspose2d) and rewritable(child):
                setattr(parent, name, SubPixelConvTranspose2d(child))
                count += 1
    return module, count
