"""A raw corpus as the toolkit reads it: one folder per identity, its voice clips under
``audios/`` and its photos under ``images/``. Torch-free, so a bundle can be scored on the
corpus with the runtime alone; ``s2f.data.layout`` takes its names from here."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from s2f.core.errors import InputError
from s2f.core.listing import paths_under
from s2f.runtime.preprocess.audio import AUDIO_SUFFIXES
from s2f.runtime.preprocess.images import IMAGE_SUFFIXES

AUDIO_DIR = "audios"
IMAGE_DIR = "images"


def identity_dirs(root: Path) -> Iterator[Path]:
    for child in sorted(root.iterdir()):
        if child.is_dir() and not child.name.startswith("."):
            yield child


@dataclass
class CorpusIdentity:
    name: str
    clips: list[Path]
    photos: list[Path]


def read_corpus(root: str | Path, identities: list[str] | None = None) -> list[CorpusIdentity]:
    """The identities of ``root`` (only ``identities``, in their order, when given) that have
    at least one clip and one photo."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(root, "corpus directory not found" if not root.exists() else "not a directory")
    folders = {folder.name: folder for folder in identity_dirs(root)}
    names = identities if identities is not None else sorted(folders)
    missing = [name for name in names if name not in folders]
    if missing:
        raise InputError(root, f"{len(missing)} identities of the split are not in the corpus "
                               f"(first: {missing[0]!r})")
    found = [CorpusIdentity(name, paths_under(folders[name] / AUDIO_DIR, AUDIO_SUFFIXES),
                            paths_under(folders[name] / IMAGE_DIR, IMAGE_SUFFIXES)) for name in names]
    found = [identity for identity in found if identity.clips and identity.photos]
    if len(found) < 2:
        raise InputError(root, f"needs at least two identities with {AUDIO_DIR}/ clips and {IMAGE_DIR}/ photos, "
                               f"found {len(found)}")
    return found
