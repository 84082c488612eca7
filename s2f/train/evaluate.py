"""Speech -> face retrieval, the Speech2Face / SF2F protocol: for each held-out voice clip,
rank N candidate faces (its own identity's and N-1 other identities') by the cosine between
the voice embedding and each face embedding; recall@K is how often the true face ranks in
the top K. Chance is K/N. Also the cosine and L1 between the voice embedding and the true
face's embedding."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from s2f.data.pairs import VoiceFacePairs

KS = (1, 5, 10)


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def retrieval_recall(voice: np.ndarray, identity: np.ndarray, faces: np.ndarray, candidates: int = 10,
                     ks: tuple[int, ...] = KS, seed: int = 0) -> dict[str, float]:
    """voice: Q x D voice embeddings of identities ``identity`` (Q); faces: I x D, one face
    embedding per identity. Distractors are drawn per query from a seeded RNG."""
    identities = len(faces)
    candidates = min(candidates, identities)
    if candidates < 2:
        raise ValueError("retrieval needs at least two identities")
    rng = np.random.default_rng(seed)
    similarity = _unit(voice) @ _unit(faces).T  # Q x I
    ranks = np.empty(len(voice), np.int64)
    for q, true in enumerate(identity):
        others = rng.choice(np.delete(np.arange(identities), true), candidates - 1, replace=False)
        ranks[q] = int((similarity[q, others] > similarity[q, true]).sum())  # ties favour the truth
    result = {"candidates": candidates, "queries": len(voice)}
    for k in ks:
        if k <= candidates:
            result[f"recall@{k}"] = float((ranks < k).mean())
            result[f"chance@{k}"] = k / candidates
    return result


@torch.no_grad()
def voice_embeddings(model: torch.nn.Module, pairs: VoiceFacePairs, batch_size: int = 16,
                     device: str | torch.device = "cpu") -> tuple[np.ndarray, np.ndarray]:
    """Embeddings of every clip in ``pairs`` (one per clip) and their identity indices."""
    model.eval().to(device)
    outputs = []
    for start in range(0, len(pairs.clips), batch_size):
        batch = np.stack([pairs.model_input(path) for path in pairs.clips[start:start + batch_size]])
        outputs.append(model(torch.from_numpy(batch).float().to(device)).float().cpu().numpy())
    return np.concatenate(outputs), pairs.clip_identity.copy()


def held_out_pairs(root: str | Path, identities: list[str] | None, voice_encoder: torch.nn.Module | None = None,
                   voices: str | Path | None = None, max_clips: int | None = None) -> VoiceFacePairs:
    """One pair per held-out clip: the precomputed arrays under ``root``, or with ``voices``
    (a model trained on the fly) the audio clips there, read as ``voice_encoder`` takes them."""
    if voices is None:
        return VoiceFacePairs(root, "all_to_one", identities, max_clips_per_identity=max_clips)
    from s2f.data.voice_clips import VoiceClipPairs
    from s2f.models.registry import voice_input_of
    from s2f.runtime.preprocess.voice_input import VoiceInputSpec

    spec = voice_input_of(voice_encoder) if voice_encoder is not None else VoiceInputSpec()
    return VoiceClipPairs(root, voices, spec, "all_to_one", identities, max_clips)


def evaluate_voice_encoder(model: torch.nn.Module, root: str | Path, identities: list[str] | None = None,
                           candidates: int = 10, seed: int = 0, device: str | torch.device = "cpu",
                           voices: str | Path | None = None) -> dict[str, Any]:
    pairs = held_out_pairs(root, identities, model, voices)
    voice, identity = voice_embeddings(model, pairs, device=device)
    faces = np.stack([np.load(pairs.faces[start]) for start in pairs.face_start])
    true = faces[identity]
    cosine = (_unit(voice) * _unit(true)).sum(axis=1)
    return {**retrieval_recall(voice, identity, faces, candidates, seed=seed), "identities": len(faces),
            "cosine_to_true_face": float(cosine.mean()), "l1_to_true_face": float(np.abs(voice - true).mean())}


def plot_recall(result: dict[str, Any], path: str | Path) -> Path:
    """Speech->face retrieval's recall@K against chance, as the scorecard draws it (one chart)."""
    from s2f.runtime.evaluate.scorecard import recall_chart

    ks = [k for k in KS if f"recall@{k}" in result]
    series = {"speech_to_face": [result[f"recall@{k}"] for k in ks], "chance": [result[f"chance@{k}"] for k in ks]}
    return recall_chart(series, ks, f"speech->face retrieval among {result['candidates']} candidates", path)


@torch.no_grad()
def decoder_reconstruction(decoder: torch.nn.Module, held_out, mean_face: np.ndarray,
                           device: str | torch.device = "cpu", batch_size: int = 16) -> dict[str, float]:
    """Mean L1 (pixels in [0, 1]) of faces decoded from their embeddings against the true
    224x224 targets of ``held_out`` (a ``DecoderFaces``), and the same for simply answering
    the mean training face: the decoder must beat it to have learned anything."""
    decoder.eval().to(device)
    decoded_l1 = mean_l1 = 0.0
    for start in range(0, len(held_out), batch_size):
        items = [held_out[i] for i in range(start, min(start + batch_size, len(held_out)))]
        targets = np.stack([item[0] for item in items])
        embeddings = torch.from_numpy(np.stack([item[1] for item in items])).float().to(device)
        texture = decoder(embeddings)[1]
        decoded_l1 += float(np.abs(texture.float().cpu().numpy() - targets).mean(axis=(1, 2, 3)).sum())
        mean_l1 += float(np.abs(mean_face[None] - targets).mean(axis=(1, 2, 3)).sum())
    count = len(held_out)
    return {"decoder_l1": decoded_l1 / count, "mean_face_l1": mean_l1 / count, "faces": count}


@torch.no_grad()
def landmark_errors(decoder: torch.nn.Module, held_out, mean_landmarks: np.ndarray,
                    device: str | torch.device = "cpu", batch_size: int = 16) -> dict[str, float]:
    """Mean distance in pixels between predicted and true landmarks of ``held_out``, and the
    same for answering the mean training landmarks."""
    decoder.eval().to(device)
    predicted_total = mean_total = 0.0
    for start in range(0, len(held_out), batch_size):
        items = [held_out[i] for i in range(start, min(start + batch_size, len(held_out)))]
        true = np.stack([item[2] for item in items]).reshape(len(items), -1, 2)
        embeddings = torch.from_numpy(np.stack([item[1] for item in items])).float().to(device)
        predicted = decoder(embeddings)[0].float().cpu().numpy().reshape(true.shape)
        predicted_total += float(np.linalg.norm(predicted - true, axis=2).mean(axis=1).sum())
        mean_total += float(np.linalg.norm(mean_landmarks.reshape(1, -1, 2) - true, axis=2).mean(axis=1).sum())
    return {"landmark_error_px": predicted_total / len(held_out), "mean_landmark_error_px": mean_total / len(held_out)}


def mean_face(faces, with_landmarks: bool = False):
    """Average 3x224x224 target of a ``DecoderFaces`` set (the baseline face); of its aligned
    textures when the set has them. ``with_landmarks``: also the mean landmarks."""
    total = points = None
    for index in range(len(faces)):
        item = faces[index]
        image = (item[4] if len(item) > 4 else item[0]).astype(np.float64)
        total = image if total is None else total + image
        points = item[2].astype(np.float64) if points is None else points + item[2]
    texture = (total / len(faces)).astype(np.float32)
    return (texture, (points / len(faces)).astype(np.float32)) if with_landmarks else texture


@torch.no_grad()
def result_grid(voice_encoder: torch.nn.Module, decoder: torch.nn.Module, pairs: VoiceFacePairs, path: str | Path,
                rows: int = 8, device: str | torch.device = "cpu") -> Path:
    """original | face->face | speech->face for one clip of each of the first ``rows`` identities.

    A face with only its embedding (the original project's voice datasets kept no photos)
    shows a mid-grey tile as its original."""
    from s2f.data.layout import EMBEDDING_SUFFIX, TARGET_SUFFIX
    from s2f.runtime.evaluate.grid import save_face_grid

    voice_encoder.eval().to(device)
    decoder.eval().to(device)
    images = []
    for identity in range(min(rows, len(pairs.identities))):
        clip, face = pairs.clips[pairs.clip_start[identity]], pairs.faces[pairs.face_start[identity]]
        target_path = Path(str(face)[: -len(EMBEDDING_SUFFIX)] + TARGET_SUFFIX)
        target = np.load(target_path) if target_path.is_file() else np.full((decoder.config.image_size,) * 2 + (3,),
                                                                             128, np.uint8)
        voice = voice_encoder(torch.from_numpy(pairs.model_input(clip))[None].float().to(device))
        from_voice = decoder(voice)[1]
        from_face = decoder(torch.from_numpy(np.load(face))[None].float().to(device))[1]
        images.append([target, from_face[0].float().cpu().numpy(), from_voice[0].float().cpu().numpy()])
    return save_face_grid(path, images, ["original", "face->face", "speech->face"])
