"""The operator registry: everything the engine knows about an operator, in one row.

A row gives the parser name, arity, shape rule and the constraint the typer puts on the argument
(`arg_shape`), NumPy and SymPy evaluators, LaTeX template (from which `latex_in` derives its
reader) and algebraic flags; the Python front end (`symbols.function`) makes one function per
public row. The calculus of an operator lives in `rules/` (one differential rule, and one adjoint
rule for the operators that can appear linearly in a differential), each line labelled for the
derivation (`# label: English | 中文`); `register` adds a row and its rule lines at run time. A
completeness test (`tests/test_registry.py`) checks that every row has every part.

Values handed to evaluators are 2-D: NumPy arrays, or `sympy.Matrix`; scalars are 1 x 1.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Union

import numpy as np

if TYPE_CHECKING:
    import sympy
else:  # imported when a SymPy evaluator first runs
    from .lazy import sympy

from ..errors import DomainError, ShapeError


@dataclass(frozen=True, eq=False)
class DimProd:
    """A dimension that is a product of dimensions, `m*n` (the rows of `vec(X)`, n*m for an m x n X,
    of `kron(A, B)`). Built by `dim_mul` only, which folds integers and flattens, so a product
    always has at least two factors and is never an integer. `factors` keeps the order written
    (the typer unifies two products factor by factor when nothing else decides them); equality
    and hash ignore the order (`m*n` is `n*m`). A factor is a name, an integer coefficient (at
    most one, first), or an opaque object (the typer's unknown dimension, compared by identity)."""

    factors: tuple

    def _key(self) -> tuple:
        names = sorted(f for f in self.factors if isinstance(f, str))
        coef = next((f for f in self.factors if isinstance(f, int)), 1)
        others = sorted(id(f) for f in self.factors if not isinstance(f, (str, int)))
        return coef, tuple(names), tuple(others)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DimProd) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __str__(self) -> str:
        return "*".join(str(f) if isinstance(f, (str, int)) else "?" for f in self.factors)


Dim = Union[str, int, DimProd]
Shape = tuple[Dim, Dim]
SCALAR: Shape = (1, 1)


def dim_mul(*dims: object) -> Dim:
    """The product of dimensions as a `Dim`: integers folded (`2*3` is 6, `1*n` is `n`), nested
    products flattened; otherwise a `DimProd` in the order written."""
    coef, rest = 1, []
    for d in dims:
        for f in (d.factors if isinstance(d, DimProd) else (d,)):
            if isinstance(f, int):
                coef *= f
            else:
                rest.append(f)
    if not rest:
        return coef
    if coef == 1 and len(rest) == 1:
        return rest[0]
    return DimProd(((coef,) if coef != 1 else ()) + tuple(rest))


def dim_size(d: Dim, dims: dict[str, int]) -> int:
    """The size of dimension `d` when the named dimensions have the sizes `dims`."""
    if isinstance(d, int):
        return d
    if isinstance(d, DimProd):
        out = 1
        for f in d.factors:
            out *= dim_size(f, dims)
        return out
    return dims[d]


def dim_names(d: Dim) -> list[str]:
    """The dimension names `d` is built from, in order (`m*n` -> [m, n])."""
    if isinstance(d, DimProd):
        return [f for f in d.factors if isinstance(f, str)]
    return [d] if isinstance(d, str) else []


def fmt_shape(shape: Shape) -> str:
    """`(m, n)` as the user writes it: `m x n` (`scalar` for 1 x 1)."""
    return "scalar" if shape == SCALAR else f"{shape[0]} x {shape[1]}"


@dataclass(frozen=True)
class OpInfo:
    """One operator. `latex` uses `{0}`, `{1}` for the printed arguments."""

    name: str
    arity: int | None  # None: n-ary (flattened)
    shape: Callable[[tuple[Shape, ...]], Shape]
    numpy: Callable
    sympy: Callable
    latex: str
    elementwise: bool = False  # applies entry by entry: d f(A) = f'(A) .* dA
    linear: bool = False  # linear in its argument: may appear around dX in a differential
    parse_name: str | None = None  # name in the text syntax for function-call operators
    calculus: bool = True  # False: only for reading and evaluating claims, never differentiated
    kink: bool = False  # not differentiable at some points (the checks try other points)
    exact: bool = True  # maps rationals to rationals (else the SymPy check may use high precision)
    square_arg: bool = False  # its argument must be square and well-conditioned (checks sample it so)
    arg_shape: str = "any"  # what the typer demands of the argument: "any", "square", or "column" (a vector)
    public: bool = True  # a function of the Python front end (False: internal, like a program's named step)
    latex_matrix: str | None = None  # the LaTeX when the argument is a matrix, not a vector (Frobenius norm)
    value_props: frozenset[str] = frozenset()  # properties its value always has (softmax: probability)
    shape_only: tuple[int, ...] = ()  # arguments that give only their shape (kept as zero matrices)
    multilinear: bool = False  # linear in each argument (kron): zero when any argument is zero
    monotone: bool = False  # a sum or product of its arguments' entries with nonnegative coefficients:
    # its value at the entries' absolute values bounds it entrywise (the checks' scale of a gradient)
    keeps_symmetry: bool = False  # a square value is symmetric when its arguments are (inv, sums, products)
    # why the operator has no general differential rule (said by the UnsupportedError where one
    # is needed); its calculus is then the rules of the forms around it (matpow: tr(X^k), det(X^k))
    no_differential: str = ""


# ---- shape rules --------------------------------------------------------------------------------

def _same(shapes: tuple[Shape, ...]) -> Shape:
    first = shapes[0]
    for s in shapes[1:]:
        if s != first:
            raise ShapeError(f"operands must have equal shapes, got {fmt_shape(first)} and {fmt_shape(s)}")
    return first


def _chain(shapes: tuple[Shape, ...]) -> Shape:
    rows, cols = shapes[0]
    for r, c in shapes[1:]:
        if r != cols:
            raise ShapeError(f"matrix product does not conform: {cols} columns meet {r} rows")
        cols = c
    return rows, cols


def _scale(shapes: tuple[Shape, ...]) -> Shape:
    bodies = [s for s in shapes if s != SCALAR]
    if len(bodies) > 1:
        raise ShapeError("a scalar product has more than one non-scalar factor")
    return bodies[0] if bodies else SCALAR


def _first(shapes: tuple[Shape, ...]) -> Shape:
    return shapes[0]


def _square(shapes: tuple[Shape, ...]) -> Shape:
    r, c = shapes[0]
    if r != c and _is_concrete(r) and _is_concrete(c):  # the typer decides products still open (m*? = ?*n)
        raise ShapeError(f"needs a square matrix, got {fmt_shape(shapes[0])}")
    return r, c


def _to_scalar(shapes: tuple[Shape, ...]) -> Shape:
    return SCALAR


def _square_to_scalar(shapes: tuple[Shape, ...]) -> Shape:
    _square(shapes)
    return SCALAR


def _transpose(shapes: tuple[Shape, ...]) -> Shape:
    return shapes[0][1], shapes[0][0]


def _vec_to_diag(shapes: tuple[Shape, ...]) -> Shape:
    r, c = shapes[0]
    if c != 1:
        raise ShapeError(f"diag of a vector needs a column vector, got {fmt_shape(shapes[0])}")
    return r, r


def _diag_to_vec(shapes: tuple[Shape, ...]) -> Shape:
    return _square(shapes)[0], 1


# ---- evaluator helpers --------------------------------------------------------------------------

def _np_scalar(x) -> np.ndarray:
    return np.asarray(x, dtype=float).reshape(1, 1)


def _sp_scalar(x) -> sympy.Matrix:
    return sympy.Matrix([[x]])


def _np_mul(*xs: np.ndarray) -> np.ndarray:
    out = xs[0]
    for x in xs[1:]:
        out = out * x  # 1 x 1 arrays broadcast: scalar multiplication
    return out


def _sp_mul(*xs: sympy.Matrix) -> sympy.Matrix:
    body = next((x for x in xs if x.shape != (1, 1)), None)
    coef = sympy.Mul(*[x[0, 0] for x in xs if x is not body])
    return body * coef if body is not None else sympy.Matrix([[coef]])


def _sp_hadamard(*xs: sympy.Matrix) -> sympy.Matrix:
    out = xs[0]
    for x in xs[1:]:
        out = out.multiply_elementwise(x)
    return out


def _np_matmul(*xs: np.ndarray) -> np.ndarray:
    out = xs[0]
    for x in xs[1:]:
        out = out @ x
    return out


def _sp_matmul(*xs: sympy.Matrix) -> sympy.Matrix:
    out = xs[0]
    for x in xs[1:]:
        out = out * x
    return out


def _np_sum(*xs: np.ndarray) -> np.ndarray:
    return sum(xs[1:], xs[0])


def _sp_sum(*xs: sympy.Matrix) -> sympy.Matrix:
    out = xs[0]
    for x in xs[1:]:
        out = out + x
    return out


def _np_pow(a: np.ndarray, p: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        return np.power(a, p[0, 0])


def _sp_pow(a: sympy.Matrix, p: sympy.Matrix) -> sympy.Matrix:
    return a.applyfunc(lambda e: e ** p[0, 0])


def _np_logdet(a: np.ndarray) -> np.ndarray:
    sign, logabs = np.linalg.slogdet(a)
    return _np_scalar(logabs if sign > 0 else np.nan)


def _np_diag_vec(a: np.ndarray) -> np.ndarray:
    return np.diag(a).reshape(-1, 1).copy()


def _sp_diag_vec(a: sympy.Matrix) -> sympy.Matrix:
    return sympy.Matrix([[a[i, i]] for i in range(a.shape[0])])


def _sp_diag_mat(a: sympy.Matrix) -> sympy.Matrix:
    return sympy.diag(*list(a))


def _elementwise(np_fn: Callable, sp_fn: Callable) -> tuple[Callable, Callable]:
    def np_eval(a: np.ndarray) -> np.ndarray:
        with np.errstate(all="ignore"):
            return np_fn(a)

    return np_eval, (lambda a: a.applyfunc(sp_fn))


def _sp_sigmoid(e):
    return 1 / (1 + sympy.exp(-e))


def _np_sigmoid(a: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-a))


def _literal_shape(shapes: tuple[Shape, ...]) -> Shape:
    """Args: a zero matrix of the literal's shape, then the 1 x 1 entries row by row."""
    r, c = shapes[0]
    if not (isinstance(r, int) and isinstance(c, int)) or len(shapes) - 1 != r * c:
        raise ShapeError("a matrix literal needs rows of equal length")
    if any(s != SCALAR for s in shapes[1:]):
        raise ShapeError("the entries of a matrix literal must be scalars")
    return r, c


def _np_literal(zero: np.ndarray, *entries: np.ndarray) -> np.ndarray:
    out = np.array(zero, dtype=float)
    out.flat[:] = [e[0, 0] for e in entries]
    return out


def _sp_literal(zero: sympy.Matrix, *entries: sympy.Matrix) -> sympy.Matrix:
    return sympy.Matrix(zero.rows, zero.cols, [e[0, 0] for e in entries])


def _column_rows(shapes: tuple[Shape, ...]) -> Shape:
    """logsumexp works column by column (each column one sample): n x m -> 1 x m."""
    return 1, shapes[0][1]


def _np_logsumexp(a: np.ndarray) -> np.ndarray:
    top = np.max(a, axis=0, keepdims=True)
    with np.errstate(all="ignore"):
        return top + np.log(np.sum(np.exp(a - top), axis=0, keepdims=True))


def _np_softmax(a: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        e = np.exp(a - np.max(a, axis=0, keepdims=True))
        return e / np.sum(e, axis=0, keepdims=True)


def _sp_columns(a: sympy.Matrix, fn: Callable[[list], list]) -> sympy.Matrix:
    cols = [fn([a[i, j] for i in range(a.rows)]) for j in range(a.cols)]
    return sympy.Matrix(len(cols[0]), a.cols, lambda i, j: cols[j][i])


def _sp_softmax_col(col: list) -> list:
    total = sum(sympy.exp(e) for e in col)
    return [sympy.exp(e) / total for e in col]


def _sp_logsumexp_col(col: list) -> list:
    return [sympy.log(sum(sympy.exp(e) for e in col))]


def _sp_log_softmax_col(col: list) -> list:
    lse = _sp_logsumexp_col(col)[0]
    return [e - lse for e in col]


def _np_adjugate(a: np.ndarray) -> np.ndarray:
    """adj(A)[i, j] = (-1)^(i+j) det(A without row j and column i): defined for singular A too."""
    n = a.shape[0]
    if n == 1:
        return np.ones((1, 1))
    out = np.empty((n, n))
    for i in range(n):
        for j in range(n):
            minor = np.delete(np.delete(a, j, axis=0), i, axis=1)
            out[i, j] = (-1) ** (i + j) * np.linalg.det(minor)
    return out


def _sp_adjugate(a: sympy.Matrix) -> sympy.Matrix:
    return sympy.Matrix([[1]]) if a.shape == (1, 1) else a.adjugate()


# ---- matpow: X^k with a symbolic integer k -------------------------------------------------------

def _matpow_shape(shapes: tuple[Shape, ...]) -> Shape:
    """matpow(X, k): X square, k 1 x 1 (an integer constant: the typer checks that)."""
    if len(shapes) != 2:
        raise ShapeError(f"a matrix power takes a matrix and an exponent, got {len(shapes)} arguments")
    if shapes[1] != SCALAR and _is_concrete(shapes[1][0]) and _is_concrete(shapes[1][1]):
        raise ShapeError(f"the exponent of a matrix power must be a scalar, got {fmt_shape(shapes[1])}")
    return _square(shapes[:1])


def _integer_value(x: object) -> int:
    """The exponent's value as an int; DomainError unless it is an integer (a matrix power X^k is
    defined here for integer k only)."""
    v = float(x)  # type: ignore[arg-type]
    if not np.isfinite(v) or v != round(v):
        raise DomainError(f"a matrix power needs an integer exponent, got {x}")
    return int(round(v))


def _np_matpow(a: np.ndarray, k: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        return np.linalg.matrix_power(a, _integer_value(k[0, 0]))


def _sp_matpow(a: sympy.Matrix, k: sympy.Matrix) -> sympy.Matrix:
    n = _integer_value(k[0, 0])
    return a ** n if n else sympy.eye(a.rows)


# ---- vec, reshape, kron --------------------------------------------------------------------------

def _vec_shape(shapes: tuple[Shape, ...]) -> Shape:
    """vec of an m x n matrix is n*m x 1: a product's factors are written slowest index first, as
    kron writes them (entry (i, j) of X is entry i + m*j of vec(X); entry (i*p + k) of kron(A, B)
    has A's index i), so that kron(B', A)*vec(X) unifies factor by factor with A*X*B conforming."""
    rows, cols = shapes[0]
    return dim_mul(cols, rows), 1


def _is_concrete(d: object) -> bool:
    return isinstance(d, (str, int)) or (isinstance(d, DimProd) and all(isinstance(f, (str, int)) for f in d.factors))


def _reshape_shape(shapes: tuple[Shape, ...]) -> Shape:
    (r, c), target = shapes[0], shapes[1]
    if all(_is_concrete(d) for d in (r, c, *target)) and (r, c) != (dim_mul(*target), 1):
        raise ShapeError(f"reshape needs a column of {dim_mul(*target)} entries, got {fmt_shape(shapes[0])}")
    return target


def _kron_shape(shapes: tuple[Shape, ...]) -> Shape:
    (r1, c1), (r2, c2) = shapes
    return dim_mul(r1, r2), dim_mul(c1, c2)


def _rearrange_shape(shapes: tuple[Shape, ...]) -> Shape:
    if len(shapes) != 3:
        raise ShapeError(f"rearrange takes 3 arguments, got {len(shapes)}")
    g, (r, c), (p, q) = shapes
    if all(_is_concrete(d) for d in (*g, r, c, p, q)) and g != _kron_shape(((r, c), (p, q))):
        raise ShapeError(f"rearrange needs a {fmt_shape(_kron_shape(((r, c), (p, q))))} matrix, got {fmt_shape(g)}")
    return dim_mul(c, r), dim_mul(q, p)


def _np_rearrange(g: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """R[i + r*j, k + p*l] = G[i*p + k, j*q + l]."""
    (r, c), (p, q) = a.shape, b.shape
    return g.reshape(r, p, c, q).transpose(2, 0, 3, 1).reshape(c * r, q * p).copy()


def _sp_rearrange(g: sympy.Matrix, a: sympy.Matrix, b: sympy.Matrix) -> sympy.Matrix:
    (r, c), (p, q) = a.shape, b.shape
    return sympy.Matrix(c * r, q * p, lambda i, j: g[(i % r) * p + j % p, (i // r) * q + j // p])


def _np_vec(a: np.ndarray) -> np.ndarray:
    return a.reshape(-1, 1, order="F").copy()


def _sp_vec(a: sympy.Matrix) -> sympy.Matrix:
    return sympy.Matrix([[a[i, j]] for j in range(a.cols) for i in range(a.rows)])


def _np_reshape(g: np.ndarray, like: np.ndarray) -> np.ndarray:
    return g.reshape(like.shape, order="F").copy()


def _sp_reshape(g: sympy.Matrix, like: sympy.Matrix) -> sympy.Matrix:
    return sympy.Matrix(like.rows, like.cols, lambda i, j: g[j * like.rows + i, 0])


def _sp_kron(a: sympy.Matrix, b: sympy.Matrix) -> sympy.Matrix:
    return sympy.Matrix(a.rows * b.rows, a.cols * b.cols,
                        lambda i, j: a[i // b.rows, j // b.cols] * b[i % b.rows, j % b.cols])


# ---- the rows -----------------------------------------------------------------------------------

def _rows() -> list[OpInfo]:
    structural = [
        OpInfo("add", None, _same, _np_sum, _sp_sum, "{0} + {1}", monotone=True, keeps_symmetry=True),
        OpInfo("matmul", None, _chain, _np_matmul, _sp_matmul, "{0} {1}", monotone=True),
        OpInfo("mul", None, _scale, _np_mul, _sp_mul, "{0} {1}", monotone=True, keeps_symmetry=True),
        OpInfo("hadamard", None, _same, _np_mul, _sp_hadamard, r"{0} \odot {1}", monotone=True, keeps_symmetry=True),
        OpInfo("transpose", 1, _transpose, lambda a: a.T.copy(), lambda a: a.T, "{0}^{{T}}", linear=True,
               monotone=True),
        OpInfo("pow", 2, _first, _np_pow, _sp_pow, "{0}^{{{1}}}", keeps_symmetry=True),
    ]
    claims = [  # a matrix written out entry by entry, and one entry of a matrix: `[u(1)*x(1), ...]`
        OpInfo("literal", None, _literal_shape, _np_literal, _sp_literal, r"\begin{{bmatrix}}{0}\end{{bmatrix}}",
               calculus=False),
        OpInfo("entry", 3, _to_scalar,
               lambda a, i, j: a[int(i[0, 0]) - 1:int(i[0, 0]), int(j[0, 0]) - 1:int(j[0, 0])].copy(),
               lambda a, i, j: sympy.Matrix([[a[int(i[0, 0]) - 1, int(j[0, 0]) - 1]]]), "{0}_{{{1}{2}}}",
               calculus=False),
    ]
    functions = [
        # a named step of a program, kept whole so that its gradient can be named (delta2 for a2)
        OpInfo("group", 1, _first, lambda a: a, lambda a: a, "{0}", linear=True, parse_name="group",
               public=False, monotone=True),
        OpInfo("tr", 1, _square_to_scalar, lambda a: _np_scalar(np.trace(a)), lambda a: _sp_scalar(a.trace()),
               r"\operatorname{{tr}}\left({0}\right)", linear=True, parse_name="tr", arg_shape="square", monotone=True),
        OpInfo("det", 1, _square_to_scalar, lambda a: _np_scalar(np.linalg.det(a)), lambda a: _sp_scalar(a.det()),
               r"\det\left({0}\right)", parse_name="det", square_arg=True, arg_shape="square"),
        OpInfo("logdet", 1, _square_to_scalar, _np_logdet, lambda a: _sp_scalar(sympy.log(a.det())),
               r"\log\det\left({0}\right)", parse_name="logdet", square_arg=True, exact=False,
               arg_shape="square"),
        OpInfo("inv", 1, _square, np.linalg.inv, lambda a: a.inv(), "{0}^{{-1}}", parse_name="inv", square_arg=True,
               arg_shape="square", keeps_symmetry=True),
        OpInfo("sum", 1, _to_scalar, lambda a: _np_scalar(np.sum(a)), lambda a: _sp_scalar(sum(a)),
               r"\operatorname{{sum}}\left({0}\right)", linear=True, parse_name="sum", monotone=True),
        OpInfo("norm1", 1, _to_scalar, lambda a: _np_scalar(np.sum(np.abs(a))),
               lambda a: _sp_scalar(sum(sympy.Abs(e) for e in a)), r"\left\|{0}\right\|_1", parse_name="norm1",
               kink=True),
        OpInfo("norm2", 1, _to_scalar, lambda a: _np_scalar(np.sqrt(np.sum(a * a))),
               lambda a: _sp_scalar(sympy.sqrt(sum(e**2 for e in a))), r"\left\|{0}\right\|_{{2}}",
               parse_name="norm2", exact=False, latex_matrix=r"\left\|{0}\right\|_{{F}}"),
        OpInfo("softmax", 1, _first, _np_softmax, lambda a: _sp_columns(a, _sp_softmax_col),
               r"\operatorname{{softmax}}\left({0}\right)", parse_name="softmax", exact=False,
               value_props=frozenset({"probability"})),
        OpInfo("log_softmax", 1, _first, lambda a: a - _np_logsumexp(a), lambda a: _sp_columns(a, _sp_log_softmax_col),
               r"\log\operatorname{{softmax}}\left({0}\right)", parse_name="log_softmax", exact=False),
        OpInfo("logsumexp", 1, _column_rows, _np_logsumexp, lambda a: _sp_columns(a, _sp_logsumexp_col),
               r"\operatorname{{logsumexp}}\left({0}\right)", parse_name="logsumexp", exact=False),
        OpInfo("diag", 1, _vec_to_diag, lambda a: np.diag(a[:, 0]), _sp_diag_mat,
               r"\operatorname{{diag}}\left({0}\right)", linear=True, parse_name="diag", arg_shape="column",
               monotone=True, value_props=frozenset({"diagonal"})),
        OpInfo("diagvec", 1, _diag_to_vec, _np_diag_vec, _sp_diag_vec,
               r"\operatorname{{diag}}\left({0}\right)", linear=True, parse_name="diag", arg_shape="square",
               monotone=True),
    ]
    # ---- issue 9: operators users asked for (mean, adjugate, symbolic matrix power) ----
    asked = [
        OpInfo("mean", 1, _to_scalar, lambda a: _np_scalar(np.mean(a)), lambda a: _sp_scalar(sum(a) / len(a)),
               r"\operatorname{{mean}}\left({0}\right)", linear=True, parse_name="mean", monotone=True),
        # adjugate (transposed cofactors): adj(A)*A = det(A)*eye, defined for singular A too
        OpInfo("adj", 1, _square, _np_adjugate, _sp_adjugate, r"\operatorname{{adj}}\left({0}\right)",
               parse_name="adj", arg_shape="square", keeps_symmetry=True),
        # X^k with k a symbol declared integer (`k: scalar integer`; X^3 is the product X*X*X):
        # written `X^k` (`matpow` is the name the rule lines use); its calculus is tr(X^k) and
        # det(X^k) (Matrix Cookbook 58, 121, 122): d(X^k) alone is a sum of k terms
        OpInfo("matpow", 2, _matpow_shape, _np_matpow, _sp_matpow, "{0}^{{{1}}}", parse_name="matpow",
               arg_shape="square", public=False,
               no_differential="the differential of X^k for a symbolic k is the sum of X^i*dX*X^(k-1-i) over "
                               "i < k, which has no closed form: matcalc differentiates tr(X^k) and det(X^k) "
                               "(X^k with a number k is expanded into a product)"),
    ]
    elementwise_table: list[tuple[str, Callable, Callable, str]] = [
        ("exp", np.exp, lambda e: sympy.exp(e), r"\exp\left({0}\right)"),
        ("log", np.log, lambda e: sympy.log(e), r"\log\left({0}\right)"),
        ("sqrt", np.sqrt, lambda e: sympy.sqrt(e), r"\sqrt{{{0}}}"),
        ("sin", np.sin, lambda e: sympy.sin(e), r"\sin\left({0}\right)"),
        ("cos", np.cos, lambda e: sympy.cos(e), r"\cos\left({0}\right)"),
        ("tanh", np.tanh, lambda e: sympy.tanh(e), r"\tanh\left({0}\right)"),
        ("sigmoid", _np_sigmoid, _sp_sigmoid, r"\sigma\left({0}\right)"),
        ("relu", lambda a: np.maximum(a, 0.0), lambda e: sympy.Max(e, 0), r"\operatorname{{relu}}\left({0}\right)"),
        ("abs", np.abs, lambda e: sympy.Abs(e), r"\left|{0}\right|"),
        ("sign", np.sign, lambda e: sympy.sign(e), r"\operatorname{{sign}}\left({0}\right)"),
        ("softplus", lambda a: np.logaddexp(0.0, a), lambda e: sympy.log(1 + sympy.exp(e)),
         r"\operatorname{{softplus}}\left({0}\right)"),
        ("step", lambda a: (a > 0).astype(float), lambda e: sympy.Heaviside(e, 0),
         r"\operatorname{{step}}\left({0}\right)"),
    ]
    kinks, exact = {"relu", "abs", "sign", "step"}, {"relu", "abs", "sign", "step"}
    elementwise = [OpInfo(name, 1, _first, *_elementwise(np_fn, sp_fn), latex, elementwise=True, parse_name=name,
                          kink=name in kinks, exact=name in exact)
                   for name, np_fn, sp_fn, latex in elementwise_table]
    # ---- issue 9: vec and kron (dimension expressions: a vec of an m x n matrix is m*n x 1) ----
    reshaping = [
        OpInfo("vec", 1, _vec_shape, _np_vec, _sp_vec, r"\operatorname{{vec}}\left({0}\right)", linear=True,
               parse_name="vec", monotone=True),
        # vec's inverse: the column G (m*n x 1) as a matrix of the shape of the second argument, a
        # shape template kept as a zero matrix (the adjoint of vec: tr(G'*vec(Z)) = tr(reshape(G, Z)'*Z))
        OpInfo("reshape", 2, _reshape_shape, _np_reshape, _sp_reshape,
               r"\operatorname{{reshape}}\left({0}, {1}\right)", linear=True, parse_name="reshape",
               arg_shape="like_last", shape_only=(1,), monotone=True),
        OpInfo("kron", 2, _kron_shape, lambda a, b: np.kron(a, b), _sp_kron, r"\left({0} \otimes {1}\right)",
               parse_name="kron", multilinear=True, monotone=True),
        # kron's adjoint: the rearrangement R(G) of a (r*p) x (c*q) matrix G into blocks A: r x c,
        # B: p x q (the shapes of the templates), with vec(kron(A, B)) entries regrouped so that
        # tr(G'*kron(A, B)) = vec(A)'*R(G)*vec(B) (Van Loan and Pitsianis)
        OpInfo("rearrange", 3, _rearrange_shape, _np_rearrange, _sp_rearrange,
               r"\operatorname{{rearrange}}\left({0}, {1}, {2}\right)", parse_name="rearrange",
               arg_shape="kron_of_rest", shape_only=(1, 2), monotone=True),
    ]
    return structural + claims + functions + asked + elementwise + reshaping


def _index(rows: list[OpInfo]) -> dict[str, OpInfo]:
    table: dict[str, OpInfo] = {}
    for row in rows:
        if row.name in table:
            raise RuntimeError(f"operator {row.name!r} registered twice")
        table[row.name] = row
    return table


OPS: dict[str, OpInfo] = _index(_rows())
# the text syntax's function names; a set updated in place by `register`, so importers see new rows
FUNCTION_NAMES: set[str] = {r.parse_name for r in OPS.values() if r.parse_name}
# Names the parser reads as constants or constructors rather than symbols.
CONSTANT_NAMES: frozenset[str] = frozenset({"eye", "ones", "zeros", "vector", "matrix"})


def overloads(parse_name: str) -> list[OpInfo]:
    """The rows written `parse_name(...)` in the text syntax, in registry order (diag has two)."""
    return [r for r in OPS.values() if r.parse_name == parse_name]


def resolve(parse_name: str, column: bool) -> OpInfo:
    """The row a call `parse_name(arg)` means: among several rows of one name, the one taking a
    column vector when `column` (the argument has one column), else the first other one."""
    rows = overloads(parse_name)
    if len(rows) > 1:
        return next((r for r in rows if (r.arg_shape == "column") == column), rows[0])
    return rows[0]


# ---- adding an operator at run time -------------------------------------------------------------

# rule lines given with `register`: op name -> table name -> lines (in the syntax of rules/*.rules)
_EXTRA_RULES: dict[str, dict[str, tuple[str, ...]]] = {}
_LISTENERS: list[Callable[[], None]] = []


def on_change(fn: Callable[[], None]) -> Callable[[], None]:
    """Call `fn` (typically a cache's `cache_clear`) whenever the rows or rule lines change."""
    _LISTENERS.append(fn)
    return fn


def extra_rules(table: str) -> tuple[str, ...]:
    """The rule lines of `table` ("differentials", "adjoints", "simplify") added by `register`,
    in registration order; they follow the lines of `rules/<table>.rules`."""
    return tuple(line for tables in _EXTRA_RULES.values() for line in tables.get(table, ()))


def register(row: OpInfo, rules: dict[str, list[str]] | None = None) -> None:
    """Add operator `row` and its rule lines (table name -> lines, each as in `rules/*.rules`,
    with its `label:` comment); every cache built from the registry or the rules is cleared.
    Adding an operator is this call, nothing else. RuntimeError if the name is taken."""
    if row.name in OPS or row.parse_name in CONSTANT_NAMES:
        raise RuntimeError(f"operator {row.name!r} registered twice (or named like a constant)")
    OPS[row.name] = row
    if row.parse_name:
        FUNCTION_NAMES.add(row.parse_name)
    _EXTRA_RULES[row.name] = {t: tuple(lines) for t, lines in (rules or {}).items()}
    _changed()


def unregister(name: str) -> None:
    """Remove an operator added by `register`, with its rule lines (the built-in rows stay)."""
    if name not in _EXTRA_RULES:
        raise RuntimeError(f"operator {name!r} was not added by register")
    row = OPS.pop(name)
    del _EXTRA_RULES[name]
    if row.parse_name and not overloads(row.parse_name):
        FUNCTION_NAMES.discard(row.parse_name)
    _changed()


def _changed() -> None:
    for fn in _LISTENERS:
        fn()
