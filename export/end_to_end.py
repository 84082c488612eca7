"""``speech2face.onnx`` and ``face2face.onnx``: the whole pipeline in one graph each.

    speech2face.onnx   waveform float32 [batch, samples] (16 kHz mono, any length >= 1)
    face2face.onnx     photo uint8 [height, width, 3] (RGB, any size; ONNX names are unique,
                       so the input cannot be called ``image`` like the output)
      -> image uint8 [batch, 224, 224, 3], landmarks float32 [batch, points, 2] (pixels),
         embedding float32 [batch, D]

Each is the preprocessing graph (``s2f.export.speech_graph``, ``s2f.export.face_graph``),
the bundle's encoder graph, its decoder graph and the texture -> uint8 image step, joined
under name prefixes. The weights are not copied: the encoder's and decoder's initializers
keep pointing into ``voice_encoder.onnx.data`` (or ``face_encoder.onnx.data``) and
``face_decoder.onnx.data``, so these graphs are a few MB and must sit in the same directory.

Before a graph is kept it is verified against the bundle's own two-stage path (numpy
preprocessing, then the encoder and decoder graphs): on synthetic speech (looped, cropped,
quiet, loud, silent) or photos of several sizes, plus the ``--verify-with`` files. The speech
graph is judged by the rounding rule (``s2f.core.agreement``): its features, and what the
models make of them, may be only a small factor further from the two-stage path than one
float32 rounding of every feature moves them, whatever the CPU.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import compose, helper

from s2f.core.agreement import RoundingRule, RoundingVerdict, compare
from s2f.core.errors import InputError
from s2f.export.face_graph import face_input
from s2f.export.graph_metadata import set_metadata
from s2f.export.onnx_builder import FLOAT, UINT8, GraphBuilder, tensor_info
from s2f.export.speech_graph import speech_features
from s2f.runtime.bundle.manifest import GRAPH_FILES, OPSET
from s2f.runtime.pipeline import (
    ALIGNED,
    OUTPUTS,
    decoder_output_names,
    graph_output_names,
    texture_to_image,
)
from s2f.runtime.preprocess.faces import FacePreprocessing, preprocess
from s2f.runtime.preprocess.voice_input import VoiceInputSpec

log = logging.getLogger(__name__)

SPEECH2FACE, FACE2FACE = GRAPH_FILES["speech2face"], GRAPH_FILES["face2face"]
IMAGE_LEVELS = 1  # 8-bit levels the image may differ by beyond what float32 features move it by
FACE_COSINE = 0.9999  # face2face: the graph's resize is float, OpenCV's is 11-bit fixed point


@dataclass
class EndToEndReport:
    """What verification measured (worst case over every input), stored in the manifest."""

    path: str
    inputs_checked: int = 0
    errors: dict[str, float] = field(default_factory=dict)
    verdicts: dict[str, RoundingVerdict] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """What the manifest records: each measure, and the rule's verdicts in full."""
        return {**self.errors, **{f"{name}_rule": verdict.to_dict() for name, verdict in self.verdicts.items()}}

    def worst(self, name: str, value: float, larger_is_worse: bool = True) -> None:
        old = self.errors.get(name)
        if old is None or (value > old if larger_is_worse else value < old):
            self.errors[name] = float(value)

    def summary(self) -> str:
        return f"{self.path}: verified on {self.inputs_checked} inputs, " + ", ".join(
            f"{name} {value:.7g}" if "cosine" in name else f"{name} {value:.3g}" for name, value in self.errors.items())


def _load_graph(path: Path, prefix: str) -> onnx.ModelProto:
    """The graph without its weights' bytes (they stay external), every name under ``prefix``."""
    model = onnx.load(str(path), load_external_data=False)
    return compose.add_prefix(model, prefix)


def _opsets(*models: onnx.ModelProto) -> list[Any]:
    versions: dict[str, int] = {"": 18}
    for model in models:
        for entry in model.opset_import:
            versions[entry.domain] = max(versions.get(entry.domain, 0), entry.version)
    return [helper.make_opsetid(domain, version) for domain, version in sorted(versions.items())]


def _to_image(g: GraphBuilder, texture: str, output: str) -> None:
    """N x 3 x H x W float -> N x H x W x 3 uint8, as ``texture_to_image`` does in numpy
    (round half to even, clip, channels last)."""
    scaled = g.op("Mul", g.op("Transpose", texture, perm=[0, 2, 3, 1]), g.scalar(255.0, np.float32))
    pixels = g.op("Clip", g.op("Round", scaled), g.scalar(0.0, np.float32), g.scalar(255.0, np.float32))
    g.op("Cast", pixels, to=UINT8, output=output)


def _decoder_outputs(g: GraphBuilder, decoder: str, aligned: bool) -> None:
    """The decoder's flat landmarks and float texture -> the graph's ``landmarks`` and ``image``
    (and ``aligned`` from a warping decoder's aligned texture)."""
    g.op("Reshape", f"{decoder}landmarks", g.ints(0, -1, 2), output="landmarks")
    _to_image(g, f"{decoder}texture", "image")
    if aligned:
        _to_image(g, f"{decoder}aligned_texture", ALIGNED)


def _prune(graph: onnx.GraphProto) -> None:
    """Drop nodes and initializers no output needs (the face encoder's class probabilities)."""
    needed = {output.name for output in graph.output}
    kept = []
    for node in reversed(graph.node):
        if any(name in needed for name in node.output):
            kept.append(node)
            needed.update(name for name in node.input if name)
    del graph.node[:]
    graph.node.extend(reversed(kept))
    initializers = [tensor for tensor in graph.initializer if tensor.name in needed]
    del graph.initializer[:]
    graph.initializer.extend(initializers)
    value_info = [info for info in graph.value_info if info.name in needed]
    del graph.value_info[:]
    graph.value_info.extend(value_info)


def compose_pipeline(name: str, preprocessing: GraphBuilder, features: str, graph_input: onnx.ValueInfoProto,
                     encoder_path: Path, decoder_path: Path, metadata: dict[str, Any]) -> onnx.ModelProto:
    """preprocessing -> encoder graph -> decoder graph -> uint8 image, as one model whose
    large initializers still point into the two graphs' ``.onnx.data`` files."""
    encoder = _load_graph(encoder_path, "encoder/")
    decoder = _load_graph(decoder_path, "decoder/")
    (encoder_input,) = [i.name for i in encoder.graph.input]
    preprocessing.op("Identity", features, output=encoder_input)
    joints = GraphBuilder(f"{name}/outputs")
    joints.op("Identity", "encoder/embedding", output="embedding")
    joints.op("Identity", "embedding", output="decoder/embedding")
    outputs = GraphBuilder(f"{name}/outputs")
    aligned = any(output.name == "decoder/aligned_texture" for output in decoder.graph.output)
    _decoder_outputs(outputs, "decoder/", aligned)
    parts = (preprocessing, encoder.graph, joints, decoder.graph, outputs)
    nodes = [node for part in parts for node in (part.nodes if isinstance(part, GraphBuilder) else part.node)]
    initializers = [t for part in parts for t in
                    (part.initializers if isinstance(part, GraphBuilder) else part.initializer)]
    dimension = encoder.graph.output[0].type.tensor_type.shape.dim[1].dim_value
    graph = helper.make_graph(nodes, name, [graph_input], [
        tensor_info("image", UINT8, ["batch", 224, 224, 3]),
        tensor_info("landmarks", FLOAT, ["batch", "points", 2]),
        tensor_info("embedding", FLOAT, ["batch", dimension]),
        *([tensor_info(ALIGNED, UINT8, ["batch", 224, 224, 3])] if aligned else [])], initializer=initializers)
    graph.value_info.extend(list(encoder.graph.value_info) + list(decoder.graph.value_info))
    _prune(graph)
    model = helper.make_model(graph, opset_imports=_opsets(encoder, decoder),
                              ir_version=max(encoder.ir_version, decoder.ir_version))
    set_metadata(model, metadata)
    return model


@contextmanager
def _kept_if_verified(model: onnx.ModelProto, path: Path) -> Iterator[Path]:
    """Write ``model`` under a hidden temporary name next to the weight files it points into
    (so onnxruntime can open it), yield that path for verification, and rename it to ``path``
    only if the block finishes; otherwise (a refusal, any error) nothing is left behind."""
    staged = path.with_name(f".{path.name}.unverified")
    try:
        staged.write_bytes(model.SerializeToString())
        os.chmod(staged, 0o644)
        onnx.checker.check_model(str(staged), full_check=True)
        yield staged
        os.replace(staged, path)
    finally:
        staged.unlink(missing_ok=True)


def _session(graph: Path | onnx.ModelProto):
    """A CPU session on a graph file (weights beside it) or an in-memory graph."""
    import onnxruntime as ort

    source = graph.SerializeToString() if isinstance(graph, onnx.ModelProto) else str(graph)
    return ort.InferenceSession(source, providers=["CPUExecutionProvider"])


def _relative(ours: np.ndarray, theirs: np.ndarray) -> float:
    return compare(theirs, ours).max_relative


def synthetic_speech(seconds: float, sample_rate: int = 16000, seed: int = 0, level: float = 0.3) -> np.ndarray:
    """A voiced, formant-shaped harmonic signal with syllable rhythm and breath noise
    (vectorised: verification runs it for every export)."""
    rng = np.random.default_rng(seed)
    n = max(int(seconds * sample_rate), 1)
    t = np.arange(n) / sample_rate
    f0 = (110 + 40 * rng.random()) * (1 + 0.08 * np.sin(2 * np.pi * (0.5 + rng.random()) * t))
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate
    harmonics = np.arange(1, 30)
    formants = np.array([700.0, 1220.0, 2600.0]) * (0.9 + 0.2 * rng.random(3))
    gain = sum(1.0 / (1.0 + ((harmonics[None, :] * f0.mean() - f) / 120.0) ** 2) for f in formants)
    voiced = (np.sin(phase[:, None] * harmonics[None, :]) * gain).sum(axis=1)
    syllables = 0.5 * (1 + np.sin(2 * np.pi * (3 + 2 * rng.random()) * t)) ** 2
    signal = voiced * syllables + 0.02 * np.abs(voiced).max() * rng.standard_normal(n)
    return (level * signal / np.max(np.abs(signal))).astype(np.float32)


def speech_verification_clips(spec: VoiceInputSpec) -> list[np.ndarray]:
    """Looped (0.7 s), exact, cropped (1.5x), quiet, loud (the gain is limited by the peak)
    and silent clips, plus white noise."""
    seconds = spec.seconds
    rate = spec.sample_rate
    return [synthetic_speech(0.7, rate, seed=1), synthetic_speech(seconds, rate, seed=2),
            synthetic_speech(1.5 * seconds, rate, seed=3), synthetic_speech(2.1, rate, seed=4, level=0.001),
            synthetic_speech(1.3, rate, seed=5, level=1.0) * np.float32(0.999),
            np.zeros(int(0.5 * rate), np.float32),
            (np.random.default_rng(6).standard_normal(int(0.9 * rate)) * 0.1).astype(np.float32)]


def features_model(spec: VoiceInputSpec) -> onnx.ModelProto:
    """The preprocessing part of ``speech2face.onnx`` alone (waveform -> features), to check
    the features themselves against numpy."""
    g = GraphBuilder("speech2face/features")
    g.op("Identity", speech_features(g, "waveform", spec), output="features")
    rank = 4 if spec.encoder == "ve_conv" else 3
    graph = g.graph("features", [tensor_info("waveform", FLOAT, ["batch", "samples"])],
                    [tensor_info("features", FLOAT, ["batch"] + [f"d{i}" for i in range(1, rank)])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=10)


def _check(report: EndToEndReport, path: Path, name: str, value: float, limit: float, above: bool = True) -> None:
    report.worst(name, value, larger_is_worse=above)
    if (value > limit) if above else (value < limit):
        raise InputError(path, f"export refused: {name} is {value:.3g} against the two-stage path "
                               f"({'limit' if above else 'at least'} {limit:g})")


def _check_rounding(report: EndToEndReport, path: Path, name: str, verdict: RoundingVerdict) -> None:
    """Keep the verdict with the least margin; refuse the graph when ``verdict`` misses."""
    old = report.verdicts.get(name)
    if old is None or verdict.error / verdict.allowed > old.error / old.allowed:
        report.verdicts[name] = verdict
        report.errors[name] = verdict.error
    if not verdict.passed:
        raise InputError(path, f"export refused: the graph's {name} is {verdict} against the two-stage path on "
                               "float64 features")


def one_rounding_away(features: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``features`` with each value moved by one float32 rounding (relative 2^-23, random sign):
    the yardstick of how far float32 alone can move a model's outputs."""
    step = np.float64(np.finfo(np.float32).eps) * rng.choice([-1.0, 1.0], features.shape)
    return (features.astype(np.float64) * (1.0 + step)).astype(np.float32)


def _levels(image: np.ndarray, reference: np.ndarray) -> int:
    return int(np.abs(image.astype(np.int16) - reference.astype(np.int16)).max())


class _TwoStage:
    """The bundle's own encoder and decoder graphs, fed features computed apart."""

    def __init__(self, encoder, decoder) -> None:
        self.encoder, self.decoder = encoder, decoder
        self.encoder_input = encoder.get_inputs()[0].name

    def __call__(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
        """features -> (embedding, flat landmarks, uint8 images: the face, and the aligned one)."""
        (embedding,) = self.encoder.run(["embedding"], {self.encoder_input: features})
        landmarks, *textures = self.decoder.run(decoder_output_names(self.decoder), {"embedding": embedding})
        return embedding, landmarks, [np.stack([texture_to_image(t) for t in texture]) for texture in textures]


def export_speech_to_face(bundle_dir: Path, voice_encoder: str, face_decoder: str, spec: VoiceInputSpec,
                          real_clips: list[np.ndarray] | None = None,
                          rule: RoundingRule | None = None) -> EndToEndReport:
    """Write ``bundle_dir/speech2face.onnx`` once verified; the bundle's voice encoder and
    decoder graphs (file names given) must already be there.

    The two-stage path is fed numpy's features (computed in float64, stored in float32). Each
    output (features, embedding, landmarks) is judged by ``rule`` against the model's own
    sensitivity: what moving every feature by one float32 rounding (a relative 2^-23, random
    sign) does to it through the same encoder and decoder graphs. The graph computes its
    features in float64, as numpy does, so they must be as exact as float32 storage allows;
    the face may differ from the two-stage path's by one 8-bit level more than that
    perturbation moves it."""
    rule = rule or RoundingRule()
    path = bundle_dir / SPEECH2FACE
    g = GraphBuilder("speech2face/preprocessing")
    features = speech_features(g, "waveform", spec)
    metadata = {"model_type": "speech2face", "inputs": {"waveform": ["batch", "samples"]}, "outputs": OUTPUTS,
                "preprocessing": spec.to_dict(), "opset": OPSET,
                "components": [voice_encoder, face_decoder]}
    model = compose_pipeline("speech2face", g, features, tensor_info("waveform", FLOAT, ["batch", "samples"]),
                             bundle_dir / voice_encoder, bundle_dir / face_decoder, metadata)
    report = EndToEndReport(str(path))
    with _kept_if_verified(model, path) as staged:
        end_to_end = _session(staged)
        feature_graph = _session(features_model(spec))
        two_stage = _TwoStage(_session(bundle_dir / voice_encoder), _session(bundle_dir / face_decoder))
        clips = speech_verification_clips(spec) + list(real_clips or [])
        same_length = [synthetic_speech(1.1, spec.sample_rate, seed=10 + i) for i in range(3)]
        signs = np.random.default_rng(0)
        for batch in [clip[None] for clip in clips] + [np.stack([*same_length])]:
            exact = np.stack([spec.features(row) for row in batch])
            single = one_rounding_away(exact, signs)
            (graph_features,) = feature_graph.run(None, {"waveform": batch})
            _check_rounding(report, path, "features", rule.judge(_relative(graph_features, exact),
                                                                  _relative(single, exact)))
            embedding, landmarks, images = two_stage(exact)
            single_embedding, single_landmarks, single_images = two_stage(single)
            image, graph_landmarks, graph_embedding, *graph_aligned = end_to_end.run(
                graph_output_names(end_to_end), {"waveform": batch})
            _check_rounding(report, path, "embedding", rule.judge(_relative(graph_embedding, embedding),
                                                                   _relative(single_embedding, embedding)))
            _check_rounding(report, path, "landmarks", rule.judge(
                _relative(graph_landmarks.reshape(landmarks.shape), landmarks), _relative(single_landmarks, landmarks)))
            for name, ours, theirs, float32_path in zip(("image_levels", "aligned_levels"), [image, *graph_aligned],
                                                        images, single_images, strict=False):
                _check(report, path, name, float(_levels(ours, theirs)), IMAGE_LEVELS + _levels(float32_path, theirs))
            report.inputs_checked += len(batch)
    return report


def face_verification_images(seed: int = 0) -> list[np.ndarray]:
    """Smooth random "photos" of several shapes (portrait, landscape, small, large, square)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    images = []
    for height, width in ((300, 200), (97, 131), (480, 640), (224, 224), (1000, 760)):
        coarse = rng.integers(0, 256, (max(height // 12, 2), max(width // 12, 2), 3), dtype=np.uint8)
        images.append(np.asarray(Image.fromarray(coarse).resize((width, height), Image.BICUBIC)))
    return images


def export_face_to_face(bundle_dir: Path, face_encoder: str, face_decoder: str, spec: FacePreprocessing,
                        real_photos: list[np.ndarray] | None = None) -> EndToEndReport:
    """Write ``bundle_dir/face2face.onnx`` once verified (embedding cosine to the numpy path)."""
    path = bundle_dir / FACE2FACE
    g = GraphBuilder("face2face/preprocessing")
    features = face_input(g, "photo", spec)
    from dataclasses import asdict

    metadata = {"model_type": "face2face", "inputs": {"photo": ["height", "width", 3]}, "outputs": OUTPUTS,
                "preprocessing": asdict(spec), "opset": OPSET, "components": [face_encoder, face_decoder]}
    model = compose_pipeline("face2face", g, features, tensor_info("photo", UINT8, ["height", "width", 3]),
                             bundle_dir / face_encoder, bundle_dir / face_decoder, metadata)
    report = EndToEndReport(str(path))
    with _kept_if_verified(model, path) as staged:
        end_to_end = _session(staged)
        encoder, decoder = _session(bundle_dir / face_encoder), _session(bundle_dir / face_decoder)
        for photo in face_verification_images() + list(real_photos or []):
            (embedding,) = encoder.run(["embedding"], {"image": preprocess(photo, spec)})
            landmarks, *textures = decoder.run(decoder_output_names(decoder), {"embedding": embedding})
            image, graph_landmarks, graph_embedding, *graph_aligned = end_to_end.run(
                graph_output_names(end_to_end), {"photo": photo})
            ours, theirs = graph_embedding[0].astype(np.float64), embedding[0].astype(np.float64)
            cosine = compare(theirs[None], ours[None]).min_cosine
            _check(report, path, "embedding_cosine", cosine, FACE_COSINE, above=False)
            for name, ours, texture in zip(("image_levels", "aligned_levels"), [image, *graph_aligned], textures,
                                           strict=False):
                report.worst(name, float(np.abs(ours[0].astype(np.int16) - texture_to_image(texture[0])).max()))
            report.inputs_checked += 1
    return report


def external_weight_files(path: Path) -> list[str]:
    """The ``.onnx.data`` files an end-to-end graph reads its weights from."""
    model = onnx.load(str(path), load_external_data=False)
    return sorted({entry.value for tensor in model.graph.initializer
                   if tensor.data_location == onnx.TensorProto.EXTERNAL
                   for entry in tensor.external_data if entry.key == "location"})



def graph_outputs(path: Path) -> list[str]:
    """The output names of a graph file (without reading its weights)."""
    return [output.name for output in onnx.load(str(path), load_external_data=False).graph.output]
