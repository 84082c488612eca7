"""The one exception type for mistakes a user can fix (bad file, wrong flag, unwritable path).

Command-line entry points catch it and print its message as a single line with exit code 2;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

from pathlib import Path


class InputError(Exception):
    """A problem with something the user gave us; the message names the file and the fault."""

    def __init__(self, path: str | Path | None, problem: str) -> None:
        self.path = None if path is None else str(path)
        self.problem = problem
        super().__init__(problem if path is None else f"{path}: {problem}")


def run_command(prog: str, args) -> int:
    """Run a parsed subcommand (``args.func(args)``) as a command line does: a user's
    mistake is one line on stderr and exit code 2, Ctrl-C is 130, anything else is a bug
    and keeps its traceback."""
    import sys

    try:
        return int(args.func(args) or 0)
    except InputError as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
