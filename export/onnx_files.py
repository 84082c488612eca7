"""Writing a verified graph: ``NAME.onnx`` with its weights in ``NAME.onnx.data``, or one
self-contained file, all-or-nothing either way."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from s2f.core.atomic import atomic_output
from s2f.core.errors import InputError


def write_inline(data: bytes, path: Path) -> int:
    with atomic_output(path) as handle:
        handle.write(data)
    return len(data)


def write_with_external_data(proto, path: Path) -> int:
    """``NAME.onnx`` (the graph) + ``NAME.onnx.data`` (the weights, one file): onnxruntime
    maps the weights instead of parsing them out of a protobuf, so a large model opens faster
    (bench/onnx_runtime.py, session_open). Both are written under temporary names; the data
    file is renamed first, the graph last, so a present graph always has its complete weights.
    Returns the bytes written."""
    import onnx

    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise InputError(path, f"output directory {str(directory)!r} does not exist")
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".partial", dir=directory))
    try:
        data_name = path.name + ".data"
        onnx.save_model(proto, str(staging / path.name), save_as_external_data=True, all_tensors_to_one_file=True,
                        location=data_name, size_threshold=1024)
        for name in (data_name, path.name):  # the staging directory's files are private (0600)
            os.chmod(staging / name, 0o644)
        os.replace(staging / data_name, directory / data_name)
        os.replace(staging / path.name, path)
        return path.stat().st_size + (directory / data_name).stat().st_size
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def variant_path(path: str | Path, precision: str) -> Path:
    """``ast.onnx`` -> ``ast.int8.onnx`` (fp32 keeps the name)."""
    path = Path(path)
    return path if precision == "fp32" else path.with_name(f"{path.stem}.{precision}{path.suffix}")


def fp16_path(path: str | Path) -> Path:
    return variant_path(path, "fp16")


def int8_path(path: str | Path) -> Path:
    return variant_path(path, "int8")
