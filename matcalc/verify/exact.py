"""Exact forward-mode evaluation for the SymPy elementwise check.

A tree is evaluated at a point over SymPy's exact rationals (`QQ`) or, where the loss is
transcendental, over `digits`-digit floats (mpmath); along a direction D every node is then a
truncated series a + b*t with t^2 = 0, so the b part of the loss is exactly d/dt f(X0 + t*D) at
t = 0 (no symbolic matrix, no symbolic inverse, no `diff`). The value parts are computed once
and shared by every direction. The derivative rules are the textbook ones, written out here
independently of the engine's rule tables:

    d(A*B) = dA*B + A*dB          d inv(A) = -inv(A)*dA*inv(A)     d det(A) = det(A)*tr(inv(A)*dA)
    d logdet(A) = tr(inv(A)*dA)   d f(A) = f'(A) .* dA (elementwise f)
    d softmax(a) = s .* (da - s'*da), s = softmax(a) (per column)   d norm2(A) = sum(A .* dA)/norm2(A)

Over the rationals, the values of transcendental functions are opaque (`OPAQUE`): a derivative
that does not need them (that of log(det(X'*X))) stays exact, one that does raises NotExact and
is redone in floats. Matrices are lists of rows. An operator without a rule here raises
`Unsupported` (the caller then falls back to SymPy's symbolic derivative); a derivative asked for at a
kink (relu, abs, ... at exactly 0) raises `AtKink`; a value that does not exist (log of a negative number, a singular
inverse) raises `DomainError`.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from fractions import Fraction
from typing import Any

from ..core.expr import Expr, Eye, Num, Op, Sym, walk
from ..core.registry import OPS, Dim, dim_size
from ..errors import DomainError

Mat = list[list[Any]]


class Unsupported(Exception):
    """The tree has a node this evaluator has no rule for."""


class AtKink(Exception):
    """A derivative was needed where a non-smooth operator has none (its argument is 0)."""


# ---- number fields ------------------------------------------------------------------------------

class NotExact(Exception):
    """A number that is not rational (the value of exp, log, ...) was needed over the rationals:
    the caller redoes the computation in floating point."""


class _Opaque:
    """The value of a transcendental function over the rationals. Arithmetic on it gives it
    back; comparing or printing it raises NotExact. The derivative of log(det(X'*X)) never needs
    the logarithm itself, so it stays exact; that of exp(tr(X)) does, and is redone in floats."""

    __slots__ = ()

    def _same(self, *_: object) -> _Opaque:
        return self

    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _same
    __truediv__ = __rtruediv__ = __pow__ = __rpow__ = __neg__ = __pos__ = __abs__ = _same

    def _undecided(self, *_: object):
        raise NotExact("a transcendental value is needed")

    __eq__ = __ne__ = __lt__ = __le__ = __gt__ = __ge__ = __bool__ = __float__ = __int__ = _undecided
    __hash__ = None  # type: ignore[assignment]


OPAQUE = _Opaque()


class Rationals:
    """Exact arithmetic in SymPy's field of rationals (gmpy2's mpq when installed);
    transcendental functions give OPAQUE."""

    exact = True

    def __init__(self) -> None:
        from sympy.polys.domains import QQ
        self.QQ = QQ

    def num(self, q: Fraction) -> Any:
        return self.QQ(q.numerator, q.denominator)

    def power(self, x: Any, q: Any) -> Any:
        return OPAQUE

    def sqrt(self, x: Any) -> Any:
        """The exact root of a rational square (9/16 -> 3/4), else OPAQUE."""
        if x is OPAQUE:
            return OPAQUE
        p, q = int(x.numerator), int(x.denominator)
        rp, rq = math.isqrt(p), math.isqrt(q)
        return self.QQ(rp, rq) if rp * rp == p and rq * rq == q else OPAQUE

    def __getattr__(self, name: str) -> Callable:  # exp, log, sin, cos, tanh
        if name in TRANSCENDENTAL:
            return lambda x: OPAQUE
        raise AttributeError(name)


TRANSCENDENTAL = ("exp", "log", "log1p", "sqrt", "sin", "cos", "tanh")


class Reals:
    """`digits`-digit floating point (an mpmath context of its own: the global one is untouched)."""

    exact = False
    exp: Callable[[Any], Any]
    log: Callable[[Any], Any]
    log1p: Callable[[Any], Any]
    sqrt: Callable[[Any], Any]
    sin: Callable[[Any], Any]
    cos: Callable[[Any], Any]
    tanh: Callable[[Any], Any]

    def __init__(self, digits: int) -> None:
        import mpmath
        self.ctx = mpmath.MPContext()
        self.ctx.dps = digits
        self.digits = digits
        for name in TRANSCENDENTAL:
            setattr(self, name, getattr(self.ctx, name))

    def num(self, q: Fraction) -> Any:
        return self.ctx.mpf(q.numerator) / q.denominator

    def power(self, x: Any, q: Any) -> Any:
        return self.ctx.power(x, q)


def is_transcendental(node: Expr) -> bool:
    """Whether `node` can map rationals to irrationals (exp, norm2, a fractional power, ...)."""
    if not isinstance(node, Op):
        return False
    if node.op == "pow":
        p = node.args[1]
        return not (isinstance(p, Num) and p.value.denominator == 1)
    return not OPS[node.op].exact


def rational_form(roots: list[Expr]) -> list[Expr]:
    """`roots` with every norm2(A)^(2k) written sum(A.*A)^k: the same functions, whose values and
    derivatives stay rational at a rational point (the square root never appears)."""
    done: dict[Expr, Expr] = {}
    for node in walk(roots):
        if not isinstance(node, Op):
            done[node] = node
            continue
        args = tuple(done[a] for a in node.args)
        base, p = args[0], args[-1]
        if (node.op == "pow" and isinstance(base, Op) and base.op == "norm2" and isinstance(p, Num)
                and p.value.denominator == 1 and p.value % 2 == 0 and p.value > 0):
            a = base.args[0]
            squares = Op("sum", (Op("hadamard", (a, a)),))
            done[node] = squares if p.value == 2 else Op("pow", (squares, Num(p.value / 2)))
        else:
            done[node] = node if args == node.args else Op(node.op, args)
    return [done[e] for e in roots]


# ---- matrices as lists of rows ------------------------------------------------------------------

def _mm(a: Mat, b: Mat) -> Mat:
    """A*B, skipping zero entries: a direction E_ij is one nonzero, and inv(X)*E_ij one column."""
    nonzero = [[(c, y) for c, y in enumerate(row) if y is OPAQUE or y != 0] for row in b]
    out = []
    for row in a:
        acc: list[Any] = [0] * len(b[0])
        for k, x in enumerate(row):
            if x is OPAQUE or x != 0:
                for c, y in nonzero[k]:
                    acc[c] += x * y
        out.append(acc)
    return out


def _scale(c: Any, a: Mat) -> Mat:
    return [[c * x for x in row] for row in a]


def _add(a: Mat, b: Mat) -> Mat:
    return [[x + y for x, y in zip(ra, rb)] for ra, rb in zip(a, b)]


def _had(a: Mat, b: Mat) -> Mat:
    return [[x * y for x, y in zip(ra, rb)] for ra, rb in zip(a, b)]


def _t(a: Mat) -> Mat:
    return [list(col) for col in zip(*a)]


def _trace(a: Mat) -> Any:
    return sum(a[i][i] for i in range(len(a)))


def _sum(a: Mat) -> Any:
    return sum(x for row in a for x in row)


def _sign(x: Any) -> int:
    return (x > 0) - (x < 0)


def inverse_and_det(a: Mat) -> tuple[Mat | None, Any]:
    """(inv(A), det(A)) by Gauss-Jordan elimination with the largest pivot; (None, 0) if singular."""
    n = len(a)
    m = [list(row) + [1 if i == j else 0 for j in range(n)] for i, row in enumerate(a)]
    det: Any = 1
    for c in range(n):
        p = max(range(c, n), key=lambda r: abs(m[r][c]))
        if m[p][c] == 0:
            return None, 0
        if p != c:
            m[c], m[p], det = m[p], m[c], -det
        piv = m[c][c]
        det = det * piv
        m[c] = [x / piv for x in m[c]]
        for r in range(n):
            k = m[r][c]
            if r != c and k != 0:
                m[r] = [x - k * y for x, y in zip(m[r], m[c])]
    return [row[n:] for row in m], det


# ---- elementwise functions: (value, derivative) at x --------------------------------------------

KINK = object()  # a derivative that does not exist (non-smooth operator at 0)


def _elementwise(F: Any, name: str) -> Callable[[Any], tuple[Any, Any]]:
    def positive(x: Any) -> Any:
        if not x > 0:
            raise DomainError(f"{name} of {x}")
        return x

    def sigmoid(x: Any) -> Any:
        return 1 / (1 + F.exp(-x))

    def sqrt(x: Any) -> tuple[Any, Any]:
        if x < 0:
            raise DomainError(f"sqrt of {x}")
        v = F.sqrt(x)
        return v, (1 / (2 * v) if v != 0 else KINK)

    def tanh(x: Any) -> tuple[Any, Any]:
        v = F.tanh(x)
        return v, 1 - v * v

    def sig(x: Any) -> tuple[Any, Any]:
        v = sigmoid(x)
        return v, v * (1 - v)

    table: dict[str, Callable[[Any], tuple[Any, Any]]] = {
        "exp": lambda x: (F.exp(x),) * 2,
        "log": lambda x: (F.log(positive(x)), 1 / x),
        "sqrt": sqrt,
        "sin": lambda x: (F.sin(x), F.cos(x)),
        "cos": lambda x: (F.cos(x), -F.sin(x)),
        "tanh": tanh,
        "sigmoid": sig,
        "softplus": lambda x: (F.log1p(F.exp(x)), sigmoid(x)),  # log(1 + e^-100) is 0 to 40 digits
        "relu": lambda x: (x if x > 0 else 0 * x, KINK if x == 0 else 0 * x + int(x > 0)),
        "abs": lambda x: (abs(x), KINK if x == 0 else 0 * x + _sign(x)),
        "sign": lambda x: (0 * x + _sign(x), KINK if x == 0 else 0 * x),
        "step": lambda x: (0 * x + int(x > 0), KINK if x == 0 else 0 * x),  # in the field of x
    }
    if name not in table:
        raise Unsupported(name)
    return table[name]


def _times_derivative(d: Any, t: Any) -> Any:
    """f'(x)*dx, where dx = 0 needs no derivative (a kink is harmless along a zero direction)."""
    if t == 0:
        return 0 * t
    if d is KINK:
        raise AtKink("a non-smooth operator is at its kink along the direction")
    return d * t


# ---- the evaluator ------------------------------------------------------------------------------

class Evaluator:
    """Values of the nodes of a tree at one point (computed once), and derivatives along
    directions: `tangent(root, {name: D})` is d/dt root(X + t*D) at t = 0, exactly."""

    def __init__(self, F: Rationals | Reals, env: dict[str, list[list[Fraction]]], dims: dict[str, int]) -> None:
        self.F, self.dims = F, dims
        self.env = {k: [[F.num(x) for x in row] for row in v] for k, v in env.items()}
        self.values: dict[Expr, Mat] = {}
        self.aux: dict[Expr, Any] = {}

    def _size(self, d: Dim) -> int:
        return dim_size(d, self.dims)

    def value(self, root: Expr) -> Mat:
        """The value of `root` (a list of rows)."""
        for node in walk([root]):
            if node not in self.values:
                self.values[node] = self._leaf(node) if not isinstance(node, Op) else self._field(self._op(node))
        return self.values[root]

    def _field(self, m: Mat) -> Mat:
        """`m` with every entry a number of the field: a Python int (a sum or product that met
        only exact zeros, such as `_mm` of a zero row) becomes one, so that a later division
        stays exact (int / int would be a float). A float has no exact meaning: over the
        rationals it raises NotExact (the caller redoes the computation in floating point)."""
        if not any(type(x) in (int, float, bool) for row in m for x in row):
            return m
        out = []
        for row in m:
            new = []
            for x in row:
                if type(x) is float:
                    if self.F.exact:
                        raise NotExact("a floating-point value reached the exact evaluator")
                    x = self.F.num(Fraction(x))
                elif type(x) in (int, bool):
                    x = self.F.num(Fraction(int(x)))
                new.append(x)
            out.append(new)
        return out

    def _leaf(self, e: Expr) -> Mat:
        if isinstance(e, Sym):
            return self.env[e.name]
        if isinstance(e, Num):
            v = self.F.num(e.value)
            return [[v] * self._size(e.shape[1]) for _ in range(self._size(e.shape[0]))]
        if isinstance(e, Eye):
            n = self._size(e.n)
            return [[self.F.num(Fraction(int(i == j))) for j in range(n)] for i in range(n)]
        raise Unsupported(type(e).__name__)

    def _op(self, e: Op) -> Mat:
        rule = _VALUE.get(e.op)
        if rule is None and not OPS[e.op].elementwise:
            raise Unsupported(e.op)
        args = [self.values[a] for a in e.args]
        if rule is None:  # elementwise function: keep f'(x) for the tangents
            fn = _elementwise(self.F, e.op)
            pairs = [[fn(x) for x in row] for row in args[0]]
            self.aux[e] = [[d for _, d in row] for row in pairs]
            return [[v for v, _ in row] for row in pairs]
        return rule(self, e, args)

    def tangent(self, root: Expr, seeds: dict[str, Mat]) -> Mat:
        """d/dt root(X + t*D) at t = 0, the directions D given per symbol in `seeds`."""
        self.value(root)
        moved = frozenset(seeds)
        tans: dict[Expr, Mat | None] = {}
        for node in walk([root]):
            if not (node.syms & moved):
                tans[node] = None  # does not depend on the moved symbols: derivative 0
            elif isinstance(node, Sym):
                tans[node] = seeds[node.name]
            else:
                t = self._jvp(node, [tans[a] for a in node.children])
                tans[node] = self._field(t) if t is not None else None
        out = tans[root]
        return out if out is not None else [[0 * x for x in row] for row in self.values[root]]

    def _zero_like(self, a: Mat) -> Mat:
        return [[0 * x for x in row] for row in a]

    def _jvp(self, e: Expr, ts: list[Mat | None]) -> Mat | None:
        if all(t is None for t in ts):
            return None
        assert isinstance(e, Op)
        args = [self.values[a] for a in e.args]
        filled = [t if t is not None else self._zero_like(a) for t, a in zip(ts, args)]
        if e.op not in _TANGENT:  # elementwise: f'(x) .* dx
            d = self.aux[e]
            return [[_times_derivative(dx, tx) for dx, tx in zip(rd, rt)] for rd, rt in zip(d, filled[0])]
        return _TANGENT[e.op](self, e, args, filled, ts)


# ---- value rules: (evaluator, node, argument values) -> value -----------------------------------

def _v_scalar_product(ev: Evaluator, e: Op, args: list[Mat]) -> Mat:
    """`mul`: scalar factors times at most one matrix."""
    body = next((a for a in args if len(a) != 1 or len(a[0]) != 1), None)
    coef: Any = 1
    for a in args:
        if a is not body:
            coef = coef * a[0][0]
    return _scale(coef, body) if body is not None else [[coef]]


def _v_chain(ev: Evaluator, e: Op, args: list[Mat]) -> Mat:
    out = args[0]
    for a in args[1:]:
        out = _mm(out, a)
    return out


def _v_fold(fn: Callable[[Mat, Mat], Mat]) -> Callable:
    def rule(ev: Evaluator, e: Op, args: list[Mat]) -> Mat:
        out = args[0]
        for a in args[1:]:
            out = fn(out, a)
        return out
    return rule


def _v_pow(ev: Evaluator, e: Op, args: list[Mat]) -> Mat:
    """Elementwise a^p for a constant p; p*a^(p-1) kept for the tangents."""
    if not isinstance(e.args[1], Num):
        raise Unsupported("pow with a non-constant exponent")
    p = e.args[1].value
    if p.denominator == 1:
        k = int(p)

        def one(x: Any) -> tuple[Any, Any]:
            if x == 0 and k < 1:
                if k < 0:
                    raise DomainError("0 to a negative power")
                return x ** 0 if k == 0 else x, 0 * x
            return x ** k, k * x ** (k - 1)
    else:
        q = ev.F.num(p)

        def one(x: Any) -> tuple[Any, Any]:
            if x < 0 or (x == 0 and p < 0):
                raise DomainError(f"{x} to the power {p}")
            if x == 0:
                return 0 * x, (KINK if p < 1 else 0 * x)
            v = ev.F.power(x, q)
            return v, q * v / x
    pairs = [[one(x) for x in row] for row in args[0]]
    ev.aux[e] = [[d for _, d in row] for row in pairs]
    return [[v for v, _ in row] for row in pairs]


def _v_inverse(ev: Evaluator, e: Op, args: list[Mat]) -> Mat:
    inv, det = inverse_and_det(args[0])
    if inv is None:
        raise DomainError("a singular matrix is inverted")
    ev.aux[e] = (inv, det)
    return inv


def _v_matpow(ev: Evaluator, e: Op, args: list[Mat]) -> Mat:
    """X^k for an integer k (issue 9): the factor (X, or inv(X) for k < 0) multiplied |k| times;
    the factor and the powers X^0 .. X^(|k|-1) are kept for the tangent."""
    k = args[1][0][0]
    if k != int(k):
        raise DomainError(f"a matrix power needs an integer exponent, got {k}")
    factor: Mat | None = args[0] if k >= 0 else inverse_and_det(args[0])[0]
    if factor is None:
        raise DomainError("a singular matrix is inverted")
    n = len(factor)
    powers = [[[ev.F.num(Fraction(int(i == j))) for j in range(n)] for i in range(n)]]
    for _ in range(abs(int(k))):
        powers.append(_mm(powers[-1], factor))
    ev.aux[e] = (factor, powers)
    return powers[-1]


def _v_det(ev: Evaluator, e: Op, args: list[Mat]) -> Mat:
    inv, det = inverse_and_det(args[0])
    ev.aux[e] = (inv, det)
    if e.op == "det":
        return [[det]]
    if not det > 0:
        raise DomainError("logdet of a matrix whose determinant is not positive")
    return [[ev.F.log(det)]]


def _columns(a: Mat) -> list[list[Any]]:
    return [list(c) for c in zip(*a)]


def _softmax_col(F: Any, col: list[Any]) -> list[Any]:
    top = max(col)
    ex = [F.exp(x - top) for x in col]
    total = sum(ex)
    return [x / total for x in ex]


def _v_columnwise(ev: Evaluator, e: Op, args: list[Mat]) -> Mat:
    """softmax, log_softmax, logsumexp column by column; the softmax is kept for the tangents."""
    cols = _columns(args[0])
    soft = [_softmax_col(ev.F, c) for c in cols]
    ev.aux[e] = _t(soft)
    if e.op == "softmax":
        return _t(soft)
    lse = [top + ev.F.log(sum(ev.F.exp(x - top) for x in c)) for c in cols for top in [max(c)]]
    if e.op == "logsumexp":
        return [lse]
    return [[x - lse[j] for j, x in enumerate(row)] for row in args[0]]


def _v_norm(ev: Evaluator, e: Op, args: list[Mat]) -> Mat:
    a = args[0]
    if e.op == "norm1":
        return [[sum(abs(x) for row in a for x in row)]]
    return [[ev.F.sqrt(sum(x * x for row in a for x in row))]]


def _v_literal(ev: Evaluator, e: Op, args: list[Mat]) -> Mat:
    r, c = len(args[0]), len(args[0][0])
    flat = [a[0][0] for a in args[1:]]
    return [flat[i * c:(i + 1) * c] for i in range(r)]


def _index(m: Mat) -> int:
    return int(m[0][0]) - 1


def _v_vec(ev: Evaluator, e: Op, args: list[Mat]) -> Mat:
    """The columns of the argument stacked."""
    a = args[0]
    return [[a[i][j]] for j in range(len(a[0])) for i in range(len(a))]


def _v_reshape(ev: Evaluator, e: Op, args: list[Mat]) -> Mat:
    """A column as a matrix of the second argument's shape, column by column (vec's inverse)."""
    g, rows, cols = args[0], len(args[1]), len(args[1][0])
    return [[g[j * rows + i][0] for j in range(cols)] for i in range(rows)]


def _v_rearrange(args: list[Mat]) -> Mat:
    """R[i + r*j][k + p*l] = G[i*p + k][j*q + l], blocks of the shapes of args[1] (r x c) and args[2] (p x q)."""
    g, (r, c), (p, q) = args[0], (len(args[1]), len(args[1][0])), (len(args[2]), len(args[2][0]))
    return [[g[(i % r) * p + j % p][(i // r) * q + j // p] for j in range(q * p)] for i in range(c * r)]


def _v_kron(ev: Evaluator, e: Op, args: list[Mat]) -> Mat:
    a, b = args
    rb, cb = len(b), len(b[0])
    return [[a[i // rb][j // cb] * b[i % rb][j % cb] for j in range(len(a[0]) * cb)] for i in range(len(a) * rb)]


_VALUE: dict[str, Callable[[Evaluator, Op, list[Mat]], Mat]] = {
    "add": _v_fold(_add),
    "matmul": _v_chain,
    "mul": _v_scalar_product,
    "hadamard": _v_fold(_had),
    "transpose": lambda ev, e, a: _t(a[0]),
    "pow": _v_pow,
    "group": lambda ev, e, a: a[0],
    "tr": lambda ev, e, a: [[_trace(a[0])]],
    "det": _v_det,
    "logdet": _v_det,
    "inv": _v_inverse,
    "sum": lambda ev, e, a: [[_sum(a[0])]],
    "norm1": _v_norm,
    "norm2": _v_norm,
    "softmax": _v_columnwise,
    "log_softmax": _v_columnwise,
    "logsumexp": _v_columnwise,
    "diag": lambda ev, e, a: [[a[0][i][0] if i == j else 0 * a[0][i][0] for j in range(len(a[0]))]
                              for i in range(len(a[0]))],
    "diagvec": lambda ev, e, a: [[a[0][i][i]] for i in range(len(a[0]))],
    "literal": _v_literal,
    "entry": lambda ev, e, a: [[a[0][_index(a[1])][_index(a[2])]]],
    "vec": _v_vec,  # issue 9: vec, reshape, kron
    "reshape": _v_reshape,
    "kron": _v_kron,
    "rearrange": lambda ev, e, a: _v_rearrange(a),
    "mean": lambda ev, e, a: [[_sum(a[0]) * ev.F.num(Fraction(1, len(a[0]) * len(a[0][0])))]],  # issue 9
    "adj": lambda ev, e, a: _adjugate(a[0]),
    "matpow": _v_matpow,  # issue 9: X^k, k an integer constant
}


# ---- tangent rules: (evaluator, node, values, tangents with 0 filled in, raw tangents) ----------

def _d_chain(ev: Evaluator, e: Op, args: list[Mat], ts: list[Mat], raw: list) -> Mat:
    """d(A1*...*An) = sum_k A1..dAk..An, accumulated left to right: dP <- dP*A + P*dA."""
    p, dp = args[0], ts[0]
    for a, da, r in zip(args[1:], ts[1:], raw[1:]):
        dp = _mm(dp, a) if r is None else _add(_mm(dp, a), _mm(p, da))
        p = _mm(p, a)
    return dp


def _d_product(value_rule: Callable) -> Callable:
    """The product rule for `mul` and `hadamard`: sum over the factors that move."""
    def rule(ev: Evaluator, e: Op, args: list[Mat], ts: list[Mat], raw: list) -> Mat:
        terms = [value_rule(ev, e, args[:k] + [r] + args[k + 1:]) for k, r in enumerate(raw) if r is not None]
        out = terms[0]
        for term in terms[1:]:
            out = _add(out, term)
        return out
    return rule


def _d_pow(ev: Evaluator, e: Op, args: list[Mat], ts: list[Mat], raw: list) -> Mat:
    if raw[1] is not None:
        raise Unsupported("pow with a moving exponent")
    return [[_times_derivative(d, t) for d, t in zip(rd, rt)] for rd, rt in zip(ev.aux[e], ts[0])]


def _d_inverse(ev: Evaluator, e: Op, args: list[Mat], ts: list[Mat], raw: list) -> Mat:
    inv = ev.aux[e][0]
    return _scale(-1, _mm(_mm(inv, ts[0]), inv))


def _d_det(ev: Evaluator, e: Op, args: list[Mat], ts: list[Mat], raw: list) -> Mat:
    """d det(A) = det(A)*tr(inv(A)*dA); d logdet(A) = tr(inv(A)*dA)."""
    inv, det = ev.aux[e]
    if inv is None and e.op == "det":  # singular: d det(A) = tr(adj(A)*dA), the cofactors
        adj = _adjugate(args[0])
        return [[sum(adj[j][i] * ts[0][i][j] for i in range(len(adj)) for j in range(len(adj)))]]
    if inv is None:
        raise DomainError("the derivative of logdet at a singular matrix is not computed")
    d = sum(inv[j][i] * ts[0][i][j] for i in range(len(inv)) for j in range(len(inv)))
    return [[det * d if e.op == "det" else d]]


def _d_matpow(ev: Evaluator, e: Op, args: list[Mat], ts: list[Mat], raw: list) -> Mat:
    """d(F^m) = sum_i F^i dF F^(m-1-i), with F = X (dF = dX) or F = inv(X) (dF = -F dX F)."""
    if raw[1] is not None:
        raise Unsupported("matpow with a moving exponent")
    factor, powers = ev.aux[e]
    m = len(powers) - 1
    dfactor = ts[0] if args[1][0][0] >= 0 else _scale(-1, _mm(_mm(factor, ts[0]), factor))
    out = _zero_like_mat(powers[0])
    for i in range(m):
        out = _add(out, _mm(_mm(powers[i], dfactor), powers[m - 1 - i]))
    return out


def _zero_like_mat(a: Mat) -> Mat:
    return [[0 * x for x in row] for row in a]


def _adjugate(a: Mat) -> Mat:
    """adj(A)[i][j] = (-1)^(i+j) det(A without row j and column i), exactly (A may be singular)."""
    n = len(a)
    if n == 1:
        return [[a[0][0] * 0 + 1]]
    def minor(r: int, c: int) -> Any:
        return inverse_and_det([[a[i][j] for j in range(n) if j != c] for i in range(n) if i != r])[1]
    return [[(-1) ** (i + j) * minor(j, i) for j in range(n)] for i in range(n)]


def _d_adj(ev: Evaluator, e: Op, args: list[Mat], ts: list[Mat], raw: list) -> Mat:
    """d adj(A) = tr(adj(A)*dA)*inv(A) - adj(A)*dA*inv(A) (A invertible; else SymPy's derivative)."""
    inv, _ = inverse_and_det(args[0])
    if inv is None:
        raise Unsupported("the derivative of adj at a singular matrix")
    adj, da = ev.values[e], ts[0]
    c = sum(adj[j][i] * da[i][j] for i in range(len(adj)) for j in range(len(adj)))
    return _add(_scale(c, inv), _scale(-1, _mm(_mm(adj, da), inv)))


def _d_columnwise(ev: Evaluator, e: Op, args: list[Mat], ts: list[Mat], raw: list) -> Mat:
    """With s = softmax(a) per column and m = s'*da: d logsumexp = m, d log_softmax = da - m,
    d softmax = s .* (da - m)."""
    s, da = ev.aux[e], ts[0]
    m = [sum(s[i][j] * da[i][j] for i in range(len(s))) for j in range(len(s[0]))]
    if e.op == "logsumexp":
        return [m]
    if e.op == "log_softmax":
        return [[x - m[j] for j, x in enumerate(row)] for row in da]
    return [[s[i][j] * (da[i][j] - m[j]) for j in range(len(s[0]))] for i in range(len(s))]


def _d_norm(ev: Evaluator, e: Op, args: list[Mat], ts: list[Mat], raw: list) -> Mat:
    """d norm1(A) = sum(sign(A) .* dA); d norm2(A) = sum(A .* dA)/norm2(A)."""
    a, da = args[0], ts[0]
    pairs = [(x, t) for ra, rt in zip(a, da) for x, t in zip(ra, rt)]
    if e.op == "norm1":
        return [[sum(_times_derivative(KINK if x == 0 else _sign(x), t) for x, t in pairs)]]
    n = ev.values[e][0][0]
    if n == 0:  # norm2 at the zero matrix: no derivative unless the direction is 0 too
        return [[sum(_times_derivative(KINK, t) for _, t in pairs)]]
    return [[sum(x * t for x, t in pairs) / n]]


def _d_linear(ev: Evaluator, e: Op, args: list[Mat], ts: list[Mat], raw: list) -> Mat:
    """Operators linear in their (first) argument: the tangent is the operator of the tangents."""
    if e.op == "entry":
        return _VALUE["entry"](ev, e, [ts[0], *args[1:]])
    return _VALUE[e.op](ev, e, ts)


_TANGENT: dict[str, Callable] = {
    "add": _d_linear,
    "matmul": _d_chain,
    "mul": _d_product(_v_scalar_product),
    "hadamard": _d_product(_v_fold(_had)),
    "transpose": _d_linear,
    "pow": _d_pow,
    "group": _d_linear,
    "tr": _d_linear,
    "det": _d_det,
    "logdet": _d_det,
    "inv": _d_inverse,
    "sum": _d_linear,
    "norm1": _d_norm,
    "norm2": _d_norm,
    "softmax": _d_columnwise,
    "log_softmax": _d_columnwise,
    "logsumexp": _d_columnwise,
    "diag": _d_linear,
    "diagvec": _d_linear,
    "literal": _d_linear,
    "entry": _d_linear,
    "vec": _d_linear,  # issue 9: vec, reshape (linear in the column; the template's zero tangent keeps the shape)
    "reshape": _d_linear,
    "kron": _d_product(_v_kron),  # bilinear: kron(dA, B) + kron(A, dB)
    "rearrange": _d_linear,
    "mean": _d_linear,  # issue 9
    "adj": _d_adj,
    "matpow": _d_matpow,
}
