"""Signed bundles: made by ``s2f export bundle --sign-key`` and ``s2f bundle sign``, checked by
``--trust-key`` (and ``$S2F_TRUST_KEY``) in the command line, the Python API and ``serve``.
Each tampering is refused with one line, exit code 2 and no output; the signatures are
model-signing's own, so its verifier accepts ours and ours accepts its."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys

import numpy as np
import pytest
import soundfile
from PIL import Image
from support.helpers import fresh_venv, rewrite_manifest_to_match, run_isolated, run_s2f, small_models

from s2f.core.errors import InputError
from s2f.data.synth_voice import speech_clip

pytestmark = pytest.mark.slow  # exports a bundle


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    root = tmp_path_factory.mktemp("keys")
    for name in ("key", "other"):
        done = run_s2f("bundle", "keygen", "-o", root / f"{name}.pem")
        assert done.returncode == 0, done.stderr
    return root


@pytest.fixture(scope="module")
def signed_bundle(tmp_path_factory, keys):
    """Exported and signed by the real command line, from save_pretrained directories."""
    voice, decoder, _ = small_models(embedding_dim=64)
    root = tmp_path_factory.mktemp("signed")
    voice.save_pretrained(root / "voice")
    decoder.save_pretrained(root / "decoder")
    done = run_s2f("export", "bundle", "--voice-encoder", root / "voice", "--decoder", root / "decoder",
                   "-o", root / "bundle", "--sign-key", keys / "key.pem")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "model.sig (signed with" in done.stdout
    return root / "bundle"


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("clip") / "voice.wav"
    soundfile.write(path, speech_clip(2.0), 16000)
    return path


def _runtime(clip, bundle, output, *flags, env=None):
    return subprocess.run([sys.executable, "-m", "s2f.runtime.cli", "speech2face", str(clip), "--bundle", str(bundle),
                           "-o", str(output), "--device", "cpu", *map(str, flags)], capture_output=True, text=True,
                          env=env)


def test_keygen_writes_a_private_key_for_its_owner_only_and_never_overwrites(keys):
    from cryptography.hazmat.primitives.serialization import load_pem_private_key, load_pem_public_key

    private = load_pem_private_key((keys / "key.pem").read_bytes(), None)
    public = load_pem_public_key((keys / "key.pub").read_bytes())
    assert private.public_key().public_numbers() == public.public_numbers()
    assert private.curve.name == "secp256r1"
    assert stat.S_IMODE((keys / "key.pem").stat().st_mode) == 0o600
    assert public.public_numbers() != load_pem_public_key((keys / "other.pub").read_bytes()).public_numbers()
    before = (keys / "key.pem").read_bytes()
    again = run_s2f("bundle", "keygen", "-o", keys / "key.pem")
    assert again.returncode == 2 and "already exists" in again.stderr and (keys / "key.pem").read_bytes() == before


def test_a_signed_bundle_runs_with_its_key_and_gives_the_unsigned_face(signed_bundle, keys, clip, tmp_path):
    assert sorted(p.name for p in signed_bundle.iterdir())[-1] == "voice_encoder.onnx.data"
    assert (signed_bundle / "model.sig").is_file()
    trusted = _runtime(clip, signed_bundle, tmp_path / "trusted.png", "--trust-key", keys / "key.pub")
    plain = _runtime(clip, signed_bundle, tmp_path / "plain.png")
    assert trusted.returncode == 0 and plain.returncode == 0, trusted.stderr + plain.stderr
    trusted_face = np.asarray(Image.open(tmp_path / "trusted.png"), dtype=np.int16)
    plain_face = np.asarray(Image.open(tmp_path / "plain.png"), dtype=np.int16)
    assert trusted_face.shape == (224, 224, 3) and trusted_face.std() > 1
    assert np.abs(trusted_face - plain_face).max() <= 1
    from s2f.runtime.pipeline import SpeechToFace

    model = SpeechToFace(signed_bundle, device="cpu", trust_key=keys / "key.pub")
    from s2f.runtime.bundle.signature import key_fingerprint, load_public_key

    assert model.bundle.signed_by == key_fingerprint(load_public_key(keys / "key.pub"))


def test_model_signing_verifies_our_signature_and_we_verify_its(signed_bundle, keys, tmp_path):
    from model_signing import hashing, signing, verifying

    verifying.Config().use_elliptic_key_verifier(public_key=keys / "key.pub").verify(
        signed_bundle, signed_bundle / "model.sig")  # model-signing's full check: hashes every file
    from s2f.runtime.bundle.reader import open_bundle

    for algorithm in ("sha256", "blake3"):  # blake3: not the manifest's digests, checked the standard way
        bundle = tmp_path / algorithm
        shutil.copytree(signed_bundle, bundle)
        (bundle / "model.sig").unlink()
        config = signing.Config().use_elliptic_key_signer(private_key=keys / "other.pem")
        config.set_hashing_config(hashing.Config().use_file_serialization(hashing_algorithm=algorithm)
                                  .set_ignored_paths(paths=["model.sig"]))
        config.sign(bundle, tmp_path / f"{algorithm}.sig")
        shutil.move(tmp_path / f"{algorithm}.sig", bundle / "model.sig")
        assert open_bundle(bundle, trust_key=keys / "other.pub").signed_by
        (bundle / "face_decoder.onnx.data").write_bytes(b"\0" + (bundle / "face_decoder.onnx.data").read_bytes()[1:])
        rewrite_manifest_to_match(bundle, "face_decoder.onnx.data")
        with pytest.raises(InputError, match="changed since signing: face_decoder.onnx.data, manifest.json"):
            open_bundle(bundle, trust_key=keys / "other.pub")


def _flip_byte(bundle, name="face_decoder.onnx.data"):
    data = bytearray((bundle / name).read_bytes())
    data[len(data) // 2] ^= 0x01
    (bundle / name).write_bytes(bytes(data))


def weights_byte(bundle, keys):
    _flip_byte(bundle)
    return "key.pub", "face_decoder.onnx.data: sha256 does not match the manifest"


def weights_byte_manifest_rewritten(bundle, keys):
    _flip_byte(bundle)
    rewrite_manifest_to_match(bundle, "face_decoder.onnx.data")
    return "key.pub", "not what was signed: changed since signing: face_decoder.onnx.data, manifest.json"


def added_file(bundle, keys):
    (bundle / "notes.txt").write_text("hello")
    return "key.pub", "holds files the signature does not cover: notes.txt"


def added_folder(bundle, keys):
    (bundle / "extra").mkdir()
    (bundle / "extra" / "w.data").write_bytes(b"0" * 16)
    return "key.pub", "holds files the signature does not cover: extra"


def signature_replaced(bundle, keys):
    done = run_s2f("bundle", "sign", bundle, "--key", keys / "other.pem")
    assert done.returncode == 0, done.stderr
    return "key.pub", "model.sig: not signed by the trusted key"


def another_key_trusted(bundle, keys):
    return "other.pub", "model.sig: not signed by the trusted key"


def unsigned(bundle, keys):
    (bundle / "model.sig").unlink()
    return "key.pub", "is not signed (no model.sig)"


def signature_garbage(bundle, keys):
    (bundle / "model.sig").write_text('{"mediaType": 7}')
    return "key.pub", "model.sig: unreadable signature"


def signature_truncated(bundle, keys):
    sig = (bundle / "model.sig").read_bytes()
    (bundle / "model.sig").write_bytes(sig[: len(sig) // 2])
    return "key.pub", "model.sig: unreadable signature"


def private_key_trusted(bundle, keys):
    return "key.pem", "key.pem: is a private key"


def missing_key(bundle, keys):
    return "nowhere.pub", "nowhere.pub: file not found"


def rsa_key_trusted(bundle, keys):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    (bundle.parent / "rsa.pub").write_bytes(pem)
    return str(bundle.parent / "rsa.pub"), "bundle signatures use elliptic-curve keys"


CASES = [weights_byte, weights_byte_manifest_rewritten, added_file, added_folder, signature_replaced,
         another_key_trusted, unsigned, signature_garbage, signature_truncated, private_key_trusted, missing_key,
         rsa_key_trusted]


@pytest.mark.parametrize("make", CASES, ids=[case.__name__ for case in CASES])
def test_tampered_signed_bundle_is_one_line_exit_2_and_no_output(make, signed_bundle, keys, clip, tmp_path):
    bundle = tmp_path / "bundle"
    shutil.copytree(signed_bundle, bundle)
    key, expected = make(bundle, keys)
    key = keys / key if "/" not in key else key
    output = tmp_path / "face.png"
    done = _runtime(clip, bundle, output, "--trust-key", key)
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
    assert expected in done.stderr and done.stderr.startswith("s2f-runtime: error: "), done.stderr
    assert not output.exists() and not list(tmp_path.glob("*.png*"))
    from s2f.runtime.pipeline import SpeechToFace

    with pytest.raises(InputError, match=expected.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        SpeechToFace(bundle, device="cpu", trust_key=key).generate(speech_clip(1.0), 16000)


def test_the_environment_variable_trusts_a_key_everywhere(signed_bundle, keys, clip, tmp_path, monkeypatch):
    env = {**os.environ, "S2F_TRUST_KEY": str(keys / "other.pub")}
    done = _runtime(clip, signed_bundle, tmp_path / "face.png", env=env)
    assert done.returncode == 2 and "not signed by the trusted key" in done.stderr and "other.pub" in done.stderr
    from s2f.runtime.pipeline import SpeechToFace

    monkeypatch.setenv("S2F_TRUST_KEY", str(keys / "key.pub"))
    assert SpeechToFace(signed_bundle, device="cpu").bundle.signed_by
    monkeypatch.setenv("S2F_TRUST_KEY", str(keys / "other.pub"))
    with pytest.raises(InputError, match="not signed by the trusted key"):
        SpeechToFace(signed_bundle, device="cpu")
    verify = subprocess.run([sys.executable, "-m", "s2f", "bundle", "verify", str(signed_bundle)], capture_output=True,
                            text=True, env=env)
    assert verify.returncode == 2 and "not signed by the trusted key" in verify.stderr


def test_serve_refuses_a_bundle_its_key_did_not_sign(signed_bundle, keys, tmp_path):
    bundle = tmp_path / "bundle"
    shutil.copytree(signed_bundle, bundle)
    (bundle / "notes.txt").write_text("hello")
    done = subprocess.run([sys.executable, "-m", "s2f.runtime.cli", "serve", "--bundle", str(bundle), "--port", "0",
                           "--device", "cpu", "--trust-key", str(keys / "key.pub")], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert "holds files the signature does not cover: notes.txt" in done.stderr and "serving" not in done.stdout


def test_bundle_verify_and_sign_from_the_command_line(signed_bundle, keys, tmp_path):
    good = run_s2f("bundle", "verify", signed_bundle, "--key", keys / "key.pub", "--rehash")
    assert good.returncode == 0, good.stderr
    assert "covering every file; 6 files match the manifest's sha256" in good.stdout
    plain = run_s2f("bundle", "verify", signed_bundle)
    assert plain.returncode == 0 and "has a signature (not checked: pass --key)" in plain.stdout
    bundle = tmp_path / "bundle"
    shutil.copytree(signed_bundle, bundle)
    (bundle / "model.sig").unlink()
    _flip_byte(bundle)
    refused = run_s2f("bundle", "sign", bundle, "--key", keys / "key.pem")  # never sign what was altered
    assert refused.returncode == 2 and "sha256 does not match the manifest" in refused.stderr
    assert not (bundle / "model.sig").exists() and not list(bundle.glob(".model.sig*"))
    public = run_s2f("bundle", "sign", signed_bundle, "--key", keys / "key.pub")
    assert public.returncode == 2 and "is a public key: sign with the private key" in public.stderr


def test_export_refuses_a_key_that_cannot_sign_before_exporting(keys, tmp_path):
    (tmp_path / "broken.pem").write_text("-----BEGIN PRIVATE KEY-----\nnot base64\n-----END PRIVATE KEY-----\n")
    for key, expected in ((keys / "key.pub", "is a public key"), (tmp_path / "broken.pem", "not a PEM private key")):
        done = run_s2f("export", "bundle", "--voice-encoder", tmp_path / "none", "--decoder", tmp_path / "none",
                       "-o", tmp_path / "out", "--sign-key", key)
        assert done.returncode == 2 and expected in done.stderr and done.stderr.count("\n") == 1, done.stderr
        assert not (tmp_path / "out").exists()


def test_an_encrypted_key_signs_with_its_passphrase(signed_bundle, tmp_path, monkeypatch):
    from s2f.export.signing import check_signing_key, generate_key_pair, sign_bundle
    from s2f.runtime.bundle.reader import open_bundle

    monkeypatch.setenv("S2F_SIGN_KEY_PASSWORD", "correct horse")
    private, public = generate_key_pair(tmp_path / "locked.pem")
    assert b"ENCRYPTED" in private.read_bytes()
    bundle = tmp_path / "bundle"
    shutil.copytree(signed_bundle, bundle)
    sign_bundle(bundle, private)
    assert open_bundle(bundle, trust_key=public).signed_by
    monkeypatch.setenv("S2F_SIGN_KEY_PASSWORD", "wrong")
    with pytest.raises(InputError, match="wrong passphrase"):
        check_signing_key(private)
    monkeypatch.delenv("S2F_SIGN_KEY_PASSWORD")
    with pytest.raises(InputError, match="is encrypted: put its passphrase in"):
        check_signing_key(private)


def test_signing_extra_alone_signs_and_verifies_without_torch_or_onnxruntime(signed_bundle, built_wheel,
                                                                            tmp_path_factory, tmp_path):
    bin_dir = fresh_venv(tmp_path_factory.mktemp("signing_env") / "venv", f"{built_wheel}[signing]")
    probe = run_isolated([bin_dir / "python", "-c", "import torch"])
    assert "No module named 'torch'" in probe.stderr
    probe = run_isolated([bin_dir / "python", "-c", "import onnxruntime"])
    assert "No module named 'onnxruntime'" in probe.stderr
    bundle = tmp_path / "bundle"
    shutil.copytree(signed_bundle, bundle)
    (bundle / "model.sig").unlink()
    steps = [["bundle", "keygen", "-o", tmp_path / "k.pem"], ["bundle", "sign", bundle, "--key", tmp_path / "k.pem"],
             ["bundle", "verify", bundle, "--key", tmp_path / "k.pub"]]
    for step in steps:
        done = run_isolated([bin_dir / "s2f", *step])
        assert done.returncode == 0, (step, done.stderr[-2000:])
    assert "signed by key" in done.stdout and "covering every file" in done.stdout
    needs = run_isolated([bin_dir / "s2f-runtime", "speech2face", bundle / "x.wav", "-o", tmp_path / "f.png",
                          "--bundle", bundle, "--trust-key", tmp_path / "k.pub"])
    assert needs.returncode == 2 and "pip install 'speech2face[runtime]'" in needs.stderr
