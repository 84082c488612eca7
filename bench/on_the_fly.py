"""Does training still learn when the features are computed on the training device? The
demo's synthetic corpus and budget: VE_conv and the AST, each trained from precomputed
arrays, on the fly (first window) and on the fly with a random crop per epoch, with the
same seeds; speech->face retrieval (recall@5 against chance among the unseen identities) and
the SF2F scorecard (speech->face recall of the generated faces) side by side. A last run,
precomputed with another seed, shows how far runs land apart by chance alone: on the fly
without a crop is the same training up to a float32 step in a few features, which eight
epochs carry as far as any other perturbation.
Writes bench/results/on_the_fly.json.

usage: python bench/on_the_fly.py [--workdir DIR] [--encoders ve_conv ast]
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/machine.py
from machine import announce  # noqa: E402

sys.path.insert(0, str(REPO))

# the last row is the yardstick: how far two runs that differ only in their seed land apart
MODES = {"precomputed": {}, "on-the-fly": {"features": "on-the-fly"},
         "on-the-fly + random crop": {"features": "on-the-fly", "random_crop": True},
         "precomputed, seed 1": {"seed": 1}}


def ast_tree(prepared, workdir: Path, workers: int) -> Path:
    """The AST's precomputed features beside the demo's VE_conv ones, sharing its face arrays."""
    from s2f.data.jobs import JobOptions
    from s2f.data.preprocess_audio import preprocess_audio
    from s2f.runtime.preprocess.voice_input import VoiceInputSpec

    tree = workdir / "preprocessed_ast"
    if not (tree / "audio_features.json").is_file():
        preprocess_audio(prepared.corpus, tree, VoiceInputSpec(encoder="ast"), JobOptions(workers=workers))
    for identity in prepared.pre.iterdir():
        if (identity / "images").is_dir() and not (tree / identity.name / "images").exists():
            shutil.copytree(identity / "images", tree / identity.name / "images")
    return tree


def score(run: Path, data: Path, prepared, decoder: Path, candidates: int, clips: int) -> dict:
    from s2f.train.runs import Evaluation, evaluate

    retrieval = evaluate(Evaluation(voice_encoder=run, data=data, output=run / "retrieval.json",
                                    split=prepared.split, candidates=candidates))
    card = evaluate(Evaluation(voice_encoder=run, data=data, output=run / "sf2f.json", split=prepared.split,
                               decoder=decoder, protocol="sf2f", face_encoder=prepared.face_encoder,
                               max_clips=clips))
    rows = list(csv.DictReader(open(run / "metrics.csv")))
    speech = card["speech_to_face"]
    return {"recall@5": round(retrieval["recall@5"], 3), "chance@5": round(retrieval["chance@5"], 3),
            "recall@5_over_chance": round(retrieval["recall@5"] / retrieval["chance@5"], 2),
            "sf2f_speech_to_face": {k: round(speech[k], 3) for k in ("recall@1", "recall@5", "recall@10",
                                                                     "chance@5", "cosine")},
            "final_val_loss": round(float(rows[-1]["val_loss"]), 5)}


def main() -> None:
    import logging

    from s2f.core.command_line import configure_logging
    from s2f.pipeline import PipelineConfig, decoder_train_config, prepare_data
    from s2f.train.runs import DecoderTraining, VoiceTraining, train_config, train_decoder, train_voice

    configure_logging(logging.INFO)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, help="keep the runs here (default: a temporary directory)")
    parser.add_argument("--encoders", nargs="+", default=["ve_conv", "ast"], choices=["ve_conv", "ast"])
    args = parser.parse_args()
    config = PipelineConfig()
    machine = announce()
    results: dict = {}
    with tempfile.TemporaryDirectory() as scratch:
        workdir = args.workdir or Path(scratch)
        prepared = prepare_data(workdir, config)
        common = {"split": prepared.split, "size": config.size, "resume": True}
        decoder = workdir / "runs" / "decoder"
        train_decoder(DecoderTraining(data=prepared.pre, out=decoder, warp=config.warp,
                                      train=decoder_train_config(config), **common))
        loop = {"batch_size": config.batch_size, "lr": config.lr, "schedule": config.schedule, "seed": config.seed,
                "epochs": config.voice_epochs, "workers": config.workers, "tensorboard": False}
        for encoder in args.encoders:
            data = prepared.pre if encoder == "ve_conv" else ast_tree(prepared, workdir, config.workers)
            seconds = config.seconds if encoder == "ve_conv" else None
            for mode, flags in MODES.items():
                run = workdir / "runs" / f"{encoder}_{mode.replace(' ', '').replace('+', '_').replace(',', '_')}"
                flags = dict(flags)
                seed = flags.pop("seed", config.seed)
                extra = {"voices": prepared.corpus, "seconds": seconds, **flags} if flags else {}
                train_voice(VoiceTraining(data=data, out=run, encoder=encoder, decoder=decoder,
                                          face_encoder=prepared.face_encoder, w_distance=config.w_distance,
                                          train=train_config({**loop, "seed": seed}), **common, **extra))
                results.setdefault(encoder, {})[mode] = score(run, data, prepared, decoder, config.candidates,
                                                              config.scorecard_clips)
                print(encoder, mode, json.dumps(results[encoder][mode]), flush=True)
    out = REPO / "bench" / "results" / "on_the_fly.json"
    out.write_text(json.dumps({"machine": machine, "config": {"identities": config.identities,
                                                              "clips": config.clips, "seconds": config.seconds,
                                                              "voice_epochs": config.voice_epochs,
                                                              "dataloader_workers": config.workers},
                               "results": results}, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
