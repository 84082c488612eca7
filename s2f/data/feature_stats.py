"""``s2f data stats``: the AST fbank's mean and standard deviation over a dataset's own
training clips.

The AST normalises its fbank as ``(fbank - mean) / (2 * std)``. AudioSet's numbers are the
default; the original project measured its own dataset's (its ``get_aduio_norm_stats.py``)
and a model trained on VoxCeleb should see VoxCeleb's. The statistics are measured on the
encoder's actual input (the clip at its training length: looped or cropped, as
preprocessing makes it), in float64 sums, over every clip of the training identities or an
evenly spaced sample of them (``max_clips``: VoxCeleb2's million clips would take hours of
decoding for two numbers a sample fixes well).

They are written to ``<DATA_DIR>/audio_stats.json``, where ``s2f preprocess audio --encoder
ast`` picks them up when no ``--mean``/``--std`` is given; the preprocessed tree records them,
training reads them from there, and the exported bundle carries them to the runtime.

On a preprocessed tree the arrays are already normalised with the tree's recorded numbers;
those are undone to measure the raw fbank.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from s2f.core.atomic import atomic_output
from s2f.core.errors import InputError
from s2f.core.listing import iter_names
from s2f.core.splits import read_split
from s2f.data.jobs import FileJob, RunReport, default_workers, run_jobs
from s2f.data.layout import AUDIO_DIR, AUDIO_SETTINGS, require_dir
from s2f.data.settings import read_settings
from s2f.runtime.preprocess.audio import AUDIO_SUFFIXES
from s2f.runtime.preprocess.voice_input import VoiceInputSpec

log = logging.getLogger(__name__)

AUDIO_STATS = "audio_stats.json"
STATS_ENCODERS = ("ast",)  # VE_conv's spectrogram takes no dataset statistics


@dataclass
class FeatureStats:
    encoder: str
    mean: float
    std: float
    clips: int  # measured
    of_clips: int  # in the training identities
    identities: int
    source: str  # "audio" (raw clips) or "features" (a preprocessed tree)
    split: str | None

    def summary(self) -> str:
        return (f"{self.encoder} fbank mean {self.mean:.6g}, std {self.std:.6g} over {self.clips} of {self.of_clips} "
                f"clips of {self.identities} identities")


def read_stats(data_dir: Path, encoder: str) -> dict | None:
    """The recorded statistics of ``data_dir`` for ``encoder`` (None when there are none)."""
    values = read_settings(Path(data_dir) / AUDIO_STATS)
    if not values or values.get("encoder") != encoder:
        return None
    for key in ("mean", "std"):
        if not isinstance(values.get(key), int | float) or not np.isfinite(values[key]):
            raise InputError(Path(data_dir) / AUDIO_STATS, f"field {key!r} must be a finite number")
    if values["std"] <= 0:
        raise InputError(Path(data_dir) / AUDIO_STATS, "field 'std' must be positive")
    return values


_spec: VoiceInputSpec | None = None
_undo: tuple[float, float] | None = None


def _init_worker(spec_values: dict | None, undo: tuple[float, float] | None) -> None:
    global _spec, _undo
    _spec = VoiceInputSpec.from_dict(spec_values) if spec_values is not None else None
    _undo = undo


def _moments(job: FileJob) -> tuple[float, float, int]:
    """sum, sum of squares and count of one clip's raw fbank values, in float64."""
    if _spec is not None:
        values = _spec.features_from_file(job.source).astype(np.float64)
    else:
        assert _undo is not None
        mean, std = _undo
        values = np.load(job.source, allow_pickle=False).astype(np.float64) * (2 * std) + mean
    return float(values.sum()), float(np.square(values).sum()), int(values.size)


def _sample(count: int, limit: int) -> np.ndarray:
    """Which of ``count`` listed clips to measure: all, or ``limit`` evenly spaced ones."""
    if limit <= 0 or count <= limit:
        return np.arange(count)
    return np.unique(np.linspace(0, count - 1, limit).round().astype(np.int64))


def spec_with_stats(data_dir: Path, encoder: str, variant: str = "paper", seconds: float | None = None,
                    audio_steps: str = "speech2face", mean: float | None = None,
                    std: float | None = None) -> tuple[VoiceInputSpec, dict | None]:
    """The voice input from a command's options; without an explicit ``mean``/``std``, the
    statistics 's2f data stats' measured in ``data_dir`` (AudioSet's where there are none).
    Returns the spec and those statistics (None when not used), for the command to say so."""
    extra = {key: value for key, value in (("seconds", seconds), ("mean", mean), ("std", std)) if value is not None}
    measured = read_stats(data_dir, encoder) if mean is None and std is None else None
    if measured:
        extra.update(mean=measured["mean"], std=measured["std"])
    return VoiceInputSpec(encoder=encoder, variant=variant, audio_steps=audio_steps, **extra), measured


def _picked(names, chosen: np.ndarray):
    """The names at the sorted positions ``chosen``, from a stream."""
    wanted = iter(chosen.tolist())
    target = next(wanted, None)
    for index, name in enumerate(names):
        if index == target:
            yield name
            target = next(wanted, None)


@dataclass(kw_only=True)
class StatsConfig:
    """``s2f data stats``.

    Args:
        data_dir: raw clips (<identity>/audios/) or a preprocessed tree of AST features.
        encoder: the voice encoder whose input is measured.
        split: split JSON: only its training identities (default: every identity).
        max_clips: measure an evenly spaced sample of this many clips (0: every clip).
        seconds: clip length, as 's2f preprocess audio --seconds' will use (default: the encoder's 10.26).
        workers: processes (default: all cores).
    """

    data_dir: Path = field(metadata={"positional": True})
    encoder: str = field(default="ast", metadata={"choices": STATS_ENCODERS})
    split: Path | None = None
    max_clips: int = 5000
    seconds: float | None = None
    workers: int = field(default_factory=default_workers)


def measure_stats(config: StatsConfig) -> FeatureStats:
    """Measure and write ``<data_dir>/audio_stats.json``; returns what was written."""
    encoder, split, max_clips, workers, seconds = (config.encoder, config.split, config.max_clips, config.workers,
                                                   config.seconds)
    data_dir = require_dir(Path(config.data_dir))
    if encoder not in STATS_ENCODERS:
        raise InputError(None, f"--encoder {encoder} takes no dataset statistics (only {', '.join(STATS_ENCODERS)})")
    settings = read_settings(data_dir / AUDIO_SETTINGS)
    if settings:  # a preprocessed tree: undo its normalisation
        if settings.get("encoder") != encoder:
            raise InputError(data_dir, f"holds {settings.get('encoder')} features, not {encoder}")
        spec_values, undo, source, endings = None, (float(settings["mean"]), float(settings["std"])), "features", \
            (".npy",)
    else:  # raw clips, at the encoder's clip length, unnormalised: (fbank - 0) / (2 * 0.5)
        length = {} if seconds is None else {"seconds": seconds}
        spec_values, undo, source, endings = VoiceInputSpec(encoder, mean=0.0, std=0.5, **length).to_dict(), None, \
            "audio", AUDIO_SUFFIXES
    parts = read_split(split)
    wanted = set(parts["train"]) if parts else None

    def clips():  # streamed twice (count, then pick): a million paths are never held
        for name in iter_names(data_dir, endings):
            parts = name.split("/")
            if AUDIO_DIR in parts[1:-1] and (wanted is None or parts[0] in wanted):
                yield name

    speakers: set[str] = set()
    listed = 0
    for name in clips():
        listed += 1
        speakers.add(name.split("/", 1)[0])
    if not listed:
        raise InputError(data_dir, "no voice clips under <identity>/audios/" + (" of the split's training identities"
                                                                              if wanted is not None else ""))
    chosen = _sample(listed, max_clips)
    report = RunReport("data stats", {"encoder": encoder})
    total, squares, count = 0.0, 0.0, 0
    jobs = (FileJob(data_dir / name, ()) for name in _picked(clips(), chosen))
    for _, (part_sum, part_squares, part_count) in run_jobs(jobs, _moments, report, workers, "stats", _init_worker,
                                                            (spec_values, undo), len(chosen)):
        total, squares, count = total + part_sum, squares + part_squares, count + part_count
    if not count:
        raise InputError(data_dir, f"no clip could be read ({report.failed[0]['file']}: {report.failed[0]['error']})")
    if report.failed:
        log.warning("%d clips could not be read and were left out (first: %s)", len(report.failed),
                    report.failed[0]["file"])
    mean = total / count
    std = float(np.sqrt(max(squares / count - mean * mean, 0.0)))
    stats = FeatureStats(encoder, round(mean, 7), round(std, 7), len(chosen) - len(report.failed), listed,
                         len(speakers), source,
                         str(split) if split is not None else None)
    with atomic_output(data_dir / AUDIO_STATS, "w") as handle:
        json.dump(asdict(stats), handle, indent=2)
    return stats
