"""What a path a user hands us holds, decided once for loading (``s2f.models.loading``) and
conversion (``s2f convert``): from the first bytes of a file and the ``config.json`` of a
directory (a ``.safetensors`` name is taken at its word, so a damaged one gets the
reader's own message), without importing torch.

    found = identify("runs/voice")      # ModelFile(path=runs/voice/checkpoints/step-…, kind="pretrained", …)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from s2f.core.errors import InputError, read_head

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
TORCH_SIGNATURES = (b"PK\x03\x04", b"\x80")  # torch.save zip archive, legacy pickle
SAFETENSORS_START = b"{"  # after the 8-byte header length, the JSON header opens

# what each kind is, for messages; a loader or converter says which kinds it takes
KINDS = {
    "pretrained": "a save_pretrained directory or a training run directory",
    "safetensors": "a face encoder .safetensors file from 's2f convert'",
    "torch": "a PyTorch checkpoint (an original Speech-to-Face model or a face-encoder port)",
    "keras": "a Keras HDF5 weights file (.h5)",
}


@dataclass(frozen=True)
class ModelFile:
    """``path`` (a run directory already resolved to its checkpoint), its ``kind`` (a key of
    ``KINDS``) and, for a save_pretrained directory, the ``model_type`` its config names."""

    path: Path
    kind: str
    model_type: str | None = None


def checkpoint_dir(path: str | Path) -> Path:
    """A run directory means its best (else latest) checkpoint; anything else is itself."""
    from s2f.models.run_pointers import BEST, LATEST, resolve

    path = Path(path)
    if (path / LATEST).is_file():
        return resolve(path, BEST) or resolve(path)
    return path


def expected(kinds: tuple[str, ...]) -> str:
    """``kinds`` as a reader says them: "a …, a … or a …"."""
    names = [KINDS[kind] for kind in kinds]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


def identify(path: str | Path) -> ModelFile:
    """The kind of model file ``path`` is; ``InputError`` (naming the path) when it is none."""
    from s2f.models.registry import MODELS

    path = checkpoint_dir(Path(path))
    if not path.exists():
        raise InputError(path, "not found")
    if path.is_dir():
        config = path / "config.json"
        try:
            model_type = json.loads(config.read_text()).get("model_type")
        except FileNotFoundError:
            raise InputError(path, f"not a speech2face model: expected {expected(tuple(KINDS))}") from None
        except (OSError, ValueError, AttributeError) as err:
            raise InputError(config, f"not a saved speech2face model ({err})") from None
        if model_type not in MODELS:
            raise InputError(config, f"unknown model type {model_type!r}; known: {', '.join(MODELS)}")
        return ModelFile(path, "pretrained", model_type)
    head = read_head(path, 9, "model file")
    if not head:
        raise InputError(path, "file is empty")
    if head.startswith(HDF5_SIGNATURE):
        return ModelFile(path, "keras")
    if head.startswith(TORCH_SIGNATURES):
        return ModelFile(path, "torch")
    if path.suffix == ".safetensors" or (len(head) == 9 and head[8:9] == SAFETENSORS_START):
        return ModelFile(path, "safetensors", "face_encoder")
    raise InputError(path, f"not a speech2face model: expected {expected(tuple(KINDS))}")
