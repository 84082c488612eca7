"""The decoder's recipe, not one lucky corpus: the demo's decoder budget on a synthetic corpus
of another seed, one on which the recipe before the colour fix failed (bench/decoder_seeds.py,
recipe "before": texture L1 0.86x the mean face's, face->face recall@5 1.8x chance, a skin
cast of ΔE 11.6), must reconstruct unseen faces at most 0.65x the mean training face's L1,
recognisably (face->face recall@5 3x chance) and in their own skin colour. With the demo's
seed in test_learning.py these are the seeds whose worst the gates hold; the bench runs 20.
Its own module, so that a parallel run can train it beside the demo pipeline."""

from __future__ import annotations

import pytest
from support.helpers import DECODER_GATE, FACE_TO_FACE_GATE, assert_colour_learned

from s2f.pipeline import PipelineConfig

pytestmark = pytest.mark.slow  # trains a decoder on a 120-identity corpus


@pytest.mark.parametrize("seed", [8])
def test_decoder_beats_the_mean_face_in_shape_and_colour_on_another_corpus(seed, tmp_path):
    import torch

    from s2f.core.splits import read_split
    from s2f.data.pairs import DecoderFaces
    from s2f.models.loading import load_model
    from s2f.pipeline import decoder_train_config, prepare_data
    from s2f.train.colour_scores import colour_scores_of_runs
    from s2f.train.evaluate import mean_face
    from s2f.train.runs import DecoderTraining, decoder_scores, train_decoder

    config = PipelineConfig(seed=seed, clips=1, seconds=1.0)  # the voices are not used here
    data = prepare_data(tmp_path, config)
    run = train_decoder(DecoderTraining(data=data.pre, out=tmp_path / "decoder", split=data.split, size=config.size,
                                        warp=config.warp, train=decoder_train_config(config), resume=True))
    # it started from the mean training face, resumable run or not
    train = DecoderFaces(data.pre, read_split(data.split)["train"], aligned=config.warp)
    base = torch.logit(torch.from_numpy(mean_face(train)).clamp(1e-3, 1 - 1e-3))
    assert torch.allclose(load_model(run).texture_base, base, atol=1e-5)
    result = decoder_scores(run, data.pre, data.split, data.face_encoder)
    assert result["decoder_l1"] <= DECODER_GATE * result["mean_face_l1"], result
    card = result["sf2f"]["face_to_face"]
    assert card["recall@5"] >= FACE_TO_FACE_GATE * card["chance@5"], card
    assert_colour_learned(colour_scores_of_runs(run, data.pre, data.split))
