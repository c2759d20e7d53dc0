"""The Python front end, NumPy-style: `@` matrix product, `*` elementwise (or scalar) product,
`.T` transpose, `/` and `**` elementwise, and functions `tr, det, inv, softmax, ...`: one for each
public call operator of the registry, made from its row (`function`). Builds the same trees as the
text syntax:

    >>> from matcalc import Matrix, Vector, tr, grad
    >>> A, X, B = Matrix("A", "p", "m"), Matrix("X", "m", "n"), Matrix("B", "n", "p")
    >>> grad(tr(A @ X @ B), wrt="X")["X"].text
    "A'*B'"
"""
from __future__ import annotations

import builtins
from fractions import Fraction
from functools import cache
from typing import Callable, Union

from ..core import algebra as al
from ..core.expr import PROPERTIES, Expr, Num, Sym
from ..core.registry import OPS, Dim, on_change, resolve
from ..errors import MatcalcError, ShapeError
from .printing import to_text

Operand = Union["Term", int, float, Fraction]


class Term:
    """A wrapped expression tree with NumPy-style operators (the tree itself stays operator-free)."""

    __slots__ = ("expr",)
    __array_priority__ = 1000

    def __init__(self, expr: Expr) -> None:
        self.expr = expr

    def __repr__(self) -> str:
        return f"Term({to_text(self.expr)!r})"

    def __str__(self) -> str:
        return to_text(self.expr)

    @property
    def shape(self) -> tuple[Dim, Dim]:
        return self.expr.shape

    @property
    def T(self) -> "Term":
        return Term(al.transpose(self.expr))

    def __matmul__(self, o: Operand) -> "Term":
        return _binary("@", self, o, al.matmul)

    def __rmatmul__(self, o: Operand) -> "Term":
        return _binary("@", o, self, al.matmul)

    def __mul__(self, o: Operand) -> "Term":
        return _binary("*", self, o, _elementwise_product)

    def __rmul__(self, o: Operand) -> "Term":
        return _binary("*", o, self, _elementwise_product)

    def __add__(self, o: Operand) -> "Term":
        return _binary("+", self, o, al.add)

    def __radd__(self, o: Operand) -> "Term":
        return _binary("+", o, self, al.add)

    def __sub__(self, o: Operand) -> "Term":
        return _binary("-", self, o, al.sub)

    def __rsub__(self, o: Operand) -> "Term":
        return _binary("-", o, self, al.sub)

    def __neg__(self) -> "Term":
        return Term(al.neg(self.expr))

    def __truediv__(self, o: Operand) -> "Term":
        return _binary("/", self, o, lambda a, b: _elementwise_product(a, al.power(b, -1)))

    def __rtruediv__(self, o: Operand) -> "Term":
        return _binary("/", o, self, lambda a, b: _elementwise_product(a, al.power(b, -1)))

    def __pow__(self, p: int | float | Fraction) -> "Term":
        if isinstance(p, Term):
            raise MatcalcError("** needs a constant exponent")
        return Term(al.power(self.expr, Fraction(p)))


def _elementwise_product(a: Expr, b: Expr) -> Expr:
    return al.mul(a, b) if a.is_scalar or b.is_scalar else al.hadamard(a, b)


def _lift(x: Operand, like: Expr) -> Expr:
    """A Python number next to a matrix is broadcast (in sums) or a scalar (in products)."""
    if isinstance(x, Term):
        return x.expr
    if isinstance(x, (int, float, Fraction)) and not isinstance(x, bool):
        return Num(Fraction(x), like.shape)
    raise MatcalcError(f"cannot combine a {type(x).__name__} with a matrix expression")


def _binary(op: str, a: Operand, b: Operand, build) -> Term:
    other = a if isinstance(a, Term) else b
    assert isinstance(other, Term)
    ea, eb = _lift(a, other.expr), _lift(b, other.expr)
    if op in ("*", "/", "@"):  # numbers multiply as scalars, not as constant matrices
        ea = al.num(ea.value) if isinstance(ea, Num) and not isinstance(a, Term) else ea
        eb = al.num(eb.value) if isinstance(eb, Num) and not isinstance(b, Term) else eb
    try:
        return Term(build(ea, eb))
    except ShapeError as err:
        raise ShapeError(f"in {to_text(ea)} {op} {to_text(eb)}: {err}") from None


def _dim(d: Dim | str) -> Dim:
    return int(d) if isinstance(d, str) and d.isdigit() else d


def _props(props: tuple[str, ...]) -> frozenset[str]:
    bad = [p for p in props if p not in PROPERTIES]
    if bad:
        raise MatcalcError(f"unknown property {bad[0]!r} (known: {', '.join(PROPERTIES)})")
    return frozenset(props)


def Matrix(name: str, rows: Dim, cols: Dim, *props: str) -> Term:
    """A matrix symbol, e.g. `Matrix("A", "n", "n", "symmetric")`."""
    return Term(Sym(name, (_dim(rows), _dim(cols)), _props(props)))


def Vector(name: str, n: Dim, *props: str) -> Term:
    """A column vector symbol (use `.T` for a row)."""
    return Term(Sym(name, (_dim(n), 1), _props(props)))


def Scalar(name: str, *props: str) -> Term:
    return Term(Sym(name, (1, 1), _props(props)))


def eye(n: Dim) -> Term:
    return Term(al.eye(_dim(n)))


def ones(rows: Dim, cols: Dim = 1) -> Term:
    return Term(Num(Fraction(1), (_dim(rows), _dim(cols))))


def front_end_names() -> list[str]:
    """The names of the front end's functions: one per public call operator of the registry
    (its name in the text syntax; `diag` covers both of its rows)."""
    return sorted({r.parse_name for r in OPS.values() if r.parse_name and r.public})


@cache
def function(name: str) -> Callable[..., Term]:
    """The front-end function `name(x)` (`kron(a, b)`: as many arguments as the row takes),
    built from the registry: the row of that name (of several, the one the text syntax would
    choose for x's shape) applied to x. AttributeError for a name that is no public call operator."""
    if name not in front_end_names():
        raise AttributeError(f"module 'matcalc.syntax.symbols' has no attribute {name!r}")

    def apply(x: Term, *more: Term) -> Term:
        for y in (x, *more):
            if not isinstance(y, Term):
                raise MatcalcError(f"{name} needs a matcalc expression, got {type(y).__name__}")
        row = resolve(name, x.shape[1] == 1)
        if len(more) + 1 != (row.arity or 1):
            raise MatcalcError(f"{name} takes {row.arity or 1} arguments, got {len(more) + 1}")
        try:
            return Term(al.call(row.name, x.expr, *(y.expr for y in more)))
        except ShapeError as err:
            raise ShapeError(f"in {name}({', '.join(to_text(y.expr) for y in (x, *more))}): {err}") from None

    apply.__name__ = apply.__qualname__ = name
    apply.__doc__ = f"`{name}` of a matcalc expression, as in the text syntax (see the operator registry)."
    return apply


on_change(function.cache_clear)


def __getattr__(name: str) -> Callable[..., Term]:
    """`tr`, `softmax`, `sum`, ...: the functions of the registry's rows (`function`)."""
    return function(name)


def __dir__() -> list[str]:
    return sorted([*globals(), *front_end_names()])


__all__ = ["Term", "Matrix", "Vector", "Scalar", "eye", "ones", "builtins", *front_end_names()]
