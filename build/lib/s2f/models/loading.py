"""Load any speech2face model from what users pass around: a ``save_pretrained`` directory
(its config.json names the model type), a training run directory (its best checkpoint),
or a face encoder ``.safetensors`` file from ``s2f convert``."""

from __future__ import annotations

import json
from pathlib import Path

from torch import nn

from runtime.errors import InputError


def checkpoint_dir(path: Path) -> Path:
    """A run directory means its best (else latest) checkpoint; anything else is itself."""
    from s2f.train.checkpoint import resolve

    path = Path(path)
    if (path / "latest.json").is_file():
        return resolve(path, "best.json") or resolve(path)
    return path


def load_model(path: str | Path, device: str = "cpu") -> nn.Module:
    path = checkpoint_dir(Path(path))
    if path.is_file() and path.suffix == ".safetensors":
        from s2f.models.face_encoder import load_face_encoder

        return load_face_encoder(path, device)
    config = path / "config.json"
    if not path.exists():
        raise InputError(path, "not found")
    try:
        model_type = json.loads(config.read_text()).get("model_type")
    except (OSError, ValueError) as err:
        raise InputError(config, f"not a saved speech2face model ({err})") from None
    if model_type == "face_encoder":
        from s2f.models.face_encoder import load_face_encoder

        return load_face_encoder(path, device)
    classes = {"ve_conv": ("s2f.models.voice_encoder", "VEConv"),
               "ast_voice_encoder": ("s2f.models.ast_encoder", "ASTVoiceEncoder"),
               "face_decoder": ("s2f.models.face_decoder", "FaceDecoder")}
    if model_type not in classes:
        raise InputError(config, f"unknown model type {model_type!r}")
    import importlib

    module, name = classes[model_type]
    return getattr(importlib.import_module(module), name).from_pretrained(path, device)
