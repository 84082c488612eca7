"""``s2f-runtime scorecard``: the SF2F scorecard (``s2f.runtime.evaluate.scorecard``) of an exported
bundle on a raw corpus, with onnxruntime alone, so anyone can score a bundle they were given.

The faces are generated exactly as ``s2f-runtime speech2face`` and ``face2face`` generate
them; the real faces are the photos in the decoder's 224x224 frame, as the result grid shows
them. The default judge is the bundle's own face encoder graph on its own preprocessing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from s2f.core.errors import InputError
from s2f.core.progress import progress_bar
from s2f.core.splits import PARTS as SPLIT_PARTS
from s2f.core.splits import read_split
from s2f.runtime.engines.options import RunOptions
from s2f.runtime.evaluate.corpus import read_corpus
from s2f.runtime.evaluate.scorecard import Embedder, ScorecardInputs, gallery_entries

log = logging.getLogger(__name__)


def bundle_judge(pipeline, batch_size: int = 16) -> Embedder:
    """The bundle's face encoder graph as an ``Embedder`` (numpy preprocessing from its manifest)."""
    from s2f.runtime.engines.onnxruntime import create_session
    from s2f.runtime.preprocess.faces import preprocess

    (path,) = pipeline.bundle.require("face_encoder")
    session = create_session(path, pipeline.device)
    spec = pipeline.preprocessing

    def embed(images: list[np.ndarray]) -> np.ndarray:
        outputs = []
        for start in range(0, len(images), batch_size):
            (embedding,) = session.run(["embedding"], {"image": preprocess(images[start:start + batch_size], spec)})
            outputs.append(embedding)
        return np.concatenate(outputs)

    return embed


def collect_bundle_inputs(bundle: Path, corpus: Path, identities: list[str] | None, judge: Embedder | None,
                          options: RunOptions | None = None, max_clips: int | None = None, batch_size: int = 8,
                          ) -> tuple[ScorecardInputs, list[list[np.ndarray]]]:
    """Judge embeddings of every photo and of the faces generated from every clip and photo of
    ``identities`` (all of the corpus when None); plus one grid row per identity."""
    from s2f.runtime.pipeline import FaceToFace, SpeechToFace, original

    options = replace(options or RunOptions(), prepack=False)  # one pass over the corpus: open fast
    face_to_face = FaceToFace(bundle, options)
    speech_to_face = SpeechToFace(face_to_face.bundle, options)
    judge = judge or bundle_judge(face_to_face)
    people = read_corpus(corpus, identities)
    if identities is not None and len(people) < len(identities):
        log.warning("%d of the %d identities have no clip or no photo and are left out",
                    len(identities) - len(people), len(identities))
    real_images, from_faces, face_embeddings, face_identity = [], [], [], []
    from_voices, voice_embeddings, clip_identity = [], [], []
    rows = []
    total = sum(len(p.photos) + len(p.clips[:max_clips]) for p in people)
    with progress_bar(total=total, desc="scorecard", unit="file") as bar:
        for index, person in enumerate(people):
            for photo in person.photos:
                face = face_to_face.generate_from_file(photo)
                real_images.append(original(photo))
                from_faces.append(face.image)
                face_embeddings.append(face.embedding)
                face_identity.append(index)
                bar.update()
            clips = person.clips[:max_clips]
            for start in range(0, len(clips), batch_size):
                chunk = clips[start:start + batch_size]
                for face in speech_to_face.generate_batch([speech_to_face.prepare_file(c) for c in chunk]):
                    from_voices.append(face.image)
                    voice_embeddings.append(face.embedding)
                    clip_identity.append(index)
                bar.update(len(chunk))
            rows.append([real_images[-len(person.photos)], from_faces[-len(person.photos)],
                         from_voices[-len(clips)]])
    face_identity, clip_identity = np.array(face_identity), np.array(clip_identity)
    inputs = ScorecardInputs(
        identities=[p.name for p in people], real=judge(real_images), real_identity=face_identity,
        queries={"speech_to_face": (judge(from_voices), clip_identity),
                 "face_to_face": (judge(from_faces), face_identity),
                 "voice_embedding": (np.stack(voice_embeddings), clip_identity)},
        voice_gallery=gallery_entries(np.stack(face_embeddings), face_identity, len(people)))
    return inputs, rows


@dataclass
class ScoreConfig:
    """Args:
        corpus: identity folders with audios/ and images/.
        output: JSON report (.png and _grid.png beside).
        bundle: directory from 's2f export bundle'.
        split: split JSON: score its --part identities (default: all).
        part: which part of the split.
        max_clips: clips per identity (default: all).
        judge: a face-recognition ONNX graph as the judge (default: the bundle's face encoder).
        judge_input: the judge's input convention (``JudgeInput``).
        run: how the bundle runs (``RunOptions``).
    """

    corpus: Path = field(metadata={"positional": True})
    output: Path = field(metadata={"short": "-o"})
    bundle: Path
    split: Path | None = None
    part: str = field(default="test", metadata={"choices": SPLIT_PARTS})
    max_clips: int | None = None
    judge: Path | None = None
    judge_input: Any = None  # a JudgeInput (its flags are add_judge_flags')
    run: RunOptions = field(default_factory=RunOptions)

    def __post_init__(self) -> None:
        if self.part not in SPLIT_PARTS:
            raise InputError(self.split, f"a split file has the parts {', '.join(SPLIT_PARTS)}, not {self.part!r}")


def score_bundle(config: ScoreConfig) -> dict[str, Any]:
    """Write the JSON report, the recall-curve PNG beside it and the result grid; return the report."""

    from s2f.runtime.evaluate.grid import save_face_grid
    from s2f.runtime.evaluate.scorecard import JudgeInput, onnx_judge, plot_recall_curve, save_report, scorecard

    identities = None
    if config.split is not None:
        identities = read_split(config.split)[config.part]
    judge = config.judge
    embedder = onnx_judge(judge, config.judge_input or JudgeInput(), config.run.device) if judge else None
    inputs, rows = collect_bundle_inputs(Path(config.bundle), Path(config.corpus), identities, embedder, config.run,
                                         config.max_clips)
    report = scorecard(inputs, Path(judge).name if judge else "the bundle's face encoder")
    output = Path(config.output)
    report.update(bundle=str(config.bundle), corpus=str(config.corpus), part=config.part if config.split else "all",
                  curve=str(output.with_suffix(".png")), grid=str(output.with_name(output.stem + "_grid.png")))
    save_face_grid(report["grid"], rows[:8], ["original", "face->face", "speech->face"])
    plot_recall_curve(report, report["curve"])
    save_report(report, output)
    return report
