"""The VoxCeleb and HQ-VoxCeleb metadata tables, read as they are shipped.

* ``vox1_meta.csv`` (VoxCeleb1): tab-separated, ``VoxCeleb1 ID``, ``VGGFace1 ID`` (the
  person's name, e.g. ``A.J._Buckley``), ``Gender``, ``Nationality``, ``Set``.
* ``full_vox2_meta.csv`` (HQ-VoxCeleb's ``meta_info/``): ``Class_ID, Name, Sample_Num, Flag,
  Gender_x, VoxCeleb2ID, VGGFace2ID, Gender_y, Set``; the only place VoxCeleb2 ids get names
  (the official ``vox2_meta.csv`` has none, and its VGGFace2 numbers are not the VoxCeleb2 ones).

Copies in the wild are separated by tabs, commas or " ," and sometimes start with a byte-order
mark, so the separator is read off the header and every field is trimmed. Names are compared
in Unicode NFC: an unpacked tree may spell ``Belén`` with a combining accent (NFD) where the
table spells it with one code point.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from pathlib import Path

from s2f.core.errors import InputError

VOX1_ID, VOX1_NAME = "VoxCeleb1 ID", "VGGFace1 ID"
VOX2_ID, VOX2_NAME = "VoxCeleb2ID", "Name"


def normal_name(text: str) -> str:
    """A name as compared and written: trimmed (spaces, a stray byte-order mark) and NFC."""
    return unicodedata.normalize("NFC", text.strip().lstrip("\ufeff").strip())


def _separator(path: Path, header: str) -> str:
    if "\t" in header:
        return "\t"
    if "," in header:
        return ","
    raise InputError(path, "unknown separator: the header line has neither tabs nor commas")


def read_columns(path: Path, columns: Sequence[str]) -> list[tuple[str, ...]]:
    """The values of ``columns`` on every row of the table at ``path``, trimmed and NFC."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError(path, "metadata file not found") from None
    except IsADirectoryError:
        raise InputError(path, "is a directory, not a metadata file") from None
    except OSError as err:
        raise InputError(path, f"unreadable ({err.strerror})") from None
    except UnicodeDecodeError as err:
        raise InputError(path, f"not UTF-8 text (byte {err.start})") from None
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise InputError(path, "empty metadata file")
    separator = _separator(path, lines[0])
    header = [normal_name(field) for field in lines[0].split(separator)]
    for column in columns:
        if column not in header:
            raise InputError(path, f"no column {column!r} (its columns: {', '.join(header)})")
    where = [header.index(column) for column in columns]
    rows = []
    for number, line in enumerate(lines[1:], start=2):
        fields = line.split(separator)
        if len(fields) <= max(where):
            missing = columns[next(i for i, index in enumerate(where) if index >= len(fields))]
            raise InputError(path, f"line {number} has no value in column {missing!r}")
        rows.append(tuple(normal_name(fields[index]) for index in where))
    return rows


def id_to_name(path: Path, id_column: str, name_column: str) -> dict[str, str]:
    """speaker id -> name; an id listed twice with two names is refused."""
    names: dict[str, str] = {}
    for speaker, name in read_columns(path, (id_column, name_column)):
        if not speaker or not name:
            continue
        if names.setdefault(speaker, name) != name:
            raise InputError(path, f"column {id_column!r}: {speaker} is listed as {names[speaker]!r} and as {name!r}")
    return names
