"""Import PyTorch ports that already exist, safely (``torch.load(weights_only=True)``).

* deepface's ``vgg_face_weights.pth``: keys ``conv1_1.weight`` ... ``fc8.bias`` with fc6-fc8
  as convolutions, which is exactly our serengil layout.
* The original Speech-to-Face project's converted state dicts (``layer1.1.weight`` ...,
  ``nn.Sequential`` blocks around each layer): serengil (``VGGFace_serengil``, fc layers as
  convolutions) and rcmalli VGG16 (``VGGFace16_rcmalli``, Dense fc layers). The latter copied
  fc6 without permuting its rows from Keras' H,W,C flatten order to PyTorch's C,H,W order
  (cosine 0.61 to Keras); the import repairs that.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from s2f.core.errors import InputError
from s2f.models.checkpoints import load_torch_state_dict
from s2f.models.face_encoder_config import FaceEncoderConfig, parameter_layout, vgg_conv_names


@dataclass(frozen=True)
class TorchImport:
    config: FaceEncoderConfig
    state: dict
    source_format: str
    notes: tuple[str, ...]


def _original_key_map(fc_as_conv: bool) -> dict[str, str]:
    """``layerN.i.{weight,bias}`` of the original's Sequential blocks -> our names."""
    mapping = {}
    conv_index = 1 if fc_as_conv else 0  # serengil blocks start with ZeroPad2d
    for number, (name, _, _) in enumerate(vgg_conv_names(), start=1):
        for kind in ("weight", "bias"):
            mapping[f"layer{number}.{conv_index}.{kind}"] = f"{name}.{kind}"
    fc_index = {"fc6": 0 if fc_as_conv else 1, "fc7": 0, "fc8": 0}  # rcmalli fc6 after Flatten
    for number, name in ((14, "fc6"), (15, "fc7"), (16, "fc8")):
        for kind in ("weight", "bias"):
            mapping[f"layer{number}.{fc_index[name]}.{kind}"] = f"{name}.{kind}"
    return mapping


def import_torch_port(path: str | Path, expected_arch: str | None = None, state: dict | None = None) -> TorchImport:
    """Recognise a known PyTorch port and return its state dict in our layout (``state``: the
    file's tensors, when the caller has read them already)."""
    import torch

    from s2f.models.face_encoder import expected_tensors
    from s2f.models.pretrained import check_tensors

    path = Path(path)
    state = load_torch_state_dict(path) if state is None else state
    notes: list[str] = []
    if "conv1_1.weight" in state:
        config = FaceEncoderConfig.for_arch("serengil", include_top="fc8.weight" in state)
        source_format = "deepface-pth"
        mapped = dict(state)
    elif "layer1.1.weight" in state or "layer1.0.weight" in state:
        fc_as_conv = "layer1.1.weight" in state
        arch = "serengil" if fc_as_conv else "rcmalli-vgg16"
        config = FaceEncoderConfig.for_arch(arch, include_top=True)
        source_format = "speech-to-face-original"
        key_map = _original_key_map(fc_as_conv)
        unknown = sorted(set(state) - set(key_map))
        if unknown:
            raise InputError(path, f"unexpected tensor {unknown[0]!r} for the original's {arch} port")
        mapped = {key_map[key]: value for key, value in state.items()}
        if not fc_as_conv and "fc6.weight" in mapped:
            weight = mapped["fc6.weight"]
            if tuple(weight.shape) == (4096, 7 * 7 * 512):
                mapped["fc6.weight"] = (
                    weight.reshape(4096, 7, 7, 512).permute(0, 3, 1, 2).reshape(4096, -1).contiguous()
                )
                notes.append("fc6 input rows permuted from Keras H,W,C to PyTorch C,H,W order "
                             "(the original port skipped this; its embeddings had cosine ~0.61 to Keras)")
    else:
        sample = ", ".join(list(state)[:3])
        raise InputError(path, f"unrecognised PyTorch state dict (first keys: {sample}); "
                               "known: deepface vgg_face_weights.pth, the original Speech-to-Face "
                               "project's VGG-Face ports and its VE_conv, AST and FaceDecoder checkpoints")
    if expected_arch is not None and expected_arch != config.arch:
        raise InputError(path, f"--arch {expected_arch} does not match the file, which is a "
                               f"{config.arch} port ({source_format})")
    if not all(isinstance(value, torch.Tensor) for value in mapped.values()):
        raise InputError(path, "state dict holds values that are not tensors")
    check_tensors(expected_tensors(config), mapped, path, config.arch)
    state_out = {spec.torch_key: mapped[spec.torch_key].detach().to(torch.float32).contiguous()
                 for spec in parameter_layout(config)}
    return TorchImport(config, state_out, source_format, tuple(notes))
