"""Every model type speech2face knows, in one table: how to build it, its named sizes, how it
looks from outside (export), and how to read the original project's checkpoints.

``load_model``, ``s2f export``, ``s2f train --size``, the tests and the benches all read this
table instead of branching on model-type strings. Importing it is cheap (no torch): classes
are named by import path and loaded on first use, so the command line can list sizes and
types without starting PyTorch.

    entry = MODELS["ve_conv"]
    model = entry.build("tiny", embedding_dim=512)     # config preset + overrides -> module
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

SIZES = ("tiny", "full")


def _resolve(target: str) -> Any:
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


@dataclass(frozen=True)
class ExportInfo:
    """The graph's interface: one input, named outputs, and what the runtime needs to feed it.

    ``input_shape``, ``outputs`` and ``preprocessing`` are functions of the model's config
    (a voice encoder's input size depends on its spectrogram variant, say). ``embedding_method``
    is the module method whose output is the face embedding (``forward`` for voice encoders).
    """

    input_name: str
    outputs: Callable[[Any], list[str]]
    input_shape: Callable[[Any], tuple[int, ...]]
    preprocessing: Callable[[Any], dict[str, Any]]
    embedding_method: str = "forward"


@dataclass(frozen=True)
class ModelEntry:
    """One model type.

    Args:
        model_type: the name saved in ``config.json`` and in exported graphs.
        module: ``"package.module:Class"`` of the ``nn.Module`` (a ``Pretrained``).
        config: ``"package.module:Class"`` of its config dataclass.
        presets: named config keyword sets; ``full`` is the paper's model, ``tiny`` a CPU-test size.
        export: the graph's interface.
        original_import: ``"package.module:function"`` turning a state dict of the original
            Speech-to-Face project's module of this type into ours: ``(state, source, options)
            -> (model, layout)``, sizes read off the tensors.
        original_marker: tensor-name prefixes of which that module's checkpoints hold at least
            one, and
        original_excludes: prefixes they never hold: how a file is told apart, even a partial
            one (``s2f.models.original``; the original's VGG-Face ports also have ``layer10.1``,
            but go on to ``layer16``).
        role: what it does in the pipeline: ``voice_encoder``, ``face_decoder`` or ``face_encoder``.
    """

    model_type: str
    module: str
    config: str
    role: str
    export: ExportInfo
    presets: dict[str, dict[str, Any]] = field(default_factory=dict)
    original_import: str | None = None
    original_marker: tuple[str, ...] = ()
    original_excludes: tuple[str, ...] = ()

    def is_original_checkpoint(self, state: dict) -> bool:
        if not self.original_marker or not any(key.startswith(self.original_marker) for key in state):
            return False
        return not any(key.startswith(self.original_excludes) for key in state)  # startswith(()) is False

    @property
    def module_class(self) -> type:
        return _resolve(self.module)

    @property
    def config_class(self) -> type:
        return _resolve(self.config)

    def config_for(self, size: str = "full", **overrides: Any) -> Any:
        if size not in self.presets:
            raise ValueError(f"{self.model_type} has no size {size!r}; known: {', '.join(self.presets)}")
        return self.config_class(**{**self.presets[size], **overrides})

    def build(self, size: str = "full", **overrides: Any) -> Any:
        return self.module_class.build(self.config_for(size, **overrides))

    def import_original(self, state: dict, source: Any, options: Any = None) -> tuple[Any, str]:
        if self.original_import is None:
            raise ValueError(f"the original project has no {self.model_type} checkpoints to import")
        return _resolve(self.original_import)(state, source, options)


def _voice_preprocessing(config: Any) -> dict[str, Any]:
    from s2f.runtime.preprocess.voice_input import VoiceInputSpec

    steps = getattr(config, "audio_steps", "speech2face")
    if hasattr(config, "variant"):
        return VoiceInputSpec("ve_conv", config.variant, getattr(config, "seconds", None), audio_steps=steps).to_dict()
    return VoiceInputSpec("ast", mean=config.feature_mean, std=config.feature_std, audio_steps=steps).to_dict()


def _face_preprocessing(config: Any) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(config.preprocessing)


def _texture(config: Any) -> dict[str, Any]:
    return {"texture": "RGB in [0, 1], N x 3 x H x W" if config.output_activation == "sigmoid"
            else "RGB, unbounded (original model)", "num_landmarks": config.num_landmarks}


def _ve_conv_input(config: Any) -> tuple[int, ...]:
    from s2f.runtime.preprocess.voice_input import VoiceInputSpec

    return VoiceInputSpec("ve_conv", config.variant, getattr(config, "seconds", None)).shape


TINY_AST = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 128}

MODELS: dict[str, ModelEntry] = {entry.model_type: entry for entry in (
    ModelEntry(
        "ve_conv", "s2f.models.voice_encoder:VEConv", "s2f.models.voice_encoder:VEConvConfig", "voice_encoder",
        ExportInfo("spectrogram", lambda c: ["embedding"], _ve_conv_input, _voice_preprocessing),
        presets={
            "full": {},
            # VE_conv's layer plan at ~1/40 of the multiply-adds: thin layers, stride 2 in the
            # first three convolutions instead of the four time pools
            "tiny": {"channels": [16, 16, 32, 32, 32, 64, 64, 64, 64], "stride2_convs": [1, 2, 3, 8, 9],
                     "time_pool_after": [], "hidden_dim": 256},
        },
        original_import="s2f.models.voice_encoder:import_original_ve_conv",
        original_marker=("layer1.2.", "layer9.3.", "layer10.1.", "layer11.0."),
        original_excludes=("layer12.",)),
    ModelEntry(
        "ast_voice_encoder", "s2f.models.ast_encoder:ASTVoiceEncoder", "s2f.models.ast_encoder:ASTVoiceEncoderConfig",
        "voice_encoder",
        ExportInfo("fbank", lambda c: ["embedding"],
                   lambda c: (c.ast.get("max_length", 1024), c.ast.get("num_mel_bins", 128)), _voice_preprocessing),
        presets={"full": {}, "tiny": {"ast": TINY_AST}},  # merged over AudioSet's base by the config
        original_import="s2f.models.ast_encoder:import_original_ast",
        original_marker=("audio_spectrogram_transformer.",)),
    ModelEntry(
        "face_decoder", "s2f.models.face_decoder:FaceDecoder", "s2f.models.face_decoder:FaceDecoderConfig",
        "face_decoder",
        ExportInfo("embedding", lambda c: ["landmarks", "texture", *(["aligned_texture"] if c.warp else [])],
                   lambda c: (c.embedding_dim,), _texture),
        # tiny: the texture head's last layer 16 wide, not 8: with 8 the colour of some corpora came
        # out entangled with the shape (bench/decoder_seeds.py: a skin cast on 2 of 20 corpus seeds)
        presets={"full": {}, "tiny": {"shared_dims": [256, 128], "landmark_dims": [64],
                                      "texture_channels": [64, 32, 16, 16, 16]}},
        original_import="s2f.models.face_decoder:import_original_face_decoder",
        original_marker=("pre_layers.", "landmark_layers.", "texture_layers.")),
    ModelEntry(
        "face_encoder", "s2f.models.face_encoder:FaceEncoder",
        "s2f.models.face_encoder_config:FaceEncoderConfig", "face_encoder",
        ExportInfo("image", lambda c: ["embedding", "probabilities"] if c.include_top else ["embedding"],
                   lambda c: (3, 224, 224), _face_preprocessing, embedding_method="embed"),
        presets={}),  # sizes are the upstream architectures: FACE_ENCODER_ARCHS
)}

# voice encoders by the name the command line and preprocessed data use
VOICE_ENCODERS = {"ve_conv": "ve_conv", "ast": "ast_voice_encoder"}


def voice_input_of(model: Any) -> Any:
    """The ``VoiceInputSpec`` a voice encoder takes (its clip length, spectrogram, loudness steps)."""
    from s2f.runtime.preprocess.voice_input import VoiceInputSpec

    return VoiceInputSpec.from_dict(entry_for(model).export.preprocessing(model.config))


def entry_for(model_or_type: Any) -> ModelEntry:
    """The registry entry of a model instance or a model-type name."""
    model_type = model_or_type if isinstance(model_or_type, str) else getattr(model_or_type, "model_type", None)
    if model_type not in MODELS:
        raise KeyError(f"unknown model type {model_type!r}; known: {', '.join(MODELS)}")
    return MODELS[model_type]


def voice_encoder_for(encoder: str, size: str, embedding_dim: int, settings: dict[str, Any],
                      ast_pretrained: Any = None, ast_head_first: bool = False, ast_top_layers: int = 2) -> Any:
    """A fresh voice encoder (``ve_conv`` or ``ast``) of ``size`` for features made with
    ``settings`` (the preprocessed tree's record: variant, normalisation, audio steps)."""
    from s2f.core.errors import InputError

    if encoder not in VOICE_ENCODERS:
        raise InputError(None, f"unknown voice encoder {encoder!r}; one of {', '.join(VOICE_ENCODERS)}")
    entry = MODELS[VOICE_ENCODERS[encoder]]
    steps = settings.get("audio_steps", "speech2face")  # "original" for s2f data import-original trees
    if encoder == "ve_conv":
        return entry.build(size, variant=settings.get("variant", "paper"), embedding_dim=embedding_dim,
                           audio_steps=steps, seconds=settings.get("seconds"))
    base = entry.config_for(size)
    config = entry.config_for(size, embedding_dim=embedding_dim, feature_mean=settings.get("mean", base.feature_mean),
                              feature_std=settings.get("std", base.feature_std),
                              train_mode="head" if ast_head_first else "full", audio_steps=steps,
                              train_top_layers=ast_top_layers)
    return entry.module_class(config, pretrained_ast=ast_pretrained)
