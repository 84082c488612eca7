"""``s2f weights list`` and ``s2f weights fetch NAME``."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path

from s2f.core.config_flags import add_command, config_from_args


@dataclass(kw_only=True)
class FetchCommand:
    """Args:
        name: registry name (see 's2f weights list').
        cache_dir: download directory (default: the weights/ folder of the user cache; S2F_CACHE moves it).
        mirror: base URL to fetch <filename> from instead of upstream.
        quiet: no progress bar.
    """

    name: str = field(metadata={"positional": True})
    cache_dir: Path | None = None
    mirror: str | None = None
    quiet: bool = False


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    weights = subparsers.add_parser("weights", help="list and download the known upstream weight files",
                                    description="The upstream VGGFace weight files speech2face converts.")
    actions = weights.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="show the registry")
    listing.set_defaults(func=run_list)
    add_command(actions, "fetch", FetchCommand, run_fetch,
                help="download a registry file (resumable, verified)",
                description="Download NAME into the cache (the weights/ folder of the user cache; S2F_CACHE moves it),"
                            " resuming a partial download, and verify its signature, length and any known size or "
                            "checksum. Prints the path and sha256.")


def run_list(args: argparse.Namespace) -> int:
    from s2f.weights.registry import REGISTRY

    for entry in REGISTRY.values():
        checksum = entry.sha256[:12] + "..." if entry.sha256 else "none published"
        print(f"{entry.name:22} {entry.arch:17} {entry.approx_size:>8}  sha256: {checksum:15} {entry.description}")
    return 0


def run_fetch(args: argparse.Namespace) -> int:
    from s2f.weights.fetch import fetch
    from s2f.weights.registry import lookup

    command = config_from_args(FetchCommand, args)
    entry = lookup(command.name)
    path = fetch(entry, command.cache_dir, mirror=command.mirror, progress=not command.quiet)
    digest_file = path.with_name(path.name + ".sha256")
    digest = digest_file.read_text().split()[0] if digest_file.exists() else "unknown"
    print(f"{path}\nsha256 {digest}")
    return 0
