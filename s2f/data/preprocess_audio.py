"""``s2f preprocess audio``: every voice clip under DATA_DIR -> its voice-encoder input
(``s2f.runtime.preprocess.voice_input``), one ``.npy`` per clip at the mirrored path under OUT_DIR."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from s2f.core.errors import InputError
from s2f.core.shards import WHOLE, Shard
from s2f.data.jobs import ONE_PROCESS, FileJob, JobOptions, ListedJobs, RunReport, run_jobs, save_array
from s2f.data.layout import AUDIO_REPORT, AUDIO_SETTINGS, require_dir, shard_report_name
from s2f.data.settings import claim_settings
from s2f.runtime.preprocess.audio import AUDIO_SUFFIXES
from s2f.runtime.preprocess.voice_input import AUDIO_STEPS, ENCODERS, VE_VARIANTS, VoiceInputSpec

log = logging.getLogger(__name__)

_spec: VoiceInputSpec | None = None


def _init_worker(spec_values: dict) -> None:
    global _spec
    _spec = VoiceInputSpec.from_dict(spec_values)


def _process(job: FileJob) -> None:
    assert _spec is not None
    save_array(job.outputs[0], _spec.features_from_file(job.source))


def feature_settings(spec: VoiceInputSpec) -> dict:
    """What a tree's voice features were made with (``audio_features.json``); a model takes
    its voice input from these, whether the features were precomputed or made on the fly."""
    return {"kind": "voice_features", **spec.to_dict(), "shape": list(spec.shape)}


def audio_jobs(data_dir: Path, out_dir: Path, shard: Shard = WHOLE) -> ListedJobs:
    def job_for(name: str) -> FileJob:
        return FileJob(data_dir / name, (out_dir / Path(name).with_suffix(".npy"),))

    return ListedJobs(data_dir, AUDIO_SUFFIXES, job_for, shard)


@dataclass(kw_only=True)
class AudioPreprocessing:
    """``s2f preprocess audio``: what the command is told; ``spec()`` turns it into the voice input.

    Args:
        data_dir: the corpus: <identity>/audios/ with the clips.
        out_dir: where the features go, mirroring DATA_DIR.
        encoder: the voice encoder the features are for.
        variant: ve_conv spectrogram: paper (2x257x598) or original (2x257x601).
        seconds: clip length (default 6 for ve_conv, 10.26 for ast).
        mean: AST fbank mean (default: DATA_DIR/audio_stats.json from 's2f data stats', else AudioSet's -4.2677393).
        std: AST fbank std (default: as --mean; AudioSet's 4.5689974).
        audio_steps: original: the original project's PCM16 rounding around a loudness step measured over the
            whole file, for data meant for its models (default: loudness of the clip used).
        jobs: how the run over the files runs.
    """

    data_dir: Path = field(metadata={"positional": True})
    out_dir: Path = field(metadata={"positional": True})
    encoder: str = field(metadata={"choices": ENCODERS})
    variant: str = field(default="paper", metadata={"choices": VE_VARIANTS})
    seconds: float | None = None
    mean: float | None = None
    std: float | None = None
    audio_steps: str = field(default="speech2face", metadata={"choices": AUDIO_STEPS})
    jobs: JobOptions = field(default_factory=JobOptions)

    def spec(self) -> VoiceInputSpec:
        """The voice input; without --mean/--std, the statistics 's2f data stats' measured in DATA_DIR."""
        from s2f.data.feature_stats import AUDIO_STATS, spec_with_stats

        spec, measured = spec_with_stats(self.data_dir, self.encoder, self.variant, self.seconds, self.audio_steps,
                                         self.mean, self.std)
        if measured:
            log.info("fbank mean %s, std %s from %s", measured["mean"], measured["std"], self.data_dir / AUDIO_STATS)
        return spec


def preprocess_audio(data_dir: Path, out_dir: Path, spec: VoiceInputSpec, jobs: JobOptions = ONE_PROCESS) -> RunReport:
    """Every clip under ``data_dir`` (this process's shard of them) -> its features under ``out_dir``."""
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    shard = jobs.resolved_shard()
    require_dir(data_dir)
    files = audio_jobs(data_dir, out_dir, shard)
    if not files.files:
        raise InputError(data_dir, f"no audio files found (looked for {', '.join(sorted(AUDIO_SUFFIXES))})")
    settings = feature_settings(spec)
    claim_settings(out_dir / AUDIO_SETTINGS, settings, jobs.overwrite)
    report = RunReport("preprocess audio", settings)
    for _ in run_jobs(files, _process, report, jobs.workers, "audio", _init_worker, (spec.to_dict(),), files.total,
                      jobs.overwrite):
        report.written += 1
    report.shard = None if shard.whole else str(shard)
    report.save(out_dir / shard_report_name(AUDIO_REPORT, shard))
    return report
