"""One door for every model file: ``identify`` says what a path holds, loading and conversion
act on its answer, one strict check judges the tensors, one provenance record travels."""

from __future__ import annotations

import json

import numpy as np
import pytest

from s2f.core.errors import InputError
from s2f.models.identify import identify


def _files(tmp_path):
    import h5py
    import torch
    from safetensors.numpy import save_file

    from s2f.models.registry import MODELS

    with h5py.File(tmp_path / "weights.h5", "w") as handle:
        handle.create_dataset("x", data=np.zeros(2))
    torch.save({"model_state_dict": {"w": torch.zeros(2)}}, tmp_path / "best_model.pt")
    save_file({"w": np.zeros(2, np.float32)}, str(tmp_path / "encoder.bin"), metadata={"arch": "serengil"})
    MODELS["ve_conv"].build("tiny", embedding_dim=8).save_pretrained(tmp_path / "voice")
    return {"weights.h5": ("keras", None), "best_model.pt": ("torch", None),
            "encoder.bin": ("safetensors", "face_encoder"), "voice": ("pretrained", "ve_conv")}


def test_identify_reads_what_a_path_holds_not_its_name(tmp_path):
    expected = _files(tmp_path)
    found = {name: (identify(tmp_path / name).kind, identify(tmp_path / name).model_type) for name in expected}
    assert found == expected  # encoder.bin: a safetensors header, whatever the file is called


@pytest.mark.parametrize("content,message", [(b"", "file is empty"), (b"hello, world", "not a speech2face model"),
                                             (None, "not found")])
def test_identify_refuses_other_files_in_one_line(tmp_path, content, message):
    path = tmp_path / "notes.txt"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(InputError, match=message) as refused:
        identify(path)
    assert str(refused.value).startswith(str(path))


def test_loading_and_conversion_act_on_the_same_answer(tmp_path):
    from s2f.converters.convert import convert
    from s2f.models.loading import load_model

    _files(tmp_path)
    with pytest.raises(InputError, match="a Keras weights file: convert it first"):
        load_model(tmp_path / "weights.h5")
    with pytest.raises(InputError, match="already converted"):
        convert(tmp_path / "encoder.bin", tmp_path / "again.safetensors")
    assert load_model(tmp_path / "voice").model_type == "ve_conv"
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="is a directory, expected a weights file"):
        convert(tmp_path / "empty", tmp_path / "out.safetensors")


def test_one_strict_check_names_the_first_misfit():
    import torch

    from s2f.models.pretrained import check_tensors

    expected = {"a": (2, 3), "b": (4,)}
    good = {"a": torch.zeros(2, 3), "b": torch.zeros(4), "bn.num_batches_tracked": torch.zeros(())}
    check_tensors(expected, good, "f.safetensors", "serengil")
    cases = [({"a": torch.zeros(2, 3)}, "f.safetensors: missing tensor 'b' for serengil"),
             ({**good, "a": torch.zeros(3, 2)}, "tensor 'a' has shape (3, 2), serengil needs (2, 3)"),
             ({**good, "c": torch.zeros(1)}, "unexpected tensor 'c' for serengil")]
    for state, message in cases:
        with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
            check_tensors(expected, state, "f.safetensors", "serengil")


def test_one_provenance_record_old_flat_keys_included():
    from s2f.models.provenance import source_from_metadata, source_metadata, source_record

    record = source_record("keras-h5-weights", "vgg.h5", "ab" * 32, keras_version="2.2.4", notes=None)
    assert record["file"] == "vgg.h5" and record["keras_version"] == "2.2.4" and "notes" not in record
    assert record["imported_by"].startswith("speech2face ")
    assert source_from_metadata(source_metadata(record), "x") == record
    legacy = {"arch": "serengil", "source_file": "vgg.h5", "source_sha256": "ab" * 32,
              "source_format": "keras-h5-weights", "converter": "speech2face 0.1"}
    assert source_from_metadata(legacy, "x") == {"format": "keras-h5-weights", "file": "vgg.h5", "sha256": "ab" * 32,
                                                 "imported_by": "speech2face 0.1"}
    assert source_from_metadata({"arch": "serengil"}, "x") is None
    with pytest.raises(InputError, match="'source' must be a JSON object of texts"):
        source_from_metadata({"source": json.dumps({"file": 3})}, "x")
