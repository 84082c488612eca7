"""Command-line flags generated from a config dataclass, so every default and its help text
live once, on the dataclass (``ServeConfig``, ``TrainConfig``, the run dataclasses).

Each field becomes ``--field-name`` with the field's type and default; its help is the
field's entry in the class docstring's ``Args:`` section (``name: text``, or ``a, b: text``
for several fields), and a field's ``metadata`` may add ``choices`` or ``help``. Booleans get
``--x/--no-x``. ``config_from_args`` builds the dataclass back from the parsed flags.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import types
import typing
from pathlib import Path
from typing import Any

_ENTRY = re.compile(r"^(\s*)([a-z_][a-z0-9_]*(?:\s*,\s*[a-z_][a-z0-9_]*)*):\s+(.*)$")


def field_help(cls: type) -> dict[str, str]:
    """The ``Args:`` entries of ``cls``'s docstring (and its bases'), by field name."""
    found: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        doc = klass.__dict__.get("__doc__") or ""
        names: list[str] = []
        indent = None
        for line in doc.splitlines():
            match = _ENTRY.match(line)
            if match and (indent is None or len(match.group(1)) <= indent):
                indent = len(match.group(1))
                names = [name.strip() for name in match.group(2).split(",")]
                for name in names:
                    found[name] = match.group(3).strip()
            elif names and line.strip() and (indent is None or len(line) - len(line.lstrip()) > indent):
                for name in names:
                    found[name] += " " + line.strip()
            elif not line.strip():
                names = []
    return found


def _default(spec: dataclasses.Field) -> Any:
    if spec.default is not dataclasses.MISSING:
        return spec.default
    if spec.default_factory is not dataclasses.MISSING:
        return spec.default_factory()
    return None


def _unwrap_optional(kind: Any) -> Any:
    if isinstance(kind, types.UnionType) or typing.get_origin(kind) is typing.Union:
        options = [arg for arg in typing.get_args(kind) if arg is not type(None)]
        if len(options) == 1:
            return options[0]
    return kind


def flag_name(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_config_flags(parser: argparse.ArgumentParser | Any, cls: type, exclude: tuple[str, ...] = (),
                     defaults: dict[str, Any] | None = None) -> list[str]:
    """Add a flag per field of ``cls`` not in ``exclude``; ``defaults`` overrides some of the
    dataclass's defaults for this command. Returns the field names added."""
    hints = typing.get_type_hints(cls)
    helps = field_help(cls)
    added = []
    for spec in dataclasses.fields(cls):
        if spec.name in exclude or dataclasses.is_dataclass(hints[spec.name]):
            continue
        default = (defaults or {}).get(spec.name, _default(spec))
        kind = _unwrap_optional(hints[spec.name])
        text = spec.metadata.get("help", helps.get(spec.name, "")).replace("%", "%%")  # argparse formats help
        options: dict[str, Any] = {"dest": spec.name, "default": default}
        if kind is bool:
            options["action"] = argparse.BooleanOptionalAction
        elif typing.get_origin(kind) is tuple:
            elements = typing.get_args(kind)
            options.update(type=elements[0], nargs="+" if Ellipsis in elements else len(elements),
                           metavar=elements[0].__name__.upper())
        else:
            options["type"] = kind if kind in (int, float, str, Path) else str
        if "choices" in spec.metadata:
            options["choices"] = spec.metadata["choices"]
        shown = "off" if default is None else " ".join(map(str, default)) if isinstance(default, tuple) else default
        options["help"] = f"{text} (default: {shown})".strip() if text else f"(default: {shown})"
        parser.add_argument(flag_name(spec.name), **options)
        added.append(spec.name)
    return added


def config_values(cls: type, args: argparse.Namespace) -> dict[str, Any]:
    """The parsed flags that are fields of ``cls``."""
    parsed = vars(args)
    return {spec.name: parsed[spec.name] for spec in dataclasses.fields(cls) if spec.name in parsed}


def config_from_args(cls: type, args: argparse.Namespace, **extra: Any) -> Any:
    """``cls`` from the parsed flags (plus ``extra``); a value the dataclass refuses becomes an
    ``InputError`` naming the flag."""
    from s2f.core.errors import InputError

    try:
        return cls(**{**config_values(cls, args), **extra})
    except (TypeError, ValueError) as err:
        raise InputError(None, str(err)) from None
