"""``s2f data import-original``: the original Speech-to-Face project's preprocessed datasets
as a speech2face tree, without copying their arrays.

Its two layouts (``datasets/README.md`` there):

* voice encoder: ``Person/audios/**.npy`` (one model input per clip: 2 x 257 x 601 for
  VE_conv, the ``original`` spectrogram of 6 s, or 1 x 1024 x 128 for the AST) and
  ``Person/images/**.npy`` (one face embedding per photo);
* face decoder: ``Person/**/x.jpg`` beside ``x_embedding.npy`` and ``x_landmarks.npy``
  (144 values: 72 points in pixels at 224 x 224). Photos without both are skipped, as the
  original's dataset skipped them.

Arrays are hard-linked into ours (a symbolic link where the output is on another file
system), so hundreds of GB of VoxCeleb features cost no space. The one new file per photo
is its decoder target, the photo stretched to 224 x 224 the way the original's
``transforms.Resize`` did. Which features a tree holds is read from the arrays' headers
(nothing is loaded), and one kind of features per tree is enforced: mixed or unknown shapes
are refused with one line naming the first file that does not fit.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from s2f.core.errors import InputError
from s2f.core.listing import paths_under
from s2f.core.progress import progress_bar
from s2f.data.jobs import save_array
from s2f.data.layout import (
    AUDIO_DIR,
    AUDIO_SETTINGS,
    EMBEDDING_SUFFIX,
    FACE_SETTINGS,
    IMAGE_DIR,
    LANDMARKS_SUFFIX,
    TARGET_SUFFIX,
    identity_dirs,
    require_dir,
)
from s2f.data.links import link_file
from s2f.data.settings import claim_settings
from s2f.runtime.preprocess.voice_input import VoiceInputSpec

log = logging.getLogger(__name__)

ORIGINAL = "speech-to-face-original"
ORIGINAL_LANDMARKS = 144  # face_recognition's 72 points (dlib's 68, four lip points repeated)
# the model input an array's shape implies, and the features that input was made with
FEATURE_SHAPES: dict[tuple[int, ...], VoiceInputSpec] = {
    (2, 257, 601): VoiceInputSpec("ve_conv", "original", seconds=6.0, audio_steps="original"),
    (1, 1024, 128): VoiceInputSpec("ast", mean=-5.460994, std=3.1129124, seconds=10.26, audio_steps="original"),
    (1024, 128): VoiceInputSpec("ast", mean=-5.460994, std=3.1129124, seconds=10.26, audio_steps="original"),
}


@dataclass
class ImportReport:
    identities: int = 0
    clips: int = 0
    embeddings: int = 0
    decoder_faces: int = 0
    skipped_photos: list[str] = field(default_factory=list)
    hard_links: int = 0
    symlinks: int = 0
    features: str | None = None

    def summary(self) -> str:
        parts = [f"{self.identities} identities", f"{self.clips} clips ({self.features or 'none'})",
                 f"{self.embeddings} embeddings", f"{self.decoder_faces} decoder faces"]
        links = f"{self.hard_links} hard links" + (f", {self.symlinks} symbolic links" if self.symlinks else "")
        skipped = f"; skipped {len(self.skipped_photos)} photos without embedding and landmarks" \
            if self.skipped_photos else ""
        return ", ".join(parts) + f"; {links}{skipped}"


def array_header(path: Path) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of a ``.npy`` file from its header alone."""
    try:
        with path.open("rb") as handle:
            version = np.lib.format.read_magic(handle)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, _, dtype = read(handle)
    except (OSError, ValueError, SyntaxError) as err:
        raise InputError(path, f"not a readable .npy array ({str(err).splitlines()[0][:160]})") from None
    if dtype.hasobject:
        raise InputError(path, "holds Python objects (a pickle), not numbers: refused")
    return tuple(shape), dtype


def link(source: Path, target: Path, report: ImportReport) -> None:
    """``target`` names the same file as ``source``; a hard link where possible."""
    if target.exists() or target.is_symlink():
        if target.exists() and os.path.samefile(source, target):
            return
        raise InputError(target, f"exists and is not {source}: import into an empty directory, or the same "
                                 "dataset again")
    target.parent.mkdir(parents=True, exist_ok=True)
    if link_file(source, target) == "hard":
        report.hard_links += 1
    else:
        report.symlinks += 1


def _embedding_name(relative: Path) -> Path:
    if relative.name.endswith(EMBEDDING_SUFFIX):
        return relative
    return relative.with_name(relative.stem + EMBEDDING_SUFFIX)


class _Consistent:
    """One shape (and, for features, one known kind) for every array of a sort."""

    def __init__(self, what: str) -> None:
        self.what, self.first, self.shape = what, None, None

    def check(self, path: Path, shape: tuple[int, ...]) -> None:
        if self.shape is None:
            self.first, self.shape = path, shape
        elif shape != self.shape:
            raise InputError(path, f"{self.what} of shape {shape}, but {self.first} has {self.shape}: one "
                                   "dataset holds one kind of features")


def import_original_dataset(source: str | Path, out_dir: str | Path) -> ImportReport:
    """Import both layouts found under ``source`` into ``out_dir``; returns what was done."""
    source, out_dir = require_dir(Path(source)), Path(out_dir)
    if out_dir.resolve() == source.resolve() or source.resolve() in out_dir.resolve().parents:
        raise InputError(out_dir, "must not be inside the dataset being imported")
    shapes = _Shapes()
    plan: list[tuple[str, Path, Path]] = []  # (kind, source file, output file)
    identities = set()
    for person in identity_dirs(source):
        planned = _plan_person(person, out_dir / person.name, shapes)
        if any(kind != "skipped" for kind, _, _ in planned):
            identities.add(person.name)
        plan += planned
    if not any(kind != "skipped" for kind, _, _ in plan):
        raise InputError(source, "no original dataset found: expected Person/audios/*.npy and Person/images/*.npy "
                                 "(voice encoder) or Person/x.jpg with x_embedding.npy and x_landmarks.npy (decoder)")
    report = ImportReport(identities=len(identities))
    out_dir.mkdir(parents=True, exist_ok=True)
    _record_settings(source, out_dir, shapes, report)
    for kind, src, target in progress_bar(plan, desc="import", unit="file"):
        _carry_out(kind, src, target, report)
    for photo in report.skipped_photos[:5]:
        log.warning("%s: no %s and %s beside it; skipped (as the original did)", photo, EMBEDDING_SUFFIX,
                    LANDMARKS_SUFFIX)
    if report.decoder_faces:  # the warping decoder's targets (mean of every face: the original had no split)
        from s2f.data.align_faces import align_faces

        align_faces(out_dir)
    return report


class _Shapes:
    """The one shape each kind of array must have across the whole dataset."""

    def __init__(self) -> None:
        self.features, self.embeddings = _Consistent("voice features"), _Consistent("embedding")
        self.landmarks = _Consistent("landmarks")


def _plan_person(person: Path, out: Path, shapes: _Shapes) -> list[tuple[str, Path, Path]]:
    """What to do with each file of one identity, every array checked before anything is written."""
    plan = []
    for clip in paths_under(person / AUDIO_DIR, (".npy",)):
        shape, dtype = array_header(clip)
        if shape not in FEATURE_SHAPES or dtype.kind != "f":
            known = ", ".join(f"{'x'.join(map(str, s))} ({FEATURE_SHAPES[s].encoder})" for s in FEATURE_SHAPES)
            raise InputError(clip, f"voice features of shape {shape} ({dtype}): not an input of the original's "
                                   f"models (known: {known})")
        shapes.features.check(clip, shape)
        plan.append(("clip", clip, out / AUDIO_DIR / clip.relative_to(person / AUDIO_DIR)))
    for embedding in paths_under(person / IMAGE_DIR, (".npy",)):
        if embedding.name.endswith(LANDMARKS_SUFFIX):
            continue
        shapes.embeddings.check(embedding, _vector(embedding, "embedding")[0])
        relative = _embedding_name(embedding.relative_to(person / IMAGE_DIR))
        plan.append(("embedding", embedding, out / IMAGE_DIR / relative))
    for photo in paths_under(person, (".jpg",)):
        relative = photo.relative_to(person)
        if relative.parts[0] == AUDIO_DIR:
            continue
        base = photo.with_suffix("")
        embedding, marks = Path(f"{base}{EMBEDDING_SUFFIX}"), Path(f"{base}{LANDMARKS_SUFFIX}")
        if not (embedding.is_file() and marks.is_file()):
            plan.append(("skipped", photo, photo))
            continue
        shapes.embeddings.check(embedding, _vector(embedding, "embedding")[0])
        shape, _ = _vector(marks, "landmarks")
        if shape != (ORIGINAL_LANDMARKS,):
            raise InputError(marks, f"landmarks of shape {shape}; the original's are {ORIGINAL_LANDMARKS} values "
                                    "(72 points)")
        shapes.landmarks.check(marks, shape)
        plan.append(("decoder", photo, out / IMAGE_DIR / relative.with_suffix("")))
    return plan


def _record_settings(source: Path, out_dir: Path, shapes: _Shapes, report: ImportReport) -> None:
    """The settings files that tell training what the imported arrays are."""
    if shapes.features.shape is not None:
        spec = FEATURE_SHAPES[shapes.features.shape]
        report.features = f"{spec.encoder}" + (f" {spec.variant} spectrogram" if spec.encoder == "ve_conv" else
                                               " fbank") + f" {'x'.join(map(str, shapes.features.shape))}"
        claim_settings(out_dir / AUDIO_SETTINGS, {
            "kind": "voice_features", **spec.to_dict(), "shape": list(spec.shape),
            "stored_shape": list(shapes.features.shape), "imported_from": ORIGINAL, "source": str(source.resolve())})
    if shapes.landmarks.shape is not None or shapes.embeddings.shape is not None:
        claim_settings(out_dir / FACE_SETTINGS, {
            "kind": "face_features", "imported_from": ORIGINAL, "source": str(source.resolve()),
            "embedding_dim": int(shapes.embeddings.shape[0]) if shapes.embeddings.shape else None,
            "landmarks": "dlib72" if shapes.landmarks.shape else None, "target_size": 224})


def _carry_out(kind: str, src: Path, target: Path, report: ImportReport) -> None:
    if kind == "skipped":
        report.skipped_photos.append(str(src))
    elif kind == "clip":
        link(src, target, report)
        report.clips += 1
    elif kind == "embedding":
        link(src, target, report)
        report.embeddings += 1
    else:
        base = src.with_suffix("")
        link(Path(f"{base}{EMBEDDING_SUFFIX}"), Path(f"{target}{EMBEDDING_SUFFIX}"), report)
        link(Path(f"{base}{LANDMARKS_SUFFIX}"), Path(f"{target}{LANDMARKS_SUFFIX}"), report)
        output = Path(f"{target}{TARGET_SUFFIX}")
        if not output.is_file():
            save_array(output, _decoder_target(src))
        report.decoder_faces += 1


def _vector(path: Path, what: str) -> tuple[tuple[int, ...], np.dtype]:
    shape, dtype = array_header(path)
    if len(shape) != 1 or dtype.kind not in "fiu":
        raise InputError(path, f"{what} of shape {shape} ({dtype}); expected one vector of numbers")
    return shape, dtype


def _decoder_target(photo: Path) -> np.ndarray:
    from s2f.runtime.preprocess.faces import decoder_target
    from s2f.runtime.preprocess.images import load_face

    return decoder_target(load_face(photo))
