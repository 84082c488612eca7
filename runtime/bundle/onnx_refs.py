"""Which files an ONNX graph reads its weights from, read off the protobuf without loading it.

A bundle's sha256 entries protect only the files the manifest lists, so before a graph is
loaded every ``external_data`` location it names must be one of the files the manifest lists
as that graph's weights (``s2f.runtime.bundle.reader``); otherwise a graph could read unhashed weights.
The runtime does not depend on the ``onnx`` package, so this walks the protobuf wire format
itself: a few field numbers of ``onnx.proto3`` (ModelProto.graph and .functions, GraphProto's
nodes, initializers and sparse initializers, attributes' tensors and subgraphs, and
TensorProto.external_data), skipping everything else unread.
"""

from __future__ import annotations

import mmap
from collections.abc import Iterator
from pathlib import Path

from s2f.core.errors import InputError

# (message, field number) -> the message type that field holds; every other field is skipped
_FIELDS = {
    ("model", 7): "graph", ("model", 25): "function",
    ("graph", 1): "node", ("graph", 5): "tensor", ("graph", 15): "sparse",
    ("function", 7): "node",
    ("node", 5): "attribute",
    ("attribute", 5): "tensor", ("attribute", 6): "graph", ("attribute", 10): "tensor", ("attribute", 11): "graph",
    ("attribute", 22): "sparse", ("attribute", 23): "sparse",
    ("sparse", 1): "tensor", ("sparse", 2): "tensor",
    ("tensor", 13): "entry",
}
MAX_DEPTH = 64  # nested subgraphs; far beyond any real model, far below a stack overflow


class _Malformed(Exception):
    pass


def _varint(data, position: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if position >= len(data) or shift > 63:
            raise _Malformed("truncated varint")
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, position
        shift += 7


def _fields(data, start: int, end: int) -> Iterator[tuple[int, int, int]]:
    """(field number, start, end) of every length-delimited field of one message; others skipped."""
    position = start
    while position < end:
        key, position = _varint(data, position)
        number, wire = key >> 3, key & 7
        if wire == 0:
            _, position = _varint(data, position)
        elif wire == 1:
            position += 8
        elif wire == 5:
            position += 4
        elif wire == 2:
            length, position = _varint(data, position)
            if position + length > end:
                raise _Malformed("a field runs past the end of its message")
            yield number, position, position + length
            position += length
        else:
            raise _Malformed(f"wire type {wire}")
    if position != end:
        raise _Malformed("a field runs past the end of its message")


def _locations(data, kind: str, start: int, end: int, depth: int) -> Iterator[str]:
    if depth > MAX_DEPTH:
        raise _Malformed("subgraphs nested too deep")
    if kind == "entry":  # StringStringEntryProto: key = 1, value = 2
        parts = {number: bytes(data[a:b]) for number, a, b in _fields(data, start, end)}
        if parts.get(1) == b"location":
            yield parts.get(2, b"").decode("utf-8", "replace")
        return
    for number, a, b in _fields(data, start, end):
        inner = _FIELDS.get((kind, number))
        if inner is not None:
            yield from _locations(data, inner, a, b, depth + 1)


def external_locations(path: Path) -> list[str]:
    """Every ``external_data`` location the graph at ``path`` names, in order, repeats removed."""
    try:
        with open(path, "rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
            return list(dict.fromkeys(_locations(data, "model", 0, len(data), 0)))
    except (_Malformed, ValueError) as err:  # ValueError: mmap of an empty file
        raise InputError(path, f"not an ONNX graph ({err})") from None


def check_weight_locations(graph: Path, allowed: list[str]) -> None:
    """Refuse a graph that reads weights from anything but the plain, regular files ``allowed``
    beside it (the files the manifest lists as its weights)."""
    for location in external_locations(graph):
        plain = location and "/" not in location and "\\" not in location and location not in (".", "..")
        if not plain:
            raise InputError(graph, f"reads weights from {location!r}: only a file name inside the bundle is allowed")
        if location not in allowed:
            raise InputError(graph, f"reads weights from {location!r}, which the manifest does not list as its "
                                    f"weights ({', '.join(allowed) or 'none'}): they would not be hashed")
