"""Face-encoder architectures as data, without importing torch.

Both the PyTorch modules (``face_encoder.py``) and the Keras converter
(``converters/vggface.py``) are generated from the parameter layout below, so the two can
never disagree about a name or a shape, and converting a file needs no torch import.

Torch parameter names follow the upstream Keras layer names: VGG layers keep theirs
(``conv1_1`` ... ``fc8``, deepface's PyTorch names too); ResNet/SENet layers
``conv{stage}_{block}_{rest}`` live in a block module ``conv{stage}_{block}`` under the child
``{rest}`` with ``/`` spelled ``_`` (``conv2_1_1x1_reduce/bn`` -> ``conv2_1.1x1_reduce_bn``),
the stem ``conv1/7x7_s2`` becomes ``conv1.7x7_s2``.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

VGG_BLOCKS = ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))  # (channels, convs) per block
RESNET_STAGES = ((2, 3, 64, 256, 1), (3, 4, 128, 512, 2), (4, 6, 256, 1024, 2), (5, 3, 512, 2048, 2))
# (stage, blocks, bottleneck width, output channels, stride of the first block)
SE_REDUCTION = 16


@dataclass(frozen=True)
class FaceEncoderArch:
    """One upstream face-encoder architecture: every fact that differs between them.

    Args:
        family: ``vgg`` or ``resnet`` (which module builds it).
        fc_as_conv: deepface's fc6-fc8 are convolutions; rcmalli's are Dense layers after
            a channels-last Flatten (the row order the original port got wrong).
        squeeze_excitation: SENet50's SE blocks.
        bn_eps: BatchNorm epsilon of the Keras original (PyTorch's 1e-5 would be wrong).
        num_classes: identities of the classifier (2622 VGGFace, 8631 VGGFace2).
        embedding_dim: size of the face descriptor (fc7 or the pooled feature).
        preprocessing: name in ``s2f.runtime.preprocess.faces.FACE_PREPROCESSING``.
        upstream_files: the published weight files of this architecture.
        keras_vggface_model: keras-vggface's ``VGGFace(model=...)`` name; None for deepface's
            model, whose Keras layers carry generated names and are matched in order.
    """

    name: str
    family: str
    fc_as_conv: bool
    squeeze_excitation: bool
    bn_eps: float
    num_classes: int
    embedding_dim: int
    preprocessing: str
    upstream_files: tuple[str, ...]
    keras_vggface_model: str | None = None

    @property
    def named_layers(self) -> bool:
        """Whether the Keras file's layer names identify the layers (else: layer order)."""
        return self.keras_vggface_model is not None


FACE_ENCODER_ARCHS: dict[str, FaceEncoderArch] = {arch.name: arch for arch in (
    FaceEncoderArch("serengil", "vgg", fc_as_conv=True, squeeze_excitation=False, bn_eps=0.0, num_classes=2622,
                    embedding_dim=4096, preprocessing="deepface-base",
                    upstream_files=("vgg_face_weights.h5", "vgg_face_weights.pth")),
    FaceEncoderArch("rcmalli-vgg16", "vgg", fc_as_conv=False, squeeze_excitation=False, bn_eps=0.0,
                    num_classes=2622, embedding_dim=4096, preprocessing="keras-vggface-v1",
                    upstream_files=("rcmalli_vggface_tf_vgg16.h5", "rcmalli_vggface_tf_notop_vgg16.h5"),
                    keras_vggface_model="vgg16"),
    FaceEncoderArch("rcmalli-resnet50", "resnet", fc_as_conv=False, squeeze_excitation=False, bn_eps=1e-3,
                    num_classes=8631, embedding_dim=2048, preprocessing="keras-vggface-v2",
                    upstream_files=("rcmalli_vggface_tf_resnet50.h5", "rcmalli_vggface_tf_notop_resnet50.h5"),
                    keras_vggface_model="resnet50"),
    FaceEncoderArch("rcmalli-senet50", "resnet", fc_as_conv=False, squeeze_excitation=True, bn_eps=1e-4,
                    num_classes=8631, embedding_dim=2048, preprocessing="keras-vggface-v2",
                    upstream_files=("rcmalli_vggface_tf_senet50.h5", "rcmalli_vggface_tf_notop_senet50.h5"),
                    keras_vggface_model="senet50"),
)}
ARCHITECTURES = tuple(FACE_ENCODER_ARCHS)


@dataclass(frozen=True)
class FaceEncoderConfig:
    """Everything needed to rebuild a face encoder; saved beside its weights.

    Args:
        arch: one of ``ARCHITECTURES``; its facts come from ``FACE_ENCODER_ARCHS``.
        include_top: whether the classifier is present (fc8 / ``classifier``). Without it
            ``classify`` is unavailable; rcmalli VGG16 "notop" files also lack fc6/fc7.
        num_classes: identities of the classifier.
        bn_eps: BatchNorm epsilon (kept in the saved config, so a file says what it was built with).
    """

    arch: str
    include_top: bool = True
    num_classes: int = 2622
    bn_eps: float = 0.0

    @property
    def spec(self) -> FaceEncoderArch:
        return FACE_ENCODER_ARCHS[self.arch]

    @property
    def family(self) -> str:
        return self.spec.family

    @property
    def squeeze_excitation(self) -> bool:
        return self.spec.squeeze_excitation

    @property
    def fc_as_conv(self) -> bool:
        return self.spec.fc_as_conv

    @property
    def has_descriptor(self) -> bool:
        """A VGG with Dense fc layers, converted without its top, ends at pool5: no fc7 descriptor."""
        return self.include_top or self.family != "vgg" or self.fc_as_conv

    @property
    def embedding_dim(self) -> int:
        return self.spec.embedding_dim

    @property
    def preprocessing(self):
        """The input convention of this architecture (``s2f.runtime.preprocess.faces.FacePreprocessing``)."""
        from s2f.runtime.preprocess.faces import FACE_PREPROCESSING

        return FACE_PREPROCESSING[self.spec.preprocessing]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def for_arch(cls, arch: str, include_top: bool = True) -> FaceEncoderConfig:
        if arch not in FACE_ENCODER_ARCHS:
            raise ValueError(f"unknown architecture {arch!r}; known: {', '.join(ARCHITECTURES)}")
        spec = FACE_ENCODER_ARCHS[arch]
        return cls(arch=arch, include_top=include_top, num_classes=spec.num_classes, bn_eps=spec.bn_eps)


@dataclass(frozen=True)
class ParamSpec:
    """One tensor of the PyTorch state dict and where it comes from in a Keras file.

    ``layout`` says how the Keras array becomes the torch one:
    ``conv`` HWIO -> OIHW; ``dense`` (in, out) -> (out, in); ``dense-hwc`` a Dense layer
    after a channels-last Flatten of an HxWxC map: (H*W*C, out) -> (out, C*H*W), the
    permutation the original Speech-to-Face port forgot; ``vector`` copied as is.
    """

    torch_key: str
    shape: tuple[int, ...]
    keras_layer: str
    keras_weight: str  # kernel, bias, gamma, beta, moving_mean, moving_variance
    layout: str
    flatten_channels: int = 0  # C of the flattened HxWxC map, for ``dense-hwc``

    @property
    def keras_shape(self) -> tuple[int, ...]:
        """The shape the Keras file stores this tensor in."""
        if self.layout == "conv":
            out, cin, kh, kw = self.shape
            return (kh, kw, cin, out)
        if self.layout in ("dense", "dense-hwc"):
            return (self.shape[1], self.shape[0])
        return self.shape


def _conv(out: list, key: str, keras: str, cin: int, cout: int, k: int, bias: bool) -> None:
    out.append(ParamSpec(f"{key}.weight", (cout, cin, k, k), keras, "kernel", "conv"))
    if bias:
        out.append(ParamSpec(f"{key}.bias", (cout,), keras, "bias", "vector"))


def _dense(out: list, key: str, keras: str, fin: int, fout: int, flatten_channels: int = 0) -> None:
    layout = "dense-hwc" if flatten_channels else "dense"
    out.append(ParamSpec(f"{key}.weight", (fout, fin), keras, "kernel", layout, flatten_channels))
    out.append(ParamSpec(f"{key}.bias", (fout,), keras, "bias", "vector"))


def _bn(out: list, key: str, keras: str, channels: int) -> None:
    for torch_name, keras_name in (
        ("weight", "gamma"), ("bias", "beta"),
        ("running_mean", "moving_mean"), ("running_var", "moving_variance"),
    ):
        out.append(ParamSpec(f"{key}.{torch_name}", (channels,), keras, keras_name, "vector"))


def vgg_conv_names() -> list[tuple[str, int, int]]:
    """(name, in_channels, out_channels) of the 13 VGG convolutions, in order."""
    names, cin = [], 3
    for block, (channels, count) in enumerate(VGG_BLOCKS, start=1):
        for index in range(1, count + 1):
            names.append((f"conv{block}_{index}", cin, channels))
            cin = channels
    return names


def torch_name_for_keras_layer(keras_name: str) -> str:
    """``conv2_1_1x1_reduce/bn`` -> ``conv2_1.1x1_reduce_bn``; VGG names pass through."""
    match = re.match(r"^(conv\d+_\d+)_(\d.*)$", keras_name) or re.match(
        r"^(conv1)/(.+)$", keras_name
    )
    if match is None:
        return keras_name.replace("/", "_")
    return f"{match.group(1)}.{match.group(2).replace('/', '_')}"


def parameter_layout(config: FaceEncoderConfig) -> list[ParamSpec]:
    """Every tensor of the model's state dict (buffers included), in Keras file order."""
    specs: list[ParamSpec] = []
    if config.family == "vgg":
        for name, cin, cout in vgg_conv_names():
            _conv(specs, name, name, cin, cout, 3, bias=True)
        if config.fc_as_conv:
            _conv(specs, "fc6", "fc6", 512, 4096, 7, bias=True)
            _conv(specs, "fc7", "fc7", 4096, 4096, 1, bias=True)
            if config.include_top:
                _conv(specs, "fc8", "fc8", 4096, config.num_classes, 1, bias=True)
        elif config.include_top:
            _dense(specs, "fc6", "fc6", 7 * 7 * 512, 4096, flatten_channels=512)
            _dense(specs, "fc7", "fc7", 4096, 4096)
            _dense(specs, "fc8", "fc8", 4096, config.num_classes)
        return specs

    def conv_bn(keras: str, cin: int, cout: int, k: int) -> None:
        key = torch_name_for_keras_layer(keras)
        _conv(specs, key, keras, cin, cout, k, bias=False)
        _bn(specs, torch_name_for_keras_layer(f"{keras}/bn"), f"{keras}/bn", cout)

    conv_bn("conv1/7x7_s2", 3, 64, 7)
    cin = 64
    for stage, blocks, width, cout, _stride in RESNET_STAGES:
        for block in range(1, blocks + 1):
            prefix = f"conv{stage}_{block}"
            conv_bn(f"{prefix}_1x1_reduce", cin, width, 1)
            conv_bn(f"{prefix}_3x3", width, width, 3)
            conv_bn(f"{prefix}_1x1_increase", width, cout, 1)
            if config.squeeze_excitation:
                squeezed = cout // SE_REDUCTION
                _conv(specs, f"{prefix}.1x1_down", f"{prefix}_1x1_down", cout, squeezed, 1, True)
                _conv(specs, f"{prefix}.1x1_up", f"{prefix}_1x1_up", squeezed, cout, 1, True)
            if block == 1:
                conv_bn(f"{prefix}_1x1_proj", cin, cout, 1)
            cin = cout
    if config.include_top:
        _dense(specs, "classifier", "classifier", 2048, config.num_classes)
    return specs


def keras_layers_in_order(config: FaceEncoderConfig) -> list[str]:
    """Distinct Keras layer names with weights, in the order the layout lists them."""
    seen: dict[str, None] = {}
    for spec in parameter_layout(config):
        seen.setdefault(spec.keras_layer, None)
    return list(seen)


def metadata_for(config: FaceEncoderConfig) -> dict[str, str]:
    """safetensors ``__metadata__`` (strings only) that lets a file rebuild its model."""
    return {
        "format": "pt",
        "arch": config.arch,
        "include_top": str(config.include_top).lower(),
        "num_classes": str(config.num_classes),
    }
