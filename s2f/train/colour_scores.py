"""Skin and hair colour of a decoder's faces against the held-out identities' real faces
(``s2f.runtime.evaluate.colour``), face->face and speech->face: the error neither the
texture L1 nor a face-recognition judge sees."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from s2f.runtime.evaluate.colour import colour_errors, face_colours, identity_colours
from s2f.runtime.pipeline import texture_to_image


@torch.no_grad()
def _decoded_colours(decoder: torch.nn.Module, embeddings: np.ndarray, device, batch_size: int = 16) -> list[dict]:
    """Colours of the faces decoded from ``embeddings``, each measured at its own predicted
    landmarks, on the 8-bit picture a user gets."""
    colours = []
    for start in range(0, len(embeddings), batch_size):
        batch = torch.from_numpy(np.asarray(embeddings[start:start + batch_size], np.float32)).to(device)
        outputs = decoder(batch)
        for points, texture in zip(outputs[0].float().cpu().numpy(), outputs[1].float().cpu().numpy(), strict=True):
            colours.append(face_colours(texture_to_image(texture), points))
    return colours


@torch.no_grad()
def colour_scores(decoder: torch.nn.Module, data: Path, train_identities: list[str] | None,
                  test_identities: list[str] | None, voice_encoder: torch.nn.Module | None = None,
                  max_clips: int | None = None, device: str | torch.device = "cpu") -> dict[str, Any]:
    """ΔE of the skin and hair of faces decoded from each held-out face embedding
    (face->face) and, with ``voice_encoder``, from each held-out clip (speech->face), against
    the mean colour of the identity's real faces; with the mean training face's ΔE and the
    real identities' spread beside them (``ColourErrors``)."""
    from s2f.data.pairs import DecoderFaces
    from s2f.train.evaluate import held_out_pairs, mean_face, voice_embeddings

    decoder.eval().to(device)
    test = DecoderFaces(data, test_identities)
    real_colours, embeddings = [], []
    for index in range(len(test)):
        image, embedding, landmarks, _ = test[index][:4]
        real_colours.append(face_colours(image, landmarks))
        embeddings.append(embedding)
    count = len(test.identities)
    real = identity_colours(real_colours, test.face_identity, count)
    texture, landmarks = mean_face(DecoderFaces(data, train_identities), with_landmarks=True)
    average = face_colours(texture, landmarks)
    result = {"face_to_face": colour_errors(real, _decoded_colours(decoder, np.stack(embeddings), device),
                                            test.face_identity, average).as_dict()}
    if voice_encoder is not None:
        pairs = held_out_pairs(data, test_identities, voice_encoder, max_clips=max_clips)
        voices, clip_identity = voice_embeddings(voice_encoder, pairs, device=device)
        position = {name: i for i, name in enumerate(test.identities)}
        owner = np.array([position[pairs.identities[i]] for i in clip_identity])
        result["speech_to_face"] = colour_errors(real, _decoded_colours(decoder, voices, device), owner,
                                                 average).as_dict()
    return result


def colour_scores_of_runs(decoder_run: Path, data: Path, split: Path, voice_run: Path | None = None,
                          max_clips: int | None = None, device: str | torch.device = "cpu") -> dict[str, Any]:
    """``colour_scores`` of the trained runs' best checkpoints, on the split's training and
    test identities: what the demo pipeline reports and the learning test gates."""
    from s2f.core.splits import read_split
    from s2f.models.loading import checkpoint_dir, load_model_for

    parts = read_split(split)
    voice = load_model_for("voice_encoder", checkpoint_dir(voice_run)) if voice_run is not None else None
    return colour_scores(load_model_for("face_decoder", checkpoint_dir(decoder_run)), data, parts["train"],
                         parts["test"], voice, max_clips=max_clips, device=device)
