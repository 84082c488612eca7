"""Training pairs from a preprocessed tree, indexed in constant time.

The original datasets walked every identity on each ``__getitem__`` (O(identities) per
item, hours per epoch on VoxCeleb). Here the tree is scanned once into flat arrays and an
item resolves with arithmetic: O(1) for ``all_to_one``, ``one_to_one`` and the decoder's
faces; ``all_to_all`` needs one binary search over identity offsets (O(log identities),
in numpy, about a microsecond) because its identities contribute different numbers of pairs.

Items are numpy arrays, so a torch ``DataLoader`` collates them directly and the classes
stay usable without torch.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from s2f.core.errors import InputError
from s2f.core.listing import iter_names, paths_under
from s2f.data.layout import (
    ALIGNED_SUFFIX,
    AUDIO_DIR,
    EMBEDDING_SUFFIX,
    IMAGE_DIR,
    LANDMARKS_SUFFIX,
    TARGET_SUFFIX,
    identity_dirs,
    require_dir,
)
from s2f.data.path_table import PathTable

log = logging.getLogger(__name__)

PAIRINGS = ("all_to_one", "one_to_one", "all_to_all")


@dataclass(frozen=True)
class Pair:
    clip: Path
    face: Path
    identity: int
    clip_index: int = 0  # the clip's position in ``VoiceFacePairs.clips`` (seeds its random crop)


class VoiceFacePairs:
    """(voice features, face embedding, identity index) pairs for the voice encoder.

    Args:
        root: preprocessed tree (``<identity>/audios/*.npy`` and ``<identity>/images/*_embedding.npy``).
        pairing: ``all_to_one`` (every clip with its identity's first face, as the original;
            it also capped clips per identity at 20, see ``max_clips_per_identity``),
            ``one_to_one`` (the k-th clip with the k-th face, min of both per identity) or
            ``all_to_all`` (every clip with every face of its identity).
        identities: only these identity names (a split); default all.
        max_clips_per_identity: use at most this many clips (sorted order) of each identity.
        clips_root, clip_endings: where the clips are and what they are called: the
            preprocessed arrays by default; ``VoiceClipPairs`` points them at the audio files.
    Identities lacking clips or faces are skipped, as the original did.

    The index is built in one streamed pass over the identities (no list of the whole tree)
    and kept in flat arrays (``PathTable`` and numpy), so it stays small at VoxCeleb's size.
    """

    def __init__(self, root: str | Path, pairing: str = "all_to_one", identities: Iterable[str] | None = None,
                 max_clips_per_identity: int | None = None, clips_root: str | Path | None = None,
                 clip_endings: Collection[str] = (".npy",)) -> None:
        if pairing not in PAIRINGS:
            raise ValueError(f"unknown pairing {pairing!r}; expected one of {PAIRINGS}")
        self.root, self.pairing = require_dir(Path(root)), pairing
        clips_root = self.root if clips_root is None else require_dir(Path(clips_root))
        wanted = None if identities is None else set(identities)
        self.identities: list[str] = []
        self.clips, self.faces = PathTable(clips_root), PathTable(self.root)
        self.skipped: list[str] = []  # identities without clips or without faces: said, not silent
        clip_counts, face_counts = [], []
        for folder in identity_dirs(self.root):
            if wanted is not None and folder.name not in wanted:
                continue
            prefix = f"{folder.name}/{AUDIO_DIR}/"
            clips = itertools.islice(iter_names(clips_root / folder.name / AUDIO_DIR, clip_endings),
                                     max_clips_per_identity)
            clip_count = self.clips.extend(prefix + name for name in clips)
            face_prefix = f"{folder.name}/{IMAGE_DIR}/"
            face_count = self.faces.extend(face_prefix + name
                                           for name in iter_names(folder / IMAGE_DIR, (EMBEDDING_SUFFIX,)))
            if not clip_count or not face_count:
                self.skipped.append(folder.name)
                self.clips.truncate(len(self.clips) - clip_count)
                self.faces.truncate(len(self.faces) - face_count)
                continue
            self.identities.append(folder.name)
            clip_counts.append(clip_count)
            face_counts.append(face_count)
        self.clips.freeze()
        self.faces.freeze()
        if self.skipped:
            log.warning("%s: %d identities skipped for lack of voice clips or face embeddings (first: %s)",
                        self.root, len(self.skipped), self.skipped[0])
        if not self.identities:
            raise InputError(self.root, self.nothing_to_pair())
        self.clip_shape = _model_input_shape(self.root)
        self.clip_count = np.array(clip_counts, np.int64)
        self.face_count = np.array(face_counts, np.int64)
        self.clip_start = np.concatenate([[0], np.cumsum(self.clip_count)[:-1]]).astype(np.int64)
        self.face_start = np.concatenate([[0], np.cumsum(self.face_count)[:-1]]).astype(np.int64)
        self.clip_identity = np.repeat(np.arange(len(self.identities)), self.clip_count)
        if pairing == "one_to_one":
            per_identity = np.minimum(self.clip_count, self.face_count)
            ids = np.repeat(np.arange(len(self.identities)), per_identity)
            offset = np.arange(per_identity.sum()) - np.repeat(np.cumsum(per_identity) - per_identity, per_identity)
            self._item_clip = self.clip_start[ids] + offset
            self._item_face = self.face_start[ids] + offset
        elif pairing == "all_to_all":
            self._pair_end = np.cumsum(self.clip_count * self.face_count)

    def nothing_to_pair(self) -> str:
        return ("no identity has both voice features (audios/*.npy) and face embeddings "
                "(images/*_embedding.npy); run 's2f preprocess' first")

    def __len__(self) -> int:
        if self.pairing == "all_to_one":
            return len(self.clips)
        if self.pairing == "one_to_one":
            return len(self._item_clip)
        return int(self._pair_end[-1])

    def pair(self, index: int) -> Pair:
        """Which clip and face item ``index`` is, without loading them."""
        length = len(self)
        if not -length <= index < length:
            raise IndexError(f"pair index {index} out of range for {length} pairs")
        index %= length
        if self.pairing == "all_to_one":
            identity = int(self.clip_identity[index])
            return Pair(self.clips[index], self.faces[self.face_start[identity]], identity, index)
        if self.pairing == "one_to_one":
            clip = int(self._item_clip[index])
            return Pair(self.clips[clip], self.faces[self._item_face[index]], int(self.clip_identity[clip]), clip)
        identity = int(np.searchsorted(self._pair_end, index, side="right"))
        within = index - (int(self._pair_end[identity - 1]) if identity else 0)
        clip, face = divmod(within, int(self.face_count[identity]))
        clip += int(self.clip_start[identity])
        face += int(self.face_start[identity])
        return Pair(self.clips[clip], self.faces[face], identity, clip)

    def load_clip(self, path: Path) -> np.ndarray:
        """A clip's features in the shape the voice encoder takes."""
        clip = load_array(path)
        if self.clip_shape is not None and clip.shape != self.clip_shape and clip.size == np.prod(self.clip_shape):
            clip = clip.reshape(self.clip_shape)  # the original's AST fbanks are stored 1 x 1024 x 128
        return clip

    def model_input(self, path: Path) -> np.ndarray:
        """The voice encoder's input for the clip at ``path`` (evaluation, preview grids)."""
        return self.load_clip(path)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray, int]:
        pair = self.pair(index)
        return self.load_clip(pair.clip), load_array(pair.face), pair.identity


class DecoderFaces:
    """(target image 3x224x224 float32 in [0, 1], embedding, landmarks, identity index) for
    the face decoder: every face with all three preprocessed files (as the original required).
    With ``aligned``, the aligned texture (3x224x224, the target in the mean landmarks' frame)
    comes fifth, and a face without one is an error naming it."""

    def __init__(self, root: str | Path, identities: Iterable[str] | None = None, aligned: bool = False) -> None:
        self.root = require_dir(Path(root))
        self.aligned = aligned
        wanted = None if identities is None else set(identities)
        self.identities: list[str] = []
        self.bases: list[str] = []
        owners = []
        for folder in identity_dirs(self.root):
            if wanted is not None and folder.name not in wanted:
                continue
            embeddings = paths_under(folder / IMAGE_DIR, (EMBEDDING_SUFFIX,))
            bases = [str(path)[: -len(EMBEDDING_SUFFIX)] for path in embeddings]
            bases = [base for base in bases
                     if Path(base + TARGET_SUFFIX).is_file() and Path(base + LANDMARKS_SUFFIX).is_file()]
            if bases:
                owners += [len(self.identities)] * len(bases)
                self.identities.append(folder.name)
                self.bases += bases
        if not self.bases:
            raise InputError(self.root, "no face has its embedding, target and landmarks "
                                        "(images/<stem>_embedding/_target/_landmarks.npy); run 's2f preprocess faces'")
        self.face_identity = np.array(owners, np.int64)

    def __len__(self) -> int:
        return len(self.bases)

    def __getitem__(self, index: int) -> tuple:
        base = self.bases[index]
        image = _chw(load_array(Path(base + TARGET_SUFFIX)))
        landmarks = load_array(Path(base + LANDMARKS_SUFFIX)).astype(np.float32)  # the original's are integers
        item = (image, load_array(Path(base + EMBEDDING_SUFFIX)), landmarks, int(self.face_identity[index]))
        if not self.aligned:
            return item
        path = Path(base + ALIGNED_SUFFIX)
        if not path.is_file():
            raise InputError(path, "missing: the warping decoder trains on aligned textures; run 's2f preprocess "
                                   "faces' again to write them (or train with --no-warp)")
        return (*item, _chw(load_array(path)))


def _chw(image: np.ndarray) -> np.ndarray:
    """H x W x 3 uint8 -> 3 x H x W float32 in [0, 1]."""
    return np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32) / np.float32(255)


def _model_input_shape(root: Path) -> tuple[int, ...] | None:
    """The shape the voice encoder takes, where the tree's settings say its arrays are stored
    in another (``s2f data import-original``)."""
    from s2f.data.layout import AUDIO_SETTINGS
    from s2f.data.settings import read_settings

    settings = read_settings(root / AUDIO_SETTINGS) or {}
    shape = settings.get("shape")
    if settings.get("stored_shape") is None or shape is None:
        return None
    if not (isinstance(shape, list) and shape and all(isinstance(n, int) and n > 0 for n in shape)):
        raise InputError(root / AUDIO_SETTINGS, f"field 'shape' must be a list of positive integers, got {shape!r}")
    return tuple(shape)


def load_array(path: Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise InputError(path, f"unreadable array ({err})") from None
