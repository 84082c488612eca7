"""``s2f weights list`` and ``s2f weights fetch NAME``."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    weights = subparsers.add_parser("weights", help="list and download the known upstream weight files",
                                    description="The upstream VGGFace weight files speech2face converts.")
    actions = weights.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="show the registry")
    listing.set_defaults(func=run_list)
    fetch = actions.add_parser(
        "fetch", help="download a registry file (resumable, verified)",
        description="Download NAME into the cache (the weights/ folder of the user cache; S2F_CACHE moves it), "
                    "resuming a partial download, and verify its signature, length and any known "
                    "size or checksum. Prints the path and sha256.")
    fetch.add_argument("name", help="registry name (see 's2f weights list')")
    fetch.add_argument("--cache-dir", type=Path, help="download directory")
    fetch.add_argument("--mirror", help="base URL to fetch <filename> from instead of upstream")
    fetch.add_argument("--quiet", action="store_true", help="no progress bar")
    fetch.set_defaults(func=run_fetch)


def run_list(args: argparse.Namespace) -> int:
    from s2f.weights.registry import REGISTRY

    for entry in REGISTRY.values():
        checksum = entry.sha256[:12] + "..." if entry.sha256 else "none published"
        print(f"{entry.name:22} {entry.arch:17} {entry.approx_size:>8}  sha256: {checksum:15} {entry.description}")
    return 0


def run_fetch(args: argparse.Namespace) -> int:
    from s2f.weights.fetch import fetch
    from s2f.weights.registry import lookup

    entry = lookup(args.name)
    path = fetch(entry, args.cache_dir, mirror=args.mirror, progress=not args.quiet)
    digest_file = path.with_name(path.name + ".sha256")
    digest = digest_file.read_text().split()[0] if digest_file.exists() else "unknown"
    print(f"{path}\nsha256 {digest}")
    return 0
