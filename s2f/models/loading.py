"""Load any speech2face model from what users pass around: a ``save_pretrained`` directory
(its config.json names the model type), a training run directory (its best checkpoint),
or a face encoder ``.safetensors`` file from ``s2f convert``."""

from __future__ import annotations

import json
from pathlib import Path

from torch import nn

from s2f.models.registry import MODELS
from s2f.runtime.errors import InputError

RUN_POINTER = "latest.json"


def checkpoint_dir(path: Path) -> Path:
    """A run directory means its best (else latest) checkpoint; anything else is itself."""
    from s2f.models.run_pointers import resolve

    path = Path(path)
    if (path / RUN_POINTER).is_file():
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
    except (OSError, ValueError, AttributeError) as err:
        raise InputError(config, f"not a saved speech2face model ({err})") from None
    if model_type not in MODELS:
        raise InputError(config, f"unknown model type {model_type!r}; known: {', '.join(MODELS)}")
    if model_type == "face_encoder":
        from s2f.models.face_encoder import load_face_encoder

        return load_face_encoder(path, device)
    return MODELS[model_type].module_class.from_pretrained(path, device)
