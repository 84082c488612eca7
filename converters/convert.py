"""``s2f convert``: one entry point for Keras ``.h5`` files, existing PyTorch ports of the face
encoders, and the original Speech-to-Face project's own checkpoints (VE_conv, AST, decoder),
which become ``save_pretrained`` directories."""

from __future__ import annotations

import time
from pathlib import Path

from s2f import __version__
from s2f.converters.keras_h5 import HDF5_SIGNATURE
from s2f.converters.vggface import ConversionResult, Detection, Sha256InBackground, convert_keras_file
from s2f.core.atomic import atomic_output
from s2f.core.errors import InputError, read_head
from s2f.models.checkpoints import TORCH_SIGNATURES
from s2f.models.face_encoder_config import ARCHITECTURES
from s2f.models.original import OriginalImport, OriginalOptions


def convert(source: str | Path, output: str | Path, arch: str | None = None,
            original: OriginalOptions | None = None) -> ConversionResult | OriginalImport:
    """Convert ``source`` (Keras HDF5 or a known PyTorch port) to speech2face safetensors, or
    an original Speech-to-Face model checkpoint to a ``save_pretrained`` directory."""
    source, output = Path(source), Path(output)
    if arch is not None and arch not in ARCHITECTURES:
        raise InputError(None, f"unknown --arch {arch!r}; choose from {', '.join(ARCHITECTURES)}")
    if source.resolve() == output.resolve():
        raise InputError(output, "output would overwrite the input")
    head = read_head(source, len(HDF5_SIGNATURE), "weights file")
    if head == HDF5_SIGNATURE:
        return convert_keras_file(source, output, arch)
    if head.startswith(TORCH_SIGNATURES):
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
    if not head:
        raise InputError(source, "file is empty")
    raise InputError(source, "neither HDF5 (Keras .h5) nor a PyTorch checkpoint (.pth)")


def convert_torch_port(source: Path, output: Path, arch: str | None = None,
                       state: dict | None = None) -> ConversionResult:
    from safetensors.torch import save

    from s2f.converters.torch_ports import import_torch_port
    from s2f.models.face_encoder import metadata_for

    started = time.perf_counter()
    hasher = Sha256InBackground(source)
    imported = import_torch_port(source, expected_arch=arch, state=state)
    config = imported.config
    metadata = {
        **metadata_for(config),
        "source_file": source.name,
        "source_sha256": hasher.result(),
        "source_format": imported.source_format,
        "converter": f"speech2face {__version__}",
    }
    if imported.notes:
        metadata["conversion_notes"] = "; ".join(imported.notes)
    payload = save(imported.state, metadata=metadata)
    with atomic_output(output) as handle:
        handle.write(payload)
    parameters = sum(t.numel() for t in imported.state.values())
    return ConversionResult(
        config.arch, config.include_top, Detection(config.arch, config.include_top, imported.source_format),
        len(imported.state), parameters, len(payload), metadata["source_sha256"],
        time.perf_counter() - started, imported.notes,
    )
