"""User-facing errors.

Library code raises these (never ``assert``, never ``sys.exit``); the command line turns them into a
single line on stderr and a non-zero exit code. Messages name the problem, the offending value and,
where there is one, the way out.
"""

from __future__ import annotations


class EchoScleroError(Exception):
    """Base class of every error a user can cause and fix."""

    exit_code = 2


class InputError(EchoScleroError):
    """An input file, stream or value that cannot be used (missing, corrupt, wrong kind)."""


class CalibrationMissingError(InputError):
    """An image without usable physical calibration (and no ``--mm-per-px`` given)."""


class StreamError(EchoScleroError):
    """A live stream that cannot be reached or sends malformed data."""


def one_line(text: object, *, limit: int = 400) -> str:
    """``text`` as one readable line: control characters and undecodable bytes escaped, at most ``limit``
    characters (a message that quotes a corrupt header must not print raw bytes or kilobytes of them)."""
    s = str(text)
    s = "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in s)
    return s if len(s) <= limit else s[: limit - 3] + "..."
