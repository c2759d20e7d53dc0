"""The error hierarchy. Every user-facing failure is a `MatcalcError` with a one-line message."""
from __future__ import annotations


class MatcalcError(Exception):
    """Base class: the CLI prints `str(err)` on one line and exits with code 2."""


class ParseError(MatcalcError):
    """Malformed text; the message carries the text and a caret under the offending position."""

    def __init__(self, message: str, text: str = "", pos: int | None = None) -> None:
        self.text, self.pos = text, pos
        if text and pos is not None:
            message = f"{message}\n  {text}\n  {' ' * pos}^"
        super().__init__(message)


class ShapeError(MatcalcError):
    """Shapes that cannot agree: names the sub-expression and both shapes."""


class UnsupportedError(MatcalcError):
    """A construct the engine cannot handle; names it (never a silent zero)."""


class DomainError(MatcalcError):
    """No valid point could be found (e.g. log of a non-positive argument everywhere tried)."""


class CheckError(MatcalcError):
    """A verification of a derived gradient failed: the result must not be trusted."""


class LimitError(MatcalcError):
    """The input exceeds one of the documented input limits (`matcalc.limits`): too long, too
    deeply nested, a number or exponent too large, too many statements, a dimension out of range."""
