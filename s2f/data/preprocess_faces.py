"""``s2f preprocess faces``: every face photo under DATA_DIR -> at the mirrored path under
OUT_DIR, ``<stem>_target.npy`` (the decoder's 224x224 uint8 target), ``<stem>_landmarks.npy``
(on that target) and ``<stem>_embedding.npy`` (the face encoder's descriptor); then, once
every face has its landmarks, ``<stem>_aligned.npy`` (``s2f.data.align_faces``).

Decoding, resizing and landmark detection run in worker processes; the face encoder runs in
this process on batches, so torch's own threads use the cores for the heavy part.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from s2f.core.errors import InputError
from s2f.core.shards import WHOLE, Shard
from s2f.data.jobs import FileJob, JobOptions, ListedJobs, RunReport, run_jobs, save_array
from s2f.data.landmarks import LANDMARK_MODES, LandmarkDetector, NoFaceFound
from s2f.data.layout import (
    EMBEDDING_SUFFIX,
    FACE_REPORT,
    FACE_SETTINGS,
    LANDMARKS_SUFFIX,
    TARGET_SUFFIX,
    require_dir,
    shard_report_name,
)
from s2f.data.settings import claim_settings
from s2f.runtime.preprocess.faces import INPUT_SIZE, decoder_target, preprocess
from s2f.runtime.preprocess.images import IMAGE_SUFFIXES, load_face

log = logging.getLogger(__name__)
_worker: dict = {}


def detector_for(landmarks: str) -> LandmarkDetector | None:
    return LandmarkDetector(68 if landmarks == "dlib68" else 72) if landmarks.startswith("dlib") else None


def _init_worker(preprocessing: str, landmarks: str) -> None:
    _worker.update(preprocessing=preprocessing, landmarks=landmarks)
    _worker["detector"] = detector_for(landmarks)


def given_landmarks(source: Path, image_shape: tuple[int, ...]) -> np.ndarray:
    """``<stem>_landmarks.npy`` beside the photo (ground truth, e.g. the synthetic corpus), in
    the photo's pixels -> the 224x224 target's pixels."""
    path = source.with_name(source.stem + LANDMARKS_SUFFIX)
    if not path.is_file():
        raise InputError(source, f"--landmarks given, but {path.name} is missing")
    try:
        points = np.load(path, allow_pickle=False).astype(np.float32).reshape(-1, 2)
    except (OSError, ValueError) as err:
        raise InputError(path, f"not a landmarks array ({err})") from None
    if points.shape[0] not in (68, 72) or not np.isfinite(points).all():
        raise InputError(path, f"expected 68 or 72 finite (x, y) points, got {points.shape[0]}")
    height, width = image_shape[:2]
    return (points * np.array([INPUT_SIZE / width, INPUT_SIZE / height], np.float32)).reshape(-1)


NO_LANDMARKS = ("--landmarks none: the face decoder learns from landmarks (its landmark head and loss), so faces "
                "preprocessed without them could not train it; use dlib72 (the original's 72 points), dlib68 "
                "(dlib's own) or given (<stem>_landmarks.npy beside each photo)")


def _process(job: FileJob) -> np.ndarray:
    image = load_face(job.source)
    target = decoder_target(image)
    try:
        if _worker["landmarks"] == "given":
            points = given_landmarks(job.source, image.shape)
        else:
            points = _worker["detector"](target)
    except NoFaceFound as err:
        raise InputError(job.source, str(err)) from None
    save_array(job.outputs[2], points)
    save_array(job.outputs[1], target)
    return preprocess(image, _worker["preprocessing"])[0]


def face_jobs(data_dir: Path, out_dir: Path, shard: Shard = WHOLE) -> ListedJobs:
    def job_for(name: str) -> FileJob:
        base = f"{out_dir / name.rpartition('.')[0]}"
        return FileJob(data_dir / name, (Path(base + EMBEDDING_SUFFIX), Path(base + TARGET_SUFFIX),
                                         Path(base + LANDMARKS_SUFFIX)))

    return ListedJobs(data_dir, IMAGE_SUFFIXES, job_for, shard)


@dataclass(kw_only=True)
class FacePreprocessing:
    """``s2f preprocess faces``.

    Args:
        data_dir: the corpus: <identity>/images/ with the photos.
        out_dir: where the arrays go, mirroring DATA_DIR.
        face_encoder: converted face encoder (.safetensors from 's2f convert', or a save_pretrained dir).
        landmarks: dlib72: the original's 72 points (dlib's 68 with four lip points repeated); dlib68: dlib's own
            68; given: <stem>_landmarks.npy beside each photo. The decoder trains on whichever count the data has
            ('none' is refused: the decoder needs landmarks).
        batch_size: faces per face-encoder batch.
        device: auto (CUDA if present; under torchrun, the process's own GPU), cpu or cuda.
        split: split JSON ('s2f data split'): the aligned textures' mean landmarks come from its training
            identities (default: every face).
        jobs: how the run over the files runs.
    """

    data_dir: Path = field(metadata={"positional": True})
    out_dir: Path = field(metadata={"positional": True})
    face_encoder: Path
    landmarks: str = field(default="dlib72", metadata={"choices": (*LANDMARK_MODES, "none")})
    batch_size: int = 32
    device: str = "auto"
    split: Path | None = None
    jobs: JobOptions = field(default_factory=JobOptions)

    def __post_init__(self) -> None:
        if self.landmarks == "none":
            raise InputError(None, NO_LANDMARKS)
        if self.landmarks not in LANDMARK_MODES:
            raise InputError(None, f"--landmarks must be one of {', '.join(LANDMARK_MODES)}, got {self.landmarks!r}")
        if self.batch_size < 1:
            raise InputError(None, f"--batch-size must be at least 1, got {self.batch_size}")

    def torch_device(self) -> str:
        """``auto``: CUDA when there is one; under torchrun each process takes its node's GPU."""
        import os

        import torch

        device = self.device
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if device == "cuda" and "LOCAL_RANK" in os.environ:
            device = f"cuda:{int(os.environ['LOCAL_RANK'])}"
        return device


def preprocess_faces(config: FacePreprocessing) -> RunReport:
    """Every photo of this process's shard -> its embedding, target and landmarks; with every
    shard done, the aligned textures (their mean landmarks from the split's training part)."""
    import torch

    from s2f.core.splits import read_split
    from s2f.models.face_encoder import load_face_encoder

    data_dir, out_dir, face_encoder = Path(config.data_dir), Path(config.out_dir), config.face_encoder
    landmarks, batch_size = config.landmarks, config.batch_size
    overwrite, shard = config.jobs.overwrite, config.jobs.resolved_shard()
    split = read_split(config.split)
    train_identities = split["train"] if split else None
    require_dir(data_dir)
    jobs = face_jobs(data_dir, out_dir, shard)
    if not jobs.files:
        raise InputError(data_dir, f"no images found (looked for {', '.join(sorted(IMAGE_SUFFIXES))})")
    device = config.torch_device()
    model = load_face_encoder(face_encoder, device)
    arch = model.config.arch
    detector_for(landmarks)  # fail here, once, if dlib is missing
    settings = {"kind": "face_features", "arch": arch, "face_encoder": Path(face_encoder).name,
                "landmarks": landmarks, "target_size": INPUT_SIZE}
    claim_settings(out_dir / FACE_SETTINGS, settings, overwrite)
    report = RunReport("preprocess faces", settings)
    pending: list[tuple[FileJob, np.ndarray]] = []

    def flush() -> None:
        with torch.inference_mode():
            batch = torch.from_numpy(np.stack([array for _, array in pending])).to(device)
            embeddings = model.embed(batch).float().cpu().numpy()
        for (job, _), embedding in zip(pending, embeddings, strict=True):
            save_array(job.outputs[0], embedding)
            report.written += 1
        pending.clear()

    for job, encoder_input in run_jobs(jobs, _process, report, config.jobs.workers, "faces", _init_worker,
                                     (model.config.preprocessing.name, landmarks), jobs.total, overwrite):
        pending.append((job, encoder_input))
        if len(pending) == batch_size:
            flush()
    if pending:
        flush()
    report.shard = None if shard.whole else str(shard)
    if shard.whole:
        from s2f.data.align_faces import align_faces

        align_faces(out_dir, train_identities, batch_size, overwrite)
    else:
        log.info("aligned textures need every face's landmarks: once all shards are done, run "
                 "'s2f preprocess faces' once without --shard (it skips the finished files)")
    report.save(out_dir / shard_report_name(FACE_REPORT, shard))
    return report
