"""``s2f convert``: one entry point for Keras ``.h5`` files, existing PyTorch ports of the face
encoders, and the original Speech-to-Face project's own checkpoints (VE_conv, AST, decoder),
which become ``save_pretrained`` directories."""

from __future__ import annotations

import time
from pathlib import Path

from s2f.converters.vggface import ConversionResult, Detection, Sha256InBackground, convert_keras_file
from s2f.core.atomic import atomic_output
from s2f.core.errors import InputError
from s2f.models.face_encoder_config import ARCHITECTURES
from s2f.models.identify import KINDS, ModelFile, identify
from s2f.models.original import OriginalImport, OriginalOptions

CONVERTIBLE = ("keras", "torch")  # the kinds of ``identify`` that s2f convert reads


def convert(source: str | Path, output: str | Path, arch: str | None = None,
            original: OriginalOptions | None = None) -> ConversionResult | OriginalImport:
    """Convert ``source`` (Keras HDF5 or a known PyTorch port) to speech2face safetensors, or
    an original Speech-to-Face model checkpoint to a ``save_pretrained`` directory."""
    source, output = Path(source), Path(output)
    if arch is not None and arch not in ARCHITECTURES:
        raise InputError(None, f"unknown --arch {arch!r}; choose from {', '.join(ARCHITECTURES)}")
    if source.resolve() == output.resolve():
        raise InputError(output, "output would overwrite the input")
    found = identify_source(source)
    if found.kind == "keras":
        return convert_keras_file(source, output, arch)
    from s2f.models.checkpoints import load_torch_state_dict
    from s2f.models.original import convert_original, import_state

    state = load_torch_state_dict(source)
    imported = import_state(state, source, original)
    if imported is None:
        return convert_torch_port(source, output, arch, state)
    if arch is not None:
        raise InputError(source, f"--arch names a face encoder; this file is the original's {imported.model_type}")
    convert_original(imported, output)
    return imported


def identify_source(source: Path) -> ModelFile:
    """What ``s2f convert`` reads: a Keras file or a PyTorch checkpoint; anything ``identify``
    finds that is already ours is refused with what to do instead."""
    if source.is_dir():
        raise InputError(source, "is a directory, expected a weights file (Keras .h5 or PyTorch .pth/.pt)")
    try:
        found = identify(source)
    except InputError as err:
        if err.problem.startswith("not a speech2face model"):
            raise InputError(source, "neither HDF5 (Keras .h5) nor a PyTorch checkpoint (.pth)") from None
        raise
    if found.kind not in CONVERTIBLE:
        raise InputError(source, f"{KINDS[found.kind]}, already converted: load it as it is")
    return found


def convert_torch_port(source: Path, output: Path, arch: str | None = None,
                       state: dict | None = None) -> ConversionResult:
    from safetensors.torch import save

    from s2f.converters.torch_ports import import_torch_port
    from s2f.models.face_encoder_config import metadata_for
    from s2f.models.provenance import source_metadata, source_record

    started = time.perf_counter()
    hasher = Sha256InBackground(source)
    imported = import_torch_port(source, expected_arch=arch, state=state)
    config = imported.config
    sha256 = hasher.result()
    record = source_record(imported.source_format, source.name, sha256,
                           notes="; ".join(imported.notes) if imported.notes else None)
    metadata = {**metadata_for(config), **source_metadata(record)}
    payload = save(imported.state, metadata=metadata)
    with atomic_output(output) as handle:
        handle.write(payload)
    parameters = sum(t.numel() for t in imported.state.values())
    return ConversionResult(
        config.arch, config.include_top, Detection(config.arch, config.include_top, imported.source_format),
        len(imported.state), parameters, len(payload), sha256,
        time.perf_counter() - started, imported.notes,
    )
