"""The error hierarchy. Every user-facing failure is a `MatcalcError` with a one-line message."""
from __future__ import annotations


class MatcalcError(Exception):
    """Base class: the CLI prints `str(err)` on one line and exits with code 2."""


class ParseError(MatcalcError):
    """Malformed text; the message carries the text and a caret under the offending position."""

    def __init__(self, message: str, text: str = "", pos: int | None = None) -> None:
        self.text, self.pos = text, pos
        if text and pos is not None:
            message += _caret(text, pos)
        super().__init__(message)


WINDOW = 60  # characters shown on each side of the offending position


def _caret(text: str, pos: int) -> str:
    """The offending line (its line number if the text has several), cut to a window around
    `pos`, and a caret under `pos`."""
    start, end = text.rfind("\n", 0, pos) + 1, text.find("\n", pos)
    line, col = text[start:len(text) if end < 0 else end], pos - start
    cut = max(0, col - WINDOW)
    shown = ("..." if cut else "") + line[cut:col + WINDOW] + ("..." if col + WINDOW < len(line) else "")
    where = f" (line {text.count(chr(10), 0, pos) + 1})" if "\n" in text else ""
    return f"{where}\n  {shown}\n  {' ' * (col - cut + (3 if cut else 0))}^"


class ShapeError(MatcalcError):
    """Shapes that cannot agree: names the sub-expression and both shapes."""


class UnsupportedError(MatcalcError):
    """A construct the engine cannot handle; names it (never a silent zero)."""


class DomainError(MatcalcError):
    """No valid point could be found (e.g. log of a non-positive argument everywhere tried)."""


class CheckError(MatcalcError):
    """A verification of a derived gradient failed: the result must not be trusted."""


class LimitError(MatcalcError):
    """The input exceeds one of the documented input limits (`matcalc.core.limits`): too long, too
    deeply nested, a number or exponent too large, too many statements, a dimension out of range."""
