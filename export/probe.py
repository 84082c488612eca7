"""Write the bundle's probe (``s2f.runtime.engines.probe``): small inputs for every graph and what
PyTorch, in float32, makes of them.

The inputs are the ones verification already uses (synthetic speech of the model's clip
length, smooth random photos), prepared by the runtime's numpy code. The references come
from the PyTorch modules themselves, not from an onnxruntime run, so a runtime judging
another engine compares it with the model, not with one of its ports: in float32 (what the
user's face is judged against) and, for the encoders' embeddings and the decoder's texture,
in float64 (the exact result a float32 engine is judged against by the rounding rule).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from s2f.export.end_to_end import face_verification_images, synthetic_speech
from s2f.models.exact import exact_output
from s2f.runtime.engines.probe import EXACT, PROBE
from s2f.runtime.preprocess.faces import FacePreprocessing, preprocess
from s2f.runtime.preprocess.voice_input import VoiceInputSpec

PROBE_CLIPS = 2  # a batch of two: batching is part of what an engine must get right


def _decode(decoder: nn.Module, embedding: np.ndarray) -> np.ndarray:
    """The decoder's float texture for ``embedding`` (N x 3 x 224 x 224)."""
    with torch.no_grad():
        return decoder(torch.from_numpy(embedding))[1].numpy()


def _as_image(texture: np.ndarray) -> np.ndarray:
    from s2f.runtime.pipeline import texture_to_image

    return np.stack([texture_to_image(t) for t in texture])


def probe_arrays(voice_encoder: nn.Module, face_decoder: nn.Module, face_encoder: nn.Module | None,
                 voice: VoiceInputSpec, face: FacePreprocessing | None) -> dict[str, np.ndarray]:
    """The probe's members, ``<role>/input`` and ``<role>/<judged output>``."""
    clips = np.stack([synthetic_speech(voice.seconds, voice.sample_rate, seed=20 + i) for i in range(PROBE_CLIPS)])
    features = np.stack([voice.features(clip) for clip in clips]).astype(np.float32)
    with torch.no_grad():
        voice_embedding = voice_encoder(torch.from_numpy(features)).numpy()
    texture = _decode(face_decoder, voice_embedding)
    arrays = {"voice_encoder/input": features, "voice_encoder/embedding": voice_embedding,
              "voice_encoder/embedding" + EXACT: exact_output(voice_encoder, features),
              "face_decoder/input": voice_embedding, "face_decoder/texture": texture,
              "face_decoder/texture" + EXACT: exact_output(face_decoder, voice_embedding)[1],
              "speech2face/input": clips, "speech2face/image": _as_image(texture)}
    if face_encoder is not None and face is not None:
        photo = face_verification_images()[0]
        pixels = preprocess(photo, face).astype(np.float32)
        with torch.no_grad():
            face_embedding = face_encoder.embed(torch.from_numpy(pixels)).numpy()
        arrays.update({"face_encoder/input": pixels, "face_encoder/embedding": face_embedding,
                       "face_encoder/embedding" + EXACT: exact_output(face_encoder, pixels, "embed"),
                       "face2face/input": photo, "face2face/image": _as_image(_decode(face_decoder, face_embedding))})
    return arrays


def write_probe(folder: Path, arrays: dict[str, np.ndarray]) -> Path:
    """``folder/probe.npz`` (uncompressed: the runtime caps what each member unpacks to)."""
    path = folder / PROBE
    with open(path, "wb") as handle:
        np.savez(handle, **arrays)
    return path
