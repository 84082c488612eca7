"""Read PyTorch checkpoints safely: ``torch.load(weights_only=True)`` only, so a file can
never run code; the original project's ``{"model_state_dict": ...}`` dicts are unwrapped."""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

from s2f.core.errors import InputError


def load_torch_state_dict(path: str | Path) -> dict:
    """The model's tensors of a ``torch.save`` file, in memory of their own.

    Zip-format files are memory-mapped, so what is not the model is never read: the original
    project's files hold the Adam state beside the weights, twice their size. The weights are
    then copied out of the map, so a file changed on disk later cannot change a loaded model.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise InputError(path, "file not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=zipfile.is_zipfile(path))
    except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile, ValueError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise InputError(path, f"not a loadable PyTorch state dict under weights_only=True ({first[:200]})") from None
    if isinstance(state, dict) and "model_state_dict" in state:
        state = state["model_state_dict"]
    if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
        raise InputError(path, "expected a state dict (a mapping of names to tensors)")
    return {key: value.clone() if isinstance(value, torch.Tensor) else value for key, value in state.items()}
