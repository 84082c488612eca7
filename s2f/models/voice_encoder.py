"""The Speech2Face voice encoder (Oh et al. 2019, Table 1), for both spectrogram variants.

Nine 4x4 convolutions (ReLU then BatchNorm, as the paper's CONV-RELU-BN), max-pools over
time only after conv3-conv6, stride 2 in conv8 and conv9, an average over the remaining
time steps, then FC 4096 -> FC 4096. The input is ``s2f.runtime.preprocess.features.ve_spectrogram``:
2 x 257 x T (T = 598 for the paper's framing, 601 for the original project's). The
frequency axis is never pooled, so the first FC sees 512 x 57 features whatever T is.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from s2f.models.pretrained import Pretrained, build_from_foreign_state, weight_shapes

FREQUENCY_BINS = 257


@dataclass
class VEConvConfig:
    """Args:
        variant: spectrogram framing the model is trained on, ``paper`` or ``original``
            (both are 2 x 257 x T; recorded so serving computes the same features).
        channels: output channels of the nine convolutions.
        time_pool_after: 1-based convolutions followed by a 2x max-pool over time.
        stride2_convs: 1-based convolutions with stride 2.
        embedding_dim: output size (the face encoder's fc7 width, 4096).
        output_relu: end with a ReLU, as the original did: the target (fc7 after ReLU) is
            non-negative.
        average_before_last_activation: average conv9's output over time before its ReLU and
            BatchNorm, as the original project's ``layer9`` does (conv, pool, ReLU, BN). The
            paper's order (ReLU, BN, then the average) is the default; the two differ because
            the ReLU does not commute with the average.
        audio_steps: how the clips it learned from were made (``VoiceInputSpec.audio_steps``):
            ``original`` for the original project's models, PCM16 around a whole-file loudness
            step; serving repeats what the model learned from.
        seconds: clip length the model takes (None: the paper's 6 s, 598 or 601 frames); the
            convolutions take any length, and the export's graph and bundle are made for this one.
    """

    variant: str = "paper"
    channels: list[int] = field(default_factory=lambda: [64, 64, 128, 128, 128, 256, 512, 512, 512])
    time_pool_after: list[int] = field(default_factory=lambda: [3, 4, 5, 6])
    stride2_convs: list[int] = field(default_factory=lambda: [8, 9])
    embedding_dim: int = 4096
    hidden_dim: int = 4096
    output_relu: bool = True
    average_before_last_activation: bool = False
    audio_steps: str = "speech2face"
    seconds: float | None = None

    def frequency_after_convs(self) -> int:
        size = FREQUENCY_BINS
        for index in range(1, len(self.channels) + 1):
            stride = 2 if index in self.stride2_convs else 1
            size = (size - 4) // stride + 1
        return size


class VEConv(nn.Module, Pretrained):
    config_class = VEConvConfig
    model_type = "ve_conv"

    def __init__(self, config: VEConvConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or VEConvConfig()
        if config.variant not in ("paper", "original"):
            raise ValueError(f"unknown spectrogram variant {config.variant!r}")
        cin = 2
        for index, cout in enumerate(config.channels, start=1):
            stride = 2 if index in config.stride2_convs else 1
            self.add_module(f"conv{index}", nn.Conv2d(cin, cout, kernel_size=4, stride=stride))
            self.add_module(f"bn{index}", nn.BatchNorm2d(cout))
            cin = cout
        self.fc1 = nn.Linear(cin * config.frequency_after_convs(), config.hidden_dim)
        self.fc2 = nn.Linear(config.hidden_dim, config.embedding_dim)
        self.pool = nn.MaxPool2d(kernel_size=(1, 2), stride=(1, 2))

    def forward(self, spectrogram: torch.Tensor) -> torch.Tensor:
        """N x 2 x 257 x T -> N x embedding_dim."""
        x = spectrogram
        last = len(self.config.channels)
        for index in range(1, last + 1):
            x = self._modules[f"conv{index}"](x)
            if index == last and self.config.average_before_last_activation:
                x = x.mean(dim=3, keepdim=True)
            x = self._modules[f"bn{index}"](torch.relu(x))
            if index in self.config.time_pool_after:
                x = self.pool(x)
        x = x.mean(dim=3)  # average over the remaining time steps (already one step in the original's order)
        x = torch.relu(self.fc1(torch.flatten(x, 1)))
        x = self.fc2(x)
        return torch.relu(x) if self.config.output_relu else x


ORIGINAL_CONVS = 9  # the original's layer1 ... layer9; layer10 and layer11 are the two FC layers


def import_original_ve_conv(state: dict, source, options=None) -> tuple[VEConv, str]:
    """The original project's ``VE_conv`` (``layer1`` ... ``layer11`` Sequentials) as ours.

    Its blocks are conv, ReLU, BatchNorm (``layerN.0`` and ``layerN.2``), max-pools after
    conv3-conv6, stride 2 in conv8 and conv9, and ``layer9`` averages over time right after
    its convolution, before the ReLU and BatchNorm (``layer9.3``; ``average_before_last_activation``).
    Widths are read off the tensors, so thinner models of the same layout load too. Its
    input is the ``original`` spectrogram of 6 s (2 x 257 x 601).
    """
    what = "the original VE_conv"
    convs = [f"layer{i}.0.weight" for i in range(1, ORIGINAL_CONVS + 1)]
    shapes = weight_shapes(state, {**dict.fromkeys(convs, 4), "layer10.1.weight": 2, "layer11.0.weight": 2},
                           source, what)
    channels = [shapes[key][0] for key in convs]
    config = VEConvConfig(variant="original", channels=channels, hidden_dim=shapes["layer10.1.weight"][0],
                          embedding_dim=shapes["layer11.0.weight"][0], output_relu=True,
                          average_before_last_activation=True, audio_steps="original")
    mapping = {}
    for index in range(1, ORIGINAL_CONVS + 1):
        for part in ("weight", "bias"):
            mapping[f"layer{index}.0.{part}"] = f"conv{index}.{part}"
        batchnorm = 3 if index == ORIGINAL_CONVS else 2  # layer9: conv, pool, ReLU, BN
        for part in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"):
            mapping[f"layer{index}.{batchnorm}.{part}"] = f"bn{index}.{part}"
    for part in ("weight", "bias"):
        mapping[f"layer10.1.{part}"] = f"fc1.{part}"
        mapping[f"layer11.0.{part}"] = f"fc2.{part}"
    model = build_from_foreign_state(lambda: VEConv(config), state, mapping, source, what)
    width = "full width" if channels == VEConvConfig().channels else f"channels {channels}"
    return model.eval(), f"VE_conv layer1-layer11 ({width}), input 2x257x601 (original spectrogram, 6 s)"
