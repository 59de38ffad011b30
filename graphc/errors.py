"""graphc's errors, and how they find the user's line that built a node."""

from __future__ import annotations

import functools
import os
import sys
from dataclasses import dataclass

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
_BACKENDS_DIR = os.path.join(os.path.dirname(_PACKAGE_DIR), "backends")
_INTERNAL_DIRS = (_PACKAGE_DIR + os.sep, _BACKENDS_DIR + os.sep)


@dataclass(frozen=True, slots=True)
class SourceLocation:
    """Where user code built a node."""

    filename: str
    lineno: int
    function: str

    def __str__(self) -> str:
        return f"{self.filename}:{self.lineno} in {self.function}"


def user_location() -> SourceLocation | None:
    """The innermost stack frame outside graphc: the user's line."""
    frame = sys._getframe(1)
    while frame is not None:
        if not _is_internal(frame.f_code.co_filename):
            return SourceLocation(frame.f_code.co_filename, frame.f_lineno, frame.f_code.co_name)
        frame = frame.f_back
    return None


@functools.lru_cache(maxsize=4096)
def _is_internal(filename: str) -> bool:
    """Is this graphc's own code (or the import machinery)? Cached: every node asks."""
    return filename.startswith(_INTERNAL_DIRS) or "importlib" in filename


class GraphcError(Exception):
    """Base class of every error graphc raises on purpose."""


class GraphcTypeError(GraphcError, TypeError):
    """An op was given inputs of the wrong shape or dtype, or bad attributes.

    The message names the op, the input types and the user's source line.
    """

    def __init__(self, op: str, detail: str, input_types: tuple = (),
                 location: SourceLocation | None = None) -> None:
        self.op = op
        self.detail = detail
        self.input_types = input_types
        self.location = location
        types = ", ".join(str(t) for t in input_types)
        where = f"\n  built at {location}" if location else ""
        super().__init__(f"{op}: {detail}\n  inputs: ({types}){where}")


class GradientError(GraphcError):
    """A gradient was asked of something that has none (integer, disconnected, non-scalar)."""


class CompileError(GraphcError):
    """A graph could not be compiled (missing inputs, bad updates, unknown backend)."""


class ArgumentError(GraphcError, ValueError):
    """A compiled function was called with arguments of the wrong number, shape or dtype."""
