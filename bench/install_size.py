"""What each extra costs on disk: a fresh virtual environment per extra (``runtime``,
``openvino``, ``serve``, ``signing``, ``convert``, ``train``), the size of its site-packages
and the ratio to the training environment's. Wheels come from the package index (torch
2.13.0, the CPU build, for ``train``).

usage: python bench/install_size.py [--workdir DIR] [--extras runtime openvino ...]
Writes bench/results/install_size.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/machine.py
from machine import announce  # noqa: E402
from workdir import bench_workdir  # noqa: E402

EXTRAS = ("runtime", "openvino", "serve", "signing", "convert", "train")


def site_packages_mb(env: Path) -> float:
    site = next((env / "lib").glob("python*/site-packages"))
    total = sum(p.stat().st_size for p in site.rglob("*") if p.is_file() and not p.is_symlink())
    return round(total / 1e6, 1)


def install(workdir: Path, extra: str) -> dict:
    env = workdir / f"env-{extra}"
    started = time.perf_counter()
    if not (env / "bin" / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", str(env)], check=True)
        packages = [f"{REPO}[{extra}]"] if extra != "train" else ["torch==2.13.0", f"{REPO}[{extra}]"]
        subprocess.run([str(env / "bin" / "python"), "-m", "pip", "install", "-q", *packages], check=True)
    torch = subprocess.run([str(env / "bin" / "python"), "-c", "import torch"], capture_output=True).returncode == 0
    return {"site_packages_mb": site_packages_mb(env), "install_s": round(time.perf_counter() - started, 1),
            "has_torch": torch}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--extras", nargs="+", default=list(EXTRAS))
    args = parser.parse_args()
    workdir = bench_workdir(args.workdir, "s2f-install-size-")
    results = {"machine": announce(), "extras": {}}
    for extra in args.extras:
        results["extras"][extra] = install(workdir, extra)
        print(extra, results["extras"][extra], flush=True)
    if "train" in results["extras"]:
        train = results["extras"]["train"]["site_packages_mb"]
        for row in results["extras"].values():
            row["of_train"] = round(row["site_packages_mb"] / train, 3)
    (REPO / "bench" / "results" / "install_size.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
