"""The two things we train, as ``TrainTask``s: the face decoder (embedding -> landmarks +
texture) and a voice encoder (voice features -> face embedding) taught by the frozen face
encoder's fc8 and the frozen decoder's first layer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from s2f.data.pairs import DecoderFaces, VoiceFacePairs
from s2f.runtime.evaluate.grid import save_face_grid
from s2f.train.losses import (
    DecoderLossWeights,
    FaceDecoderLoss,
    VoiceEncoderLoss,
    VoiceLossWeights,
)

GRID_ROWS = 8


def freeze(module: nn.Module | None) -> nn.Module | None:
    if module is not None:
        module.requires_grad_(False).eval()
    return module


class FaceHead(nn.Module):
    """The face encoder's classifier applied to embeddings (fc8), as the distillation teacher."""

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, embedding: torch.Tensor) -> torch.Tensor:
        return self.encoder.head_logits(embedding)


class TextureEmbedder(nn.Module):
    """Decoded texture (N x 3 x 224 x 224, RGB in [0, 1]) -> the face encoder's embedding,
    differentiably: the encoder's own input convention (its config's ``preprocessing``) applied in
    torch. The texture is already 224x224, so no resize is involved."""

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        spec = encoder.config.preprocessing
        self.encoder = encoder
        self.flip = spec.channel_order == "BGR"
        self.scale = 255.0 / spec.divide_by
        self.register_buffer("mean", torch.tensor(spec.mean, dtype=torch.float32).view(1, 3, 1, 1))

    def forward(self, texture: torch.Tensor) -> torch.Tensor:
        x = texture.flip(1) if self.flip else texture
        return self.encoder.embed(x * self.scale - self.mean)


class DecoderTask:
    """Args:
        face_encoder: frozen; enables the loss's embedding-cosine term (decoded face ->
            embedding vs the input embedding), as the original optionally did.
    """

    def __init__(self, model: nn.Module, preview: DecoderFaces | None = None,
                 weights: DecoderLossWeights | None = None, face_encoder: nn.Module | None = None,
                 texture_space: str = "rgb") -> None:
        self.model, self.preview = model, preview
        embedder = freeze(TextureEmbedder(face_encoder)) if face_encoder is not None else None
        self.loss = FaceDecoderLoss(embedder, weights=weights, texture_space=texture_space)

    def modules(self) -> list[nn.Module]:
        """Everything this task runs: the decoder and, in its loss, the frozen face encoder."""
        return [self.model, self.loss]

    def losses(self, model: nn.Module, batch, device: torch.device) -> dict[str, torch.Tensor]:
        image, embedding, landmarks, _, *aligned = (x.to(device, non_blocking=True) for x in batch)
        outputs = model(embedding.float())
        predicted_landmarks, texture = outputs[0], outputs[1]
        predicted_aligned = outputs[2].float() if len(outputs) > 2 else None
        return self.loss(predicted_landmarks, texture.float(), landmarks.float(), image, embedding.float(),
                         predicted_aligned, aligned[0] if aligned else None)

    def end_of_epoch(self, epoch: int, run_dir: Path) -> None:
        if self.preview is None:
            return
        device = next(self.model.parameters()).device
        items = [self.preview[i] for i in range(min(GRID_ROWS, len(self.preview)))]
        embeddings = torch.from_numpy(np.stack([item[1] for item in items])).float().to(device)
        textures = self.model(embeddings)[1]
        rows = [[item[0], texture] for item, texture in zip(items, textures.float().cpu().numpy(), strict=True)]
        save_face_grid(run_dir / "grids" / f"epoch{epoch:03d}.png", rows, ["original", "from face embedding"])


class VoiceTask:
    """Args:
        model: VEConv or ASTVoiceEncoder (already set to its train mode).
        face_head: fc8 of the face encoder on embeddings (distillation), or None.
        decoder: a trained FaceDecoder: its first layer enters the loss, and the grids show
            faces decoded from voices; or None.
        features: the spectral step on the training device (``DeviceFeatures``) when batches
            hold 16 kHz windows (features on the fly); None when they hold features already.
    """

    def __init__(self, model: nn.Module, face_head: nn.Module | None = None, decoder: nn.Module | None = None,
                 preview: VoiceFacePairs | None = None, weights: VoiceLossWeights | None = None,
                 features: nn.Module | None = None) -> None:
        self.model, self.preview, self.features = model, preview, features
        self.decoder = freeze(decoder)
        first = decoder.shared[0][0] if decoder is not None else None
        self.loss = VoiceEncoderLoss(freeze(face_head), first, weights)

    def modules(self) -> list[nn.Module]:
        """Everything this task runs: the voice encoder, the frozen fc8 and decoder first layer
        in its loss, the frozen decoder that draws the grids, and the feature step."""
        return [m for m in (self.model, self.loss, self.decoder, self.features) if m is not None]

    def model_input(self, clips: torch.Tensor) -> torch.Tensor:
        """A batch as the dataset holds it -> the voice encoder's input."""
        return self.features(clips) if self.features is not None else clips.float()

    def losses(self, model: nn.Module, batch, device: torch.device) -> dict[str, torch.Tensor]:
        clips, embedding, _ = batch
        voice = model(self.model_input(clips.to(device, non_blocking=True)))
        return self.loss(voice.float(), embedding.to(device, non_blocking=True).float())

    def end_of_epoch(self, epoch: int, run_dir: Path) -> None:
        if self.preview is None or self.decoder is None:
            return
        from s2f.train.evaluate import result_grid

        device = next(self.model.parameters()).device
        result_grid(self.model, self.decoder, self.preview, run_dir / "grids" / f"epoch{epoch:03d}.png",
                    rows=GRID_ROWS, device=device)
