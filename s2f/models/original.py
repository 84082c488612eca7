"""The original Speech-to-Face project's checkpoints (Kacper-Pietkun/Speech-to-face), as its
users have them.

Its training scripts ``torch.save`` a dict (``train/model_saver.py``: ``model_state_dict``,
``optimizer_state_dict``, ``history``, ``epoch``, ...). We read it with
``torch.load(weights_only=True)``, keep ``model_state_dict`` and ignore the rest. Which model
a file holds (VE_conv, AST or FaceDecoder) is told by its tensor names (the registry's
``original_marker``), its sizes by the tensors' shapes; each model module maps the names
onto ours. The imported model carries the settings the original's inference used (its
config: spectrogram variant, fbank statistics, landmark units), so a bundle exported from
it needs no flags, and a ``source`` record that ends up in the bundle's manifest.

    model = import_original("best_model.pt")            # VEConv, ASTVoiceEncoder or FaceDecoder
    convert_original("best_model.pt", "ve_conv/")       # once: safetensors + config.json
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from s2f.core.atomic import atomic_directory
from s2f.core.errors import InputError
from s2f.models.checkpoints import load_torch_state_dict
from s2f.models.pretrained import CONFIG_NAME
from s2f.models.provenance import source_record
from s2f.models.registry import MODELS, ModelEntry

ORIGINAL_FORMAT = "speech-to-face-original"
DECODER_OUTPUTS = ("sigmoid", "linear")  # how an original decoder's texture ends


@dataclass(frozen=True)
class OriginalOptions:
    """What a checkpoint of the original cannot tell and the user may override.

    Args:
        decoder_output: for a decoder checkpoint of the original Speech-to-Face project: whether its texture
            ends in a sigmoid (default; the original since 2023-12-21) or is linear (older files, which end at
            the 1x1 convolution).
        ast_mean: original AST: fbank mean instead of the original's -5.460994.
        ast_std: original AST: fbank std instead of the original's 3.1129124.
        ve_variant: original VE_conv: spectrogram variant instead of 'original' (the one it was trained on).
    """

    decoder_output: str = field(default="sigmoid", metadata={"choices": DECODER_OUTPUTS,
                                                              "flag": "--original-decoder-output"})
    ast_mean: float | None = None
    ast_std: float | None = None
    ve_variant: str | None = field(default=None, metadata={"choices": ("paper", "original"), "flag": "--variant"})


@dataclass(frozen=True)
class OriginalImport:
    model: Any
    model_type: str
    layout: str
    source: dict[str, str]

    def preprocessing(self) -> dict[str, Any]:
        """What the model's graph will be fed: the settings its bundle records (those that
        apply to this kind of model)."""
        values = MODELS[self.model_type].export.preprocessing(self.model.config)
        unused = {"ve_conv": ("mean", "std"), "ast": ("variant",)}.get(values.get("encoder"), ())
        return {key: value for key, value in values.items() if key not in unused}


def identify(state: dict) -> ModelEntry | None:
    """The registry entry of the original module a state dict comes from, if any."""
    found = [entry for entry in MODELS.values() if entry.is_original_checkpoint(state)]
    return found[0] if len(found) == 1 else None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def import_state(state: dict, path: Path, options: OriginalOptions | None = None) -> OriginalImport | None:
    """``state`` (a checkpoint's tensors) as our model, or None when it is not the original's."""
    options = options or OriginalOptions()
    entry = identify(state)
    if entry is None:
        return None
    model, layout = entry.import_original(state, path, options)
    model = _apply_overrides(model, options)
    source = source_record(ORIGINAL_FORMAT, path.name, _sha256(path), layout=layout)
    model.source = source
    return OriginalImport(model, entry.model_type, layout, source)


def _apply_overrides(model: Any, options: OriginalOptions) -> Any:
    """The preprocessing options a user gave instead of the original's (config fields only:
    the weights are untouched)."""
    from s2f.runtime.preprocess.voice_input import VE_VARIANTS

    config = model.config
    if model.model_type == "ast_voice_encoder":
        mean = config.feature_mean if options.ast_mean is None else options.ast_mean
        std = config.feature_std if options.ast_std is None else options.ast_std
        model.config = replace(config, feature_mean=mean, feature_std=std)
        if not model.config.feature_std > 0:
            raise InputError(None, f"--ast-std must be positive, got {model.config.feature_std}")
    elif model.model_type == "ve_conv" and options.ve_variant is not None:
        if options.ve_variant not in VE_VARIANTS:
            raise InputError(None, f"unknown spectrogram variant {options.ve_variant!r}; "
                                   f"one of {', '.join(VE_VARIANTS)}")
        model.config = replace(config, variant=options.ve_variant)
    return model


def import_original(path: str | Path, options: OriginalOptions | None = None) -> OriginalImport:
    """Read an original checkpoint file; refuse anything else with one line."""
    path = Path(path)
    state = load_torch_state_dict(path)
    imported = import_state(state, path, options)
    if imported is None:
        first = ", ".join(list(state)[:3]) or "none"
        raise InputError(path, "not a checkpoint of the original Speech-to-Face project's VE_conv, AST or "
                               f"FaceDecoder (first tensors: {first})")
    return imported


def convert_original(imported: OriginalImport, output: str | Path) -> Path:
    """Write the imported model as a ``save_pretrained`` directory, so the pickle-format file
    is read once and never again."""
    output = Path(output)
    if output.suffix in (".safetensors", ".pt", ".pth", ".onnx"):
        raise InputError(output, f"a {imported.model_type} converts to a directory (config.json + "
                                 "model.safetensors): give -o a directory name")
    if output.exists() and not (output / CONFIG_NAME).is_file():
        raise InputError(output, "exists and is not a save_pretrained directory (no config.json): remove it or "
                                 "choose another name")
    with atomic_directory(output) as staging:
        imported.model.save_pretrained(staging)
    return output


def add_original_decoder_flag(parser) -> None:
    """The one command-line flag every command that takes a decoder has, for the one thing an
    original decoder checkpoint cannot tell."""
    from s2f.core.config_flags import field_help

    parser.add_argument("--original-decoder-output", choices=DECODER_OUTPUTS, default=OriginalOptions.decoder_output,
                        help=field_help(OriginalOptions)["decoder_output"])
