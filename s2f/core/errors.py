"""The one exception type for mistakes a user can fix (bad file, wrong flag, unwritable path).

Command-line entry points (``s2f.core.command_line.run_command``) catch it and print its
message as a single line with exit code 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

from pathlib import Path


class InputError(Exception):
    """A problem with something the user gave us; the message names the file and the fault."""

    def __init__(self, path: str | Path | None, problem: str) -> None:
        self.path = None if path is None else str(path)
        self.problem = problem
        super().__init__(problem if path is None else f"{path}: {problem}")


def read_head(path: Path, nbytes: int, what: str = "file") -> bytes:
    """The first ``nbytes`` of a file the user named, or one line saying why it cannot be read
    (``what``: what the file should have been, for the message about a directory)."""
    try:
        with open(path, "rb") as handle:
            return handle.read(nbytes)
    except FileNotFoundError:
        raise InputError(path, "file not found") from None
    except IsADirectoryError:
        raise InputError(path, f"is a directory, expected a {what}") from None
    except OSError as err:
        raise InputError(path, f"cannot read ({err.strerror})") from None

