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


def _is_config(kind: Any) -> bool:
    return isinstance(kind, type) and dataclasses.is_dataclass(kind)


def _flat_fields(cls: type) -> list[tuple[dataclasses.Field, Any, str]]:
    """(field, type, help) for every field of ``cls``, a nested config dataclass's fields in its
    place (its flags are unprefixed: a name may appear once in the whole tree)."""
    hints = typing.get_type_hints(cls)
    helps = field_help(cls)
    found = []
    for spec in dataclasses.fields(cls):
        kind = _unwrap_optional(hints[spec.name])
        if _is_config(kind):
            found += _flat_fields(kind)
        else:
            found.append((spec, kind, spec.metadata.get("help", helps.get(spec.name, ""))))
    names = [spec.name for spec, _, _ in found]
    clashes = sorted({name for name in names if names.count(name) > 1})
    if clashes:
        raise TypeError(f"{cls.__name__}: nested configs repeat the field(s) {', '.join(clashes)}")
    return found


def add_config_flags(parser: argparse.ArgumentParser | Any, cls: type, exclude: tuple[str, ...] = (),
                     defaults: dict[str, Any] | None = None) -> list[str]:
    """Add a flag per field of ``cls`` (and of the config dataclasses it nests) not in
    ``exclude``; ``defaults`` overrides some of the dataclasses' defaults for this command.
    Returns the field names added.

    A field without a default (or with ``required`` in its metadata: the API has a default, the
    command line wants a choice) is a required flag. ``metadata`` may say ``choices``, ``help``,
    ``metavar``, ``short`` (``-o``), ``flag`` (a name other than the field's, where the
    field's own would be unclear on a command line), ``positional`` (an argument) and, for a
    boolean, ``negative``: the name of its off switch (``--rehash`` for ``verify_cache``),
    which replaces ``--no-x``; a ``bool | None`` then keeps None unless one of them is given."""
    added = []
    for spec, kind, text in _flat_fields(cls):
        if spec.name in exclude:
            continue
        required = (spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING
                    or spec.metadata.get("required", False))
        default = (defaults or {}).get(spec.name, _default(spec))
        text = text.replace("%", "%%")  # argparse formats help
        options: dict[str, Any] = {"default": default}
        if kind is bool and "negative" in spec.metadata:
            _add_switch_pair(parser, spec, default, text)
            added.append(spec.name)
            continue
        if kind is bool:
            options["action"] = argparse.BooleanOptionalAction
        elif typing.get_origin(kind) is tuple:
            elements = typing.get_args(kind)
            options.update(type=elements[0], nargs="+" if Ellipsis in elements else len(elements),
                           metavar=elements[0].__name__.upper())
        else:
            options["type"] = kind if kind in (int, float, str, Path) else str
        for key in ("choices", "metavar"):
            if key in spec.metadata:
                options[key] = spec.metadata[key]
        if required:
            options["help"] = text
        else:
            shown = "off" if default is None else " ".join(map(str, default)) if isinstance(default, tuple) else default
            said = "default" in text.lower()  # a help text that explains its own default keeps it
            options["help"] = text if said else f"{text} (default: {shown})".strip() if text else f"(default: {shown})"
        if spec.metadata.get("positional"):
            options.pop("default") if required else options.update(nargs="?")
            parser.add_argument(spec.name, **options)
        else:
            names = [*([spec.metadata["short"]] if "short" in spec.metadata else []),
                     spec.metadata.get("flag", flag_name(spec.name))]
            parser.add_argument(*names, dest=spec.name, required=required, **options)
        added.append(spec.name)
    return added


def add_command(subparsers: Any, name: str, config: type, run: Any, *, help: str, description: str | None = None,
                exclude: tuple[str, ...] = (), defaults: dict[str, Any] | None = None,
                **settings: Any) -> argparse.ArgumentParser:
    """A subcommand whose flags are ``config``'s fields (``add_config_flags``) and which runs
    ``run(args)``; ``settings`` are further parser defaults (the extras it needs, its name in
    messages). Returns the parser, for flags shared with other commands."""
    parser = subparsers.add_parser(name, help=help, **({"description": description} if description else {}))
    add_config_flags(parser, config, exclude=exclude, defaults=defaults)
    parser.set_defaults(func=run, **settings)
    return parser


def _add_switch_pair(parser, spec: dataclasses.Field, default: Any, text: str) -> None:
    """``--x`` sets True, the field's ``negative`` flag sets False; neither keeps the default."""
    group = parser.add_mutually_exclusive_group()
    said = "default" in text.lower()
    group.add_argument(flag_name(spec.name), dest=spec.name, action="store_const", const=True, default=default,
                       help=text if said else f"{text} (default: {'on' if default else 'off'})")
    group.add_argument(spec.metadata["negative"], dest=spec.name, action="store_const", const=False, default=default,
                       help=f"the opposite of {flag_name(spec.name)}")


def config_values(cls: type, args: argparse.Namespace) -> dict[str, Any]:
    """The parsed flags that are fields of ``cls``; a nested config dataclass is built from its own."""
    parsed = vars(args)
    hints = typing.get_type_hints(cls)
    values = {}
    for spec in dataclasses.fields(cls):
        kind = _unwrap_optional(hints[spec.name])
        if _is_config(kind):
            values[spec.name] = kind(**config_values(kind, args))
        elif spec.name in parsed:
            values[spec.name] = parsed[spec.name]
    return values


def config_from_args(cls: type, args: argparse.Namespace, **extra: Any) -> Any:
    """``cls`` from the parsed flags (plus ``extra``); a value the dataclass refuses becomes an
    ``InputError`` naming the flag."""
    from s2f.core.errors import InputError

    try:
        return cls(**{**config_values(cls, args), **extra})
    except (TypeError, ValueError) as err:
        raise InputError(None, str(err)) from None
