"""What checking a bundle's signature (``--trust-key``) adds to opening a full-size bundle
(serengil face encoder, VE_conv, face decoder; random weights), each measurement in a fresh
process so that importing model-signing is counted:

* ``open_bundle`` with every file hashed, unsigned against signed, with the record of hashed
  files empty (``cache=False``: every sha256 computed) and filled (a second start, files
  unchanged). The files sit in the OS page cache in both: "cold" is our hash cache, not the disk;
* model-signing's own check of the same signature (it hashes every file on every open), the
  alternative to comparing the signed digests with the manifest's;
* ``s2f-runtime speech2face``, process start to PNG, with and without ``--trust-key``
  (speech -> face hashes only the graphs it loads);
* signing the bundle (``s2f bundle sign``: every file checked against the manifest, then hashed
  again by model-signing).

usage: python bench/signing.py [--workdir DIR] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/machine.py
from machine import announce  # noqa: E402
from workdir import bench_workdir  # noqa: E402

sys.path.insert(0, str(REPO))

OPEN = """
import json, sys, time
started = time.perf_counter()
from s2f.runtime.bundle.reader import open_bundle
bundle = open_bundle(sys.argv[1], verify=True, cache=sys.argv[2] == "cache", trust_key=sys.argv[3] or False)
print(json.dumps({"seconds": time.perf_counter() - started, "signed_by": bundle.signed_by}))
"""
MODEL_SIGNING = """
import json, sys, time
started = time.perf_counter()
from model_signing import verifying
verifying.Config().use_elliptic_key_verifier(public_key=sys.argv[3]).verify(sys.argv[1], sys.argv[1] + "/model.sig")
print(json.dumps({"seconds": time.perf_counter() - started}))
"""


def build(workdir: Path) -> tuple[Path, Path]:
    """A signed full-size bundle and the public key, made once per workdir."""
    bundle, key = workdir / "bundle", workdir / "key.pem"
    if not key.is_file():
        from s2f.export.signing import generate_key_pair

        generate_key_pair(key)
    if not (bundle / "manifest.json").is_file():
        import torch

        from s2f.export.bundle import export_bundle
        from s2f.models.face_encoder import build_face_encoder, he_normal_init_
        from s2f.models.face_encoder_config import FaceEncoderConfig
        from s2f.models.registry import MODELS

        torch.manual_seed(0)
        face = he_normal_init_(build_face_encoder(FaceEncoderConfig.for_arch("serengil", True)), 0)
        voice, decoder = MODELS["ve_conv"].build("full"), MODELS["face_decoder"].build("full")
        export_bundle(bundle, voice, decoder, face, overwrite=True)
    return bundle, key.with_suffix(".pub")


def _seconds(command: list[str], repeats: int) -> dict:
    """Median over fresh processes: the time the command reports, and the whole process's."""
    inner, wall = [], []
    for _ in range(repeats):
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True)
        wall.append(time.perf_counter() - started)
        if done.returncode != 0:
            raise RuntimeError(f"{command} failed:\n{done.stderr[-3000:]}")
        lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
        if lines:
            inner.append(json.loads(lines[-1])["seconds"])
    result = {"process_s": round(statistics.median(wall), 3)}
    if inner:
        result["open_s"] = round(statistics.median(inner), 3)
    return result


def _versus(unsigned: dict, signed: dict, key: str) -> dict:
    return {"unsigned": unsigned, "signed": signed, "added_s": round(signed[key] - unsigned[key], 3),
            "ratio": round(signed[key] / unsigned[key], 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    workdir = bench_workdir(args.workdir, "s2f-signing-")
    os.environ["S2F_CACHE"] = str(workdir / "verify-cache")
    os.environ.pop("S2F_TRUST_KEY", None)
    bundle, public = build(workdir)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "s2f", "-q", "bundle", "sign", str(bundle), "--key",
                    str(public.with_suffix(".pem"))], check=True)
    results: dict = {"machine": announce(), "repeats": args.repeats,
                     "bundle_mb": round(sum(p.stat().st_size for p in bundle.iterdir()) / 2**20, 1),
                     "sign_s": round(time.perf_counter() - started, 3)}
    opening = [sys.executable, "-c", OPEN, str(bundle)]
    results["open_hash_cache_empty"] = _versus(_seconds([*opening, "no-cache", ""], args.repeats),
                                               _seconds([*opening, "no-cache", str(public)], args.repeats), "open_s")
    _seconds([*opening, "cache", ""], 1)  # fill the record of hashed files
    results["open_hash_cache_filled"] = _versus(_seconds([*opening, "cache", ""], args.repeats),
                                                _seconds([*opening, "cache", str(public)], args.repeats), "open_s")
    standard = _seconds([sys.executable, "-c", MODEL_SIGNING, str(bundle), "", str(public)], args.repeats)
    ours = results["open_hash_cache_filled"]["signed"]
    results["model_signing_full_check"] = {**standard, "ours_with_hash_cache_s": ours["open_s"],
                                           "speedup": round(standard["open_s"] / ours["open_s"], 1)}
    print(json.dumps(results, indent=1), flush=True)

    import soundfile

    from s2f.data.synth_voice import speech_clip

    soundfile.write(workdir / "voice.wav", speech_clip(6.0), 16000)
    cli = [sys.executable, "-m", "s2f.runtime.cli", "-q", "speech2face", str(workdir / "voice.wav"), "-o",
           str(workdir / "face.png"), "--bundle", str(bundle), "--device", "cpu"]
    for label, extra in (("cli_to_png_rehash", ["--rehash"]), ("cli_to_png_hash_cache", [])):
        results[label] = _versus(_seconds([*cli, *extra], args.repeats),
                                 _seconds([*cli, *extra, "--trust-key", str(public)], args.repeats), "process_s")
    print(json.dumps({k: results[k] for k in ("cli_to_png_rehash", "cli_to_png_hash_cache")}), flush=True)
    (REPO / "bench" / "results" / "signing.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
