"""Real voice clips and face photos as verification inputs for an export.

Random inputs exercise every weight but not the value ranges a model meets in use (speech
spectrograms, face pixels, the embeddings those produce). ``--verify-with`` files are
prepared by the same numpy code the runtime uses, and the decoder is checked on the
embeddings the exported encoders produce from them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from s2f.core.errors import InputError
from s2f.runtime.preprocess.audio import AUDIO_SUFFIXES
from s2f.runtime.preprocess.images import IMAGE_SUFFIXES


def split_files(files: list[Path]) -> tuple[list[Path], list[Path]]:
    """(voice clips, face photos) by suffix; anything else is an error naming the file."""
    voices, faces = [], []
    for path in files:
        if not Path(path).is_file():
            raise InputError(path, "not found")
        suffix = Path(path).suffix.lower()
        if suffix in AUDIO_SUFFIXES:
            voices.append(Path(path))
        elif suffix in IMAGE_SUFFIXES:
            faces.append(Path(path))
        else:
            raise InputError(path, f"neither audio ({', '.join(sorted(AUDIO_SUFFIXES))}) nor an image "
                                   f"({', '.join(sorted(IMAGE_SUFFIXES))})")
    return voices, faces


def encoder_inputs(model: nn.Module, files: list[Path]) -> np.ndarray | None:
    """One batch of ``model``'s inputs from the files it can take (clips for a voice encoder,
    photos for a face encoder); None when none of the files fits."""
    from s2f.export.onnx_export import spec_for
    from s2f.runtime.preprocess.faces import preprocess
    from s2f.runtime.preprocess.images import load_face
    from s2f.runtime.preprocess.voice_input import VoiceInputSpec

    voices, faces = split_files(files)
    spec = spec_for(model)
    if spec.model_type == "face_encoder":
        return preprocess([load_face(path) for path in faces], model.config.preprocessing) if faces else None
    if spec.model_type in ("ve_conv", "ast_voice_encoder") and voices:
        voice = VoiceInputSpec.from_dict(spec.metadata["preprocessing"])
        return np.stack([voice.features_from_file(path) for path in voices]).astype(np.float32)
    return None


def embeddings(model: nn.Module, batch: np.ndarray) -> np.ndarray:
    """What an encoder hands the decoder for ``batch`` (PyTorch, float32)."""
    with torch.no_grad():
        x = torch.from_numpy(batch)
        out = model.embed(x) if getattr(model, "model_type", None) == "face_encoder" else model(x)
    return out.numpy()
