"""The bundle's ``manifest.json``: its schema as dataclasses, which export writes and the
runtime reads, and the check of every field when a bundle opens.

We wrote the manifest, but it comes back as an untrusted file: edited by hand, truncated,
or made by someone else. Its sha256 entries protect the graphs, not the manifest itself, so
each field is checked for type and range here, and a bad one is refused with one line naming
the field (``files.voice_encoder.onnx.bytes``), before anything is allocated or loaded.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from s2f.core.errors import InputError

GRAPH_PRECISIONS = ("fp32", "fp16", "int8")  # how a bundle's graphs may be stored (bf16 is an engine's choice)
MANIFEST = "manifest.json"
SIGNATURE = "model.sig"  # model-signing's default name; covers every other file of the bundle
BUNDLE_FORMAT = 3  # 2 adds the end-to-end graphs, whose "weights" list two files; 3 the probe
SUPPORTED_FORMATS = (1, 2, 3)
OPSET = 18  # every graph of a bundle
# each graph's role and its file (its weights: the same name + ".data")
GRAPH_FILES = {"voice_encoder": "voice_encoder.onnx", "face_decoder": "face_decoder.onnx",
               "face_encoder": "face_encoder.onnx", "speech2face": "speech2face.onnx", "face2face": "face2face.onnx"}
GRAPH_ROLES = tuple(GRAPH_FILES)
MODEL_ROLES = ("voice_encoder", "face_decoder", "face_encoder")  # the per-model graphs; the rest are end-to-end


@dataclass
class FileEntry:
    """One file of the bundle: a graph (``role`` one of ``GRAPH_ROLES``, with its interface)
    or a graph's weights (``role`` "<role> weights", only sha256 and size), or the probe
    (``role`` "probe", ``s2f.runtime.engines.probe``)."""

    role: str
    sha256: str
    bytes: int
    precision: str | None = None
    weights: str | list[str] | None = None  # an end-to-end graph reads two models' weights
    model_type: str | None = None
    inputs: dict[str, Any] | None = None
    outputs: list[str] | None = None
    onnxruntime_fusions: dict[str, int] | None = None
    embedding_dim: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}

    @property
    def weight_files(self) -> list[str]:
        return [] if self.weights is None else list(self.weights) if isinstance(self.weights, list) else [self.weights]


@dataclass
class BundleManifest:
    """Everything the runtime needs besides the graphs: the files, how to prepare inputs, and
    what export measured."""

    files: dict[str, FileEntry]
    voice_input: dict[str, Any]
    versions: dict[str, str] = field(default_factory=dict)
    format: int = BUNDLE_FORMAT
    face_input: dict[str, Any] | None = None
    face_encoder_arch: str | None = None
    texture: dict[str, Any] | None = None
    # per graph and output: the float32 graph's relative distance to PyTorch float64, PyTorch
    # float32's, and what the rule allowed; the rule, and the CPU it was measured on
    verification: dict[str, Any] = field(default_factory=dict)
    verification_rule: dict[str, float] | None = None
    verified_on: dict[str, Any] | None = None
    verified_with: list[str] = field(default_factory=list)
    verification_fp16: dict[str, Any] | None = None
    verification_int8_cosine: dict[str, Any] | None = None
    verification_end_to_end: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, dict[str, str]] = field(default_factory=dict)  # where non-speech2face weights came from

    def to_dict(self) -> dict[str, Any]:
        """The JSON object, in the order a reader expects (format first)."""
        values = {spec.name: getattr(self, spec.name) for spec in dataclasses.fields(self)}
        values["files"] = {name: entry.to_dict() for name, entry in self.files.items()}
        order = ("format", "versions", "files")
        return {**{key: values[key] for key in order}, **{k: v for k, v in values.items() if k not in order}}

    @classmethod
    def parse(cls, path: Path, raw: Any) -> BundleManifest:
        """The manifest read from ``path``, every field the runtime uses checked first."""
        validate_manifest(path, raw)
        known = {spec.name for spec in dataclasses.fields(cls)}
        entry_fields = {spec.name for spec in dataclasses.fields(FileEntry)}
        files = {name: FileEntry(**{k: v for k, v in entry.items() if k in entry_fields})
                 for name, entry in raw["files"].items()}
        return cls(**{**{k: v for k, v in raw.items() if k in known}, "files": files})

    def path_of(self, role: str, precision: str = "fp32") -> str | None:
        """The file name of ``role``'s graph at ``precision``, or None."""
        for name, entry in self.files.items():
            if entry.role == role and (entry.precision or "fp32") == precision:
                return name
        return None
MAX_SECONDS = 600.0  # ten minutes of audio per clip: far beyond any model here, far below a runaway allocation
MAX_SAMPLE_RATE = 384_000
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class _Fields:
    """Typed reads from one JSON object, each failure naming the manifest and the field."""

    def __init__(self, path: Path, values: Any, where: str) -> None:
        if not isinstance(values, dict):
            raise InputError(path, f"field {where or 'manifest'!r} must be a JSON object, got {_kind(values)}")
        self.path, self.values, self.where = path, values, where

    def _name(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def fail(self, key: str, problem: str) -> InputError:
        return InputError(self.path, f"field {self._name(key)!r} {problem}")

    def get(self, key: str, required: bool = True) -> Any:
        if key not in self.values:
            if required:
                raise self.fail(key, "is missing")
            return None
        return self.values[key]

    def text(self, key: str, choices: tuple[str, ...] | None = None, required: bool = True) -> str | None:
        value = self.get(key, required)
        if value is None and not required:
            return None
        if not isinstance(value, str):
            raise self.fail(key, f"must be text, got {_kind(value)}")
        if choices is not None and value not in choices:
            raise self.fail(key, f"must be one of {', '.join(choices)}, got {value!r}")
        return value

    def number(self, key: str, low: float, high: float, integer: bool = False, low_open: bool = False) -> float:
        value = self.get(key)
        kinds = (int,) if integer else (int, float)
        if isinstance(value, bool) or not isinstance(value, kinds) or not math.isfinite(value):
            raise self.fail(key, f"must be {'an integer' if integer else 'a number'}, got {_kind(value)}")
        if value < low or value > high or (low_open and value == low):
            raise self.fail(key, f"must be in {'(' if low_open else '['}{low:g}, {high:g}], got {value!r}")
        return value

    def child(self, key: str, required: bool = True) -> _Fields | None:
        value = self.get(key, required)
        if value is None and not required:
            return None
        return _Fields(self.path, value, self._name(key))


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__.replace("dict", "object").replace("str", "text")


def validate_manifest(path: Path, manifest: Any) -> dict[str, Any]:
    """The manifest, checked; raises ``InputError`` naming the first bad field."""
    top = _Fields(path, manifest, "")
    if top.get("format") not in SUPPORTED_FORMATS:
        raise top.fail("format", f"is {top.get('format')!r}; this runtime reads bundle format "
                                 f"{', '.join(map(str, SUPPORTED_FORMATS))}")
    _check_files(path, top.child("files"))
    _check_voice_input(path, top.child("voice_input"))
    if top.values.get("face_input") is not None:
        _check_face_input(path, top.child("face_input"))
    sources = top.child("sources", required=False)  # bundles before format 2's provenance have none
    for role in (sources.values if sources is not None else ()):
        source = sources.child(role)
        for key in source.values:
            source.text(key)
    return manifest


def _check_files(path: Path, files: _Fields) -> None:
    if not files.values:
        raise InputError(path, "field 'files' lists no files")
    dims: dict[str, int] = {}
    for name in files.values:
        if not isinstance(name, str) or Path(name).name != name or name in (".", "..") or name.startswith("."):
            raise InputError(path, f"refuses file name {name!r} outside the bundle")
        entry = files.child(name)
        entry.number("bytes", 0, 2**50, integer=True)
        if not _SHA256.match(entry.text("sha256")):
            raise entry.fail("sha256", "must be 64 lowercase hex digits")
        role = entry.text("role")
        if role.endswith(" weights") or role == "probe":  # data, not a graph (s2f.runtime.engines.probe)
            continue
        if role not in GRAPH_ROLES:
            raise entry.fail("role", f"must be one of {', '.join(GRAPH_ROLES)} (or '<role> weights'), got {role!r}")
        entry.text("precision", GRAPH_PRECISIONS, required=False)
        for weights in weight_files(entry.values):
            if not isinstance(weights, str):
                raise entry.fail("weights", f"must be a file name or a list of them, got {_kind(weights)}")
            if weights not in files.values:
                raise entry.fail("weights", f"names {weights!r}, which the manifest does not list")
        if "embedding_dim" in entry.values:
            dims[f"{name} ({role})"] = int(entry.number("embedding_dim", 1, 1 << 20, integer=True))
    if len(set(dims.values())) > 1:
        raise InputError(path, "the graphs disagree on the embedding size (field 'embedding_dim': "
                               + ", ".join(f"{graph} {dim}" for graph, dim in dims.items())
                               + "): the encoder does not fit the decoder")


def _check_voice_input(path: Path, voice: _Fields) -> None:
    from s2f.runtime.preprocess.voice_input import AUDIO_STEPS, ENCODERS, VE_VARIANTS, VoiceInputSpec

    voice.text("encoder", ENCODERS)
    voice.text("variant", VE_VARIANTS)
    voice.number("seconds", 0, MAX_SECONDS, low_open=True)
    voice.number("sample_rate", 1, MAX_SAMPLE_RATE, integer=True)
    voice.number("target_dbfs", -120, 0)
    voice.number("mean", -1e6, 1e6)
    voice.number("std", 0, 1e6, low_open=True)
    voice.text("audio_steps", AUDIO_STEPS, required=False)
    try:
        VoiceInputSpec.from_dict(voice.values)
    except (TypeError, ValueError) as err:
        raise InputError(path, f"field 'voice_input': {err}") from None


def _check_face_input(path: Path, face: _Fields) -> None:
    from s2f.runtime.preprocess.faces import FacePreprocessing

    face.text("name")
    face.text("resize", ("letterbox-bilinear", "stretch-nearest"))
    face.text("channel_order", ("RGB", "BGR"))
    face.number("divide_by", 0, 1e6, low_open=True)
    face.number("size", 1, 4096, integer=True)
    mean = face.get("mean")
    if not (isinstance(mean, list) and len(mean) == 3 and all(
            isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in mean)):
        raise face.fail("mean", "must be a list of three numbers")
    try:
        FacePreprocessing(**{**face.values, "mean": tuple(mean)})
    except TypeError as err:
        raise InputError(path, f"field 'face_input': {err}") from None


def weight_files(entry: dict[str, Any]) -> list[Any]:
    """The weight files a graph entry names: one for a model's graph, two for an end-to-end
    graph (its encoder's and its decoder's ``.onnx.data``)."""
    weights = entry.get("weights")
    if weights is None:
        return []
    return list(weights) if isinstance(weights, list) else [weights]


def face_preprocessing(manifest: BundleManifest):
    """The face encoder's input convention recorded in a validated manifest, or None."""
    from s2f.runtime.preprocess.faces import FacePreprocessing

    face = manifest.face_input
    return None if face is None else FacePreprocessing(**{**face, "mean": tuple(face["mean"])})
