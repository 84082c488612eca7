"""Load any speech2face model from what users pass around: a ``save_pretrained`` directory
(its config.json names the model type), a training run directory (its best checkpoint),
a face encoder ``.safetensors`` file from ``s2f convert``, or a checkpoint of the original
Speech-to-Face project (its ``torch.save`` files, ``s2f.models.original``). Which of these a
path is, ``s2f.models.identify`` decides, for conversion as well."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from torch import nn

from s2f.core.errors import InputError
from s2f.models.identify import ModelFile, checkpoint_dir, identify
from s2f.models.original import OriginalOptions
from s2f.models.registry import MODELS

__all__ = ["checkpoint_dir", "load_model", "load_model_for"]


def _pretrained(found: ModelFile, device: str, original: OriginalOptions | None) -> nn.Module:
    return MODELS[found.model_type].module_class.from_pretrained(found.path, device)


def _face_encoder_file(found: ModelFile, device: str, original: OriginalOptions | None) -> nn.Module:
    from s2f.models.face_encoder import load_face_encoder

    return load_face_encoder(found.path, device)


def _torch_checkpoint(found: ModelFile, device: str, original: OriginalOptions | None) -> nn.Module:
    from s2f.models.original import import_original

    return import_original(found.path, original).model.to(device)


def _keras(found: ModelFile, device: str, original: OriginalOptions | None) -> nn.Module:
    raise InputError(found.path, "a Keras weights file: convert it first ('s2f convert FILE -o model.safetensors')")


LOADERS: dict[str, Callable[[ModelFile, str, OriginalOptions | None], nn.Module]] = {
    "pretrained": _pretrained, "safetensors": _face_encoder_file, "torch": _torch_checkpoint, "keras": _keras}


def load_model(path: str | Path, device: str = "cpu", original: OriginalOptions | None = None) -> nn.Module:
    """``original``: what to assume where an original checkpoint cannot say (its decoder's output)."""
    found = identify(path)
    return LOADERS[found.kind](found, device, original)


def load_model_for(role: str, path: str | Path, device: str = "cpu", original: OriginalOptions | None = None,
                   flag: str | None = None) -> nn.Module:
    """``load_model``, refusing a model of another role (a decoder given as the voice encoder)."""
    model = load_model(path, device, original)
    entry = MODELS.get(getattr(model, "model_type", None))
    if entry is None or entry.role != role:
        found = entry.role.replace("_", " ") if entry else getattr(model, "model_type", "?")
        where = f"{flag}: " if flag else ""
        raise InputError(path, f"{where}holds a {found}, not a {role.replace('_', ' ')}")
    return model
