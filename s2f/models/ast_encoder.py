"""Audio Spectrogram Transformer voice encoder: transformers' AST with a 4096-D head.

The model is ``ASTForAudioClassification`` with ``num_labels = 4096`` (its head: LayerNorm
+ Linear on the pooled [CLS]/[DIST] tokens), the original project's layout; its checkpoints
load through ``import_original_ast`` (both of its head layouts). It is built from an ``ASTConfig`` (the
AudioSet base model's by default; tiny ones in tests). Pretrained AST weights come only from
a local directory (``ASTForAudioClassification.save_pretrained`` layout): nothing is
downloaded at run time. Input: ``s2f.runtime.preprocess.features.ast_fbank`` (1024 x 128).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from s2f.core.errors import InputError
from s2f.models.pretrained import Pretrained, build_from_foreign_state, load_state_strict, weight_shapes

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
            non-negative); the original's AST has one since 2024-04-08 (its published
            model too), none before.
        train_mode: ``head`` (only the head learns), ``full``, or ``top`` (the head and the
            top ``train_top_layers`` transformer layers) — the original trained the head
            first, then everything.
        feature_mean, feature_std: normalisation of the fbank features the model was trained
            with (AudioSet's by default; the original re-estimated -5.460994 / 3.1129124).
        audio_steps: how the clips it learned from were made (``VoiceInputSpec.audio_steps``):
            ``original`` for the original project's models, PCM16 around a whole-file loudness
            step; serving repeats what the model learned from.
    """

    ast: dict = field(default_factory=lambda: dict(AUDIOSET_BASE))
    embedding_dim: int = 4096
    output_relu: bool = True
    train_mode: str = "full"
    train_top_layers: int = 2
    feature_mean: float = -4.2677393
    feature_std: float = 4.5689974
    audio_steps: str = "speech2face"

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


_V4_TO_V5 = (  # transformers 4 AST parameter names -> transformers 5 (in this order)
    (".encoder.layer.", ".layers."),
    (".attention.attention.query.", ".attention.q_proj."),
    (".attention.attention.key.", ".attention.k_proj."),
    (".attention.attention.value.", ".attention.v_proj."),
    (".attention.output.dense.", ".attention.o_proj."),
    (".intermediate.dense.", ".mlp.fc1."),
    (".output.dense.", ".mlp.fc2."),
)


def transformers5_name(key: str) -> str:
    key = "." + key  # the patterns match whole name parts, also at the start of a backbone's own names
    for old, new in _V4_TO_V5:
        key = key.replace(old, new)
    return key[1:]


def transformers4_name(key: str) -> str:
    key = "." + key
    for old, new in reversed(_V4_TO_V5):
        key = key.replace(new, old)
    return key[1:]


def adapt_ast_state_dict(state: dict, model: nn.Module) -> dict:
    """Checkpoints saved with one major version of transformers load into the other: the
    parameter names are spelled the way the installed ``model`` spells them."""
    installed_v5 = any(".layers." in f".{key}" for key in model.state_dict())
    rename = transformers5_name if installed_v5 else transformers4_name
    return {rename(key): value for key, value in state.items()}


ORIGINAL_MEAN, ORIGINAL_STD = -5.460994, 3.1129124  # re-estimated by the original on its training set
_BACKBONE = "audio_spectrogram_transformer."


def _ast_config_from(state: dict, source, what: str) -> dict:
    """The ``ASTConfig`` sizes of a checkpoint, read off its tensors. Heads cannot be read
    (they only split the hidden size): 12 for the AudioSet model's width, else 64 wide."""
    embeddings = _BACKBONE + "embeddings."
    shapes = weight_shapes(state, {embeddings + "cls_token": 3, embeddings + "position_embeddings": 3,
                                   embeddings + "patch_embeddings.projection.weight": 4}, source, what)
    hidden = shapes[embeddings + "cls_token"][-1]
    parts = [transformers5_name(key).split(".") for key in state]  # one spelling to count layers in
    count = 1 + max((int(p[2]) for p in parts if p[:2] == [_BACKBONE[:-1], "layers"] and p[2].isdigit()), default=-1)
    fc1 = f"{_BACKBONE}layers.0.mlp.fc1.weight"
    fc1 = fc1 if fc1 in state else transformers4_name(fc1)
    intermediate = weight_shapes(state, {fc1: 2}, source, what)[fc1][0] if count else 4 * hidden
    patch = shapes[embeddings + "patch_embeddings.projection.weight"][-1]
    config = {**AUDIOSET_BASE, "hidden_size": hidden, "num_hidden_layers": count, "intermediate_size": intermediate,
              "num_attention_heads": AUDIOSET_BASE["num_attention_heads"] if hidden == 768 else max(1, hidden // 64),
              "patch_size": patch}
    frequency = (config["num_mel_bins"] - patch) // config["frequency_stride"] + 1
    time = (config["max_length"] - patch) // config["time_stride"] + 1
    positions = shapes[embeddings + "position_embeddings"][1]
    if positions != frequency * time + 2:
        raise InputError(source, f"tensor {embeddings + 'position_embeddings'!r} has {positions} positions; the "
                                 f"original's input (1024 x 128 fbank, strides 10) gives {frequency * time + 2}")
    return config


def import_original_ast(state: dict, source, options=None) -> tuple[ASTVoiceEncoder, str]:
    """The original project's AST (``ASTForAudioClassification`` with a 4096-wide head).

    Two head layouts exist: since 2024-04-08 the head is ``nn.Sequential(head, nn.ReLU())``
    (``classifier.0.layernorm`` / ``classifier.0.dense``, a ReLU on the output); before, the
    plain ``classifier.layernorm`` / ``classifier.dense`` without one. Parameter names of
    transformers 4 (the original's) and 5 both load, whichever is installed. Its features:
    Kaldi fbank on 10.26 s, normalised with the original's re-estimated mean and std.
    """
    what = "the original AST"
    if "classifier.0.dense.weight" in state or "classifier.0.layernorm.weight" in state:
        head, relu = "classifier.0.", True
    elif "classifier.dense.weight" in state or "classifier.layernorm.weight" in state:
        head, relu = "classifier.", False
    else:
        raise InputError(source, f"missing tensor 'classifier.0.dense.weight' (or 'classifier.dense.weight') "
                                 f"for {what}")
    head_shape = weight_shapes(state, {head + "dense.weight": 2}, source, what)[head + "dense.weight"]
    v4_names = any(".encoder.layer." in key for key in state)
    config = ASTVoiceEncoderConfig(ast=_ast_config_from(state, source, what),
                                   embedding_dim=head_shape[0], output_relu=relu,
                                   feature_mean=ORIGINAL_MEAN, feature_std=ORIGINAL_STD, audio_steps="original")
    with torch.device("meta"):
        ours = list(ASTVoiceEncoder(config).state_dict())
    mapping = {}
    for key in ours:
        name = key[len("ast."):]
        name = transformers4_name(name) if v4_names else transformers5_name(name)
        mapping[head + name[len("classifier."):] if name.startswith("classifier.") else name] = key
    model = build_from_foreign_state(lambda: ASTVoiceEncoder(config), state, mapping, source, what)
    layout = (f"ASTForAudioClassification ({config.ast['num_hidden_layers']} layers, hidden "
              f"{config.ast['hidden_size']}), head {head}* {'with' if relu else 'without'} ReLU, transformers "
              f"{4 if v4_names else 5} names; fbank 1024x128 on 10.26 s, mean {ORIGINAL_MEAN}, std {ORIGINAL_STD}")
    return model.eval(), layout
