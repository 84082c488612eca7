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

