"""Audio Spectrogram Transformer voice encoder: transformers' AST with a 4096-D head.

The model is ``ASTForAudioClassification`` with ``num_labels = 4096`` (its head: LayerNorm
+ Linear on the pooled [CLS]/[DIST] tokens), exactly the original project's layout, so the
original's published checkpoints load as they are. It is built from an ``ASTConfig`` (the
AudioSet base model's by default; tiny ones in tests). Pretrained AST weights come only from
a local directory (``ASTForAudioClassification.save_pretrained`` layout): nothing is
downloaded at run time. Input: ``s2f.runtime.features.ast_fbank`` (1024 x 128).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from s2f.models.pretrained import Pretrained, load_state_strict
from s2f.runtime.errors import InputError

AUDIOSET_BASE = {  # MIT/ast-finetuned-audioset-10-10-0.4593
    "hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072,
    "patch_size": 16, "frequency_stride": 10, "time_stride": 10, "max_length": 1024, "num_mel_bins": 128,
}
TRAIN_MODES = ("head", "full", "top")


@dataclass
class ASTVoiceEncoderConfig:
    """Args:
        ast: ``ASTConfig`` keyword arguments (``num_labels`` is set from ``embedding_dim``).
        embedding_dim: output size (4096, the face encoder's fc7 width).
        output_relu: apply a ReLU to the head's output (the target, fc7 after ReLU, is
            non-negative); the original's published model has none.
        train_mode: ``head`` (only the head learns), ``full``, or ``top`` (the head and the
            top ``train_top_layers`` transformer layers) — the original trained the head
            first, then everything.
        feature_mean, feature_std: normalisation of the fbank features the model was trained
            with (AudioSet's by default; the original re-estimated -5.460994 / 3.1129124).
    """

    ast: dict = field(default_factory=lambda: dict(AUDIOSET_BASE))
    embedding_dim: int = 4096
    output_relu: bool = True
    train_mode: str = "full"
    train_top_layers: int = 2
    feature_mean: float = -4.2677393
    feature_std: float = 4.5689974

    def __post_init__(self) -> None:
        self.ast = {**AUDIOSET_BASE, **self.ast}  # a partial dict (a size preset) changes only what it names


class ASTVoiceEncoder(nn.Module, Pretrained):
    config_class = ASTVoiceEncoderConfig
    model_type = "ast_voice_encoder"

    def __init__(self, config: ASTVoiceEncoderConfig | None = None, pretrained_ast: str | Path | None = None) -> None:
        from transformers import ASTConfig, ASTForAudioClassification

        super().__init__()
        self.config = config = config or ASTVoiceEncoderConfig()
        if config.train_mode not in TRAIN_MODES:
            raise ValueError(f"unknown train_mode {config.train_mode!r}; one of {TRAIN_MODES}")
        ast_config = ASTConfig(**{**config.ast, "num_labels": config.embedding_dim})
        self.ast = ASTForAudioClassification(ast_config)
        if pretrained_ast is not None:
            self.load_pretrained_ast(pretrained_ast)
        self.apply_train_mode()

    def load_pretrained_ast(self, directory: str | Path) -> None:
        """Backbone weights from a local AST checkpoint; its classifier (AudioSet's 527
        classes) is not used. The backbone shape must match ``config.ast``."""
        from transformers import ASTForAudioClassification

        directory = Path(directory)
        if not directory.is_dir():
            raise InputError(directory, "pretrained AST directory not found")
        try:
            source = ASTForAudioClassification.from_pretrained(str(directory), local_files_only=True)
        except (OSError, ValueError) as err:
            raise InputError(directory, f"cannot load an AST checkpoint ({str(err).splitlines()[0][:200]})") from None
        backbone = adapt_ast_state_dict(source.audio_spectrogram_transformer.state_dict(),
                                        self.ast.audio_spectrogram_transformer)
        load_state_strict(self.ast.audio_spectrogram_transformer, backbone, directory)

    def transformer_layers(self) -> nn.ModuleList:
        backbone = self.ast.audio_spectrogram_transformer
        return backbone.layers if hasattr(backbone, "layers") else backbone.encoder.layer  # transformers 5 / 4

    def apply_train_mode(self) -> None:
        mode = self.config.train_mode
        layers = self.transformer_layers()
        for name, parameter in self.ast.named_parameters():
            parameter.requires_grad = mode == "full" or name.startswith("classifier.")
        if mode == "top":
            for layer in layers[len(layers) - self.config.train_top_layers:]:
                for parameter in layer.parameters():
                    parameter.requires_grad = True
            for parameter in self.ast.audio_spectrogram_transformer.layernorm.parameters():
                parameter.requires_grad = True

    def set_train_mode(self, mode: str, top_layers: int | None = None) -> None:
        """Switch stages (e.g. head first, then ``full``) without rebuilding the model."""
        self.config.train_mode = mode
        if top_layers is not None:
            self.config.train_top_layers = top_layers
        if mode not in TRAIN_MODES:
            raise ValueError(f"unknown train_mode {mode!r}; one of {TRAIN_MODES}")
        self.apply_train_mode()

    def forward(self, fbank: torch.Tensor) -> torch.Tensor:
        """N x 1024 x 128 normalised fbank -> N x embedding_dim."""
        out = self.ast(input_values=fbank).logits
        return torch.relu(out) if self.config.output_relu else out


_V4_TO_V5 = (  # transformers 4 AST parameter names -> transformers 5
    (r"\.encoder\.layer\.", ".layers."),
    (r"\.attention\.attention\.query\.", ".attention.q_proj."),
    (r"\.attention\.attention\.key\.", ".attention.k_proj."),
    (r"\.attention\.attention\.value\.", ".attention.v_proj."),
    (r"\.attention\.output\.dense\.", ".attention.o_proj."),
    (r"\.intermediate\.dense\.", ".mlp.fc1."),
    (r"\.output\.dense\.", ".mlp.fc2."),
)


def adapt_ast_state_dict(state: dict, model: nn.Module) -> dict:
    """Checkpoints saved with transformers 4 (the original project's) use other parameter
    names than transformers 5; rename them when the installed version needs it."""
    import re

    if not any(".layers." in key for key in model.state_dict()):
        return state
    renamed = {}
    for key, value in state.items():
        for pattern, replacement in _V4_TO_V5:
            key = re.sub(pattern, replacement, key)
        renamed[key] = value
    return renamed


def load_original_ast(path: str | Path, ast: dict | None = None) -> ASTVoiceEncoder:
    """The original project's published AST checkpoint (``model_state_dict`` of an
    ``ASTForAudioClassification`` with 4096 labels; no output ReLU; re-estimated stats)."""
    from s2f.models.checkpoints import load_torch_state_dict

    path = Path(path)
    state = load_torch_state_dict(path)
    head = state.get("classifier.dense.weight")
    if head is None:
        raise InputError(path, "no 'classifier.dense.weight': not an ASTForAudioClassification state dict")
    config = ASTVoiceEncoderConfig(ast=dict(ast or AUDIOSET_BASE), embedding_dim=int(head.shape[0]),
                                   output_relu=False, feature_mean=-5.460994, feature_std=3.1129124)
    model = ASTVoiceEncoder(config)
    load_state_strict(model.ast, adapt_ast_state_dict(state, model.ast), path)
    return model.eval()
