"""``save_pretrained(dir)`` / ``from_pretrained(dir)``: a directory with ``config.json`` and
``model.safetensors`` is the unit users pass around (the transformers habit). Config
dataclasses round-trip through JSON; weights never go through pickle."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, ClassVar

from s2f.core.atomic import atomic_output
from s2f.core.errors import InputError

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"


class Pretrained:
    """Mixin for ``nn.Module`` subclasses built from ``self.config`` (a dataclass)."""

    config_class: ClassVar[type]
    model_type: ClassVar[str]
    config: Any
    # where the weights came from when they were not trained here (``s2f.models.original``):
    # text fields, kept in the safetensors metadata and copied into bundle manifests
    source: dict[str, str] | None = None

    def safetensors_metadata(self) -> dict[str, str]:
        from s2f.models.provenance import source_metadata

        return {"format": "pt", "model_type": self.model_type, **source_metadata(self.source)}

    def config_dict(self) -> dict[str, Any]:
        """What ``config.json`` holds besides the model type: enough to build the model again."""
        return dataclasses.asdict(self.config)

    @classmethod
    def config_from_values(cls, values: dict[str, Any], path: Path) -> Any:
        """The config from ``config_dict``'s values (``path`` names the file in errors)."""
        known = {field.name for field in dataclasses.fields(cls.config_class)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise InputError(path, f"unknown config field {unknown[0]!r} for {cls.model_type}")
        return cls.config_class(**values)

    @classmethod
    def build(cls, config: Any) -> Any:
        """The model a config describes, weights not loaded (a family picks its class here)."""
        return cls(config)

    def save_pretrained(self, directory: str | Path) -> Path:
        from safetensors.torch import save

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        config = {"model_type": self.model_type, **self.config_dict()}
        with atomic_output(directory / CONFIG_NAME, "w") as handle:
            json.dump(config, handle, indent=2)
        state = {key: value.detach().contiguous() for key, value in self.state_dict().items()
                 if not key.endswith("num_batches_tracked")}
        with atomic_output(directory / WEIGHTS_NAME) as handle:
            handle.write(save(state, metadata=self.safetensors_metadata()))
        return directory

    @classmethod
    def config_from_dir(cls, directory: Path) -> Any:
        path = directory / CONFIG_NAME
        try:
            values = json.loads(path.read_text())
        except FileNotFoundError:
            raise InputError(path, "file not found (not a save_pretrained directory?)") from None
        except json.JSONDecodeError as err:
            raise InputError(path, f"invalid JSON ({err})") from None
        model_type = values.pop("model_type", cls.model_type)
        if model_type != cls.model_type:
            raise InputError(path, f"holds a {model_type!r} model, not {cls.model_type!r}")
        return cls.config_from_values(values, path)

    @classmethod
    def from_pretrained(cls, directory: str | Path, device: str = "cpu"):
        from s2f.models.provenance import source_from_metadata

        directory = Path(directory)
        config = cls.config_from_dir(directory)
        weights = directory / WEIGHTS_NAME
        state, metadata = read_weights(weights)
        model = build_with_weights(lambda: cls.build(config), state, weights, check_state_strict)
        model.source = source_from_metadata(metadata, weights)
        return model.to(device).eval()


def read_weights(weights: Path) -> tuple[dict, dict[str, str]]:
    """A safetensors file's tensors and metadata; a file that is not one is one ``InputError``."""
    from safetensors import SafetensorError, safe_open

    if not weights.is_file():
        raise InputError(weights, "file not found")
    try:
        with safe_open(str(weights), framework="pt", device="cpu") as handle:
            return {key: handle.get_tensor(key) for key in handle.keys()}, handle.metadata() or {}
    except SafetensorError as err:
        raise InputError(weights, f"not a readable safetensors file ({err})") from None


def build_with_weights(build, state: dict, source: str | Path, check) -> Any:
    """``build()`` with ``state`` as its weights, without initialising weights first.

    Building on the ``meta`` device allocates and initialises nothing; ``load_state_dict(assign=
    True)`` then makes the loaded tensors the parameters. A full model loads faster that
    way (bench/onnx_runtime.py). ``check(model, state, source)`` validates names and
    shapes first. Buffers a checkpoint does not hold (BatchNorm's step counters) are made
    real; anything else left on ``meta`` means the fast path does not fit this model, which is
    then built the ordinary way.
    """
    import torch

    with torch.device("meta"):
        model = build()
    check(model, state, source)
    model.load_state_dict(state, strict=False, assign=True)
    for name, buffer in list(model.named_buffers()):
        if buffer.is_meta and name.endswith("num_batches_tracked"):
            owner = model.get_submodule(name.rpartition(".")[0]) if "." in name else model
            owner.register_buffer("num_batches_tracked", torch.zeros((), dtype=torch.long))
    if any(t.is_meta for t in list(model.parameters()) + list(model.buffers())):
        model = build()
        model.load_state_dict(state, strict=False)
    return model


def load_state_strict(model, state: dict, source: str | Path) -> None:
    """``check_state_strict``, then load."""
    check_state_strict(model, state, source)
    model.load_state_dict(state, strict=False)


def check_state_strict(model, state: dict, source: str | Path) -> None:
    """Every parameter and buffer of ``model`` present with its shape (BatchNorm's step counter aside)."""
    expected = {key: tuple(value.shape) for key, value in model.state_dict().items()
                if not key.endswith("num_batches_tracked")}
    check_tensors(expected, state, source, getattr(getattr(model, "config", None), "arch", None))


def check_tensors(expected: dict[str, tuple[int, ...]], state: dict, source: str | Path, what: str | None = None,
                  ) -> None:
    """The one strict check of a weights file: exactly the ``expected`` names, each with its shape
    (BatchNorm's step counters aside); the first misfit is named. ``what`` (an architecture)
    says whose layout it is."""
    suffix = f" for {what}" if what else ""
    for key, shape in expected.items():
        if key not in state:
            raise InputError(source, f"missing tensor {key!r}{suffix}")
        if tuple(state[key].shape) != tuple(shape):
            raise InputError(source, f"tensor {key!r} has shape {tuple(state[key].shape)}, "
                                     f"{what or 'the model'} needs {tuple(shape)}")
    extra = sorted(set(state) - set(expected) - {k for k in state if k.endswith("num_batches_tracked")})
    if extra:
        raise InputError(source, f"unexpected tensor {extra[0]!r}{suffix}")


def weight_shapes(state: dict, ranks: dict[str, int], source: str | Path, what: str) -> dict[str, tuple[int, ...]]:
    """The shapes of the tensors a foreign checkpoint's sizes are read from, each checked to be
    present and a non-empty tensor of its rank (``ranks``: name -> 1, 2 or 4), so reading a
    size off a damaged file fails with one line rather than a traceback."""
    import torch

    shapes = {}
    for key, rank in ranks.items():
        if key not in state:
            raise InputError(source, f"missing tensor {key!r} for {what}")
        value = state[key]
        if not isinstance(value, torch.Tensor) or value.ndim != rank or 0 in value.shape:
            shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            kind = {1: "vector", 2: "linear weight", 3: "token", 4: "convolution weight"}[rank]
            raise InputError(source, f"tensor {key!r} is {shape}, {what} needs a {kind} there")
        shapes[key] = tuple(int(n) for n in value.shape)
    return shapes


def build_from_foreign_state(build, state: dict, mapping: dict[str, str], source: str | Path, what: str) -> Any:
    """``build()`` with the weights of a checkpoint whose tensors have other names.

    ``mapping`` takes each of the checkpoint's names to ours. The first tensor that does not
    fit is named as the checkpoint names it (missing, unexpected, not a tensor, wrong
    shape), so a user can find it in their file. BatchNorm's step counters are ignored.
    """
    import torch

    def counter(key: str) -> bool:
        return key.endswith("num_batches_tracked")

    for theirs in mapping:
        if theirs not in state and not counter(theirs):
            raise InputError(source, f"missing tensor {theirs!r} for {what}")
    for theirs in state:
        if theirs not in mapping and not counter(theirs):
            raise InputError(source, f"unexpected tensor {theirs!r} for {what}")
    with torch.device("meta"):
        expected = {key: tuple(value.shape) for key, value in build().state_dict().items()}
    renamed = {}
    for theirs, ours in mapping.items():
        if counter(theirs) or counter(ours):
            continue
        value = state[theirs]
        if not isinstance(value, torch.Tensor) or not value.is_floating_point():
            raise InputError(source, f"tensor {theirs!r} is not a floating-point tensor")
        if tuple(value.shape) != expected[ours]:
            raise InputError(source, f"tensor {theirs!r} has shape {tuple(value.shape)}, {what} needs {expected[ours]}")
        renamed[ours] = value.detach().to(torch.float32).contiguous()
    return build_with_weights(build, renamed, source, check_state_strict)
