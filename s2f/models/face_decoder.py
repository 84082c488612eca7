"""Face decoder (Cole et al. 2017, as the original Speech-to-Face project built it).

4096-D face embedding -> shared FC 3072 -> FC 2048 (BatchNorm, ReLU) -> two heads:
landmarks (1024 -> 512 -> 256 -> 144 = 72 (x, y) points in pixels at 224x224) and texture
(FC to 256x14x14, four 5x5 stride-2 transposed convolutions 128, 64, 32, 32 -> 1x1 conv
to RGB, 224x224). Like the original, no differentiable warping of the texture to the
landmarks. ``shared_features`` is the decoder's "first layer" of the Speech2Face loss.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from s2f.models.pretrained import Pretrained, build_from_foreign_state, weight_shapes
from s2f.runtime.errors import InputError


@dataclass
class FaceDecoderConfig:
    """Args:
        embedding_dim: input size (the face encoder's descriptor: 4096 for VGGFace).
        shared_dims: widths of the shared FC layers.
        landmark_dims: widths of the landmark head's hidden FC layers.
        num_landmarks: points predicted (72 = dlib's 68 with four lip points repeated).
        texture_channels: 256 (the 14x14 map) then the transposed convolutions' outputs.
        output_activation: ``sigmoid`` keeps pixels in [0, 1]; ``none`` is the original
            project's published model, which ends in the plain 1x1 convolution.
        landmark_units: ``centered`` predicts each coordinate as image_size/2 * (1 + x):
            outputs start at the image centre and move in half-image units, so Adam at
            lr 1e-3 reaches pixel positions in tens of steps instead of thousands. ``pixels``
            is the original's plain linear output (its checkpoints load with it). Either
            way the decoder returns pixel coordinates.
    """

    embedding_dim: int = 4096
    shared_dims: list[int] = field(default_factory=lambda: [3072, 2048])
    landmark_dims: list[int] = field(default_factory=lambda: [1024, 512, 256])
    num_landmarks: int = 72
    texture_channels: list[int] = field(default_factory=lambda: [256, 128, 64, 32, 32])
    texture_size: int = 14
    output_activation: str = "sigmoid"
    landmark_units: str = "centered"

    @property
    def image_size(self) -> int:
        return self.texture_size * 2 ** (len(self.texture_channels) - 1)


def _fc_bn(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(cin, cout), nn.BatchNorm1d(cout), nn.ReLU())


class FaceDecoder(nn.Module, Pretrained):
    config_class = FaceDecoderConfig
    model_type = "face_decoder"

    def __init__(self, config: FaceDecoderConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or FaceDecoderConfig()
        if config.output_activation not in ("sigmoid", "none"):
            raise ValueError(f"unknown output_activation {config.output_activation!r}")
        if config.landmark_units not in ("centered", "pixels"):
            raise ValueError(f"unknown landmark_units {config.landmark_units!r}")
        dims = [config.embedding_dim, *config.shared_dims]
        self.shared = nn.ModuleList(_fc_bn(a, b) for a, b in zip(dims, dims[1:], strict=False))
        dims = [config.shared_dims[-1], *config.landmark_dims]
        self.landmark_hidden = nn.ModuleList(_fc_bn(a, b) for a, b in zip(dims, dims[1:], strict=False))
        self.landmark_out = nn.Linear(dims[-1], 2 * config.num_landmarks)
        first = config.texture_channels[0]
        self.texture_fc = nn.Linear(config.shared_dims[-1], first * config.texture_size ** 2)
        channels = config.texture_channels
        self.texture_deconvs = nn.ModuleList(
            nn.ConvTranspose2d(a, b, kernel_size=5, stride=2, padding=2, output_padding=1)
            for a, b in zip(channels, channels[1:], strict=False))
        self.texture_rgb = nn.Conv2d(channels[-1], 3, kernel_size=1)

    def shared_features(self, embedding: torch.Tensor) -> torch.Tensor:
        x = embedding
        for layer in self.shared:
            x = layer(x)
        return x

    def forward(self, embedding: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """N x embedding_dim -> (landmarks N x 144, texture N x 3 x 224 x 224)."""
        shared = self.shared_features(embedding)
        landmarks = shared
        for layer in self.landmark_hidden:
            landmarks = layer(landmarks)
        landmarks = self.landmark_out(landmarks)
        if self.config.landmark_units == "centered":
            half = self.config.image_size / 2
            landmarks = half + half * landmarks
        size, channels = self.config.texture_size, self.config.texture_channels[0]
        texture = torch.relu(self.texture_fc(shared)).view(-1, channels, size, size)
        for deconv in self.texture_deconvs:
            texture = torch.relu(deconv(texture))
        texture = self.texture_rgb(texture)
        if self.config.output_activation == "sigmoid":
            texture = torch.sigmoid(texture)
        return landmarks, texture


def _original_key_map(config: FaceDecoderConfig) -> dict[str, str]:
    """The original's ``pre_layers / landmark_layers / texture_layers`` Sequentials -> ours."""
    mapping: dict[str, str] = {}

    def fc_bn(prefix_theirs: str, prefix_ours: str) -> None:
        for part in ("weight", "bias"):
            mapping[f"{prefix_theirs}.0.{part}"] = f"{prefix_ours}.0.{part}"
        for part in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"):
            mapping[f"{prefix_theirs}.1.{part}"] = f"{prefix_ours}.1.{part}"

    for i in range(len(config.shared_dims)):
        fc_bn(f"pre_layers.{i}", f"shared.{i}")
    for i in range(len(config.landmark_dims)):
        fc_bn(f"landmark_layers.{i}", f"landmark_hidden.{i}")
    last = len(config.landmark_dims)
    deconvs = len(config.texture_channels) - 1
    for part in ("weight", "bias"):
        mapping[f"landmark_layers.{last}.0.{part}"] = f"landmark_out.{part}"
        mapping[f"texture_layers.0.0.{part}"] = f"texture_fc.{part}"
        mapping[f"texture_layers.1.1.{part}"] = f"texture_deconvs.0.{part}"  # after an Unflatten
        for i in range(1, deconvs):
            mapping[f"texture_layers.{i + 1}.0.{part}"] = f"texture_deconvs.{i}.{part}"
        mapping[f"texture_layers.{deconvs + 1}.0.{part}"] = f"texture_rgb.{part}"
    return mapping


DECODER_OUTPUTS = ("sigmoid", "linear")


def _count(state: dict, prefix: str, suffix: str) -> int:
    index = 0
    while f"{prefix}.{index}.{suffix}" in state:
        index += 1
    return index


def import_original_face_decoder(state: dict, source, options=None) -> tuple[FaceDecoder, str]:
    """The original project's ``FaceDecoder`` (``pre_layers / landmark_layers / texture_layers``).

    Sizes are read off the tensors. What its texture ends in cannot be: the original ends in
    a sigmoid since 2023-12-21 (before its AST work and its published weights), earlier files
    at the plain 1x1 convolution; ``options.decoder_output`` says which (``sigmoid``, the
    default, or ``linear``). Landmarks are its plain linear output, pixels at 224x224.
    """
    output = getattr(options, "decoder_output", "sigmoid")
    if output not in DECODER_OUTPUTS:
        raise InputError(None, f"unknown original decoder output {output!r}; one of {', '.join(DECODER_OUTPUTS)}")
    what = "the original FaceDecoder"
    shared = _count(state, "pre_layers", "0.weight")
    landmark_hidden = _count(state, "landmark_layers", "1.weight")  # the blocks with a BatchNorm
    indices = {int(key.split(".")[1]) for key in state
               if key.startswith("texture_layers.") and key.split(".")[1].isdigit()}
    last = max(indices, default=0)  # the 1x1 RGB convolution; 1 ... last-1 are the transposed convolutions
    deconvs = [f"texture_layers.{i}.{1 if i == 1 else 0}.weight" for i in range(1, last)]
    fcs = [f"pre_layers.{i}.0.weight" for i in range(max(shared, 1))] + \
        [f"landmark_layers.{i}.0.weight" for i in range(landmark_hidden + 1)] + ["texture_layers.0.0.weight"]
    convs = (deconvs or ["texture_layers.1.1.weight"]) + [f"texture_layers.{last}.0.weight"]
    shapes = weight_shapes(state, {**dict.fromkeys(fcs, 2), **dict.fromkeys(convs, 4)}, source, what)
    channels = [shapes[deconvs[0]][0]] + [shapes[key][1] for key in deconvs]
    size = int(round((shapes["texture_layers.0.0.weight"][0] / channels[0]) ** 0.5))
    config = FaceDecoderConfig(
        embedding_dim=shapes["pre_layers.0.0.weight"][1],
        shared_dims=[shapes[f"pre_layers.{i}.0.weight"][0] for i in range(shared)],
        landmark_dims=[shapes[f"landmark_layers.{i}.0.weight"][0] for i in range(landmark_hidden)],
        num_landmarks=shapes[f"landmark_layers.{landmark_hidden}.0.weight"][0] // 2,
        texture_channels=channels, texture_size=size,
        output_activation="sigmoid" if output == "sigmoid" else "none", landmark_units="pixels")
    model = build_from_foreign_state(lambda: FaceDecoder(config), state, _original_key_map(config), source, what)
    return model.eval(), (f"FaceDecoder pre/landmark/texture layers, {config.num_landmarks} landmarks in pixels, "
                          f"texture {'ending in a sigmoid' if output == 'sigmoid' else 'linear (before 2023-12-21)'}")
