"""The pipeline bundle: one directory the torch-free runtime needs and nothing else.

    BUNDLE/voice_encoder.onnx   voice features -> face embedding (+ .onnx.data, its weights)
    BUNDLE/face_decoder.onnx    face embedding -> landmarks + texture (+ .onnx.data)
    BUNDLE/face_encoder.onnx    face image -> embedding, for face -> face (+ .onnx.data)
    BUNDLE/speech2face.onnx     raw 16 kHz waveform -> uint8 face, landmarks, embedding
    BUNDLE/face2face.onnx       uint8 photo of any size -> the same (with a face encoder)
    BUNDLE/manifest.json        versions, sha256 and size of every file, preprocessing, shapes

speech -> face = voice_encoder + face_decoder; face -> face = face_encoder + face_decoder.
The end-to-end graphs hold the preprocessing too and read their weights from the other
graphs' ``.onnx.data`` (``s2f.export.end_to_end``), so any ONNX runtime can run the
whole pipeline. Each graph is verified on export (``export_onnx``, ``end_to_end``). The
bundle is assembled in a temporary sibling directory and renamed into place only when complete; the runtime checks every
sha256 in the manifest before loading, so a partial or edited bundle is refused.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from s2f.core.atomic import atomic_directory, parent_dir
from s2f.core.cpu import cpu_description
from s2f.core.errors import InputError
from s2f.export.onnx_export import ExportOptions, export_onnx
from s2f.export.onnx_files import variant_path
from s2f.export.options import BundleExport
from s2f.runtime.bundle.manifest import GRAPH_FILES, GRAPH_ROLES, MANIFEST, BundleManifest, FileEntry
from s2f.runtime.bundle.onnx_refs import check_weight_locations
from s2f.runtime.bundle.reader import sha256_of

log = logging.getLogger(__name__)


def _versions() -> dict[str, str]:
    import onnx
    import onnxruntime
    import torch

    from s2f import __version__

    return {"speech2face": __version__, "torch": torch.__version__, "onnx": onnx.__version__,
            "onnxruntime": onnxruntime.__version__}


def export_bundle(out_dir: str | Path, voice_encoder: nn.Module, face_decoder: nn.Module,
                  face_encoder: nn.Module | None = None, options: BundleExport | None = None, /,
                  **changes: Any) -> dict[str, Any]:
    """Export, verify and write the bundle; returns the manifest. ``options`` (or its fields as
    keywords: ``fp16=True``, ``verify_with=[clip]``, ...) say which graphs beside float32 are
    written, what they are verified on, and whether the finished bundle is signed
    (``s2f.export.signing``) before it appears."""
    options = replace(options or BundleExport(), **changes)
    overwrite, portable, fp16, int8, sign_key = (options.overwrite, options.portable, options.fp16, options.int8,
                                                 options.sign_key)
    verify_with = list(options.verify_with)
    out_dir = Path(out_dir)
    _check_destination(out_dir, overwrite)
    if sign_key is not None:
        from s2f.export.signing import check_signing_key

        check_signing_key(Path(sign_key))
    _check_fit(voice_encoder, face_decoder, face_encoder)
    models = {"voice_encoder": voice_encoder, "face_decoder": face_decoder}
    if face_encoder is not None:
        models["face_encoder"] = face_encoder
    real = _real_inputs(models, verify_with or [])
    raw = _raw_inputs(voice_encoder, verify_with or [])
    per_graph = ExportOptions(portable=portable, fp16=fp16, int8=int8)
    with atomic_directory(out_dir) as staging:
        files: dict[str, FileEntry] = {}
        reports = {role: _export_model(staging, out_dir, role, model, real.get(role), per_graph, files,
                                       face_decoder.config.embedding_dim) for role, model in models.items()}
        end_to_end = _export_end_to_end(staging, files, reports["voice_encoder"]["preprocessing"], face_encoder, raw,
                                        embedding_dim=face_decoder.config.embedding_dim)
        _add_probe(staging, files, voice_encoder, face_decoder, face_encoder,
                   reports["voice_encoder"]["preprocessing"])
        for name, entry in files.items():  # never write a bundle whose graphs read unlisted (unhashed) files
            if entry.role in GRAPH_ROLES:
                check_weight_locations(staging / name, entry.weight_files)
        manifest = BundleManifest(
            files=files,
            voice_input=reports["voice_encoder"]["preprocessing"],
            versions=_versions(),
            face_input=reports["face_encoder"]["preprocessing"] if face_encoder is not None else None,
            face_encoder_arch=face_encoder.config.arch if face_encoder is not None else None,
            texture=reports["face_decoder"]["preprocessing"]["texture"],
            verification={role: r["float32"] for role, r in reports.items()},
            verification_rule={"factor": per_graph.rule.factor, "floor": per_graph.rule.floor},
            verified_on=cpu_description(),
            verified_with=list(dict.fromkeys(Path(f).name for f in verify_with or [])),
            verification_fp16={role: r["fp16"] for role, r in reports.items()} if fp16 else None,
            verification_int8_cosine={role: r["int8"] for role, r in reports.items()} if int8 else None,
            verification_end_to_end={role: report.to_dict() for role, report in end_to_end.items()},
            # where each model's weights came from when they were not trained with speech2face
            sources={role: dict(model.source) for role, model in models.items() if getattr(model, "source", None)},
        ).to_dict()
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2))
        if sign_key is not None:
            from s2f.export.signing import sign_bundle

            sign_bundle(staging, sign_key)
    return manifest


def _check_destination(out_dir: Path, overwrite: bool) -> None:
    """Refuse before the export's minutes of work: an existing path replaced only if it is a bundle."""
    if out_dir.exists() and not overwrite:
        raise InputError(out_dir, "already exists; pass --overwrite to replace it")
    if out_dir.exists() and not (out_dir.is_dir() and (out_dir / MANIFEST).is_file()):
        raise InputError(out_dir, "exists and is not a speech2face bundle (no manifest.json): --overwrite only "
                                  "replaces bundles; remove it yourself or choose another directory")
    parent_dir(out_dir)


def _check_fit(voice_encoder: nn.Module, face_decoder: nn.Module, face_encoder: nn.Module | None) -> None:
    embedding_dims = {getattr(voice_encoder.config, "embedding_dim", None), face_decoder.config.embedding_dim}
    if len(embedding_dims) != 1:
        raise InputError(None, f"voice encoder and decoder disagree on the embedding size: {sorted(embedding_dims)}")
    if face_encoder is not None and face_encoder.config.embedding_dim != face_decoder.config.embedding_dim:
        encoder_config = face_encoder.config
        raise InputError(None, f"the face encoder ({encoder_config.arch}) gives {encoder_config.embedding_dim}-D "
                               f"embeddings, the decoder takes {face_decoder.config.embedding_dim}-D: they do not "
                               "fit (use the face encoder the decoder was trained on)")


def _export_model(staging: Path, out_dir: Path, role: str, model: nn.Module, real: list[np.ndarray] | None,
                  options: ExportOptions, files: dict[str, FileEntry], embedding_dim: int) -> dict[str, Any]:
    """One model's graphs (each precision) into ``staging``, listed in ``files``; returns what
    the manifest records of them."""
    from s2f.export.graph_metadata import read_metadata

    path = staging / GRAPH_FILES[role]
    report = export_onnx(model, path, real_inputs=real, options=options)
    log.info("%s", report.summary().replace(str(staging), str(out_dir)))
    metadata = read_metadata(path)
    for precision in ["fp32", *(variant.precision for variant in options.variants())]:
        graph = variant_path(path, precision)
        weights = graph.with_name(graph.name + ".data")
        files[graph.name] = FileEntry(role, sha256_of(graph), graph.stat().st_size, precision, weights.name,
                                      metadata["model_type"], metadata["inputs"], metadata["outputs"],
                                      report.fusions, embedding_dim)
        files[weights.name] = FileEntry(f"{role} weights", sha256_of(weights), weights.stat().st_size)
    return {"float32": {name: verdict.to_dict() for name, verdict in report.float32.items()},
            "preprocessing": metadata.get("preprocessing"),
            "config": metadata.get("config"), "fp16": report.fp16_max_relative_error,
            "int8": report.int8_min_cosine}


def _export_end_to_end(staging: Path, files: dict[str, FileEntry], voice_input: dict[str, Any],
                       face_encoder: nn.Module | None,
                       raw: dict[str, list[np.ndarray]], embedding_dim: int) -> dict[str, Any]:
    """Write, verify and list ``speech2face.onnx`` (and ``face2face.onnx``) in ``staging``,
    where the per-model graphs already are."""
    from s2f.export.end_to_end import (
        FACE2FACE,
        SPEECH2FACE,
        export_face_to_face,
        export_speech_to_face,
        external_weight_files,
        graph_outputs,
    )
    from s2f.runtime.preprocess.voice_input import VoiceInputSpec

    voice = VoiceInputSpec.from_dict(voice_input)
    reports = {"speech2face": export_speech_to_face(staging, GRAPH_FILES["voice_encoder"], GRAPH_FILES["face_decoder"],
                                                    voice, raw.get("voices"))}
    inputs = {"speech2face": {"waveform": ["batch", "samples"]}}
    if face_encoder is not None:
        reports["face2face"] = export_face_to_face(staging, GRAPH_FILES["face_encoder"], GRAPH_FILES["face_decoder"],
                                                   face_encoder.config.preprocessing, raw.get("faces"))
        inputs["face2face"] = {"photo": ["height", "width", 3]}
    for role, report in reports.items():
        log.info("%s", report.summary().replace(str(staging), str(staging).rsplit(".", 1)[0]))
        path = staging / (SPEECH2FACE if role == "speech2face" else FACE2FACE)
        files[path.name] = FileEntry(role, sha256_of(path), path.stat().st_size, "fp32", external_weight_files(path),
                                     role, inputs[role], graph_outputs(path), embedding_dim=embedding_dim)
    return reports


def _add_probe(staging: Path, files: dict[str, FileEntry], voice_encoder: nn.Module, face_decoder: nn.Module,
               face_encoder: nn.Module | None, voice_input: dict[str, Any]) -> None:
    """The probe another engine or precision is judged by on open (``s2f.runtime.engines.probe``)."""
    from s2f.export.probe import probe_arrays, write_probe
    from s2f.runtime.engines.probe import PROBE_ROLE
    from s2f.runtime.preprocess.voice_input import VoiceInputSpec

    face = face_encoder.config.preprocessing if face_encoder is not None else None
    path = write_probe(staging, probe_arrays(voice_encoder, face_decoder, face_encoder,
                                             VoiceInputSpec.from_dict(voice_input), face))
    files[path.name] = FileEntry(PROBE_ROLE, sha256_of(path), path.stat().st_size)


def _raw_inputs(voice_encoder: nn.Module, files: list[Path]) -> dict[str, list[np.ndarray]]:
    """The ``--verify-with`` files as the end-to-end graphs take them: waveforms decoded (the
    model's clip length of them) at 16 kHz, photos as uint8 RGB."""
    from s2f.export.onnx_export import spec_for
    from s2f.export.real_inputs import split_files
    from s2f.runtime.preprocess.images import load_face
    from s2f.runtime.preprocess.voice_input import VoiceInputSpec

    voices, faces = split_files(files)
    voice = VoiceInputSpec.from_dict(spec_for(voice_encoder).metadata["preprocessing"])
    return {"voices": [voice.waveform_from_file(path) for path in voices], "faces": [load_face(p) for p in faces]}


def _real_inputs(models: dict[str, nn.Module], files: list[Path]) -> dict[str, list[np.ndarray]]:
    """Per role, the real batches to verify with: each encoder's own inputs from ``files``,
    and for the decoder the embeddings the encoders make of them."""
    from s2f.export.real_inputs import embeddings, encoder_inputs, split_files

    if not files:
        return {}
    voices, faces = split_files(files)
    if not voices or ("face_encoder" in models and not faces):
        wanted = "voice clips and face photos" if "face_encoder" in models else "voice clips"
        raise InputError(files[0], f"--verify-with needs {wanted} for this bundle "
                                   f"(got {len(voices)} clips, {len(faces)} photos)")
    real: dict[str, list[np.ndarray]] = {"face_decoder": []}
    for role, model in models.items():
        if role == "face_decoder":
            continue
        batch = encoder_inputs(model, files)
        real[role] = [batch]
        real["face_decoder"].append(embeddings(model, batch))
    return real
