"""The ``speech2face.*`` metadata every exported graph carries, so a torch-free runtime (or a
person with Netron) can tell what a graph is and how to feed it. Values are stored as JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

METADATA_PREFIX = "speech2face."


def set_metadata(proto, metadata: dict[str, Any]) -> None:
    """Replace the graph's metadata with ``metadata`` (text values as they are, others as JSON)."""
    del proto.metadata_props[:]
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = METADATA_PREFIX + key, value if isinstance(value, str) else json.dumps(value)


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The speech2face metadata of an exported graph, values decoded from JSON."""
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    result = {}
    for entry in proto.metadata_props:
        if entry.key.startswith(METADATA_PREFIX):
            try:
                result[entry.key[len(METADATA_PREFIX):]] = json.loads(entry.value)
            except ValueError:
                result[entry.key[len(METADATA_PREFIX):]] = entry.value
    return result
