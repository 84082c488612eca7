"""The main job on built-in defaults: upstream Keras file with random weights -> convert ->
parity report, for each face encoder; then the training pipeline on a synthetic corpus
(``s2f.train.pipeline``): preprocess, train decoder and voice encoder, evaluate, result grid."""

from __future__ import annotations

from pathlib import Path

from s2f.models.face_encoder_config import ARCHITECTURES

SAMPLE_FACES = Path(__file__).resolve().parent.parent / "tests" / "data" / "faces"


def run_demo(workdir: Path, arch: str = "all", images: list[Path] | None = None, training: bool = True,
             runtime_env: Path | None = None) -> bool:
    from converters.convert import convert
    from converters.keras_reference import write_random_keras_file
    from converters.parity import format_report, run_parity, write_report

    workdir.mkdir(parents=True, exist_ok=True)
    images = images if images is not None else ([SAMPLE_FACES] if SAMPLE_FACES.is_dir() else [])
    archs = ARCHITECTURES if arch == "all" else (arch,)
    passed = True
    for name in archs:
        keras_file = workdir / f"{name}-random.h5"
        print(f"[{name}] writing upstream Keras model with random weights -> {keras_file}")
        write_random_keras_file(keras_file, name, include_top=True)
        converted = workdir / f"{name}.safetensors"
        result = convert(keras_file, converted)
        print(f"[{name}] converted in {result.seconds:.2f} s -> {converted} "
              f"({result.parameters:,} parameters)")
        report = run_parity(keras_file, images=images, converted=converted)
        write_report(report, workdir / f"{name}-parity.json")
        print(format_report(report))
        passed &= report.passed
    print("all parity checks passed" if passed else "PARITY FAILED")
    if training:
        from s2f.train.pipeline import run_pipeline

        result = run_pipeline(workdir / "training", runtime_env=runtime_env)
        print(f"speech->face recall@5 among {result['candidates']} unseen identities: {result['recall@5']:.3f} "
              f"(chance {result['chance@5']:.3f}); decoder L1 {result['decoder_l1']:.4f} vs mean face "
              f"{result['mean_face_l1']:.4f}")
    return passed
