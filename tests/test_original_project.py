"""The original Speech-to-Face project's models and data, as its users have them: checkpoint
files written the way its ``ModelSaver`` writes them (with an Adam state and a history), its
preprocessed dataset layouts, and its inference recipe as the reference the exported bundle
must reproduce (tests/support/original_project.py rebuilds all three from its source)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile
import torch
from PIL import Image
from support.helpers import REPO, run_s2f
from support.original_project import (
    OriginalFaceDecoder,
    OriginalVEConv,
    original_ast,
    original_ast_features,
    original_inference,
    original_ve_features,
    randomise_batchnorm,
    save_like_model_saver,
)

from s2f.converters.convert import convert
from s2f.data.synth_voice import speech_clip
from s2f.models.ast_encoder import transformers4_name
from s2f.models.loading import load_model
from s2f.models.original import OriginalOptions
from s2f.models.voice_encoder import VEConv

THIN_VE = dict(channels=[8, 8, 12, 12, 12, 16, 16, 16, 16], hidden=48, embedding=32)
THIN_DECODER = dict(embedding=32, shared=(48, 40), landmark=(32, 24), texture=(16, 12, 8, 8, 8))
THIN_AST = dict(hidden=128, layers=2, heads=2, intermediate=256, embedding=32)


def _ve(seed: int = 0) -> OriginalVEConv:
    torch.manual_seed(seed)
    return randomise_batchnorm(OriginalVEConv(**THIN_VE), torch.randn(4, 2, 257, 601), seed)


def _decoder(seed: int = 1, sigmoid: bool = True) -> OriginalFaceDecoder:
    torch.manual_seed(seed)
    decoder = OriginalFaceDecoder(**THIN_DECODER, sigmoid=sigmoid)
    with torch.no_grad():  # a contrasty face, so a wrong level or channel shows in the image
        decoder.texture_layers[-1][0].weight.mul_(150)
    return randomise_batchnorm(decoder, torch.rand(16, THIN_DECODER["embedding"]), seed)


def _ast(seed: int = 2, relu_head: bool = True):
    torch.manual_seed(seed)
    return original_ast(**THIN_AST, relu_head=relu_head).eval()


def _error_line(done: subprocess.CompletedProcess) -> str:
    lines = [line for line in done.stderr.strip().splitlines() if line]
    assert done.returncode == 2 and len(lines) == 1, (done.returncode, done.stderr[-2000:])
    return lines[0]


def test_ve_conv_checkpoint_loads_with_the_originals_layer9_order(tmp_path):
    original = _ve()
    path = save_like_model_saver(original, tmp_path / "best_model.pt")
    ours = load_model(path)
    assert isinstance(ours, VEConv) and ours.config.variant == "original"
    assert ours.config.channels == THIN_VE["channels"] and ours.config.average_before_last_activation
    x = torch.randn(2, 2, 257, 601)
    with torch.no_grad():
        expected = original(x)
        torch.testing.assert_close(ours(x), expected)
        ours.config.average_before_last_activation = False  # the paper's order: another function
        assert (ours(x) - expected).abs().max() > 1e-3 * expected.abs().max()
    assert ours.source["format"] == "speech-to-face-original" and ours.source["file"] == "best_model.pt"


@pytest.mark.parametrize("relu_head", [True, False], ids=["classifier.0-with-relu", "classifier-without-relu"])
@pytest.mark.parametrize("names", ["transformers4", "transformers5"])
def test_ast_checkpoint_both_head_layouts_and_name_spellings(tmp_path, relu_head, names):
    original = _ast(relu_head=relu_head)
    rename = (lambda state: {transformers4_name(k): v for k, v in state.items()}) if names == "transformers4" else None
    path = save_like_model_saver(original, tmp_path / "ast.pt", rename)
    keys = torch.load(path, weights_only=True)["model_state_dict"].keys()
    assert any(k.startswith("classifier.0.") for k in keys) == relu_head
    assert any(".encoder.layer." in k for k in keys) == (names == "transformers4")
    imported = convert(path, tmp_path / "ast")  # what 's2f convert' runs (the command itself: test below)
    assert f"head classifier{'.0' if relu_head else ''}.* with{'' if relu_head else 'out'} ReLU" in imported.layout
    assert f"transformers {names[-1]} names" in imported.layout
    ours = load_model(tmp_path / "ast")
    assert ours.config.output_relu is relu_head
    assert (ours.config.feature_mean, ours.config.feature_std) == (-5.460994, 3.1129124)
    fbank = torch.randn(2, 1024, 128)
    with torch.no_grad():
        expected = original(fbank).logits
        torch.testing.assert_close(ours(fbank), expected)
    assert (expected < 0).any() != relu_head  # the ReLU is there exactly when the file has it


def test_decoder_checkpoint_sigmoid_by_default_linear_on_request(tmp_path):
    original = _decoder()
    path = save_like_model_saver(original, tmp_path / "decoder.pt")
    embedding = torch.rand(3, 32)
    with torch.no_grad():
        landmarks, texture = original(embedding)
        ours = load_model(path)
        got_landmarks, got_texture = ours(embedding)
        torch.testing.assert_close(got_landmarks, landmarks)
        torch.testing.assert_close(got_texture, texture)
        assert ours.config.landmark_units == "pixels" and ours.config.num_landmarks == 72
        older = _decoder(sigmoid=False)
        older.load_state_dict(original.state_dict())
        linear = load_model(path, original=OriginalOptions("linear"))
        torch.testing.assert_close(linear(embedding)[1], older(embedding)[1])
        assert linear(embedding)[1].min() < 0  # not squashed: a sigmoid never gives that


@pytest.mark.slow
def test_wrong_and_partial_checkpoints_are_refused_in_one_line(tmp_path):
    state = _ve().state_dict()
    partial = {k: v for k, v in state.items() if not k.startswith("layer5.")}
    torch.save({"model_state_dict": partial, "optimizer_state_dict": {}}, tmp_path / "partial.pt")
    line = _error_line(run_s2f("export", "model", tmp_path / "partial.pt", "-o", tmp_path / "x.onnx"))
    assert "partial.pt" in line and "missing tensor 'layer5.0.weight'" in line and "VE_conv" in line
    wrong = dict(state, **{"layer10.1.weight": torch.zeros(48, 100)})
    torch.save({"model_state_dict": wrong}, tmp_path / "wrong.pt")
    line = _error_line(run_s2f("export", "model", tmp_path / "wrong.pt", "-o", tmp_path / "x.onnx"))
    assert "tensor 'layer10.1.weight' has shape (48, 100)" in line
    decoder = _decoder().state_dict()
    decoder["texture_layers.9.0.weight"] = torch.zeros(3)
    torch.save({"model_state_dict": decoder}, tmp_path / "extra.pt")
    line = _error_line(run_s2f("convert", tmp_path / "extra.pt", "-o", tmp_path / "out"))
    assert "texture_layers" in line and "FaceDecoder" in line
    damaged = dict(state, **{"layer3.0.weight": 5})  # sizes are read off this tensor: not a tensor at all
    torch.save({"model_state_dict": damaged}, tmp_path / "damaged.pt")
    line = _error_line(run_s2f("convert", tmp_path / "damaged.pt", "-o", tmp_path / "out"))
    assert "tensor 'layer3.0.weight' is int, the original VE_conv needs a convolution weight there" in line
    ast = _ast().state_dict()
    ast["audio_spectrogram_transformer.embeddings.cls_token"] = torch.zeros(0)
    torch.save({"model_state_dict": ast}, tmp_path / "empty.pt")
    line = _error_line(run_s2f("convert", tmp_path / "empty.pt", "-o", tmp_path / "out"))
    assert "'audio_spectrogram_transformer.embeddings.cls_token' is (0,)" in line
    torch.save({"model_state_dict": {"something.weight": torch.zeros(2)}}, tmp_path / "unknown.pt")
    line = _error_line(run_s2f("export", "model", tmp_path / "unknown.pt", "-o", tmp_path / "x.onnx"))
    assert "not a checkpoint of the original Speech-to-Face project" in line and "something.weight" in line
    (tmp_path / "notes.txt").write_text("hello")
    line = _error_line(run_s2f("export", "model", tmp_path / "notes.txt", "-o", tmp_path / "x.onnx"))
    assert "notes.txt: not a speech2face model: expected a save_pretrained directory" in line
    assert "Errno" not in line
    # a decoder given as the voice encoder
    save_like_model_saver(_decoder(), tmp_path / "decoder.pt")
    line = _error_line(run_s2f("export", "bundle", "-o", tmp_path / "b", "--voice-encoder", tmp_path / "decoder.pt",
                               "--decoder", tmp_path / "decoder.pt"))
    assert "--voice-encoder: holds a face decoder, not a voice encoder" in line
    assert not list(tmp_path.glob("*.onnx")) and not (tmp_path / "b").exists() and not (tmp_path / "out").exists()


@pytest.mark.slow
def test_convert_writes_a_save_pretrained_directory_once(tmp_path):
    original = _ast()
    path = save_like_model_saver(original, tmp_path / "ast_best.pt")
    done = run_s2f("convert", path, "-o", tmp_path / "ast", "--ast-mean", "-5.0")
    assert done.returncode == 0, done.stderr
    assert "found: the original Speech-to-Face project's ast_voice_encoder" in done.stdout
    assert "classifier.0.* with ReLU" in done.stdout and '"mean": -5.0' in done.stdout
    assert sorted(p.name for p in (tmp_path / "ast").iterdir()) == ["config.json", "model.safetensors"]
    config = json.loads((tmp_path / "ast" / "config.json").read_text())
    assert config["model_type"] == "ast_voice_encoder" and config["feature_mean"] == -5.0
    assert config["feature_std"] == 3.1129124 and config["output_relu"] is True
    again = load_model(tmp_path / "ast")
    assert again.source["format"] == "speech-to-face-original" and len(again.source["sha256"]) == 64
    fbank = torch.randn(1, 1024, 128)
    with torch.no_grad():
        torch.testing.assert_close(again(fbank), original(fbank).logits)
    line = _error_line(run_s2f("convert", path, "-o", tmp_path / "ast.safetensors"))
    assert "converts to a directory" in line


def _clip(tmp_path, seconds: float, seed: int):
    waveform = speech_clip(seconds, seed=seed)
    path = tmp_path / f"voice{seed}.wav"
    soundfile.write(path, waveform, 16000, subtype="PCM_16")
    return path, soundfile.read(path, dtype="float32")[0]


@pytest.mark.slow
@pytest.mark.parametrize("encoder", ["ve_conv", "ast"])
def test_original_files_to_bundle_to_runtime_match_the_originals_inference(tmp_path, encoder):
    """``s2f export bundle`` from the .pt files, then ``s2f-runtime speech2face``: the image the
    original's inference script computes within 2 levels, the embedding within 1e-3."""
    voice = _ve() if encoder == "ve_conv" else _ast()
    decoder = _decoder()
    save_like_model_saver(voice, tmp_path / "voice_best.pt")
    save_like_model_saver(decoder, tmp_path / "decoder_best.pt")
    bundle = tmp_path / "bundle"
    done = run_s2f("export", "bundle", "-o", bundle, "--voice-encoder", tmp_path / "voice_best.pt",
                   "--decoder", tmp_path / "decoder_best.pt")
    assert done.returncode == 0, done.stderr[-3000:]
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["sources"]["voice_encoder"]["file"] == "voice_best.pt"
    assert manifest["sources"]["face_decoder"]["format"] == "speech-to-face-original"
    voice_input = manifest["voice_input"]
    if encoder == "ve_conv":
        assert (voice_input["encoder"], voice_input["variant"], voice_input["seconds"]) == ("ve_conv", "original", 6.0)
    else:
        assert (voice_input["mean"], voice_input["std"], voice_input["seconds"]) == (-5.460994, 3.1129124, 10.26)
    assert voice_input["audio_steps"] == "original"

    from s2f.runtime.pipeline import SpeechToFace

    runtime = SpeechToFace(bundle)
    for seconds, seed in ((4.2, 3), (12.5, 4)):  # looped; cropped after the whole file's loudness step
        clip, waveform = _clip(tmp_path, seconds, seed=seed)
        features = original_ve_features(waveform) if encoder == "ve_conv" else original_ast_features(waveform)
        image, landmarks, embedding = original_inference(voice, decoder, features.astype(np.float32),
                                                         ast=encoder == "ast")
        assert image.std() > 20  # a face with contrast, not a flat grey
        png = tmp_path / f"face{seed}.png"
        done = subprocess.run([sys.executable, "-m", "s2f.runtime.cli", "speech2face", str(clip), "--bundle",
                               str(bundle), "-o", str(png)], capture_output=True, text=True,
                              env={**os.environ, "PYTHONPATH": str(REPO)})
        assert done.returncode == 0, done.stderr[-3000:]
        ours = np.asarray(Image.open(png).convert("RGB"))
        assert ours.shape == image.shape
        difference = np.abs(ours.astype(int) - image.astype(int))
        print(f"{encoder} {seconds} s: image max |diff| {difference.max()} levels, mean {difference.mean():.4f}")
        assert difference.max() <= 2

        face = runtime.generate_from_file(clip)
        relative = np.abs(face.embedding - embedding).max() / np.abs(embedding).max()
        print(f"{encoder} {seconds} s: embedding max relative error {relative:.2e}")
        assert relative <= 1e-3
        np.testing.assert_allclose(face.landmarks, landmarks, atol=1e-2 * np.abs(landmarks).max())


def _original_voice_dataset(root, identities: int = 6, shape=(2, 257, 601), dim: int = 32):
    rng = np.random.default_rng(0)
    for index in range(identities):
        person = root / f"id{index:03d}"
        (person / "audios" / "session1").mkdir(parents=True)
        (person / "images").mkdir()
        for clip in range(3):
            np.save(person / "audios" / "session1" / f"{clip:05d}.npy", rng.standard_normal(shape).astype(np.float32))
        for face in range(2):
            np.save(person / "images" / f"{face:05d}_embedding.npy", rng.random(dim).astype(np.float32))


def _original_decoder_dataset(root, identities: int = 6, dim: int = 32):
    rng = np.random.default_rng(1)
    for index in range(identities):
        person = root / f"id{index:03d}"
        person.mkdir(parents=True)
        for face in range(2):
            photo = (rng.random((180, 150, 3)) * 255).astype(np.uint8)
            Image.fromarray(photo).save(person / f"{face}.jpg", quality=95)
            np.save(person / f"{face}_embedding.npy", rng.random(dim).astype(np.float32))
            points = torch.tensor(rng.integers(20, 200, (72, 2)).tolist()).ravel()  # as face_recognition gave them
            np.save(person / f"{face}_landmarks.npy", points)
        Image.fromarray(np.zeros((50, 50, 3), np.uint8)).save(person / "lonely.jpg")  # no embedding: skipped


def _train_losses(run) -> list[float]:
    lines = (run / "metrics.csv").read_text().strip().splitlines()
    header = lines[0].split(",")
    column = header.index("train_loss")
    return [float(line.split(",")[column]) for line in lines[1:]]


@pytest.mark.slow
def test_imported_datasets_train_a_tiny_decoder_and_voice_encoder(tmp_path):
    _original_voice_dataset(tmp_path / "ve_dataset")
    _original_decoder_dataset(tmp_path / "decoder_dataset")
    done = run_s2f("data", "import-original", tmp_path / "ve_dataset", "-o", tmp_path / "pre_voice")
    assert done.returncode == 0, done.stderr
    assert "18 clips (ve_conv original spectrogram 2x257x601)" in done.stdout and "12 embeddings" in done.stdout
    source = tmp_path / "ve_dataset" / "id000" / "audios" / "session1" / "00000.npy"
    linked = tmp_path / "pre_voice" / "id000" / "audios" / "session1" / "00000.npy"
    assert os.path.samefile(source, linked) and source.stat().st_nlink == 2  # a link, not a copy
    settings = json.loads((tmp_path / "pre_voice" / "audio_features.json").read_text())
    assert (settings["encoder"], settings["variant"], settings["shape"]) == ("ve_conv", "original", [2, 257, 601])
    again = run_s2f("data", "import-original", tmp_path / "ve_dataset", "-o", tmp_path / "pre_voice")
    assert again.returncode == 0 and source.stat().st_nlink == 2  # rerun: nothing new

    done = run_s2f("data", "import-original", tmp_path / "decoder_dataset", "-o", tmp_path / "pre_decoder")
    assert done.returncode == 0, done.stderr
    assert "12 decoder faces" in done.stdout and "skipped 6 photos" in done.stdout
    target = np.load(tmp_path / "pre_decoder" / "id001" / "images" / "1_target.npy")
    photo = Image.open(tmp_path / "decoder_dataset" / "id001" / "1.jpg").convert("RGB")
    np.testing.assert_array_equal(target, np.asarray(photo.resize((224, 224), Image.BILINEAR)))

    split = tmp_path / "split.json"
    split.write_text(json.dumps({"train": [f"id{i:03d}" for i in range(4)], "val": ["id004", "id005"], "test": []}))
    common = ["--size", "tiny", "--epochs", "3", "--batch-size", "4", "--split", split]
    done = run_s2f("train", "decoder", tmp_path / "pre_decoder", "-o", tmp_path / "runs" / "decoder", *common)
    assert done.returncode == 0, done.stderr[-3000:]
    losses = _train_losses(tmp_path / "runs" / "decoder")
    assert len(losses) == 3 and losses[-1] < losses[0]
    original_decoder = save_like_model_saver(_decoder(), tmp_path / "decoder_best.pt")  # the original's own file
    done = run_s2f("train", "voice", tmp_path / "pre_voice", "-o", tmp_path / "runs" / "voice", "--encoder", "ve_conv",
                   "--decoder", original_decoder, *common)
    assert done.returncode == 0, done.stderr[-3000:]
    losses = _train_losses(tmp_path / "runs" / "voice")
    assert len(losses) == 3 and losses[-1] < losses[0]
    assert load_model(tmp_path / "runs" / "voice").config.variant == "original"
    done = run_s2f("evaluate", tmp_path / "runs" / "voice", tmp_path / "pre_voice", "--split", split, "--part", "val",
                   "--candidates", "2", "-o", tmp_path / "eval.json", "--decoder", tmp_path / "runs" / "decoder")
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((tmp_path / "eval.json").read_text())
    assert result["queries"] == 6 and 0 <= result["recall@1"] <= 1
    grid = np.asarray(Image.open(result["grid"]).convert("RGB"))
    assert grid.std() > 5  # faces, and the grey tiles where the voice dataset kept no photos


@pytest.mark.slow
def test_imported_ast_fbanks_keep_their_stored_shape_and_train(tmp_path):
    _original_voice_dataset(tmp_path / "ast_dataset", identities=2, shape=(1, 1024, 128))
    done = run_s2f("data", "import-original", tmp_path / "ast_dataset", "-o", tmp_path / "pre")
    assert done.returncode == 0, done.stderr
    from s2f.data.pairs import VoiceFacePairs

    clip, embedding, _ = VoiceFacePairs(tmp_path / "pre")[0]
    assert clip.shape == (1024, 128) and embedding.shape == (32,)
    settings = json.loads((tmp_path / "pre" / "audio_features.json").read_text())
    assert (settings["encoder"], settings["mean"], settings["std"]) == ("ast", -5.460994, 3.1129124)


def test_mixed_or_unknown_dataset_shapes_are_refused(tmp_path):
    _original_voice_dataset(tmp_path / "mixed", identities=2)
    odd = tmp_path / "mixed" / "id001" / "audios" / "session1" / "00002.npy"
    np.save(odd, np.zeros((2, 257, 598), np.float32))
    line = _error_line(run_s2f("data", "import-original", tmp_path / "mixed", "-o", tmp_path / "pre"))
    assert "00002.npy" in line and "(2, 257, 598)" in line
    np.save(odd, np.zeros((1, 1024, 128), np.float32))
    line = _error_line(run_s2f("data", "import-original", tmp_path / "mixed", "-o", tmp_path / "pre"))
    assert "00002.npy" in line and "one dataset holds one kind of features" in line
    np.save(odd, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    line = _error_line(run_s2f("data", "import-original", tmp_path / "mixed", "-o", tmp_path / "pre"))
    assert "00002.npy" in line and "pickle" in line
    assert not (tmp_path / "pre").exists()
