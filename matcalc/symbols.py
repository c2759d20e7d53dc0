"""The Python front end, NumPy-style: `@` matrix product, `*` elementwise (or scalar) product,
`.T` transpose, `/` and `**` elementwise, and functions `tr, det, inv, ...`. Builds the same trees
as the text syntax:

    >>> from matcalc import Matrix, Vector, tr, grad
    >>> A, X, B = Matrix("A", "p", "m"), Matrix("X", "m", "n"), Matrix("B", "n", "p")
    >>> grad(tr(A @ X @ B), wrt="X")["X"].text
    "A'*B'"
"""
from __future__ import annotations

import builtins
from fractions import Fraction
from typing import Union

from . import algebra as al
from .errors import MatcalcError, ShapeError
from .expr import PROPERTIES, Expr, Num, Sym
from .printing import to_text
from .registry import OPS, Dim

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


def _function(op: str):
    def apply(x: Term) -> Term:
        if not isinstance(x, Term):
            raise MatcalcError(f"{OPS[op].parse_name} needs a matcalc expression, got {type(x).__name__}")
        try:
            return Term(al.call(op, x.expr))
        except ShapeError as err:
            raise ShapeError(f"in {OPS[op].parse_name}({to_text(x.expr)}): {err}") from None

    apply.__name__ = OPS[op].parse_name or op
    apply.__doc__ = f"`{OPS[op].parse_name}` of a matcalc expression (see the operator registry)."
    return apply


def diag(x: Term) -> Term:
    """Vector -> diagonal matrix, or square matrix -> vector of its diagonal."""
    return _function("diag" if x.shape[1] == 1 else "diagvec")(x)


tr, det, logdet, inv, norm1, norm2 = (_function(o) for o in ("tr", "det", "logdet", "inv", "norm1", "norm2"))
exp, log, sqrt, sin, cos, tanh = (_function(o) for o in ("exp", "log", "sqrt", "sin", "cos", "tanh"))
sigmoid, relu, abs, sign = (_function(o) for o in ("sigmoid", "relu", "abs", "sign"))
sum = _function("sum")  # noqa: A001 - NumPy's name; builtins.sum stays reachable as builtins.sum

__all__ = ["Term", "Matrix", "Vector", "Scalar", "eye", "ones", "diag", "tr", "det", "logdet", "inv", "norm1",
           "norm2", "exp", "log", "sqrt", "sin", "cos", "tanh", "sigmoid", "relu", "abs", "sign", "sum", "builtins"]
