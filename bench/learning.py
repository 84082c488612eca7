"""Proof that the system learns: the demo's training pipeline on the synthetic corpus, with
its learning curves, speech->face retrieval against chance, and the decoder against the
mean face. Writes bench/results/learning.json.

usage: python bench/learning.py [--workdir DIR] [--identities 120] [--clips 6] [--voice-epochs 16] [--decoder-epochs 60]
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/machine.py
from machine import announce  # noqa: E402

sys.path.insert(0, str(REPO))


def curve(run: Path, keys: list[str]) -> list[dict[str, float]]:
    rows = list(csv.DictReader(open(run / "metrics.csv")))
    return [{"epoch": int(row["epoch"]), **{k: round(float(row[k]), 5) for k in keys if row.get(k)}} for row in rows]


def main() -> None:
    import logging

    from s2f.core.command_line import configure_logging
    from s2f.pipeline import PipelineConfig, run_pipeline

    configure_logging(logging.INFO)  # the pipeline's steps, not every library's chatter

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, help="keep the run here (default: a temporary directory)")
    defaults = PipelineConfig()
    parser.add_argument("--identities", type=int, default=defaults.identities)
    parser.add_argument("--clips", type=int, default=defaults.clips)
    parser.add_argument("--voice-epochs", type=int, default=defaults.voice_epochs)
    parser.add_argument("--decoder-epochs", type=int, default=defaults.decoder_epochs)
    args = parser.parse_args()
    config = PipelineConfig(identities=args.identities, clips=args.clips, voice_epochs=args.voice_epochs,
                            decoder_epochs=args.decoder_epochs)
    with tempfile.TemporaryDirectory() as scratch:
        workdir = args.workdir or Path(scratch)
        result = run_pipeline(workdir, config)
        runs = workdir / "runs"
        decoder = curve(runs / "decoder", ["train_loss", "val_loss", "val_texture", "val_landmarks", "samples_per_s"])
        voice = curve(runs / "voice", ["train_loss", "val_loss", "val_distance", "val_decoder", "val_distillation",
                                       "samples_per_s"])
    print("\ndecoder (val): " + "  ".join(f"e{r['epoch']} tex {r['val_texture']:.2f} lm {r['val_landmarks']:.0f}"
                                          for r in decoder))
    print("voice (val):   " + "  ".join(f"e{r['epoch']} {r['val_loss']:.3f}" for r in voice))
    keys = ["identities", "candidates", "queries", "recall@1", "chance@1", "recall@5", "chance@5", "recall@10",
            "chance@10", "cosine_to_true_face", "decoder_l1", "mean_face_l1", "seconds"]
    summary = {k: result[k] for k in keys if k in result}
    summary["recall@5_over_chance"] = round(result["recall@5"] / result["chance@5"], 3)
    summary["decoder_l1_over_mean_face"] = round(result["decoder_l1"] / result["mean_face_l1"], 3)
    for name, card in (("sf2f_pytorch", result["sf2f"]), ("sf2f_bundle", result["bundle_sf2f"])):
        summary[name] = {"gallery": card["galleries"]["note"], **{
            kind: {k: round(v, 3) for k, v in card[kind].items()
                   if k in ("recall@1", "chance@1", "recall@5", "chance@5", "recall@10", "chance@10", "cosine")}
            for kind in ("speech_to_face", "face_to_face", "voice_embedding")}}
    summary["colour_delta_e"] = {kind: {"skin": round(errors["delta_e"]["skin"], 2),
                                        "hair": round(errors["delta_e"]["hair"], 2),
                                        "real_spread_skin": round(errors["real_spread_delta_e"]["skin"], 2),
                                        "real_spread_hair": round(errors["real_spread_delta_e"]["hair"], 2)}
                                 for kind, errors in result["colour"].items()}
    summary["throughput_samples_per_s"] = {"decoder": decoder[-1]["samples_per_s"],
                                           "ve_conv": voice[-1]["samples_per_s"]}
    print(json.dumps(summary, indent=2))
    out = REPO / "bench" / "results" / "learning.json"
    out.write_text(json.dumps({"machine": announce(), "summary": summary, "config": result["config"],
                               "decoder_curve": decoder, "voice_curve": voice}, indent=2))


if __name__ == "__main__":
    main()
