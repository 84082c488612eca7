"""``s2f preprocess audio``: every voice clip under DATA_DIR -> its voice-encoder input
(``s2f.runtime.preprocess.voice_input``), one ``.npy`` per clip at the mirrored path under OUT_DIR."""

from __future__ import annotations

from pathlib import Path

from s2f.core.errors import InputError
from s2f.core.shards import WHOLE, Shard
from s2f.data.jobs import FileJob, ListedJobs, RunReport, run_jobs, save_array
from s2f.data.layout import AUDIO_REPORT, AUDIO_SETTINGS, require_dir, shard_report_name
from s2f.data.settings import claim_settings
from s2f.runtime.preprocess.audio import AUDIO_SUFFIXES
from s2f.runtime.preprocess.voice_input import VoiceInputSpec

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


def preprocess_audio(data_dir: Path, out_dir: Path, spec: VoiceInputSpec, workers: int = 1,
                     overwrite: bool = False, shard: Shard = WHOLE) -> RunReport:
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    require_dir(data_dir)
    jobs = audio_jobs(data_dir, out_dir, shard)
    if not jobs.files:
        raise InputError(data_dir, f"no audio files found (looked for {', '.join(sorted(AUDIO_SUFFIXES))})")
    settings = feature_settings(spec)
    claim_settings(out_dir / AUDIO_SETTINGS, settings, overwrite)
    report = RunReport("preprocess audio", settings)
    for _ in run_jobs(jobs, _process, report, workers, "audio", _init_worker, (spec.to_dict(),), jobs.total,
                      overwrite):
        report.written += 1
    report.shard = None if shard.whole else str(shard)
    report.save(out_dir / shard_report_name(AUDIO_REPORT, shard))
    return report
