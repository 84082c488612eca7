"""The main job on built-in defaults: for each face encoder, an upstream Keras file with random
weights -> convert -> parity report; then the whole system on a synthetic corpus
(``s2f.pipeline``): preprocess, train decoder and voice encoder, evaluate, export, run."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from s2f.assets import SAMPLE_FACE
from s2f.models.face_encoder_config import ARCHITECTURES

log = logging.getLogger(__name__)


@dataclass
class DemoConfig:
    """Args:
        workdir: where every file goes.
        arch: one face-encoder architecture, or ``all``.
        images: real face photos for parity (default: the sample face shipped in the package).
        training: also run the training pipeline after parity.
        runtime_env: a torch-free virtual environment to run the exported bundle in.
    """

    workdir: Path = Path("s2f-demo")
    arch: str = "all"
    images: list[Path] | None = None
    training: bool = True
    runtime_env: Path | None = None


def run_demo(config: DemoConfig) -> bool:
    """True when every parity check passed (the training pipeline raises if a step fails)."""
    from s2f.converters.convert import convert
    from s2f.converters.keras_reference import write_random_keras_file
    from s2f.converters.parity import format_report, run_parity, write_report

    workdir = Path(config.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    images = list(config.images) if config.images is not None else [SAMPLE_FACE]
    passed = True
    for name in ARCHITECTURES if config.arch == "all" else (config.arch,):
        keras_file = workdir / f"{name}-random.h5"
        log.info("[%s] writing upstream Keras model with random weights -> %s", name, keras_file)
        write_random_keras_file(keras_file, name, include_top=True)
        converted = workdir / f"{name}.safetensors"
        result = convert(keras_file, converted)
        log.info("[%s] converted in %.2f s -> %s (%s parameters)", name, result.seconds, converted,
                 f"{result.parameters:,}")
        report = run_parity(keras_file, images=images, converted=converted)
        write_report(report, workdir / f"{name}-parity.json")
        log.info("%s", format_report(report))
        passed &= report.passed
    log.info("all parity checks passed" if passed else "PARITY FAILED")
    if config.training:
        from s2f.pipeline import run_pipeline

        result = run_pipeline(workdir / "training", runtime_env=config.runtime_env)
        log.info("speech->face recall@5 among %d candidates, %d unseen identities: %.3f (chance %.3f); decoder L1 "
                 "%.4f vs mean face %.4f", result["candidates"], result["identities"], result["recall@5"],
                 result["chance@5"], result["decoder_l1"], result["mean_face_l1"])
        for kind, errors in result["colour"].items():
            log.info("%s colour ΔE (CIELAB): skin %.1f, hair %.1f; the real identities lie %.1f and %.1f from "
                     "their average", kind.replace("_to_", "->"), errors["delta_e"]["skin"],
                     errors["delta_e"]["hair"], errors["real_spread_delta_e"]["skin"],
                     errors["real_spread_delta_e"]["hair"])
        from s2f.runtime.evaluate.scorecard import summary_lines

        for line in summary_lines(result["bundle_sf2f"]):
            log.info("%s", line)
    return passed
