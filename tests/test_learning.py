"""Proof that the system learns, on CPU in a few minutes: the demo's pipeline on the
synthetic corpus (synth -> preprocess -> split -> train decoder -> train VE_conv ->
evaluate). Speech->face retrieval on held-out identities must reach 3x chance at recall@5,
and the decoder must reconstruct held-out faces better than the mean training face."""

from __future__ import annotations

from s2f.train.pipeline import PipelineConfig, run_pipeline


def test_speech_to_face_learns_on_synthetic_corpus(tmp_path):
    result = run_pipeline(tmp_path, PipelineConfig())
    assert result["identities"] == result["candidates"] == 36  # 30 % of 120, all unseen in training
    assert result["recall@5"] >= 3 * result["chance@5"], result
    assert result["recall@1"] > result["chance@1"], result
    assert result["decoder_l1"] < 0.9 * result["mean_face_l1"], result
    assert (tmp_path / "evaluation_grid.png").is_file() and (tmp_path / "evaluation.png").is_file()
    assert (tmp_path / "runs" / "voice" / "grids").is_dir()
