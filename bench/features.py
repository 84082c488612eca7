"""Feature extraction: accuracy against the references and time against model inference.

For a 6 s speech-like clip (and 10.24 s for AST): the max |deviation| of each numpy feature
from its reference implementation, and the time to compute each feature versus the time of
one forward pass of the model that consumes it (CPU, batch 1, eval, torch threads as set).
Writes bench/results/features.json.

usage: python bench/features.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/machine.py
from machine import announce  # noqa: E402

sys.path.insert(0, str(REPO / "tests"))


def timed(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def deviations(voice, long_voice) -> dict[str, float]:
    import kaldi_native_fbank as knf
    import librosa
    import numpy as np
    import tensorflow as tf
    from transformers import ASTFeatureExtractor

    from s2f.runtime.preprocess.features import ast_fbank, kaldi_fbank, ve_spectrogram

    def compress(x):
        return np.sign(x) * np.abs(x) ** 0.3

    spectrum = librosa.stft(voice.astype(np.float64), n_fft=512, hop_length=160, win_length=400,
                            window="hann", center=True)
    original = np.stack([np.abs(spectrum) ** 0.3, compress(np.angle(spectrum))])
    tf_spectrum = tf.signal.stft(tf.constant(voice.astype(np.float64)), 400, 160, 512,
                                 window_fn=tf.signal.hann_window).numpy().T
    paper = np.stack([compress(tf_spectrum.real), compress(tf_spectrum.imag)])
    opts = knf.FbankOptions()
    opts.frame_opts.dither, opts.frame_opts.window_type, opts.mel_opts.num_bins = 0.0, "hanning", 80
    online = knf.OnlineFbank(opts)
    online.accept_waveform(16000, voice.tolist())
    online.input_finished()
    kaldi = np.stack([online.get_frame(i) for i in range(online.num_frames_ready)])
    extractor = ASTFeatureExtractor()
    return {
        "ve_original_vs_librosa": float(np.abs(ve_spectrogram(voice, variant="original") - original).max()),
        "ve_paper_vs_tf_signal_stft": float(np.abs(ve_spectrogram(voice, variant="paper") - paper).max()),
        "kaldi_fbank80_vs_kaldi_native_fbank": float(np.abs(kaldi_fbank(voice, 16000, 80) - kaldi).max()),
        "ast_fbank_vs_transformers_extractor": float(np.abs(
            ast_fbank(long_voice) - extractor(long_voice, sampling_rate=16000, return_tensors="np")["input_values"][0]
        ).max()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    import torch

    from s2f.data.synth_voice import speech_clip
    from s2f.models.registry import MODELS
    from s2f.runtime.preprocess.features import ast_fbank, ve_spectrogram

    voice, long_voice = speech_clip(6.0, seed=1), speech_clip(10.24, seed=2)
    results: dict[str, object] = {"deviation": deviations(voice, long_voice), "torch_threads": torch.get_num_threads()}
    timings = {}
    for variant in ("paper", "original"):
        model = MODELS["ve_conv"].build("full", variant=variant).eval()
        feature = timed(lambda v=variant: ve_spectrogram(voice, variant=v), args.repeats)
        x = torch.from_numpy(ve_spectrogram(voice, variant=variant))[None]
        with torch.no_grad():
            inference = timed(lambda m=model, x=x: m(x), args.repeats)
        timings[f"ve_conv_{variant}"] = {"feature_s": feature, "model_s": inference, "ratio": feature / inference}
    model = MODELS["ast_voice_encoder"].build("full").eval()
    feature = timed(lambda: ast_fbank(long_voice), args.repeats)
    x = torch.from_numpy(ast_fbank(long_voice))[None]
    with torch.no_grad():
        inference = timed(lambda: model(x), args.repeats)
    timings["ast"] = {"feature_s": feature, "model_s": inference, "ratio": feature / inference}
    results["timing"] = timings
    for name, value in results["deviation"].items():
        print(f"max |deviation| {name:38} {value:.3g}")
    for name, value in timings.items():
        print(f"{name:18} feature {value['feature_s'] * 1e3:7.2f} ms  model {value['model_s'] * 1e3:8.1f} ms  "
              f"feature/model {value['ratio']:.3f}")
    out = REPO / "bench" / "results" / "features.json"
    results["machine"] = announce()
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
