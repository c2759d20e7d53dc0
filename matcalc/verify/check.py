"""Verification of derived gradients, two independent ways.

* numeric: at a random point honouring the declarations, the directional derivative of f along
  a random direction V (central differences extrapolated by Ridders' method, float64, from a
  step on which f changes little at the gradient's rate; differences in 40+ digits where
  float64 cannot resolve it or disagrees) is compared with sum(G .* V), for each variable,
  within TOL of the magnitudes involved (and within rounding of G's terms where they cancel).
* SymPy elementwise: each dimension gets a small distinct size, every symbol an exact rational
  value; for sampled entries X_ij of each variable, d/dt f(X0 + t*E_ij) at t = 0 is computed
  exactly as a truncated series in t over SymPy's rationals (matcalc.verify.exact: numbers substituted
  first, no symbolic matrix or inverse), or to 25 digits computing with 40 where the loss is
  transcendental, and compared with G_ij. SymPy's MatrixSymbol.diff is never used.

The sizes and the point are chosen where the loss and its gradients are defined: several size
orders (tall or wide), several sampling strategies (mixed signs, positive, near a multiple of I).
SymPy is imported only when a check runs.
"""
from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from fractions import Fraction
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import numpy as np

from ..core import properties
from ..core.algebra import is_zero
from ..core.expr import Expr, Op, Sym, walk
from ..core.registry import OPS, Dim, dim_names, dim_size
from ..errors import CheckError, DomainError, MatcalcError
from .evaluate import numeric, symbolic
from .exact import (
    AtKink,
    Evaluator,
    NotExact,
    Rationals,
    Reals,
    Unsupported,
    inverse_and_det,
    is_transcendental,
    rational_form,
)

if TYPE_CHECKING:
    import sympy

SIZES = (2, 3, 4, 5, 6, 7)
SIZE_TRIES = 6  # size assignments tried (orders of SIZES) before the sampler gives up
POINT_TRIES = 12  # points tried per size assignment (four strategies, three seeds each)
MAX_ENTRIES = 16  # per variable
MAX_TOTAL_ENTRIES = 24  # over all variables (at least 2 per variable)
DIGITS = 40  # working precision of the SymPy check where the loss is transcendental (and large)
RTOL_DIGITS = Fraction(1, 10 ** 25)  # agreement asked of the DIGITS-digit comparison, relative
TOL = 1e-6  # numeric check: relative agreement asked of float64 central differences
ROUND = 1e3 * float(np.finfo(float).eps)  # rounding error of a float64 value, relative to its terms' size
MAX_FD_ERR = 1e-4  # numeric check: float64 differences with a larger error estimate are not trusted
FD_STEPS = 8  # numeric check: at most this many step sizes (halved each time) per derivative
MAX_SYMPY_DIM = 24  # the exact check runs where every declared integer size is at most this
MAX_CHECK_DIM = 400  # no check runs beyond this declared size (the result says "not verified")


@dataclass(frozen=True)
class CheckReport:
    """What was verified, how, at which sizes, with which errors (immutable: `merged` gives the
    report of two checks together)."""

    dims: Mapping[str, int]
    numeric_max_rel_err: float | None = None
    sympy_entries: int = 0
    sympy_exact: bool = True
    sympy_max_err: float = 0.0
    notes: Sequence[str] = ()
    skipped: str = ""  # why a check did not run (declared sizes too large to check)
    unverified: Sequence[str] = ()  # variables whose gradient is 0 to working precision wherever tried

    def __post_init__(self) -> None:
        object.__setattr__(self, "dims", MappingProxyType(dict(self.dims)))
        object.__setattr__(self, "notes", tuple(self.notes))
        object.__setattr__(self, "unverified", tuple(self.unverified))

    def summary(self) -> str:
        sizes = ", ".join(f"{k}={v}" for k, v in self.dims.items())
        parts = []
        if self.sympy_entries:
            how = "exact" if self.sympy_exact else "25 digits"
            parts.append(f"SymPy elementwise ({sizes + ', ' if sizes else ''}{how})")
        if self.numeric_max_rel_err is not None:
            parts.append(f"numeric (rel. err {self.numeric_max_rel_err:.0e})")
        flat = f"not verified: {', '.join(self.unverified)} ({FLAT})" if self.unverified else ""
        if parts:
            return "verified: " + " and ".join(parts) + (f"; {flat}" if flat else "")
        return flat or "not verified" + (f" ({self.skipped})" if self.skipped else "")

    def merged(self, other: CheckReport) -> CheckReport:
        """This report and that of a further check (another variable, other sizes) as one."""
        errs = [e for e in (self.numeric_max_rel_err, other.numeric_max_rel_err) if e is not None]
        return replace(self, dims={**other.dims, **self.dims}, numeric_max_rel_err=max(errs) if errs else None,
                       sympy_entries=self.sympy_entries + other.sympy_entries,
                       sympy_exact=self.sympy_exact and (other.sympy_exact or not other.sympy_entries),
                       sympy_max_err=max(self.sympy_max_err, other.sympy_max_err),
                       notes=(*self.notes, *other.notes), unverified=(*self.unverified, *other.unverified))

    def to_dict(self) -> dict:
        return {"summary": self.summary(), "sizes": dict(self.dims),
                "numeric": {"max_rel_err": self.numeric_max_rel_err},
                "sympy": {"entries": self.sympy_entries, "exact": self.sympy_exact,
                          "max_abs_err": self.sympy_max_err},
                "notes": list(self.notes), "unverified": list(self.unverified)}


@dataclass
class SympyTally:
    """What the SymPy check has compared so far (it adds to this as it runs; `verify` then
    reports it in the CheckReport)."""

    sympy_entries: int = 0
    sympy_exact: bool = True
    sympy_max_err: float = 0.0


def _dimension_names(exprs: list[Expr]) -> list[str]:
    names: list[str] = []
    for node in walk(exprs):
        dims = [node.name] if isinstance(node, Sym) and "dimension" in node.props else []
        for d in [*(n for s in node.shape for n in dim_names(s)), *dims]:  # `/m` needs a size too
            if d not in names:
                names.append(d)
    return names


def size_candidates(exprs: list[Expr], reverse: bool = False) -> list[dict[str, int]]:
    """Assignments of small distinct sizes to the named dimensions: in order of appearance, then
    reversed, then a few other orders (a seeded shuffle), so that tall/wide relations such as
    X'*X invertible (X tall) or X*X' invertible (X wide) hold in at least one of them; last, the
    same sizes above the largest declared integer size, and reversed (B: 4 x m tall)."""
    names = _dimension_names(exprs)
    sizes = [SIZES[i % len(SIZES)] + (i // len(SIZES)) for i in range(len(names))]
    orders = [sizes, sizes[::-1]]
    rng = random.Random(len(names))
    for _ in range(SIZE_TRIES - 2 if len(names) > 2 else 0):
        orders.append(rng.sample(sizes, len(sizes)))
    if reverse:
        orders = orders[1:2] + orders[:1] + orders[2:]
    top = max((d for n in walk(exprs) for d in n.shape if isinstance(d, int)), default=1)
    if sizes and top >= min(sizes):  # B: 4 x m in A*B*(A*B)' with A: 4 x 4 needs m >= 4
        above = [s + top + 1 - min(sizes) for s in sizes]
        orders += [above, above[::-1]]
    out: list[dict[str, int]] = []
    for order in orders:
        dims = dict(zip(names, order))
        if dims not in out:
            out.append(dims)
    return out


def assign_sizes(exprs: list[Expr], reverse: bool = False) -> dict[str, int]:
    """Small distinct sizes for the named dimensions of `exprs`: the first assignment of
    `size_candidates` at which the loss `exprs[0]` is defined (X'*X is singular for a wide X,
    so `log(det(X'*X))` gets a tall X), else the first assignment."""
    candidates = size_candidates(exprs, reverse)
    if len(candidates) > 1 and not exprs[0].has_d:
        for dims in candidates:
            try:
                find_point(exprs[0], {}, dims, 0)
                return dims
            except MatcalcError:  # DomainError: undefined at these sizes
                continue
    return candidates[0]


def _size(d: Dim, dims: dict[str, int]) -> int:
    return dim_size(d, dims)


def _careful_symbols(f: Expr) -> set[str]:
    """Symbols inside inv/det/logdet: sampled near a multiple of I, well-conditioned, det > 0."""
    out: set[str] = set()
    for node in walk([f]):
        if isinstance(node, Op) and OPS[node.op].square_arg:
            out |= node.args[0].syms
    return out


def sample(sym: Sym, dims: dict[str, int], rng: random.Random, positive: bool, careful: bool) -> list[list[Fraction]]:
    """An exact rational value for `sym` honouring its declared properties (the property table's
    exact sampler); a dimension used as a number is that size."""
    if "dimension" in sym.props:
        return [[Fraction(dims[sym.name])]]
    r, c = _size(sym.shape[0], dims), _size(sym.shape[1], dims)
    return properties.sample_exact(sym.props, r, c, rng, positive, careful)


def sample_point(f: Expr, dims: dict[str, int], seed: int, strategy: int,
                 also: tuple[Expr, ...] = ()) -> dict[str, list[list[Fraction]]]:
    """Values for every symbol of f (and of the expressions `also` evaluated there). Strategy 0:
    mixed signs, the arguments of inv/det/logdet near a multiple of I; 1: every entry positive;
    2: positive and every square symbol near a multiple of I; 3: strategy 0 scaled by 1/4, where
    saturating functions (tanh(det(X)) with a large det) still have a gradient to compare."""
    rng = random.Random(seed * 7919 + strategy)
    careful = _careful_symbols(f) if strategy % 3 < 2 else {s for s in f.syms}
    syms = sorted({n for n in walk([f, *also]) if isinstance(n, Sym)}, key=lambda s: s.name)
    point = {s.name: sample(s, dims, rng, strategy in (1, 2), s.name in careful) for s in syms}
    if strategy == 3:  # a positive multiple keeps every property but column sums (and sizes)
        keep = {s.name for s in syms if s.props & {"probability", "dimension"} or properties.constant(s.props)}
        point = {k: v if k in keep else [[x / 4 for x in row] for row in v] for k, v in point.items()}
    return point


def _np(point: dict[str, list[list[Fraction]]]) -> dict[str, np.ndarray]:
    return {k: np.array([[float(x) for x in row] for row in v]) for k, v in point.items()}


def _sp(point: dict[str, list[list[Fraction]]], digits: int | None = None) -> dict[str, sympy.Matrix]:
    """The point as SymPy matrices: exact rationals, or `digits`-digit floats (for losses with
    transcendental functions, whose exact values nest without end and are slow to compare)."""
    import sympy

    def entry(x: Fraction) -> sympy.Expr:
        r = sympy.Rational(x.numerator, x.denominator)
        return r if digits is None else sympy.Float(r, digits)

    return {k: sympy.Matrix([[entry(x) for x in row] for row in v]) for k, v in point.items()}


def _square_args(f: Expr) -> list[Expr]:
    return [n.args[0] for n in walk([f]) if isinstance(n, Op) and OPS[n.op].square_arg]


def _singular_allowed(a: Expr, exprs: list[Expr], point: dict, dims: dict[str, int], f: Expr | None = None) -> bool:
    """Whether `a`, the argument of a square-argument operator, may be singular at the rational
    `point`: it is exactly singular there (by its structure: x*y', so never by chance near a
    multiple of I) and every such operator over it in `exprs` (the gradients, or what is evaluated
    with the loss) is defined there exactly, none needing its inverse (the adjugate form
    d det(x*y') = tr(adj(x*y')*d(x*y'))). With no `exprs` (the loss alone) it may not."""
    if not exprs:
        return False
    ev = Evaluator(Rationals(), point, dims)
    try:
        if inverse_and_det(ev.value(a))[0] is not None:
            return False
        for n in walk([*([f] if f is not None else []), *exprs]):  # the loss's own inv(a) too
            if isinstance(n, Op) and OPS[n.op].square_arg and n.args[0] == a:
                ev.value(n)
    except (MatcalcError, NotExact, Unsupported, AtKink):
        return False
    return True


def _kink_args(f: Expr) -> list[Expr]:
    return [n.args[0] for n in walk([f]) if isinstance(n, Op) and OPS[n.op].kink]


def _off_kinks(values: list[np.ndarray]) -> bool:
    """No argument of a non-smooth operator (relu, abs, norm1, ...) has an entry at its kink 0."""
    return all(np.all(np.abs(v) > 1e-9 * max(1.0, float(np.max(np.abs(v))))) for v in values)


def _vanishes(g: Expr, value: np.ndarray, env: dict, dims: dict[str, int]) -> bool:
    """Whether the gradient `g` is 0 at the point: exactly, or within rounding of the size of its
    terms (2*tanh(ones)*x where sum(x) = 0 is 1e-18, not 0.0): there G cannot be told from 2*G."""
    if not np.any(value):
        return True
    try:
        norm = _norm(value)
        return bool(np.isfinite(norm)) and norm <= ROUND * _bound(g, value, env, dims)
    except (np.linalg.LinAlgError, ArithmeticError, MatcalcError):
        return False


def find_point(f: Expr, grads: dict[str, Expr], dims: dict[str, int], seed: int,
               also: tuple[Expr, ...] = (), small: float = 0.0) -> dict:
    """A rational point where the loss and all gradients are finite, every matrix that is inverted
    or whose determinant is taken is well-conditioned, and (where possible) no non-smooth
    operator sits at its kink, and no gradient vanishes (a check where G = 0 cannot tell G from
    2*G), nor has all its entries below `small` (a float comparison with an absolute floor,
    as a verdict's, cannot tell G from G' where a saturated softmax makes G ~ 1e-67). Tries
    each sampling strategy with several seeds; if every point puts a kink at 0 or a gradient
    at 0 (the kink or the zero is structural), the best defined point is used."""
    f = _variable_part(f)[0]  # a constant term beyond float64 (exp(exp(8))) changes no gradient
    roots, square, kinks = [f, *grads.values()], _square_args(f), _kink_args(f)
    exprs = [*grads.values(), *also]  # what is evaluated with the loss
    square += [a for g in grads.values() for a in _square_args(g) if a not in square]  # inv(X) of d adj(X)
    best: tuple[int, dict] | None = None
    singular: Counter[Expr] = Counter()  # the matrices found singular, for the message
    for attempt in range(POINT_TRIES):
        point = sample_point(f, dims, seed + 1000 * (attempt // 4), attempt % 4, (*grads.values(), *also))
        env = _np(point)
        try:
            with np.errstate(all="ignore"):  # a point outside the domain is simply not taken
                values = numeric(roots + square + kinks, env, dims)
        except (np.linalg.LinAlgError, ZeroDivisionError, OverflowError):
            singular.update(_singular(square, env, dims)[:1])
            continue
        if not all(np.all(np.isfinite(v)) for v in values):  # (before cond: LAPACK prints on a NaN)
            singular.update(_singular(square, env, dims)[:1])
            continue
        bad = [a for a, m in zip(square, values[len(roots):len(roots) + len(square)])
               if not (np.linalg.cond(m) < 1e8 or _singular_allowed(a, exprs, point, dims, f))]
        singular.update(bad[:1])
        if not bad:
            flaws = (not _off_kinks(values[len(roots) + len(square):])) * 2 + \
                any(_vanishes(g, v, env, dims) or not float(np.max(np.abs(v), initial=0.0)) >= small
                    for g, v in zip(grads.values(), values[1:len(roots)]))
            if flaws == 0:
                return point
            if best is None or flaws < best[0]:
                best = (flaws, point)
    if best is not None:
        return best[1]
    raise DomainError("could not find a point where the loss and its gradient are defined" + _singular_text(singular))


def _singular(square: list[Expr], env: dict, dims: dict[str, int]) -> list[Expr]:
    """Those of the square matrices `square` that are singular at the point (or undefined)."""
    out = []
    for a in square:
        try:
            with np.errstate(all="ignore"):
                m = numeric([a], env, dims)[0]
            if not (np.all(np.isfinite(m)) and np.linalg.cond(m) < 1e8):
                out.append(a)
        except (np.linalg.LinAlgError, ArithmeticError, MatcalcError):
            continue  # undefined itself: some other part is at fault
    return out


def _singular_text(singular: Counter) -> str:
    """`: P is singular at every point tried` where the matrix P, inverted or under a det, was
    what failed at every point tried (A'*A with A wide), else nothing."""
    from ..syntax.printing import to_text
    if not singular or sum(singular.values()) < POINT_TRIES:
        return ""
    return f": {to_text(singular.most_common(1)[0][0])} is singular at every point tried"


def sizes_and_point(f: Expr, grads: dict[str, Expr], seed: int) -> tuple[dict[str, int], dict]:
    """The first size assignment of `size_candidates` with a point where the loss and its
    gradients are defined, and that point."""
    why = []
    for dims in size_candidates([f, *grads.values()]):
        try:
            return dims, find_point(f, grads, dims, seed)
        except DomainError as err:
            why.append(str(err).partition(": ")[2])
    reason = f": {why[0]}" if why and why[0] and all(w == why[0] for w in why) else ""
    raise DomainError("could not find a point where the loss and its gradient are defined (tried "
                      f"every size order and sampling strategy){reason}")


def _direction(sym: Sym, dims: dict[str, int], rng: np.random.Generator) -> np.ndarray:
    """A random direction admissible for `sym`'s declared properties (the property table's)."""
    v = rng.standard_normal((_size(sym.shape[0], dims), _size(sym.shape[1], dims)))
    return properties.direction(sym.props, v)


# ---- numeric check ------------------------------------------------------------------------------

def ridders(phi, h: float, steps: int = 8):
    """phi'(0) by central differences at h, h/2, h/4, ... extrapolated (Ridders' method), with an
    error estimate: the change between successive extrapolations, which counts truncation and
    rounding alike. phi may be scalar- or array-valued (the error is then the largest over the
    entries). A step where phi is not finite (outside the loss's domain) is shrunk first."""
    def central(s: float):
        with np.errstate(all="ignore"):  # outside the domain: inf or nan, which the loop handles
            return (phi(s) - phi(-s)) / (2 * s)

    def gap(a, b) -> float:
        with np.errstate(all="ignore"):
            return float(np.max(np.abs(a - b)))

    for _ in range(12):
        first = central(h)
        if np.all(np.isfinite(first)):
            break
        h /= 4
    table, best, err = [first], first, np.inf
    for _ in range(steps - 1):
        h /= 2
        row, fac = [central(h)], 4.0
        for prev in table:
            row.append(row[-1] + (row[-1] - prev) / (fac - 1))
            fac *= 4
        for k in range(1, len(row)):
            e = max(gap(row[k], row[k - 1]), gap(row[k], table[k - 1]))
            if e <= err:
                best, err = row[k], e
        if gap(row[-1], table[-1]) >= 2 * err:  # rounding noise took over: stop
            break
        if err <= 1e-12 * float(np.max(np.abs(best))):  # as good as float64 gets
            break
        table = row
    return best, float(err)


def _resolves(fd: float, an: float, err: float, mag: float = 0.0, rounding: float = 0.0) -> tuple[bool, bool, float]:
    """(decided, agree, rel. error): agreement within TOL of the magnitudes (the two values and
    `mag` = |G| |V|, or its terms' where G is a sum, so that a derivative that is 0 by
    cancellation is judged on the scale of its terms), within the rounding error of G's value
    (`rounding`, ROUND of its size through every sum and product: 2*tanh(ones)*x is -3.9e-18
    where sum(x) = 0, the directional derivative 0), or within the finite differences' own
    error estimate where that is larger but still small (MAX_FD_ERR); when the estimate is
    larger than that, float64 cannot decide."""
    scale = max(abs(fd), abs(an), mag)
    diff = abs(fd - an)
    rel = diff / scale if scale > 0 else 0.0
    if diff <= TOL * scale or diff <= 4 * err <= MAX_FD_ERR * scale or (scale == 0 and err == 0):
        return True, True, rel
    if diff <= rounding and err <= rounding:  # both values are rounding noise around 0
        return True, True, diff / (rounding / ROUND)
    return err <= MAX_FD_ERR * scale / 4, False, rel



def _norm(a: np.ndarray) -> float:
    """The Frobenius norm without overflow in its squares (a gradient of 1e200 has a norm)."""
    with np.errstate(all="ignore"):
        top = float(np.max(np.abs(a), initial=0.0))
        return top * float(np.linalg.norm(a / top)) if 0 < top < np.inf else top


def _magnitude(g: Expr, value: np.ndarray, x0: dict, dims: dict[str, int]) -> float:
    """The size of G at the point: its norm, or, for a sum whose terms cancel (a^2*inv(a)^2 - 1),
    the largest of its terms' norms, the scale its rounding error is relative to."""
    terms = g.args if isinstance(g, Op) and g.op == "add" else ()
    with np.errstate(all="ignore"):
        sizes = [_norm(t) for t in numeric(list(terms), x0, dims)] if terms else []
    return max([_norm(value), *(s for s in sizes if np.isfinite(s))])


def _bound(g: Expr, value: np.ndarray, x0: dict, dims: dict[str, int]) -> float:
    """The size of G's value computed with the absolute values of its parts through every sum
    and product (|A|*|x| for A*x): the scale of its rounding error, much larger than |G| where
    its terms cancel (tanh(ones)*x with sum(x) = 0). Only rounding is judged against it (ROUND):
    a product of 32 small Jacobians has a bound far above itself, and 2*G must still differ."""
    nodes = walk([g])
    with np.errstate(all="ignore"):
        vals = numeric(nodes, x0, dims)
        bound: dict[Expr, np.ndarray] = {}
        for node, val in zip(nodes, vals):
            if isinstance(node, Op) and OPS[node.op].monotone:  # |.| through sums and products
                bound[node] = np.asarray(OPS[node.op].numpy(*(bound[a] for a in node.args)), dtype=float)
            else:
                bound[node] = np.abs(np.asarray(val, dtype=float))
        size = _norm(bound[g])
    return max(_norm(value), size if np.isfinite(size) else 0.0)


def _largest(values: Mapping[Expr, np.ndarray]) -> float:
    """The largest finite magnitude among the values of a tree's nodes (the scale of the rounding
    that its intermediate results carry: sum(x) - det(A^4) loses x in the det's rounding)."""
    out = 0.0
    for v in values.values():
        a = np.abs(np.asarray(v, dtype=float))
        a = a[np.isfinite(a)]
        if a.size:
            out = max(out, float(a.max()))
    return out


def _first_step(x: np.ndarray, slope: float, f0: float) -> float:
    """The first step of the differences along a unit direction: 1e-3 of the variable's scale, but
    small enough that the loss changes over it by a modest part of max(1, |f|) at the rate
    `slope` (the gradient's): cos(det(X)^2) turns many times within a step of 1e-3, and
    differences over it alias to any value."""
    h = 1e-3 * max(1.0, float(np.max(np.abs(x))))
    budget = 1e-2 * max(1.0, f0)
    return budget / slope if np.isfinite(slope) and slope * h > budget else h


def numeric_check(f: Expr, grads: dict[str, Expr], syms: dict[str, Sym], dims: dict[str, int],
                  point: dict, seed: int, notes: list[str] | None = None) -> float:
    """Max relative error between sum(G .* V) and the directional derivative of f along a random
    V, for each variable: float64 central differences (Ridders), from a step on which f changes
    little at the gradient's rate; where float64 cannot resolve the derivative (a cosine of a
    large argument, huge values) or disagrees (its own error estimate is no proof: differences
    over a step on which f oscillates alias consistently), central differences in DIGITS+ digits
    decide."""
    rng = np.random.default_rng(seed)
    x0 = _np(point)
    nodes = walk([f])
    at_x0 = dict(zip(nodes, numeric(nodes, x0, dims)))
    gvals = dict(zip(grads, numeric(list(grads.values()), x0, dims)))
    f0 = abs(float(at_x0[f][0, 0]))
    big = max(f0, _largest(at_x0))
    worst = 0.0
    for name, g in gvals.items():
        v = _direction(syms[name], dims, rng)
        v /= max(np.linalg.norm(v), 1e-300)
        known = {n: val for n, val in at_x0.items() if name not in n.syms}
        order = [n for n in nodes if name in n.syms]  # only these change along V

        def along(t: float, name: str = name, v: np.ndarray = v, known: dict = known, order: list = order) -> float:
            with np.errstate(all="ignore"):
                return float(numeric([f], {**x0, name: x0[name] + t * v}, dims, known, order)[0][0, 0])

        an = float(np.sum(g * v))
        mag = _magnitude(grads[name], g, x0, dims)  # |G| |V| (|V| = 1), or of G's terms where they cancel
        h = _first_step(x0[name], max(abs(an), mag), f0)
        fd, err = ridders(along, h, FD_STEPS)
        fd = float(fd)
        # differences of f below its rounding are invisible: a derivative smaller than
        # eps*|f|/h (a vanishing gradient deep in a network) is not resolved in float64
        resolution = 8 * np.finfo(float).eps * f0 / (h / 2 ** (FD_STEPS - 1))
        rounding = ROUND * _bound(grads[name], g, x0, dims)
        decided, agree, rel = _resolves(fd, an, max(err, resolution), mag, rounding)
        if not agree:
            slope = max(abs(fd), abs(an), mag)
            try:
                agree, rel, fd, an = _high_precision_fd(f, grads[name], name, point, v, dims, slope, big, mag, f0)
            except (Unsupported, NotExact, AtKink, MatcalcError, ArithmeticError):
                if not decided:
                    raise
                # no high-precision evaluation: the float64 disagreement stands
            else:
                if notes is not None:
                    why = "could not resolve the derivative" if not decided else "disagreed"
                    notes.append(f"{name}: float64 differences {why}; checked with differences in {DIGITS}+ digits")
        if not agree:
            raise CheckError(f"numeric check failed for {name}: directional derivative {fd:.12g} "
                             f"by finite differences, {an:.12g} from the gradient (rel. err {rel:.1e})")
        worst = max(worst, rel)
    return worst


def _high_precision_fd(f: Expr, g: Expr, name: str, point: dict, v: np.ndarray, dims: dict[str, int],
                       slope: float, big: float, mag: float = 0.0, f0: float = 0.0) -> tuple[bool, float, float, float]:
    """(agree, rel. error, fd, sum(G .* V)) with f and G evaluated in high precision.
    Richardson-extrapolated central differences at h and h/2 (their difference bounds the
    truncation error), h = 1e-10 of the variable's scale or less, so that f changes over it by a
    small part of max(1, |f0|) at the rate `slope` (the derivative's size); digits enough that
    the rounding of the largest value `big` (f itself, or a det of 1e23 that x is added to),
    divided by the step, stays ~1e-30 of the derivative."""
    scale = max([abs(x) for row in point[name] for x in row] + [Fraction(1)])
    h = Fraction(1, 10 ** (DIGITS // 4)) * scale
    slope = min(max(slope, 1e-300), 1e300) if math.isfinite(slope) else 1e300
    log_big = math.log10(max(big, 1.0)) if math.isfinite(big) else _log10_largest(f, point, dims)
    f0, big = (min(x, 1e300) if math.isfinite(x) else 1e300 for x in (f0, big))  # exp(tr(A^6)) overflows
    budget = 1e-3 * max(1.0, f0)
    if slope * float(h) > budget:
        h = Fraction(budget / slope)
    extra = log_big - math.log10(float(h) * slope) if float(h) * slope > 0 else 300.0
    digits = min(DIGITS + MAX_EXTRA_DIGITS, max(DIGITS, 30 + math.ceil(min(extra, MAX_EXTRA_DIGITS))))
    F = Reals(digits)
    vq = [[Fraction(float(x)) for x in row] for row in v]

    def at(t: Fraction) -> Any:
        moved = [[x + t * d for x, d in zip(rx, rd)] for rx, rd in zip(point[name], vq)]
        return Evaluator(F, {**point, name: moved}, dims).value(f)[0][0]

    def richardson(s: Fraction) -> Any:
        d1 = (at(s) - at(-s)) / (2 * F.num(s))
        d2 = (at(s / 2) - at(-s / 2)) / F.num(s)
        return (4 * d2 - d1) / 3

    fd1, fd2 = richardson(h), richardson(h / 2)
    gv = Evaluator(F, point, dims).value(g)
    an = sum(x * F.num(d) for rx, rd in zip(gv, vq) for x, d in zip(rx, rd))
    diff, scale_v = abs(fd2 - an), max(abs(fd2), abs(an), F.num(Fraction(mag)))
    # the differences' own rounding: the largest value to `digits` digits, divided by the step
    noise = F.num(Fraction(1, 10 ** (digits - 5))) * max(abs(at(Fraction(0))), F.num(Fraction(big)),
                                                           F.num(Fraction(1))) / F.num(h / 2)
    if diff <= noise and abs(an) <= noise:  # both zero within rounding: a zero derivative
        return True, 0.0, float(fd2), float(an)
    trusted = 10 * abs(fd1 - fd2) <= F.num(Fraction(1, 10 ** 6)) * scale_v  # truncation is small
    agree = diff <= F.num(Fraction(1, 10 ** 20)) * scale_v or (trusted and diff <= 10 * abs(fd1 - fd2))
    return bool(agree), float(diff / scale_v) if scale_v else 0.0, float(fd2), float(an)


MAX_EXTRA_DIGITS = 3000  # the high-precision differences carry at most this many digits beyond DIGITS


def _log10_largest(f: Expr, point: dict, dims: dict[str, int]) -> float:
    """log10 of the largest magnitude among the values that make up f at the point (at least 0),
    computed in DIGITS digits where float64 overflows (exp(k*tr(A^(k+1))) ~ 1e434): the
    differences of f need that many more digits to resolve a derivative of size 1."""
    reals = Reals(DIGITS)
    ev = Evaluator(reals, point, dims)
    top = max(abs(x) for n in walk([f]) for row in ev.value(n) for x in row)
    return float(reals.ctx.log10(top)) if top > 1 else 0.0


# ---- SymPy elementwise check --------------------------------------------------------------------

def _entries(sym: Sym, dims: dict[str, int], rng: random.Random, limit: int) -> list[tuple[int, int]]:
    """The free entries of `sym` (the property table's), at most `limit` of them (a random choice)."""
    cells = properties.free_entries(sym.props, _size(sym.shape[0], dims), _size(sym.shape[1], dims))
    return cells if len(cells) <= limit else sorted(rng.sample(cells, limit))


def _bump(sym: Sym, rows: int, cell: tuple[int, int]) -> list[tuple[int, int, int]]:
    """The direction of one entry, as (row, col, +-1) triples, honouring the declaration: both
    (i,j) and (j,i) for a symmetric matrix; for a probability vector, mass moved within the column."""
    return properties.bump(sym.props, rows, cell)


def has_kinks(f: Expr) -> bool:
    """Whether `f` uses an operator that is not differentiable everywhere (relu, abs, ...)."""
    return any(isinstance(n, Op) and OPS[n.op].kink for n in walk([f]))


def _weight(rng: random.Random, g: list[list]) -> Fraction:
    """A random positive weight over the magnitude of G (a power of two, so exact): in a pass that
    moves several variables at once, each variable's part is of order 1."""
    mags = [abs(float(x)) for row in g for x in row]
    top = max([m for m in mags if np.isfinite(m)] + [0.0])
    exp = math.frexp(top)[1] if top > 0 else 0
    return Fraction(rng.randint(1, 2 ** 16)) / Fraction(2) ** exp


def _one_pass(ev: Evaluator, f: Expr, grads: dict[str, list[list]], dirs: dict[str, list],
              weights: dict[str, Fraction], shapes: dict[str, tuple[int, int]]) -> tuple:
    """(d/dt f(X + t*D), sum(G .* D)) for the direction D moving each variable in `dirs` by its
    weighted bump."""
    F = ev.F
    seeds = {}
    claim = 0
    for name, bump in dirs.items():
        w = F.num(weights[name])
        r, c = shapes[name]
        d = [[0 * w for _ in range(c)] for _ in range(r)]
        for i, j, s in bump:
            d[i][j] += s * w
            claim += s * w * grads[name][i][j]
        seeds[name] = d
    return ev.tangent(f, seeds)[0][0], claim


def _agree(F: Rationals | Reals, truth, claim, redo) -> tuple[bool, float]:
    """Exactly equal over the rationals; over the floats equal to 25 digits relative to their
    size, or, failing that, after recomputing with twice the digits (`redo(digits)`) their
    difference shrinks with the rounding error (it was cancellation noise) or is within 25 digits
    there; a difference that stays, far below 1e-40, is recomputed with digits enough to resolve it."""
    if F.exact:  # an evaluator that fell back to a float (a bug to fix there) still compares
        truth, claim = (F.num(Fraction(x)) if isinstance(x, float) else x for x in (truth, claim))
    err = abs(truth - claim)
    if F.exact:
        return truth == claim, float(err)
    assert isinstance(F, Reals)
    rtol = F.num(RTOL_DIGITS)
    if err <= rtol * max(abs(truth), abs(claim)):
        return True, float(err)
    truth2, claim2 = redo(2 * DIGITS)
    err2 = abs(truth2 - claim2)
    noise = abs(truth - truth2) + abs(claim - claim2)
    ok = err2 <= rtol * max(abs(truth2), abs(claim2)) or err2 <= F.num(Fraction(1, 10 ** 20)) * noise
    tiny = -float(F.ctx.log10(err2)) if err2 else 0.0
    if not ok and tiny > DIGITS and F.digits + tiny <= DIGITS + MAX_EXTRA_DIGITS:
        # a difference far below the values it is computed from (1 - s1 = 0 where 1 - s1 = s2 ~ 1e-758,
        # a saturated softmax), the same at twice the digits: with digits enough to resolve it
        truth3, claim3 = redo(2 * DIGITS + math.ceil(tiny))
        err3 = abs(truth3 - claim3)
        ok = err3 <= rtol * max(abs(truth3), abs(claim3)) or err3 <= F.num(Fraction(1, 10 ** 20)) * abs(truth2 - truth3)
        err2 = err3
    return bool(ok), float(err2)


def sympy_check(f: Expr, grads: dict[str, Expr], syms: dict[str, Sym], dims: dict[str, int],
                point: dict, seed: int, report: SympyTally) -> None:
    """Entry-by-entry comparison of G with the exact derivative of the loss along that entry, by
    forward-mode series in one symbol (matcalc.verify.exact) over SymPy's rationals, or at DIGITS digits
    where the loss is transcendental; SymPy's symbolic derivative for an operator exact.py lacks."""
    try:
        try:
            _series_check(f, grads, syms, dims, point, seed, report, Rationals())
        except NotExact:  # a transcendental value was needed
            _series_check(f, grads, syms, dims, point, seed, report, Reals(DIGITS))
    except Unsupported:
        _symbolic_check(f, grads, syms, dims, point, seed, report)
    except AtKink as err:
        raise CheckError(f"SymPy check: {err}") from None


def _series_check(f: Expr, grads: dict[str, Expr], syms: dict[str, Sym], dims: dict[str, int],
                  point: dict, seed: int, report: SympyTally, F: Rationals | Reals) -> None:
    """Pass p moves the p-th sampled entry of every variable at once (weighted), so the number of
    derivative evaluations is the number of entries sampled per variable, whatever the number of
    variables; a pass that disagrees is replayed variable by variable to name the entry."""
    rng = random.Random(seed)
    ev = Evaluator(F, point, dims)
    f, *rest = rational_form([f, *grads.values()])
    grads = dict(zip(grads, rest))
    gvals = {n: ev.value(g) for n, g in grads.items()}
    shapes = {n: (_size(syms[n].shape[0], dims), _size(syms[n].shape[1], dims)) for n in grads}
    limit = min(MAX_ENTRIES, max(2, MAX_TOTAL_ENTRIES // max(1, len(grads))))
    cells = {n: _entries(syms[n], dims, rng, limit) for n in grads}
    weights = {n: _weight(rng, gvals[n]) for n in grads}

    def redo(dirs: dict[str, list], digits: int) -> tuple:
        ev2 = Evaluator(Reals(digits), point, dims)
        return _one_pass(ev2, f, {n: ev2.value(grads[n]) for n in dirs}, dirs, weights, shapes)

    worst, entries = 0.0, 0
    for p in range(max((len(c) for c in cells.values()), default=0)):
        dirs = {n: _bump(syms[n], shapes[n][0], cells[n][p]) for n in grads if p < len(cells[n])}
        truth, claim = _one_pass(ev, f, gvals, dirs, weights, shapes)
        ok, err = _agree(F, truth, claim, lambda digits, d=dirs: redo(d, digits))
        if not ok:
            _locate(ev, f, gvals, dirs, weights, shapes, redo, cells, p)
        worst, entries = max(worst, err), entries + len(dirs)
    report.sympy_exact &= F.exact
    report.sympy_max_err = max(report.sympy_max_err, worst)
    report.sympy_entries += entries


def _locate(ev: Evaluator, f: Expr, gvals: dict, dirs: dict, weights: dict, shapes: dict, redo, cells: dict,
            p: int) -> None:
    """Raise CheckError for the first variable of a failed pass whose entry disagrees alone."""
    for name, bump in dirs.items():
        one = {name: bump}
        truth, claim = _one_pass(ev, f, gvals, one, weights, shapes)
        ok, _ = _agree(ev.F, truth, claim, lambda digits, d=one: redo(d, digits))
        if not ok:
            w = ev.F.num(weights[name])
            i, j = cells[name][p]
            raise CheckError(f"SymPy check failed for {name} at entry ({i + 1},{j + 1}): derivative "
                             f"{float(truth / w):.15g}, gradient gives {float(claim / w):.15g}")
    raise CheckError(f"SymPy check failed for {', '.join(dirs)} together (entries {p + 1})")


def _close(a, b) -> tuple[bool, bool, float]:
    """(equal, compared exactly, abs error), for the symbolic fallback."""
    import sympy
    if a.is_Rational and b.is_Rational:
        return a == b, True, float(abs(a - b))
    da, db = sympy.N(a, DIGITS), sympy.N(b, DIGITS)
    err = abs(complex(da) - complex(db))
    return err <= 1e-25 * max(abs(complex(da)), abs(complex(db))), False, err


def _symbolic_check(f: Expr, grads: dict[str, Expr], syms: dict[str, Sym], dims: dict[str, int],
                    point: dict, seed: int, report: SympyTally) -> None:
    """The loss entry by entry in SymPy with X = X0 + t*E_ij, differentiated by t at 0 (for trees
    with an operator that matcalc.verify.exact has no rule for)."""
    import sympy
    rng = random.Random(seed)
    nodes = walk([f, *grads.values()])
    exact = not any(is_transcendental(n) for n in nodes)
    x0 = _sp(point, None if exact else DIGITS)
    t = sympy.Symbol("t", real=True)
    gvals = dict(zip(grads, symbolic(list(grads.values()), x0, dims)))
    limit = min(MAX_ENTRIES, max(2, MAX_TOTAL_ENTRIES // max(1, len(gvals))))
    for name, g in gvals.items():
        for cell in _entries(syms[name], dims, rng, limit):
            bump = sympy.zeros(*x0[name].shape)
            for i, j, s in _bump(syms[name], bump.rows, cell):
                bump[i, j] = s
            env = dict(x0)
            env[name] = x0[name] + t * bump
            truth = sympy.diff(symbolic([f], env, dims)[0][0, 0], t).subs(t, 0)
            claim = sum(g[a, b] * bump[a, b] for a in range(bump.rows) for b in range(bump.cols) if bump[a, b])
            ok, exact, err = _close(truth, claim)
            if not ok:
                raise CheckError(f"SymPy check failed for {name} at entry ({cell[0] + 1},{cell[1] + 1}): "
                                 f"derivative {sympy.N(truth, 15)}, gradient gives {sympy.N(claim, 15)}")
            report.sympy_exact &= exact
            report.sympy_max_err = max(report.sympy_max_err, err)
            report.sympy_entries += 1


CONSTANT_LIMIT = 10 ** 10000  # a constant term is evaluated (in DIGITS digits) only below this magnitude


def _constant_value(t: Expr) -> Any:
    """The value of a term without symbols, in DIGITS digits, or None where it does not exist
    (log(-1)), is not finite, or is astronomically large (exp(exp(exp(10))) is not computed)."""
    F = Reals(DIGITS)
    ev = Evaluator(F, {}, {})
    try:
        for node in walk([t]):
            if isinstance(node, Op) and any(not abs(x) < CONSTANT_LIMIT for a in node.args for row in ev.value(a)
                                            for x in row):
                return None
            ev.value(node)
        v = ev.value(t)[0][0]
    except (DomainError, Unsupported, NotExact, AtKink, ArithmeticError, ValueError):
        return None
    return v if F.ctx.isfinite(v) else None


def _variable_part(f: Expr) -> tuple[Expr, list[str]]:
    """The loss without its additive terms that hold no symbol and whose value exists but is
    beyond float64 (exp(exp(4)^2) + sum(x)): such a term changes no gradient, and left in it
    makes the loss infinite at every point, so there would be nothing to check. Also the names
    of the terms dropped. A term whose value does not exist (log(-1)) stays: the loss is then
    undefined, and the checks say so."""
    from ..syntax.printing import to_text
    body = f
    while isinstance(body, Op) and body.op == "group":
        body = body.args[0]
    if not (isinstance(body, Op) and body.op == "add"):
        return f, []
    keep: list[Expr] = []
    dropped: list[str] = []
    for t in body.args:
        constant = not t.syms and all(isinstance(d, int) for n in walk([t]) for d in n.shape)
        if constant:
            with np.errstate(all="ignore"):
                try:
                    finite = bool(np.all(np.isfinite(numeric([t], {}, {})[0])))
                except (ArithmeticError, ValueError, np.linalg.LinAlgError, MatcalcError):
                    finite = True  # undefined in float64 too: kept (the checks report it)
            if not finite and _constant_value(t) is not None:
                dropped.append(to_text(t))
                continue
        keep.append(t)
    if not dropped or not keep:
        return f, []
    return (keep[0] if len(keep) == 1 else Op("add", tuple(keep))), dropped


def verify(f: Expr, grads: dict[str, Expr], syms: dict[str, Sym], seed: int = 0,
           use_sympy: bool = True, use_numeric: bool = True) -> CheckReport:
    """Run both checks; raise CheckError on any disagreement. The sizes are the first assignment
    with a point where the loss and gradients are defined; non-smooth losses get up to three
    points, since a random point may land on a kink (e.g. relu at 0)."""
    absent = [n for n in grads if n not in f.syms]
    grads = {n: g for n, g in grads.items() if n in f.syms}
    notes = [f"{n}: zero gradient, nothing to check" for n in absent]
    f, dropped = _variable_part(f)
    notes += [f"the constant term {d} (beyond float64) changes no gradient: checked without it" for d in dropped]
    largest = max((d for n in walk([f, *grads.values()]) for d in n.shape if isinstance(d, int)), default=1)
    if largest > MAX_CHECK_DIM:
        return CheckReport({}, notes=notes, skipped=f"a declared size {largest} is over {MAX_CHECK_DIM}, "
                                                     "the largest the checks evaluate")
    if largest > MAX_SYMPY_DIM and use_sympy:
        use_sympy = False
        notes.append(f"SymPy check skipped: a declared size {largest} is over {MAX_SYMPY_DIM}")
    dims, point = sizes_and_point(f, grads, seed)
    tries = 3 if has_kinks(f) else 1
    for attempt in range(tries):
        if attempt:
            point = find_point(f, grads, dims, seed + attempt)
        # a gradient 0 to working precision wherever find_point looked is no test of G against 2*G,
        # unless the exact check evaluates it: then it is exactly 0 there, as is f's derivative
        exact = use_sympy and all(OPS[n.op].exact for n in walk([f, *grads.values()]) if isinstance(n, Op))
        flat = [] if exact else _flat(grads, dims, point)
        checked = {n: g for n, g in grads.items() if n not in flat}
        found, tally, rel_err = list(notes), SympyTally(), None
        if flat and not checked:
            return CheckReport(dims, notes=found, unverified=flat)
        try:
            if use_numeric:
                rel_err = numeric_check(f, checked, syms, dims, point, seed + attempt, found)
            if use_sympy:
                sympy_check(f, checked, syms, dims, point, seed + attempt, tally)
            return CheckReport(dims, rel_err, tally.sympy_entries, tally.sympy_exact, tally.sympy_max_err, found,
                               unverified=flat)
        except CheckError:
            if attempt == tries - 1:
                raise
    return CheckReport(dims, notes=notes)


FLAT = "the gradient is 0 to working precision at every point tried, where no check can tell G from 2*G"


def _flat(grads: dict[str, Expr], dims: dict[str, int], point: dict) -> list[str]:
    """The variables whose gradient (not 0 by construction) is 0 at the point to working
    precision: a saturated sigmoid(det(X)^5), whose every claim k*G is 0 there too."""
    env = _np(point)
    try:
        with np.errstate(all="ignore"):
            values = numeric(list(grads.values()), env, dims)
    except (np.linalg.LinAlgError, ArithmeticError, MatcalcError):
        return []
    return [n for (n, g), v in zip(grads.items(), values)
            if not is_zero(g) and bool(np.all(np.isfinite(v))) and _vanishes(g, v, env, dims)]
