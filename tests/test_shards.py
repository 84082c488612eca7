"""Work spread over processes: ``--shard K/N`` (or torchrun's RANK/WORLD_SIZE, or a Slurm
array's task) makes each process do a disjoint part of the files, and the shards' union is
byte-identical to one unsharded run, for preprocessing and for the runtime's directory mode.
Directory mode batches files and gives the same PNGs as one file at a time."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile
from PIL import Image
from support.helpers import REPO, run_s2f, small_models

from s2f.core.errors import InputError
from s2f.core.shards import Shard, parse_shard, resolve_shard, shard_from_environment
from s2f.data.synth import SynthConfig, synthesize_corpus
from s2f.data.synth_voice import speech_clip
from s2f.export.bundle import export_bundle

LAUNCHERS = [  # how each of the three shards learns which it is
    (["--shard", "0/3"], {}),
    ([], {"RANK": "1", "WORLD_SIZE": "3", "LOCAL_RANK": "1"}),  # torchrun
    ([], {"SLURM_ARRAY_TASK_ID": "7", "SLURM_ARRAY_TASK_MIN": "5", "SLURM_ARRAY_TASK_COUNT": "3"}),  # task 2 of 5..7
]


def _tree_bytes(root) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.suffix in (".npy", ".png")}


def _clean_environment(extra: dict[str, str]) -> dict[str, str]:
    names = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_MIN",
             "SLURM_ARRAY_TASK_COUNT")
    return {**{k: v for k, v in os.environ.items() if k not in names}, **extra}


def test_shard_selection_is_disjoint_balanced_and_complete():
    items = list(range(23))
    parts = [Shard(k, 4).select(items) for k in range(4)]
    assert sorted(sum(parts, [])) == items and {len(p) for p in parts} == {5, 6}
    assert parse_shard("2/5") == Shard(2, 5) and resolve_shard(None, {}).whole
    assert resolve_shard(None, {"RANK": "3", "WORLD_SIZE": "4"}) == Shard(3, 4, "torchrun RANK/WORLD_SIZE")
    assert resolve_shard("1/2", {"RANK": "3", "WORLD_SIZE": "4"}).index == 1  # the option wins
    assert shard_from_environment({"SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_COUNT": "2"}).index == 1
    for bad, message in (("3/3", "does not exist"), ("1-3", "must be K/N"), ("-1/3", "must be K/N"), ("a/b", "K/N")):
        with pytest.raises(InputError, match=message):
            parse_shard(bad)
    with pytest.raises(InputError, match="WORLD_SIZE='four'"):
        shard_from_environment({"RANK": "0", "WORLD_SIZE": "four"})


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    synthesize_corpus(root, SynthConfig(identities=4, clips=2, images=2, seconds=1.0))
    return root


@pytest.fixture(scope="module")
def face_encoder(tmp_path_factory):
    import torch

    from s2f.models.face_encoder import build_face_encoder
    from s2f.models.face_encoder_config import FaceEncoderConfig

    torch.manual_seed(0)
    model = build_face_encoder(FaceEncoderConfig.for_arch("rcmalli-resnet50", include_top=False))
    return model.save_pretrained(tmp_path_factory.mktemp("encoder") / "resnet50")


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["audio", "faces"])
def test_three_preprocessing_shards_equal_one_run(corpus, face_encoder, tmp_path, kind):
    options = (["--encoder", "ve_conv"] if kind == "audio" else
               ["--face-encoder", str(face_encoder), "--landmarks", "given", "--batch-size", "3"])
    whole = run_s2f("preprocess", kind, corpus, tmp_path / "whole", *options, "--workers", "1")
    assert whole.returncode == 0, whole.stderr
    for arguments, environment in LAUNCHERS:
        done = subprocess.run([sys.executable, "-m", "s2f", "preprocess", kind, str(corpus), str(tmp_path / "sharded"),
                               *options, "--workers", "1", *arguments], capture_output=True, text=True,
                              env=_clean_environment(environment), cwd=REPO)
        assert done.returncode == 0, done.stderr
        assert "shard" in done.stdout
    if kind == "faces":  # aligned textures need every face's landmarks: one unsharded run completes them
        assert not list((tmp_path / "sharded").rglob("*_aligned.npy"))
        done = run_s2f("preprocess", kind, corpus, tmp_path / "sharded", *options, "--workers", "1")
        assert done.returncode == 0, done.stderr
    expected, union = _tree_bytes(tmp_path / "whole"), _tree_bytes(tmp_path / "sharded")
    assert len(expected) >= 8 and union == expected
    reports = sorted(p.name for p in (tmp_path / "sharded").glob("report_*.shard-*.json"))
    assert len(reports) == 3  # each shard keeps its own report


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    root = tmp_path_factory.mktemp("clips")
    for index in range(11):
        seconds = (1.5, 2.0, 3.1)[index % 3]  # three lengths: batches hold several groups
        (root / f"speaker{index % 2}").mkdir(exist_ok=True)
        soundfile.write(root / f"speaker{index % 2}" / f"clip{index:02d}.wav", speech_clip(seconds, seed=index), 16000)
    (root / "speaker0" / "broken.wav").write_text("not audio")
    return root


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    path = tmp_path_factory.mktemp("bundle") / "bundle"
    voice, decoder, _ = small_models(seed=2)
    export_bundle(path, voice, decoder)
    return path


def _runtime(*arguments, environment: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "s2f.runtime.cli", *map(str, arguments)], capture_output=True,
                          text=True, env=_clean_environment(environment or {}), cwd=REPO)


@pytest.mark.slow
def test_directory_mode_batches_give_the_same_pngs_and_shards_add_up(bundle, clips, tmp_path):
    one = _runtime("speech2face", clips, "-o", tmp_path / "one", "--bundle", bundle, "--batch-size", "1")
    batched = _runtime("speech2face", clips, "-o", tmp_path / "batched", "--bundle", bundle, "--batch-size", "4")
    for done in (one, batched):
        assert done.returncode == 0, done.stderr
        assert "11 of 12 files" in done.stdout and "broken.wav" in done.stderr
    expected = _tree_bytes(tmp_path / "one")
    assert len(expected) == 11 and _tree_bytes(tmp_path / "batched") == expected
    face = np.asarray(Image.open(tmp_path / "one" / sorted(expected)[0]))
    assert face.shape == (224, 224, 3) and face.std() > 1  # a face, not a blank frame
    for arguments, environment in LAUNCHERS:
        done = _runtime("speech2face", clips, "-o", tmp_path / "sharded", "--bundle", bundle, "--batch-size", "3",
                        *arguments, environment=environment)
        assert done.returncode in (0, 1), done.stderr  # the shard holding broken.wav still writes its others
    assert _tree_bytes(tmp_path / "sharded") == expected
