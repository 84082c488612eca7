"""Face decoder (Cole et al. 2017, as the original Speech-to-Face project built it).

4096-D face embedding -> shared FC 3072 -> FC 2048 (BatchNorm, ReLU) -> two heads:
landmarks (1024 -> 512 -> 256 -> 144 = 72 (x, y) points in pixels at 224x224) and texture
(FC to 256x14x14, four 5x5 stride-2 transposed convolutions 128, 64, 32, 32 -> 1x1 conv
to RGB, 224x224). ``shared_features`` is the decoder's "first layer" of the Speech2Face loss.

With ``warp`` (Cole et al.'s full decoder, which the original project skipped) the texture
head draws the face in the mean face's frame and the output is that texture moved to the
predicted landmarks by a thin-plate spline (``s2f.models.landmark_warp``); the forward then
also returns the aligned texture. Without it the texture head draws the photo itself, as the
original did, and has to learn every face's geometry in pixels.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from s2f.core.errors import InputError
from s2f.models.landmark_warp import LandmarkWarp
from s2f.models.original import DECODER_OUTPUTS
from s2f.models.pretrained import Pretrained, build_from_foreign_state, weight_shapes


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
        warp: predict the texture in the mean face's frame and warp it to the predicted
            landmarks (needs ``mean_landmarks``).
        mean_landmarks: 2 * num_landmarks pixel coordinates (x0, y0, x1, ...): the mean
            landmarks of the training faces, the frame of the aligned textures and the
            warp's fixed spline centres (``s2f preprocess faces`` stores them with the data).
        warp_grid: side of the grid the warp's field is solved on before upsampling.
        texture_base: the texture head predicts a correction to a fixed base texture (the
            buffer ``texture_base``, the mean training texture, set by ``start_from_mean``)
            instead of the whole image: training starts at the mean face, not at grey, and the
            head learns only what differs between people. With ``sigmoid`` the base and the
            correction are logits; with ``none`` they are RGB, so one correction moves the
            three channels alike (a logit step changes each channel by its own slope, a hue).
    """

    embedding_dim: int = 4096
    shared_dims: list[int] = field(default_factory=lambda: [3072, 2048])
    landmark_dims: list[int] = field(default_factory=lambda: [1024, 512, 256])
    num_landmarks: int = 72
    texture_channels: list[int] = field(default_factory=lambda: [256, 128, 64, 32, 32])
    texture_size: int = 14
    output_activation: str = "sigmoid"
    landmark_units: str = "centered"
    warp: bool = False
    mean_landmarks: list[float] | None = None
    warp_grid: int = 56
    texture_base: bool = False

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
        if config.warp and (config.mean_landmarks is None or len(config.mean_landmarks) != 2 * config.num_landmarks):
            raise ValueError(f"warp needs mean_landmarks: {2 * config.num_landmarks} pixel coordinates")
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
        if config.texture_base:
            self.register_buffer("texture_base", torch.zeros(3, config.image_size, config.image_size))
        self.warp = LandmarkWarp(config.mean_landmarks, config.image_size, config.warp_grid) if config.warp else None

    @torch.no_grad()
    def start_from_mean(self, mean_texture: torch.Tensor | None, mean_landmarks: torch.Tensor | None,
                        silent_texture_head: bool = False) -> None:
        """Before training: outputs start at the mean training face. ``mean_texture``
        (3 x S x S in [0, 1], the aligned one with ``warp``) becomes the texture base;
        ``mean_landmarks`` (2K pixels) the landmark layer's bias, so its first predictions are
        the mean shape and its gradients fit the differences, not the image centre.

        ``silent_texture_head``: the texture head's last layer starts at zero, so the first
        texture is exactly the base. Its random initialisation otherwise adds to every face a
        correction of its own, three channels apart: a colour noise per identity at the start
        (whether training removes it in time is for bench/decoder_seeds.py to say, seed by
        seed). The layers before it keep their random weights, so the gradients still reach
        them."""
        if mean_texture is not None and self.config.texture_base:
            if self.config.output_activation == "sigmoid":
                self.texture_base.copy_(torch.logit(mean_texture.clamp(1e-3, 1 - 1e-3)))
            else:
                self.texture_base.copy_(mean_texture)
            if silent_texture_head:
                self.texture_rgb.weight.zero_()
                self.texture_rgb.bias.zero_()
        if mean_landmarks is not None:
            target = mean_landmarks.reshape(-1).to(self.landmark_out.bias)
            if self.config.landmark_units == "centered":
                half = self.config.image_size / 2
                target = target / half - 1
            self.landmark_out.bias.copy_(target)

    def shared_features(self, embedding: torch.Tensor) -> torch.Tensor:
        x = embedding
        for layer in self.shared:
            x = layer(x)
        return x

    def forward(self, embedding: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """N x embedding_dim -> (landmarks N x 144, face N x 3 x 224 x 224), and with ``warp``
        the aligned texture N x 3 x 224 x 224 third (the face is it, warped to the landmarks)."""
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
        if self.config.texture_base:
            texture = texture + self.texture_base
        if self.config.output_activation == "sigmoid":
            texture = torch.sigmoid(texture)
        if self.warp is None:
            return landmarks, texture
        return landmarks, self.warp.to_landmarks(texture, landmarks), texture


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
