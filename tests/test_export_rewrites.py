"""The export's rewrites (transposed convolutions as sub-pixel convolutions, whole-input
convolutions as matrix products) compute what the layers compute, for every shape they
accept, and leave the rest alone."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from s2f.export.subpixel import (
    PhaseConv1x1,
    SubPixelConvTranspose2d,
    defer_final_shuffle,
    rewritable,
    with_subpixel_convolutions,
)


@pytest.mark.parametrize("kernel,stride,padding,extra", [(5, 2, 2, 1), (3, 2, 1, 1), (4, 2, 1, 0), (2, 2, 0, 0),
                                                         (3, 3, 0, 0), (7, 3, 2, 0), (5, 3, 1, 0), (6, 4, 1, 0)])
@pytest.mark.parametrize("bias", [True, False])
def test_same_output_as_transposed_convolution(kernel, stride, padding, extra, bias):
    torch.manual_seed(kernel * 10 + stride)
    layer = nn.ConvTranspose2d(6, 5, kernel, stride, padding, extra, bias=bias)
    x = torch.randn(2, 6, 7, 9)
    with torch.no_grad():
        expected, got = layer(x), SubPixelConvTranspose2d(layer)(x)
    assert got.shape == expected.shape == (2, 5, 7 * stride, 9 * stride)
    torch.testing.assert_close(got, expected, rtol=0, atol=2e-6 * float(expected.abs().max()))


def test_only_exact_upsamplers_are_rewritten():
    assert not rewritable(nn.ConvTranspose2d(4, 4, 5, 2, 2))  # output 2H - 1, not 2H
    assert not rewritable(nn.ConvTranspose2d(4, 4, 5, 1, 2))  # stride 1: already a plain convolution
    assert not rewritable(nn.ConvTranspose2d(4, 4, 4, 2, 1, groups=2))
    model = nn.Sequential(nn.ConvTranspose2d(4, 4, 5, 2, 2, 1), nn.ReLU(), nn.ConvTranspose2d(4, 4, 5, 2, 2))
    rewritten, count = with_subpixel_convolutions(model)
    assert count == 1 and isinstance(rewritten[0], SubPixelConvTranspose2d)
    assert isinstance(rewritten[2], nn.ConvTranspose2d) and isinstance(model[0], nn.ConvTranspose2d)  # a copy
    plain = nn.Sequential(nn.Conv2d(3, 3, 3))
    assert with_subpixel_convolutions(plain) == (plain, 0)


@pytest.mark.parametrize("stride", [2, 3])
def test_pointwise_convolution_commutes_with_the_shuffle(stride):
    torch.manual_seed(stride)
    layer = nn.Conv2d(5, 3, 1)
    x = torch.randn(2, 5 * stride * stride, 6, 7)
    with torch.no_grad():
        expected = layer(torch.relu(F.pixel_shuffle(x, stride)))
        got = PhaseConv1x1(layer, stride)(torch.relu(x))
    assert got.shape == expected.shape == (2, 3, 6 * stride, 7 * stride)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)


def test_the_decoder_shuffles_after_its_rgb_convolution():
    from s2f.models.face_decoder import FaceDecoder, FaceDecoderConfig

    torch.manual_seed(0)
    model = FaceDecoder(FaceDecoderConfig(embedding_dim=16, shared_dims=[24, 20], landmark_dims=[12],
                                          texture_channels=[8, 6, 4], texture_size=5)).eval()
    rewritten, count = with_subpixel_convolutions(model)
    rewritten, deferred = defer_final_shuffle(rewritten)
    assert (count, deferred) == (2, 1) and isinstance(rewritten.texture_rgb, PhaseConv1x1)
    assert isinstance(model.texture_rgb, nn.Conv2d)  # the original is untouched
    x = torch.randn(3, 16)
    with torch.no_grad():
        for got, expected in zip(rewritten(x), model(x), strict=True):
            torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)
    assert defer_final_shuffle(model) == (model, 0)  # nothing to defer before the sub-pixel rewrite


def test_whole_input_convolutions_become_matrix_products():
    from s2f.export.dense_convolutions import ConvAsLinear, with_dense_convolutions

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 16, 5), nn.ReLU(),
                          nn.Conv2d(16, 4, 1), nn.Conv2d(4, 4, 1, padding=1))
    x = torch.randn(2, 3, 5, 5)
    rewritten, count = with_dense_convolutions(model, x)
    assert count == 2 and isinstance(rewritten[2], ConvAsLinear) and isinstance(rewritten[4], ConvAsLinear)
    assert isinstance(rewritten[0], nn.Conv2d) and isinstance(rewritten[5], nn.Conv2d)  # 3x3 on 5x5; padded
    assert isinstance(model[2], nn.Conv2d)  # the original is untouched
    with torch.no_grad():
        torch.testing.assert_close(rewritten(x), model(x), rtol=0, atol=1e-6)
