"""User mistakes: one-line error naming the file (and layer, shapes), exit code 2, no traceback,
and no output file (or temp file) left behind."""

from __future__ import annotations

import shutil

import h5py
import numpy as np
import pytest
from support.helpers import run_s2f


def _assert_clean_failure(done, *fragments: str, out_dir=None) -> None:
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("s2f: error: ")
    assert "Traceback" not in done.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    if out_dir is not None:
        assert list(out_dir.iterdir()) == [], "partial output left behind"


@pytest.fixture
def vgg_notop(keras_file, tmp_path):
    """A private copy of a real keras-vggface notop file, safe to damage."""
    copy = tmp_path / "rcmalli_vggface_tf_notop_vgg16.h5"
    shutil.copy(keras_file("rcmalli-vgg16", False, False), copy)
    return copy


@pytest.fixture
def out_dir(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    return out


def test_not_hdf5(tmp_path, out_dir):
    bogus = tmp_path / "weights.h5"
    bogus.write_text("<html>404 Not Found</html>")
    done = run_s2f("convert", bogus, "-o", out_dir / "x.safetensors")
    _assert_clean_failure(done, str(bogus), "neither HDF5", out_dir=out_dir)


def test_empty_file(tmp_path, out_dir):
    empty = tmp_path / "empty.h5"
    empty.touch()
    _assert_clean_failure(run_s2f("convert", empty, "-o", out_dir / "x.safetensors"),
                          str(empty), "empty", out_dir=out_dir)


def test_missing_input(tmp_path, out_dir):
    _assert_clean_failure(run_s2f("convert", tmp_path / "nope.h5", "-o", out_dir / "x.safetensors"),
                          "nope.h5", "not found", out_dir=out_dir)


@pytest.mark.slow
def test_truncated_file(vgg_notop, out_dir):
    size = vgg_notop.stat().st_size
    with open(vgg_notop, "r+b") as handle:
        handle.truncate(size // 2)
    done = run_s2f("convert", vgg_notop, "-o", out_dir / "x.safetensors")
    _assert_clean_failure(done, str(vgg_notop), "truncated", out_dir=out_dir)


def test_wrong_arch(vgg_notop, out_dir):
    done = run_s2f("convert", vgg_notop, "-o", out_dir / "x.safetensors", "--arch", "rcmalli-resnet50")
    _assert_clean_failure(done, str(vgg_notop), "--arch rcmalli-resnet50", "rcmalli-vgg16", out_dir=out_dir)


def test_missing_layer(vgg_notop, out_dir):
    with h5py.File(vgg_notop, "r+") as handle:
        del handle["conv3_2"]
        names = [n for n in handle.attrs["layer_names"] if n not in (b"conv3_2", "conv3_2")]
        handle.attrs["layer_names"] = np.array(names, dtype="S")
    done = run_s2f("convert", vgg_notop, "-o", out_dir / "x.safetensors")
    _assert_clean_failure(done, str(vgg_notop), "missing layer 'conv3_2'", out_dir=out_dir)


def test_shape_mismatch(vgg_notop, out_dir):
    with h5py.File(vgg_notop, "r+") as handle:
        group = handle["conv2_1"]
        name = [n.decode() if isinstance(n, bytes) else n for n in group.attrs["weight_names"]][0]
        del group[name]
        group.create_dataset(name, data=np.zeros((3, 3, 64, 96), np.float32))
    done = run_s2f("convert", vgg_notop, "-o", out_dir / "x.safetensors")
    _assert_clean_failure(done, str(vgg_notop), "conv2_1", "(3, 3, 64, 96)", "(3, 3, 64, 128)", out_dir=out_dir)


def test_unwritable_output(vgg_notop, tmp_path):
    done = run_s2f("convert", vgg_notop, "-o", tmp_path / "no-such-dir" / "x.safetensors")
    _assert_clean_failure(done, "no-such-dir", "does not exist")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        import os
        if os.access(locked, os.W_OK):  # root ignores permissions: use a path under a file
            target = vgg_notop / "x.safetensors"
        else:
            target = locked / "x.safetensors"
        _assert_clean_failure(run_s2f("convert", vgg_notop, "-o", target), str(target.parent))
    finally:
        locked.chmod(0o700)


def test_failed_convert_keeps_an_existing_output(vgg_notop, keras_file, tmp_path):
    """Atomic writes: a failure midway leaves the previous good file untouched."""
    target = tmp_path / "model.safetensors"
    assert run_s2f("convert", vgg_notop, "-o", target).returncode == 0
    before = target.read_bytes()
    with open(vgg_notop, "r+b") as handle:
        handle.truncate(vgg_notop.stat().st_size - 1000)
    done = run_s2f("convert", vgg_notop, "-o", target)
    assert done.returncode == 2
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["model.safetensors", vgg_notop.name])


def test_not_a_keras_file(tmp_path, out_dir):
    plain = tmp_path / "data.h5"
    with h5py.File(plain, "w") as handle:
        handle["x"] = np.zeros(3)
    _assert_clean_failure(run_s2f("convert", plain, "-o", out_dir / "x.safetensors"),
                          str(plain), "layer_names", out_dir=out_dir)
