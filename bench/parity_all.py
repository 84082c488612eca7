"""Parity of every architecture, with and without top: the figures quoted in the README.

Builds each upstream Keras model with random weights (seed 0), converts it with
``s2f convert`` and runs ``s2f parity`` on 2 random images and the bundled real face.
Writes bench/results/parity.json and prints one line per case.

usage: python bench/parity_all.py [--workdir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/machine.py
from machine import announce  # noqa: E402
from workdir import bench_workdir  # noqa: E402


def main() -> None:
    from s2f.converters.keras_reference import write_random_keras_file
    from s2f.converters.parity import run_parity
    from s2f.models.face_encoder_config import ARCHITECTURES

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path)
    args = parser.parse_args()
    workdir = bench_workdir(args.workdir, "s2f-parity-")
    rows = []
    for arch in ARCHITECTURES:
        for include_top in (True, False):
            source = workdir / f"{arch}-{'top' if include_top else 'notop'}.h5"
            write_random_keras_file(source, arch, include_top, seed=0)
            report = run_parity(source, images=[REPO / "tests" / "data" / "faces"])
            gate = report.gated
            worst = max(report.layers, key=lambda c: c.max_rel)
            rows.append({"arch": arch, "include_top": include_top, "gate": report.gate,
                         "max_rel": gate.max_rel, "max_abs": gate.max_abs, "min_cosine": gate.min_cosine,
                         "worst_layer": worst.name, "worst_layer_max_rel": worst.max_rel,
                         "layers": len(report.layers), "passed": report.passed})
            print(f"{arch:17} {'top  ' if include_top else 'notop'} {report.gate:9} rel {gate.max_rel:.2e} "
                  f"cos {gate.min_cosine:.9f}  worst layer {worst.name.split(' -> ')[0]} {worst.max_rel:.2e}"
                  f"  {'PASS' if report.passed else 'FAIL'}")
            source.unlink()
    out = REPO / "bench" / "results" / "parity.json"
    out.write_text(json.dumps({"machine": announce(), "rows": rows}, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
