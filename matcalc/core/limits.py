"""Input limits: every input is answered (a result or a `LimitError`) in bounded time and memory.

The limits are documented in the README; each violation is a `LimitError` with a one-line
message that names the limit. `recursion_room()` gives the recursive passes (the typer's walk of
long operator chains) the stack they need for the duration of a call only: a library call never
changes `sys.setrecursionlimit` for good.
"""
from __future__ import annotations

import functools
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from fractions import Fraction
from typing import TypeVar

from ..errors import LimitError

MAX_INPUT_CHARS = 20_000     # characters of an expression, program or declaration text
MAX_DEPTH = 150              # nesting: parentheses, calls, powers, transposes, signs, inside each other
MAX_STATEMENTS = 1_000       # statements of a program
MAX_NUMBER_DIGITS = 100      # digits of a number as written
MAX_MAGNITUDE = 10 ** 300    # |c| <= 1e300 and, unless 0, |c| >= 1e-300, for every constant (also folded ones)
MAX_CONSTANT_BITS = 4_096    # numerator and denominator of an exact constant
MAX_EXPONENT = 1_000         # |p| for a^p and A.^p
MAX_MATRIX_POWER = 128       # |k| for X^k (a product of |k| factors)
MAX_DIM = 10 ** 6            # an integer dimension is 1 .. 1e6
RECURSION_FRAMES = 50_000    # what `recursion_room` allows while it is active

_lock = threading.Lock()
_active = 0
_saved = 0


@contextmanager
def recursion_room(frames: int = RECURSION_FRAMES) -> Iterator[None]:
    """Raise the recursion limit to at least `frames` for the duration of the block and restore
    it afterwards (nested and concurrent uses share one raise: the last to leave restores it).
    A RecursionError inside becomes a `LimitError`."""
    global _active, _saved
    with _lock:
        if _active == 0:
            _saved = sys.getrecursionlimit()
            if _saved < frames:
                sys.setrecursionlimit(frames)
        _active += 1
    try:
        yield
    except RecursionError:
        raise LimitError(f"expression too deeply nested (nesting is limited to {MAX_DEPTH} levels "
                         f"and input to {MAX_INPUT_CHARS} characters)") from None
    finally:
        with _lock:
            _active -= 1
            if _active == 0:
                sys.setrecursionlimit(_saved)


F = TypeVar("F", bound=Callable)


def with_recursion_room(fn: F) -> F:
    """Decorator form of `recursion_room`."""
    @functools.wraps(fn)
    def wrapper(*args: object, **kwargs: object) -> object:
        with recursion_room():
            return fn(*args, **kwargs)
    return wrapper  # type: ignore[return-value]


def check_length(text: str, what: str = "input") -> None:
    if len(text) > MAX_INPUT_CHARS:
        raise LimitError(f"{what} is too long: {len(text)} characters (at most {MAX_INPUT_CHARS})")


def too_big(value: Fraction) -> str | None:
    """Why an exact constant is out of range, or None."""
    if value == 0:
        return None
    if value.numerator.bit_length() > MAX_CONSTANT_BITS or value.denominator.bit_length() > MAX_CONSTANT_BITS:
        return f"has more than {MAX_CONSTANT_BITS} bits"
    if abs(value) > MAX_MAGNITUDE:
        return "is larger than 1e300 in magnitude"
    if abs(value) * MAX_MAGNITUDE < 1:
        return "is smaller than 1e-300 in magnitude"
    return None


def show(value: Fraction) -> str:
    """A constant in a message: short even when it is huge."""
    n, d = value.numerator.bit_length(), value.denominator.bit_length()
    if max(n, d) < 64:
        return str(value)
    if abs(n - d) < 1020:
        return f"{float(value):.3g}"
    return f"about 10^{round((n - d) * 0.30103)}"


def check_constant(value: Fraction, what: str = "constant") -> None:
    """Every constant, written or folded (`1e200*1e200`), stays within `MAX_MAGNITUDE`."""
    why = too_big(value)
    if why:
        raise LimitError(f"{what} {show(value)} {why} (constants are limited to 1e-300 .. 1e300)")


def power_bits(base: Fraction, p: int) -> int:
    """An upper bound of the bits of base**p's numerator or denominator, computed cheaply."""
    return abs(p) * max(base.numerator.bit_length(), base.denominator.bit_length())


def check_power_fold(base: Fraction, p: Fraction) -> None:
    """Before computing base**p exactly (a constant to a constant power): refuse results out of
    range without computing them (2^2^2^2^2 would have 19,729 digits)."""
    if base in (0, 1, -1) or p.denominator != 1:
        return
    k = int(p)
    if power_bits(base, k) <= 2 * MAX_CONSTANT_BITS:
        check_constant(base ** k, f"constant {show(base)}^{k} =")
        return
    raise LimitError(f"constant {show(base)}^{show(p)} is too large (constants are limited to 1e-300 .. 1e300)")


def check_exponent(p: Fraction, what: str = "exponent") -> None:
    if abs(p) > MAX_EXPONENT:
        raise LimitError(f"{what} {show(p)} is too large (at most {MAX_EXPONENT} in magnitude)")


def check_matrix_power(k: Fraction) -> None:
    if abs(k) > MAX_MATRIX_POWER:
        raise LimitError(f"matrix power {show(k)} is too large: X^k is a product of |k| factors, "
                         f"|k| is at most {MAX_MATRIX_POWER}")


def check_dim(value: int, what: str = "dimension") -> None:
    if not 1 <= value <= MAX_DIM:
        raise LimitError(f"{what} {value} is out of range (an integer dimension is 1 .. {MAX_DIM})")


def check_tree(e: object) -> None:
    """A tree built in Python (`tanh(tanh(...x))`): at most MAX_DEPTH levels, and constants in
    range; computed without recursion. (Text input is checked by the parser.)"""
    from .expr import Expr, Num, walk
    if not isinstance(e, Expr):
        return
    depth: dict[Expr, int] = {}
    for node in walk([e]):  # children before parents
        depth[node] = 1 + max((depth[c] for c in node.children), default=0)
        if depth[node] > MAX_DEPTH:
            raise LimitError(f"expression too deeply nested: more than {MAX_DEPTH} levels of operators and "
                             "calls inside each other")
        if isinstance(node, Num):
            check_constant(node.value)
