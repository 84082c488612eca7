"""One registry of model types: every entry builds from its presets, saves and loads back
through ``load_model`` under its own type, and exports with the interface it declares."""

from __future__ import annotations

import pytest
import torch

from s2f.models.face_encoder_config import ARCHITECTURES, FACE_ENCODER_ARCHS, FaceEncoderConfig
from s2f.models.loading import load_model
from s2f.models.registry import MODELS, SIZES, VOICE_ENCODERS, entry_for


@pytest.mark.parametrize("model_type", [t for t, e in MODELS.items() if e.presets])
def test_presets_build_save_and_load_back(model_type, tmp_path):
    entry = MODELS[model_type]
    assert set(entry.presets) == set(SIZES)
    model = entry.build("tiny", embedding_dim=32)
    assert model.model_type == model_type and entry_for(model) is entry
    assert isinstance(model.config, entry.config_class)
    tiny = sum(p.numel() for p in model.parameters())
    model.save_pretrained(tmp_path / "saved")
    loaded = load_model(tmp_path / "saved")
    assert type(loaded) is type(model) and loaded.config == model.config
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    full = entry.config_for("full")
    assert full == entry.config_class()  # full is the paper's model: the config's defaults
    assert tiny < 3_000_000  # tiny is CPU-sized (the full models have 90-150 M parameters)


def test_export_interface_matches_the_module():
    for model_type in ("ve_conv", "face_decoder"):
        entry = MODELS[model_type]
        model = entry.build("tiny", embedding_dim=32).eval()
        info, config = entry.export, model.config
        x = torch.rand(2, *info.input_shape(config))
        outputs = getattr(model, info.embedding_method)(x)
        outputs = outputs if isinstance(outputs, tuple) else (outputs,)
        assert len(outputs) == len(info.outputs(config))
        assert info.preprocessing(config)


def test_unknown_sizes_and_types_are_refused():
    with pytest.raises(ValueError, match="no size 'huge'"):
        MODELS["ve_conv"].config_for("huge")
    with pytest.raises(KeyError, match="unknown model type"):
        entry_for("wav2vec")
    assert set(VOICE_ENCODERS.values()) <= set(MODELS)


def test_face_encoder_table_drives_the_configs():
    assert ARCHITECTURES == tuple(FACE_ENCODER_ARCHS)
    for arch, spec in FACE_ENCODER_ARCHS.items():
        config = FaceEncoderConfig.for_arch(arch)
        assert (config.family, config.bn_eps, config.num_classes, config.embedding_dim) == \
            (spec.family, spec.bn_eps, spec.num_classes, spec.embedding_dim)
        assert config.preprocessing.name == spec.preprocessing and spec.upstream_files
    assert not FaceEncoderConfig.for_arch("rcmalli-vgg16", include_top=False).has_descriptor
    assert FaceEncoderConfig.for_arch("serengil", include_top=False).has_descriptor
