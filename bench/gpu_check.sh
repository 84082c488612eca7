#!/usr/bin/env bash
# The GPU check, on a lent CUDA machine whose python3 holds CUDA PyTorch. This package and
# the audio readers it imports travel as wheels in .whl/ (built and downloaded beforehand:
#   pip wheel --no-deps . -w .whl
#   pip download --no-deps --only-binary=:all: --python-version 3.12 --platform manylinux_2_28_x86_64 \
#       --platform manylinux_2_17_x86_64 -d .whl soundfile soxr cffi pycparser
# ). Writes gpu_check.json to $OUT (the device tool's return folder) or bench/results.
set -euo pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 bench/gpu_check.py --out "${OUT:-bench/results}/gpu_check.json"
