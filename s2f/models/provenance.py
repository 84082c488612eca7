"""Where a model's weights came from, in one record for every way they arrive: a Keras file or
a PyTorch port converted by ``s2f convert``, or a checkpoint of the original project.

The record (``format``, ``file``, ``sha256``, what else the source tells, ``imported_by``)
is kept as JSON in the safetensors metadata under ``source``, travels with
``save_pretrained``, and is copied into a bundle's manifest (``sources``), so a bundle says
which upstream file each of its models was made from. Files converted before the record
existed kept flat ``source_*`` keys; ``source_from_metadata`` reads those too.
"""

from __future__ import annotations

import json
from pathlib import Path

from s2f.core.errors import InputError

SOURCE_KEY = "source"
# the flat keys of files converted before the record, and their names in it
LEGACY_KEYS = {"source_format": "format", "source_file": "file", "source_sha256": "sha256",
               "source_keras_version": "keras_version", "conversion_notes": "notes", "converter": "imported_by"}


def source_record(format: str, file: str, sha256: str, **extra: str | None) -> dict[str, str]:
    """The record for weights read from ``file`` (its sha256) in ``format``; ``extra`` keeps
    what else the source told (a layout, a Keras version, conversion notes), Nones left out."""
    from s2f import __version__

    return {"format": format, "file": file, "sha256": sha256,
            **{key: str(value) for key, value in extra.items() if value is not None},
            "imported_by": f"speech2face {__version__}"}


def source_metadata(record: dict[str, str] | None) -> dict[str, str]:
    """The safetensors metadata entry holding ``record`` (none without one)."""
    return {SOURCE_KEY: json.dumps(record, sort_keys=True)} if record else {}


def source_from_metadata(metadata: dict[str, str] | None, path: str | Path) -> dict[str, str] | None:
    """The record a safetensors file holds, checked (a JSON object of texts), or rebuilt from
    the flat keys of an older conversion; None when the weights have no outside source."""
    metadata = metadata or {}
    text = metadata.get(SOURCE_KEY)
    if text is None:
        legacy = {new: metadata[old] for old, new in LEGACY_KEYS.items() if old in metadata}
        return legacy or None
    try:
        record = json.loads(text)
    except ValueError:
        record = None
    if not isinstance(record, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in record.items()):
        raise InputError(path, "metadata field 'source' must be a JSON object of texts")
    return record
