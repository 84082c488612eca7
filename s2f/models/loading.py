"""Load any speech2face model from what users pass around: a ``save_pretrained`` directory
(its config.json names the model type), a training run directory (its best checkpoint),
a face encoder ``.safetensors`` file from ``s2f convert``, or a checkpoint of the original
Speech-to-Face project (its ``torch.save`` files, ``s2f.models.original``)."""

from __future__ import annotations

import json
from pathlib import Path

from torch import nn

from s2f.core.errors import InputError
from s2f.models.original import OriginalOptions
from s2f.models.registry import MODELS


def checkpoint_dir(path: Path) -> Path:
    """A run directory means its best (else latest) checkpoint; anything else is itself."""
    from s2f.models.run_pointers import BEST, LATEST, resolve

    path = Path(path)
    if (path / LATEST).is_file():
        return resolve(path, BEST) or resolve(path)
    return path


KNOWN_FORMS = ("a save_pretrained directory, a training run directory, a face encoder .safetensors file or a "
               "checkpoint of the original Speech-to-Face project")


def load_model(path: str | Path, device: str = "cpu", original: OriginalOptions | None = None) -> nn.Module:
    """``original``: what to assume where an original checkpoint cannot say (its decoder's output)."""
    from s2f.models.checkpoints import is_torch_checkpoint

    path = checkpoint_dir(Path(path))
    if path.is_file() and path.suffix == ".safetensors":
        from s2f.models.face_encoder import load_face_encoder

        return load_face_encoder(path, device)
    if is_torch_checkpoint(path):
        from s2f.models.original import import_original

        return import_original(path, original).model.to(device)
    config = path / "config.json"
    if not path.exists():
        raise InputError(path, "not found")
    if not path.is_dir():
        raise InputError(path, f"not a speech2face model: expected {KNOWN_FORMS}")
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
