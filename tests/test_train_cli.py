"""The training commands end to end on a tiny synthetic corpus: synth -> preprocess -> split
-> train decoder -> train voice (with the decoder) -> evaluate. Checks the artefacts exist
and are well formed; whether training reaches its targets is tested elsewhere."""

from __future__ import annotations

import csv
import json
import shutil

import pytest
from support.helpers import run_s2f

pytestmark = pytest.mark.slow  # end-to-end: models, processes or servers built per module


def test_train_and_evaluate_commands(tmp_path):
    import torch

    from s2f.models.face_encoder import build_face_encoder
    from s2f.models.face_encoder_config import FaceEncoderConfig

    torch.manual_seed(0)
    encoder = build_face_encoder(FaceEncoderConfig.for_arch("rcmalli-resnet50", include_top=False))
    encoder.save_pretrained(tmp_path / "encoder")
    steps = [
        ("data", "synth", tmp_path / "raw", "--identities", "8", "--clips", "2", "--images", "2", "--seconds", "1"),
        ("preprocess", "audio", tmp_path / "raw", tmp_path / "pre", "--encoder", "ve_conv", "--workers", "1"),
        ("preprocess", "faces", tmp_path / "raw", tmp_path / "pre", "--face-encoder", tmp_path / "encoder",
         "--landmarks", "given", "--workers", "1"),
        ("data", "split", tmp_path / "pre", "-o", tmp_path / "split.json", "--fractions", "0.5", "0.25", "0.25"),
        ("train", "decoder", tmp_path / "pre", "-o", tmp_path / "decoder", "--split", tmp_path / "split.json",
         "--size", "tiny", "--epochs", "1", "--batch-size", "4", "--face-encoder", tmp_path / "encoder"),
    ]
    for step in steps:
        done = run_s2f(*step)
        assert done.returncode == 0, (step, done.stderr[-2000:])
    decoder_metrics = list(csv.DictReader(open(tmp_path / "decoder" / "metrics.csv")))
    assert float(decoder_metrics[0]["train_embedding"]) > 0  # the cosine term through the face encoder
    assert any((tmp_path / "decoder" / "tensorboard").iterdir())
    latest = json.loads((tmp_path / "decoder" / "latest.json").read_text())["checkpoint"]
    done = run_s2f("train", "voice", tmp_path / "pre", "-o", tmp_path / "voice", "--encoder", "ve_conv", "--split",
                   tmp_path / "split.json", "--size", "tiny", "--epochs", "1", "--batch-size", "4",
                   "--decoder", tmp_path / "decoder" / latest)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "voice" / "grids" / "epoch001.png").is_file()
    assert (tmp_path / "voice" / "metrics.csv").is_file()
    done = run_s2f("evaluate", tmp_path / "voice", tmp_path / "pre", "--split", tmp_path / "split.json",
                   "--candidates", "2", "-o", tmp_path / "eval.json")
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads((tmp_path / "eval.json").read_text())
    assert result["candidates"] == 2 and 0 <= result["recall@1"] <= 1 and result["chance@1"] == 0.5
    assert (tmp_path / "eval.png").is_file()

    wrong = run_s2f("train", "voice", tmp_path / "pre", "-o", tmp_path / "v2", "--encoder", "ast", "--size", "tiny")
    assert wrong.returncode == 2 and "holds ve_conv features" in wrong.stderr

    # AST, two stages as the original trained it: head only, then the whole model
    ast = tmp_path / "pre_ast"
    done = run_s2f("preprocess", "audio", tmp_path / "raw", ast, "--encoder", "ast", "--workers", "1")
    assert done.returncode == 0, done.stderr[-2000:]
    for identity in (tmp_path / "pre").iterdir():
        if identity.is_dir():
            shutil.copytree(identity / "images", ast / identity.name / "images")
    done = run_s2f("train", "voice", ast, "-o", tmp_path / "ast_run", "--encoder", "ast", "--size", "tiny",
                   "--ast-head-epochs", "1", "--epochs", "1", "--batch-size", "4")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "starting a fresh optimiser" in done.stderr
    rows = list(csv.DictReader(open(tmp_path / "ast_run" / "metrics.csv")))
    assert [int(row["epoch"]) for row in rows] == [1, 2]
