"""PyTorch ports of the VGGFace face encoders (serengil/deepface and rcmalli/keras-vggface).

Each module reproduces its Keras original exactly, in eval mode: TensorFlow ``same`` padding
on the strided ResNet stem (asymmetric, [2, 3] at 224), a valid 3x3/2 max-pool (55x55), the
Keras BatchNorm epsilons, squeeze-excitation blocks, and dropout only in training.

Contract, relied on by training, export and external checks:

* ``load_face_encoder(path)`` -> module in eval mode (a converted ``.safetensors`` file or a
  ``save_pretrained`` directory);
* ``model.embed(x)``: the face descriptor (serengil, VGG16: fc7 after ReLU, 4096-D;
  ResNet50/SENet50: the 2048-D pooled feature), not L2-normalised (deepface normalises
  outside the graph);
* ``model.classify(x)``: class probabilities, the Keras model's final output (needs the top);
* ``model.forward_features(x)``: the last feature map (VGG pool5, ResNet ``avg_pool``);
* ``model(x)``: whatever the Keras model outputs, channels first;
* ``x``: N x 3 x 224 x 224 float32 holding exactly what the Keras model receives, see
  ``s2f.runtime.preprocess.faces.preprocess``.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from s2f.core.errors import InputError
from s2f.models.face_encoder_config import (
    RESNET_STAGES,
    SE_REDUCTION,
    VGG_BLOCKS,
    FaceEncoderConfig,
    metadata_for,
    parameter_layout,
    vgg_conv_names,
)
from s2f.models.pretrained import Pretrained, build_with_weights


class FaceEncoder(nn.Module, Pretrained):
    """Shared behaviour of both families: the embed / classify / save / load surface."""

    config: FaceEncoderConfig
    config_class = FaceEncoderConfig
    model_type = "face_encoder"

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        if not self.config.include_top:
            raise ValueError(
                f"this {self.config.arch} model was converted without its classifier "
                "(notop weights): classify() needs the top; use embed()"
            )
        return torch.softmax(self.logits(x), dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.config.include_top:
            return self.classify(x)
        if self.config.has_descriptor and self.config.family == "vgg":
            return self.embed(x)
        return self.forward_features(x)

    # A regular ``Pretrained``: config.json and the safetensors metadata both hold what builds
    # it (architecture, classifier), so a converted .safetensors file loads on its own too.
    def safetensors_metadata(self) -> dict[str, str]:
        return {**super().safetensors_metadata(), **metadata_for(self.config)}

    def config_dict(self) -> dict[str, object]:
        return {"arch": self.config.arch, "include_top": self.config.include_top}

    @classmethod
    def config_from_values(cls, values: dict, path: Path) -> FaceEncoderConfig:
        """From config.json (booleans) or a converted file's metadata (texts); older
        config.json files hold every config field, of which these two decide."""
        arch, include_top = values.get("arch"), values.get("include_top")
        if arch is None or include_top is None:
            raise InputError(path, "no speech2face face-encoder arch and include_top; "
                                   "convert the weights with 's2f convert' first")
        try:
            return FaceEncoderConfig.for_arch(arch, include_top in (True, "true"))
        except ValueError as err:
            raise InputError(path, str(err)) from None

    @classmethod
    def build(cls, config: FaceEncoderConfig) -> FaceEncoder:
        return build_face_encoder(config)


class VGGFace(FaceEncoder):
    """VGG-16 face network: deepface's (fc layers as convolutions) or rcmalli's (Dense)."""

    def __init__(self, config: FaceEncoderConfig) -> None:
        super().__init__()
        self.config = config
        for name, cin, cout in vgg_conv_names():
            self.add_module(name, nn.Conv2d(cin, cout, kernel_size=3, padding=1))
        self.conv_names = [name for name, _, _ in vgg_conv_names()]
        self.pool_after = {f"conv{block}_{count}" for block, (_, count) in enumerate(VGG_BLOCKS, 1)}
        if config.fc_as_conv:
            self.fc6 = nn.Conv2d(512, 4096, kernel_size=7)
            self.fc7 = nn.Conv2d(4096, 4096, kernel_size=1)
            self.fc8 = nn.Conv2d(4096, config.num_classes, kernel_size=1) if config.include_top else None
        elif config.include_top:
            self.fc6 = nn.Linear(7 * 7 * 512, 4096)
            self.fc7 = nn.Linear(4096, 4096)
            self.fc8 = nn.Linear(4096, config.num_classes)
        self.pool = nn.MaxPool2d(kernel_size=2, stride=2)
        self.dropout = nn.Dropout(0.5)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        for name in self.conv_names:
            x = F.relu(getattr(self, name)(x))
            if name in self.pool_after:
                x = self.pool(x)
        return x

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        if not self.config.has_descriptor:
            raise ValueError(
                "rcmalli VGG16 notop weights end at pool5 and have no fc7 descriptor; "
                "use forward_features() or convert the file with the top"
            )
        x = self.forward_features(x)
        if not self.config.fc_as_conv:
            x = torch.flatten(x, 1)
        x = self.dropout(F.relu(self.fc6(x)))
        x = F.relu(self.fc7(x))
        return torch.flatten(x, 1)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Through the fc8 module itself, as Keras computes it (parity hooks it, export traces it)."""
        x = self.dropout(self.embed(x))
        x = x[:, :, None, None] if self.config.fc_as_conv else x
        return torch.flatten(self.fc8(x), 1)

    def head_logits(self, embedding: torch.Tensor) -> torch.Tensor:
        """fc8 on an embedding: the classifier the voice loss distils through, on every step of
        training, so serengil's 1x1 convolution runs as the matrix product it is (oneDNN's
        convolution path reorders the 43 MB weight on every call)."""
        if getattr(self, "fc8", None) is None:
            raise ValueError("this face encoder was converted without its classifier (fc8)")
        if self.config.fc_as_conv:
            return F.linear(embedding, self.fc8.weight.flatten(1), self.fc8.bias)
        return self.fc8(embedding)


def tf_same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's ``same`` padding: the odd pixel goes to the end (bottom/right)."""
    total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class Bottleneck(nn.Module):
    """Caffe-style bottleneck (stride in the 1x1 reduce), optionally squeeze-excited.

    Children carry the upstream layer suffixes (``1x1_reduce``, ``3x3_bn``, ``1x1_down``...)
    so state-dict keys read like the Keras file.
    """

    def __init__(self, cin: int, width: int, cout: int, stride: int, project: bool,
                 squeeze_excitation: bool, eps: float) -> None:
        super().__init__()
        self.add_module("1x1_reduce", nn.Conv2d(cin, width, 1, stride=stride, bias=False))
        self.add_module("1x1_reduce_bn", nn.BatchNorm2d(width, eps=eps))
        self.add_module("3x3", nn.Conv2d(width, width, 3, padding=1, bias=False))
        self.add_module("3x3_bn", nn.BatchNorm2d(width, eps=eps))
        self.add_module("1x1_increase", nn.Conv2d(width, cout, 1, bias=False))
        self.add_module("1x1_increase_bn", nn.BatchNorm2d(cout, eps=eps))
        self.squeeze_excitation = squeeze_excitation
        if squeeze_excitation:
            self.add_module("1x1_down", nn.Conv2d(cout, cout // SE_REDUCTION, 1, bias=True))
            self.add_module("1x1_up", nn.Conv2d(cout // SE_REDUCTION, cout, 1, bias=True))
        self.project = project
        if project:
            self.add_module("1x1_proj", nn.Conv2d(cin, cout, 1, stride=stride, bias=False))
            self.add_module("1x1_proj_bn", nn.BatchNorm2d(cout, eps=eps))

    def _layer(self, name: str) -> nn.Module:
        return self._modules[name]

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        layer = self._layer
        x = F.relu(layer("1x1_reduce_bn")(layer("1x1_reduce")(inputs)))
        x = F.relu(layer("3x3_bn")(layer("3x3")(x)))
        x = layer("1x1_increase_bn")(layer("1x1_increase")(x))
        if self.squeeze_excitation:
            gate = x.mean(dim=(2, 3), keepdim=True)
            gate = torch.sigmoid(layer("1x1_up")(F.relu(layer("1x1_down")(gate))))
            x = x * gate
        shortcut = layer("1x1_proj_bn")(layer("1x1_proj")(inputs)) if self.project else inputs
        return F.relu(x + shortcut)


class ResNetStem(nn.Module):
    """``conv1/7x7_s2`` (TF ``same``, stride 2) -> BN -> ReLU -> valid 3x3/2 max-pool."""

    def __init__(self, eps: float) -> None:
        super().__init__()
        self.add_module("7x7_s2", nn.Conv2d(3, 64, 7, stride=2, bias=False))
        self.add_module("7x7_s2_bn", nn.BatchNorm2d(64, eps=eps))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        top, bottom = tf_same_padding(x.shape[2], 7, 2)
        left, right = tf_same_padding(x.shape[3], 7, 2)
        x = F.pad(x, (left, right, top, bottom))
        x = F.relu(self._modules["7x7_s2_bn"](self._modules["7x7_s2"](x)))
        return F.max_pool2d(x, kernel_size=3, stride=2)


class ResNetFace(FaceEncoder):
    """VGGFace2 ResNet50 / SENet50 (rcmalli/keras-vggface)."""

    def __init__(self, config: FaceEncoderConfig) -> None:
        super().__init__()
        self.config = config
        self.conv1 = ResNetStem(config.bn_eps)
        self.block_names: list[str] = []
        cin = 64
        for stage, blocks, width, cout, stride in RESNET_STAGES:
            for block in range(1, blocks + 1):
                name = f"conv{stage}_{block}"
                self.add_module(name, Bottleneck(
                    cin, width, cout, stride if block == 1 else 1, project=block == 1,
                    squeeze_excitation=config.squeeze_excitation, eps=config.bn_eps,
                ))
                self.block_names.append(name)
                cin = cout
        if config.include_top:
            self.classifier = nn.Linear(2048, config.num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)
        for name in self.block_names:
            x = self._modules[name](x)
        return F.avg_pool2d(x, kernel_size=7, stride=7)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.forward_features(x), 1)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.head_logits(self.embed(x))

    def head_logits(self, embedding: torch.Tensor) -> torch.Tensor:
        if not self.config.include_top:
            raise ValueError("this face encoder was converted without its classifier")
        return self.classifier(embedding)


def build_face_encoder(config: FaceEncoderConfig) -> FaceEncoder:
    model = VGGFace(config) if config.family == "vgg" else ResNetFace(config)
    return model.eval()


def he_normal_init_(model: nn.Module, seed: int = 0) -> nn.Module:
    """Random weights that keep activations alive through all 16 or 50 layers (He-normal,
    zero bias), like the random upstream files the parity tests build. PyTorch's default
    init shrinks activations layer by layer until every VGG embedding is the same vector;
    these random features still tell faces apart (demo and tests, where no real weights
    can be downloaded)."""
    generator = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, nn.Conv2d | nn.Linear):
            fan_in = module.weight[0].numel()
            with torch.no_grad():
                module.weight.copy_(torch.randn(module.weight.shape, generator=generator) * (2.0 / fan_in) ** 0.5)
                if module.bias is not None:
                    module.bias.zero_()
    return model


def load_face_encoder(path: str | Path, device: str | torch.device = "cpu") -> FaceEncoder:
    """Build the model a converted file describes and load its weights, in eval mode.

    ``path`` is a ``.safetensors`` file written by ``s2f convert`` (its metadata says the
    architecture) or a ``save_pretrained`` directory. Every tensor must match name and shape
    (``check_state_strict``); nothing is left random. The weights' ``source`` comes along.
    """
    from s2f.models.pretrained import check_state_strict, read_weights
    from s2f.models.provenance import source_from_metadata

    path = Path(path)
    if path.is_dir():
        return FaceEncoder.from_pretrained(path, device)
    state, metadata = read_weights(path)
    config = FaceEncoder.config_from_values(metadata, path)
    model = build_with_weights(lambda: build_face_encoder(config), state, path, check_state_strict)
    model.source = source_from_metadata(metadata, path)
    return model.to(device).eval()


def expected_tensors(config: FaceEncoderConfig) -> dict[str, tuple[int, ...]]:
    """Name -> shape of every tensor a face encoder of ``config`` holds (torch-free: converters use it)."""
    return {spec.torch_key: spec.shape for spec in parameter_layout(config)}
