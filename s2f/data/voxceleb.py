"""``s2f data voxceleb``: VoxCeleb1/2 voices and HQ-VoxCeleb faces as one corpus in our layout.

The downloads, as unpacked:

* VoxCeleb1 ``wav/id10001/<video>/<clip>.wav`` and VoxCeleb2 ``aac/id00012/<video>/<clip>.m4a``,
  dev and test unpacked separately (any folder above ``wav/`` or ``aac/`` may be given);
* HQ-VoxCeleb ``vox1/masked_faces/<Name>/*.jpg`` (and ``origin_faces``), the same under
  ``vox2/``, and ``meta_info/full_vox2_meta.csv``.

Ids become names through the metadata (``s2f.data.voxceleb_meta``); a name in both VoxCeleb1
and VoxCeleb2 is one person, one identity. Only identities with voices *and* faces are kept:
the others are counted and named in ``ingest.json``, not preprocessed and silently dropped
later. Files are linked (``s2f.data.links``), never copied::

    corpus/<Name>/audios/<id>/<video>/<clip>.<ext>
    corpus/<Name>/images/<file>

The whole corpus is built beside the target and swapped in (``atomic_directory``), so an
interrupted run leaves the old corpus or none, never half of one; a rerun whose plan (every
link and its source, hashed) equals the corpus's recorded one changes nothing. The sources
are listed twice, once to plan and once to link, so memory stays that of one identity.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from s2f.core.atomic import atomic_directory
from s2f.core.errors import InputError
from s2f.core.listing import iter_names
from s2f.core.progress import progress_bar
from s2f.data.layout import AUDIO_DIR, IMAGE_DIR
from s2f.data.links import link_file
from s2f.data.voxceleb_meta import VOX1_ID, VOX1_NAME, VOX2_ID, VOX2_NAME, id_to_name, normal_name
from s2f.runtime.preprocess.audio import AUDIO_SUFFIXES
from s2f.runtime.preprocess.images import IMAGE_SUFFIXES

log = logging.getLogger(__name__)

INGEST_REPORT = "ingest.json"
FACE_FOLDERS = {"masked": "masked_faces", "origin": "origin_faces"}
VOX2_META_PLACES = ("meta_info/full_vox2_meta.csv", "vox2/full_vox2_meta.csv")
_SPEAKER = re.compile(r"^id\d+$")
_SEARCH_DEPTH = 3  # DIR, DIR/wav, DIR/dev/aac, DIR/vox1_dev_wav/wav


@dataclass(frozen=True)
class VoxCelebSources:
    """What the user downloaded. ``vox2_meta`` defaults to HQ-VoxCeleb's own table.

    Args:
        hq_dir: HQ-VoxCeleb's root (vox1/, vox2/, meta_info/).
        vox1: VoxCeleb1 audio roots (dev and test), each holding wav/idNNNNN/ or idNNNNN/.
        vox1_meta: VoxCeleb1's vox1_meta.csv (ids -> names).
        vox2: VoxCeleb2 audio roots (dev and test), each holding aac/idNNNNN/ or idNNNNN/.
        vox2_meta: ids -> names for VoxCeleb2 (default: HQ_DIR/meta_info/full_vox2_meta.csv).
        faces: HQ-VoxCeleb's masked_faces (the original's choice) or origin_faces.
        max_clips_per_video: at most N clips of each video, in clip order (the original used up to 20).
    """

    hq_dir: Path = field(metadata={"positional": True})
    vox1: tuple[Path, ...] = field(default=(), metadata={"metavar": "DIR"})
    vox1_meta: Path | None = None
    vox2: tuple[Path, ...] = field(default=(), metadata={"metavar": "DIR"})
    vox2_meta: Path | None = None
    faces: str = field(default="masked", metadata={"choices": tuple(FACE_FOLDERS)})
    max_clips_per_video: int | None = field(default=None, metadata={"metavar": "N"})

    def __post_init__(self) -> None:  # the command line gives lists
        object.__setattr__(self, "vox1", tuple(self.vox1))
        object.__setattr__(self, "vox2", tuple(self.vox2))


@dataclass
class IngestReport:
    identities: int = 0
    clips: int = 0
    faces: int = 0
    hard_links: int = 0
    symbolic_links: int = 0
    unchanged: bool = False
    per_source: dict[str, dict[str, int]] = field(default_factory=dict)
    ids_without_name: list[str] = field(default_factory=list)
    names_without_faces: list[str] = field(default_factory=list)
    names_without_voice: list[str] = field(default_factory=list)
    unusable_names: list[str] = field(default_factory=list)
    merged: list[str] = field(default_factory=list)  # one person in VoxCeleb1 and VoxCeleb2 (or under two ids)
    renamed_faces: int = 0  # a face file name both datasets use for one person: the second is prefixed
    plan_sha256: str = ""

    def summary(self, out: Path) -> str:
        state = "unchanged" if self.unchanged else f"{self.hard_links + self.symbolic_links} links"
        return (f"{self.identities} identities, {self.clips} clips, {self.faces} faces -> {out} ({state}); "
                f"left out: {len(self.names_without_faces)} without faces, {len(self.names_without_voice)} without "
                f"voice, {len(self.ids_without_name)} ids without a name; {len(self.merged)} merged across "
                f"datasets; report: {out / INGEST_REPORT}")


@dataclass
class _Person:
    voices: list[tuple[str, str, Path]] = field(default_factory=list)  # (source, speaker id, folder)
    faces: list[tuple[str, Path]] = field(default_factory=list)  # (source, folder)


def _subfolders(folder: Path) -> list[Path]:
    """The visible folders in ``folder`` (links to folders included), by name."""
    return sorted((child for child in folder.iterdir() if not child.name.startswith(".") and child.is_dir()),
                  key=lambda child: child.name)


def speaker_folders(root: Path) -> dict[str, Path]:
    """speaker id -> its folder, under a VoxCeleb root as unpacked: the first folders (at most
    three levels down) whose subfolders are named ``idNNNNN``."""
    if not root.is_dir():
        raise InputError(root, "VoxCeleb folder not found" if not root.exists() else "not a directory")
    found: dict[str, Path] = {}
    level = [root]
    for _ in range(_SEARCH_DEPTH + 1):
        deeper = []
        for folder in level:
            children = _subfolders(folder)
            speakers = [child for child in children if _SPEAKER.match(child.name)]
            for speaker in speakers:
                found.setdefault(speaker.name, speaker)
            if not speakers:
                deeper += children
        if found:
            return found
        level = deeper
    raise InputError(root, "no VoxCeleb speaker folders (idNNNNN/) found in it or below it (wav/, aac/, dev/aac/)")


def face_folders(hq_dir: Path, source: str, kind: str) -> dict[str, Path]:
    """name (NFC) -> its face folder in HQ-VoxCeleb's ``<source>/<kind>_faces/``."""
    where = hq_dir / source / FACE_FOLDERS[kind]
    if not where.is_dir():
        raise InputError(where, f"HQ-VoxCeleb {source} faces not found (expected <Name>/ folders there)")
    return {normal_name(child.name): child for child in _subfolders(where)}


def vox2_meta_path(sources: VoxCelebSources) -> Path:
    if sources.vox2_meta is not None:
        return sources.vox2_meta
    for place in VOX2_META_PLACES:
        if (sources.hq_dir / place).is_file():
            return sources.hq_dir / place
    raise InputError(sources.hq_dir / VOX2_META_PLACES[0], "HQ-VoxCeleb's VoxCeleb2 metadata not found "
                                                           "(or name it with --vox2-meta)")


def _usable(name: str) -> bool:
    return bool(name) and "/" not in name and "\0" not in name and not name.startswith(".")


def _people(sources: VoxCelebSources, report: IngestReport) -> dict[str, _Person]:
    if not sources.vox1 and not sources.vox2:
        raise InputError(None, "give --vox1 and/or --vox2: the voices to ingest")
    if sources.max_clips_per_video is not None and sources.max_clips_per_video < 1:
        raise InputError(None, f"--max-clips-per-video must be at least 1, got {sources.max_clips_per_video}")
    if sources.vox1 and sources.vox1_meta is None:
        raise InputError(None, "--vox1 needs --vox1-meta (VoxCeleb1's vox1_meta.csv: its ids' names)")
    people: dict[str, _Person] = defaultdict(_Person)
    for source, roots, names in (
            ("vox1", sources.vox1, id_to_name(sources.vox1_meta, VOX1_ID, VOX1_NAME) if sources.vox1 else {}),
            ("vox2", sources.vox2, id_to_name(vox2_meta_path(sources), VOX2_ID, VOX2_NAME) if sources.vox2 else {})):
        if not roots:
            continue
        speakers: dict[str, Path] = {}
        for root in roots:
            for speaker, folder in speaker_folders(Path(root)).items():
                if speaker in speakers:
                    raise InputError(folder, f"speaker {speaker} is also in {speakers[speaker]}: give each "
                                             "dev and test root once")
                speakers[speaker] = folder
        named = 0
        for speaker, folder in sorted(speakers.items()):
            name = names.get(speaker)
            if name is None:
                report.ids_without_name.append(f"{source}/{speaker}")
            else:
                people[name].voices.append((source, speaker, folder))
                named += 1
        for name, folder in face_folders(sources.hq_dir, source, sources.faces).items():
            people[name].faces.append((source, folder))
        report.per_source[source] = {"speakers": len(speakers), "named_speakers": named}
    return people


def _clips(folder: Path, cap: int | None) -> Iterator[str]:
    """A speaker's clips (``<video>/<clip>``), at most ``cap`` per video in sorted order."""
    if cap is None:
        yield from iter_names(folder, AUDIO_SUFFIXES)
        return
    taken: Counter[str] = Counter()
    for relative in iter_names(folder, AUDIO_SUFFIXES):
        video = relative.rpartition("/")[0]
        if taken[video] < cap:
            taken[video] += 1
            yield relative


def _links(name: str, person: _Person, cap: int | None, counts: Counter) -> Iterator[tuple[str, str]]:
    """(link inside the corpus, the file it names) for one identity, in a fixed order; strings,
    since a million ``Path`` objects cost more than the links."""
    for source, speaker, folder in person.voices:
        base, clips = f"{os.path.abspath(folder)}/", 0
        for relative in _clips(folder, cap):
            clips += 1
            yield f"{name}/{AUDIO_DIR}/{speaker}/{relative}", base + relative
        counts[f"{source}_clips"] += clips
    used: set[str] = set()
    for source, folder in person.faces:
        base = f"{os.path.abspath(folder)}/"
        for relative in iter_names(folder, IMAGE_SUFFIXES):
            inside = relative
            if inside in used:
                inside = f"{source}_{inside}"
                counts["renamed_faces"] += 1
            used.add(inside)
            counts[f"{source}_faces"] += 1
            yield f"{name}/{IMAGE_DIR}/{inside}", base + relative


def plan(sources: VoxCelebSources) -> tuple[IngestReport, dict[str, _Person]]:
    """The report of an ingest and the people it keeps, from a first pass over the sources."""
    report = IngestReport()
    people = _people(sources, report)
    kept = []
    for name in sorted(people):
        person = people[name]
        if not _usable(name):
            report.unusable_names.append(name)
        elif not person.faces:
            report.names_without_faces.append(name)
        elif not person.voices:
            report.names_without_voice.append(name)
        else:
            kept.append(name)
            if len(person.voices) > 1:
                report.merged.append(name)
    digest, counts = hashlib.sha256(json.dumps(asdict(sources), default=str).encode()), Counter()
    for name in progress_bar(kept, desc="plan", unit="identity"):
        for inside, source in _links(name, people[name], sources.max_clips_per_video, counts):
            digest.update(f"{inside}\0{source}\n".encode())
    report.identities = len(kept)
    for source in ("vox1", "vox2"):
        if source in report.per_source:
            report.per_source[source].update(clips=counts[f"{source}_clips"], faces=counts[f"{source}_faces"])
    report.clips = counts["vox1_clips"] + counts["vox2_clips"]
    report.faces = counts["vox1_faces"] + counts["vox2_faces"]
    report.renamed_faces = counts["renamed_faces"]
    report.plan_sha256 = digest.hexdigest()
    return report, {name: people[name] for name in kept}


def _recorded_plan(out: Path) -> str | None:
    try:
        return json.loads((out / INGEST_REPORT).read_text()).get("plan_sha256")
    except (OSError, ValueError, AttributeError):
        return None


def ingest_voxceleb(sources: VoxCelebSources, out: Path) -> IngestReport:
    """Write (or keep, when unchanged) the corpus at ``out``; returns what it holds."""
    out = Path(out)
    report, kept = plan(sources)
    if not kept:
        raise InputError(out, "no identity has both voices and faces: check that the metadata's names match "
                              "HQ-VoxCeleb's folder names (see the counts with -v)")
    if out.is_dir() and _recorded_plan(out) == report.plan_sha256:
        report.unchanged = True
        return report
    if out.exists() and not out.is_dir():
        raise InputError(out, "exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not (out / INGEST_REPORT).is_file():
        raise InputError(out, f"exists and is not a corpus this command wrote (no {INGEST_REPORT}); it would be "
                              "replaced: give another -o")
    with atomic_directory(out) as staging:
        for name, person in progress_bar(kept.items(), desc="link", unit="identity", total=len(kept)):
            made: set[str] = set()  # the folders of this identity made so far
            for inside, source in _links(name, person, sources.max_clips_per_video, Counter()):
                parent = inside.rpartition("/")[0]
                if parent not in made:
                    os.makedirs(f"{staging}/{parent}", exist_ok=True)
                    made.add(parent)
                if link_file(source, f"{staging}/{inside}") == "hard":
                    report.hard_links += 1
                else:
                    report.symbolic_links += 1
        (staging / INGEST_REPORT).write_text(json.dumps(asdict(report), indent=2, ensure_ascii=False) + "\n")
    return report
