"""Names of things in a dataset tree, in one place: which files are inputs, where each
output goes, and how an output path maps back to its identity."""

from __future__ import annotations

from pathlib import Path

from s2f.core.errors import InputError
from s2f.core.listing import iter_files, list_files
from s2f.runtime.evaluate.corpus import AUDIO_DIR, IMAGE_DIR, identity_dirs  # noqa: F401 (one place for the names)

# per face image <stem>.jpg, preprocessing writes <stem> + each of these
EMBEDDING_SUFFIX = "_embedding.npy"
LANDMARKS_SUFFIX = "_landmarks.npy"
TARGET_SUFFIX = "_target.npy"
ALIGNED_SUFFIX = "_aligned.npy"  # the target warped to the mean landmarks (the warping decoder's texture)
MEAN_LANDMARKS = "mean_landmarks.npy"  # the frame of the aligned textures, at the tree's root
# settings a preprocessed tree was made with (rerunning with others would mix inputs)
AUDIO_SETTINGS = "audio_features.json"
FACE_SETTINGS = "face_features.json"
AUDIO_REPORT = "report_audio.json"
FACE_REPORT = "report_faces.json"


def shard_report_name(name: str, shard) -> str:
    """Each shard of a sharded run keeps its own report (``report_audio.shard-1-of-3.json``)."""
    if shard is None or shard.whole:
        return name
    stem, suffix = name.rsplit(".", 1)
    return f"{stem}.shard-{shard.index}-of-{shard.count}.{suffix}"


def require_dir(path: Path) -> Path:
    if not path.exists():
        raise InputError(path, "directory not found")
    if not path.is_dir():
        raise InputError(path, "not a directory")
    return path


def find_files(root: Path, suffixes: frozenset[str]) -> list[Path]:
    """Files under ``root`` with one of ``suffixes`` (case-insensitive), relative to ``root``, in
    the one listing order every command uses (``s2f.core.listing``: symbolic links followed,
    hidden and partial files skipped)."""
    return list_files(root, suffixes)


def identity_of(relative: Path) -> str:
    """The identity a file belongs to: the first folder under the dataset root."""
    return relative.parts[0] if len(relative.parts) > 1 else ""



# what a preprocessed tree holds, read off its files: the models are sized to fit it
def _first_array(root: Path, suffix: str, missing: str):
    import numpy as np

    for relative in iter_files(root, (suffix,)):
        return np.load(Path(root) / relative, allow_pickle=False)
    raise InputError(root, missing)


def embedding_dim(root: Path) -> int:
    """The face embeddings' size (the decoder's input and the voice encoder's output)."""
    return int(_first_array(root, EMBEDDING_SUFFIX, "no face embeddings found; run 's2f preprocess faces' "
                                                    "first").shape[-1])


def landmark_count(root: Path) -> int:
    """Points per face in the preprocessed landmarks (72, or 68 with ``--landmarks dlib68``)."""
    values = _first_array(root, LANDMARKS_SUFFIX, "no face landmarks found; run 's2f preprocess faces' with "
                                                  "--landmarks dlib72, dlib68 or given").size
    return int(values) // 2


def has_decoder_faces(root: Path) -> bool:
    """Whether the tree keeps face photos (targets); the original's voice datasets keep only embeddings."""
    return next(iter_files(root, (TARGET_SUFFIX,)), None) is not None


def audio_settings(root: Path, encoder: str) -> dict:
    """How the tree's voice features were made (``{}`` when unrecorded); refuses features of
    another encoder than ``encoder``."""
    from s2f.data.settings import read_settings

    settings = read_settings(Path(root) / AUDIO_SETTINGS) or {}
    if settings and settings.get("encoder") != encoder:
        raise InputError(root, f"holds {settings.get('encoder')} features; --encoder {encoder} needs "
                               f"'s2f preprocess audio --encoder {encoder}'")
    return settings
