"""What both command lines (``s2f`` and ``s2f-runtime``) share: verbosity flags, logging
set-up, and one policy for errors.

Library code reports through ``logging``; only the command lines print. A user's mistake is
one line on stderr and exit code 2, a missing optional install is one line naming the extra
to install (exit 2), Ctrl-C is 130, and anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys

from s2f.core.errors import InputError
from s2f.core.extras import explain, require
from s2f.core.progress import show_progress


def add_verbosity_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("-v", "--verbose", dest="log_level", action="store_const", const=logging.DEBUG,
                       default=logging.INFO, help="also print debugging detail")
    group.add_argument("-q", "--quiet", dest="log_level", action="store_const", const=logging.WARNING,
                       help="only warnings and errors; no progress bars")


def configure_logging(level: int) -> None:
    """Messages of our library go to stderr as plain lines (the command's results go to stdout)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s" if level > logging.DEBUG else "%(name)s: %(message)s"))
    root = logging.getLogger("s2f")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
    show_progress(level < logging.WARNING)


def run_command(prog: str, args: argparse.Namespace) -> int:
    """Run a parsed subcommand (``args.func(args)``) as a command line does."""
    configure_logging(getattr(args, "log_level", logging.INFO))
    what = getattr(args, "what_runs", None) or prog
    try:
        require(what, *getattr(args, "extras", ()))
        return int(args.func(args) or 0)
    except InputError as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as err:
        friendly = explain(err, what)
        if friendly is None:
            raise
        print(f"{prog}: error: {friendly}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
