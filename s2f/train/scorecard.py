"""``s2f evaluate --protocol sf2f``: the SF2F scorecard (``s2f.runtime.evaluate.scorecard``) of PyTorch
models on a preprocessed tree.

Every face is judged as a picture: the generated textures are rounded to 8-bit images, as a
user sees them, and the real faces are their 224x224 decoder targets, so both sides reach
the judge through the same preprocessing. The voice-embedding row ranks the voice
embeddings against the mean of the stored face embeddings (the space the voice encoder was
trained into), whatever the judge.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from s2f.core.errors import InputError
from s2f.core.progress import progress_bar
from s2f.data.layout import EMBEDDING_SUFFIX, TARGET_SUFFIX
from s2f.runtime.evaluate.scorecard import Embedder, ScorecardInputs, gallery_entries
from s2f.runtime.pipeline import texture_to_image

log = logging.getLogger(__name__)


def torch_judge(encoder: torch.nn.Module, device: str | torch.device = "cpu", batch_size: int = 16) -> Embedder:
    """A face encoder (``s2f.models.face_encoder``) as an ``Embedder``, fed through its own
    numpy preprocessing (the one its upstream used)."""
    from s2f.runtime.preprocess.faces import preprocess

    encoder.eval().to(device)
    spec = encoder.config.preprocessing

    @torch.no_grad()
    def embed(images: list[np.ndarray]) -> np.ndarray:
        outputs = []
        for start in range(0, len(images), batch_size):
            batch = torch.from_numpy(preprocess(images[start:start + batch_size], spec)).to(device)
            outputs.append(encoder.embed(batch).float().cpu().numpy())
        return np.concatenate(outputs)

    return embed


def _target_of(face: Path) -> Path:
    return Path(str(face)[: -len(EMBEDDING_SUFFIX)] + TARGET_SUFFIX)


@torch.no_grad()
def _decode(decoder: torch.nn.Module, embeddings: np.ndarray, device, batch_size: int = 16) -> list[np.ndarray]:
    images = []
    for start in range(0, len(embeddings), batch_size):
        batch = torch.from_numpy(embeddings[start:start + batch_size]).float().to(device)
        textures = decoder(batch)[1].float().cpu().numpy()
        images += [texture_to_image(texture) for texture in textures]
    return images


@torch.no_grad()
def collect_scorecard_inputs(voice_encoder: torch.nn.Module | None, decoder: torch.nn.Module, root: Path,
                             identities: list[str] | None, judge: Embedder, device: str | torch.device = "cpu",
                             batch_size: int = 16, max_clips: int | None = None, voices: Path | None = None,
                             ) -> tuple[ScorecardInputs, list[list[np.ndarray]]]:
    """Judge embeddings of the real faces and of the faces generated from each held-out clip
    (speech->face) and each held-out face embedding (face->face); plus, per identity, one
    (original, face->face, speech->face) row for the result grid. Without a voice encoder,
    face->face alone (and two-image rows)."""
    from s2f.train.evaluate import held_out_pairs, voice_embeddings

    pairs = held_out_pairs(root, identities, voice_encoder, voices, max_clips)
    targets = [_target_of(face) for face in pairs.faces]
    missing = [path for path in targets if not path.is_file()]
    if missing:
        raise InputError(missing[0], "the scorecard judges real faces as pictures: this face has no 224x224 "
                                     "target (run 's2f preprocess faces' on the photos)")
    face_identity = np.repeat(np.arange(len(pairs.identities)), pairs.face_count)
    with progress_bar(total=3, desc="scorecard", unit="step") as bar:
        real_images = [np.load(path, allow_pickle=False) for path in targets]
        real = judge(real_images)
        bar.update()
        stored = np.stack([np.load(face, allow_pickle=False) for face in pairs.faces]).astype(np.float32)
        from_faces = _decode(decoder, stored, device, batch_size)
        face_queries = judge(from_faces)
        bar.update()
        queries = {"face_to_face": (face_queries, face_identity)}
        rows = [[real_images[pairs.face_start[i]], from_faces[pairs.face_start[i]]]
                for i in range(len(pairs.identities))]
        if voice_encoder is not None:
            voices, clip_identity = voice_embeddings(voice_encoder, pairs, batch_size, device)
            from_voices = _decode(decoder, voices.astype(np.float32), device, batch_size)
            queries.update(speech_to_face=(judge(from_voices), clip_identity), voice_embedding=(voices, clip_identity))
            for i, row in enumerate(rows):
                row.append(from_voices[pairs.clip_start[i]])
        bar.update()
    inputs = ScorecardInputs(identities=list(pairs.identities), real=real, real_identity=face_identity,
                             queries=queries, voice_gallery=gallery_entries(stored, face_identity,
                                                                            len(pairs.identities)))
    return inputs, rows
