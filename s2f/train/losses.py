"""The Speech2Face losses (Oh et al. 2019) as the original project weighted them, without
its two bugs.

Voice encoder, for voice embeddings v_s and the true faces' embeddings v_f::

    L = w_dec * |f_dec(v_f) - f_dec(v_s)|_1                      decoder's first layer
      + lambda1 * | v_f/|v_f| - v_s/|v_s| |^2                    per-sample normalised distance
      + lambda2 * CE(softmax(fc8(v_f)/T), softmax(fc8(v_s)/T))   distillation through fc8
                (computed as KL: the CE minus the teacher's entropy, same gradients)

The original divided by the norm of the *whole batch* (so each sample's direction depended
on its batch-mates and the term shrank with batch size) and *summed* the distillation
cross-entropy over the batch (so its weight grew with batch size). Here every term is a
per-sample quantity averaged over the batch: the loss of a sample does not depend on what
else is in its batch (``tests/test_losses.py`` checks exactly that).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from s2f.train.options import TEXTURE_SPACE_NAMES, DecoderLossWeights, VoiceLossWeights  # noqa: F401 (defined torch-free)

Head = Callable[[torch.Tensor], torch.Tensor]


def normalized_distance(voice: torch.Tensor, face: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Per-sample squared L2 distance of the unit vectors; one value per sample."""
    return (F.normalize(voice, dim=1, eps=eps) - F.normalize(face, dim=1, eps=eps)).pow(2).sum(dim=1)


def distillation(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """The paper's cross-entropy of the teacher's softened distribution under the student's,
    minus the teacher's entropy (a constant for the student): KL divergence, per sample.
    Same gradients as the cross-entropy, but 0 at a perfect match, so the logged value
    shows progress instead of sitting near ln(classes) * weight."""
    log_teacher = F.log_softmax(teacher_logits / temperature, dim=1)
    log_student = F.log_softmax(student_logits / temperature, dim=1)
    return (log_teacher.exp() * (log_teacher - log_student)).sum(dim=1)


class VoiceEncoderLoss(nn.Module):
    """Args:
        face_head: the face encoder's classifier on embeddings (fc8), frozen; None drops
            the distillation term (e.g. notop encoders).
        decoder_first: the face decoder's first layer, frozen; None drops its term.
    """

    def __init__(self, face_head: Head | None = None, decoder_first: Head | None = None,
                 weights: VoiceLossWeights | None = None) -> None:
        super().__init__()
        self.face_head, self.decoder_first = face_head, decoder_first
        self.weights = weights or VoiceLossWeights()

    def forward(self, voice: torch.Tensor, face: torch.Tensor) -> dict[str, torch.Tensor]:
        """{"loss": scalar to minimise, and each weighted term, batch means}."""
        w = self.weights
        terms = {"distance": w.distance * normalized_distance(voice, face).mean()}
        if self.decoder_first is not None and w.decoder:
            with torch.no_grad():
                target = self.decoder_first(face)
            terms["decoder"] = w.decoder * (self.decoder_first(voice) - target).abs().mean()
        if self.face_head is not None and w.distillation:
            with torch.no_grad():
                teacher = self.face_head(face)
            terms["distillation"] = w.distillation * distillation(self.face_head(voice), teacher,
                                                                  w.temperature).mean()
        terms["loss"] = sum(terms.values())
        return terms





def _cielab(texture: torch.Tensor) -> torch.Tensor:
    """N x 3 x H x W sRGB in [0, 1] -> CIELAB / 100 (L* in 0..1): an L1 there is a mean ΔE-like
    distance on the scale of an RGB L1, so the loss weights keep their meaning."""
    from s2f.runtime.evaluate.colour import srgb_to_lab

    return srgb_to_lab(texture.movedim(1, -1), torch).movedim(-1, 1) / 100.0


# where the texture terms compare the decoded and the true pixels
TEXTURE_SPACES: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {"rgb": lambda texture: texture,
                                                                     "cielab": _cielab}
assert tuple(TEXTURE_SPACES) == TEXTURE_SPACE_NAMES


class FaceDecoderLoss(nn.Module):
    """Args:
        face_encoder: maps decoded textures (N x 3 x 224 x 224 in [0, 1]) to embeddings,
            frozen; enables the cosine term between the decoded face's embedding and the input
            embedding. None (the default) trains on landmarks and texture only.
        texture_space: the colour space of the texture and image L1 terms (``TEXTURE_SPACES``).
    """

    def __init__(self, face_encoder: Head | None = None, weights: DecoderLossWeights | None = None,
                 texture_space: str = "rgb") -> None:
        super().__init__()
        self.face_encoder = face_encoder
        self.weights = weights or DecoderLossWeights()
        if texture_space not in TEXTURE_SPACES:
            raise ValueError(f"unknown texture_space {texture_space!r}; one of {sorted(TEXTURE_SPACES)}")
        self.space = TEXTURE_SPACES[texture_space]

    def forward(self, landmarks: torch.Tensor, texture: torch.Tensor, true_landmarks: torch.Tensor,
                true_texture: torch.Tensor, embedding: torch.Tensor | None = None,
                aligned: torch.Tensor | None = None, true_aligned: torch.Tensor | None = None,
                ) -> dict[str, torch.Tensor]:
        """``texture`` is the decoded face; for the warping decoder ``aligned`` is its texture
        in the mean face's frame, scored against ``true_aligned``, and the face itself enters
        as the ``image`` term."""
        w = self.weights
        terms = {"landmarks": w.landmarks * F.mse_loss(landmarks, true_landmarks)}
        space = self.space
        if aligned is not None:
            terms["texture"] = w.texture * F.l1_loss(space(aligned), space(true_aligned))
            terms["image"] = w.image * F.l1_loss(space(texture), space(true_texture))
        else:
            terms["texture"] = w.texture * F.l1_loss(space(texture), space(true_texture))
        if self.face_encoder is not None and embedding is not None and w.embedding:
            cosine = F.cosine_similarity(self.face_encoder(texture), embedding, dim=1)
            terms["embedding"] = w.embedding * (1 - cosine).mean()
        terms["loss"] = sum(terms.values())
        return terms
