"""Verification of derived gradients, two independent ways (DESIGN.md section 5).

* numeric: at a random point honouring the declarations, the directional derivative of f along
  a random direction V (central differences with Richardson extrapolation, float64) is compared
  with sum(G .* V), for each variable.
* SymPy elementwise: each dimension gets a small distinct size, every symbol an exact rational
  value; for each entry X_ij of a variable the loss is built entry by entry as a SymPy expression
  in one symbol t (X = X0 + t*E_ij), differentiated by t at 0, and compared with G_ij exactly
  (or to 25 digits, computing with 40, where the loss is transcendental). SymPy's MatrixSymbol.diff is never used.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np
import sympy

from .errors import CheckError, DomainError
from .evaluate import numeric, symbolic
from .expr import Expr, Op, Sym, walk
from .registry import OPS, Dim

SIZES = (2, 3, 4, 5, 6, 7)
MAX_ENTRIES = 16  # per variable
MAX_TOTAL_ENTRIES = 24  # over all variables: a network's check stays within seconds
DIGITS = 40  # working precision of the SymPy check where the loss is transcendental (and large)
EXACT_NODES = 25  # up to this size, even transcendental losses are checked in exact arithmetic


@dataclass
class CheckReport:
    """What was verified, how, at which sizes, with which errors."""

    dims: dict[str, int]
    numeric_max_rel_err: float | None = None
    sympy_entries: int = 0
    sympy_exact: bool = True
    sympy_max_err: float = 0.0
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        sizes = ", ".join(f"{k}={v}" for k, v in self.dims.items())
        parts = []
        if self.sympy_entries:
            how = "exact" if self.sympy_exact else "25 digits"
            parts.append(f"SymPy elementwise ({sizes + ', ' if sizes else ''}{how})")
        if self.numeric_max_rel_err is not None:
            parts.append(f"numeric (rel. err {self.numeric_max_rel_err:.0e})")
        return "verified: " + " and ".join(parts) if parts else "not verified"

    def merge(self, other: "CheckReport") -> None:
        """Fold in the report of a further check (another variable, other sizes)."""
        self.dims = {**other.dims, **self.dims}
        errs = [e for e in (self.numeric_max_rel_err, other.numeric_max_rel_err) if e is not None]
        self.numeric_max_rel_err = max(errs) if errs else None
        self.sympy_entries += other.sympy_entries
        self.sympy_exact &= other.sympy_exact or not other.sympy_entries
        self.sympy_max_err = max(self.sympy_max_err, other.sympy_max_err)
        self.notes += other.notes

    def to_dict(self) -> dict:
        return {"summary": self.summary(), "sizes": self.dims,
                "numeric": {"max_rel_err": self.numeric_max_rel_err},
                "sympy": {"entries": self.sympy_entries, "exact": self.sympy_exact,
                          "max_abs_err": self.sympy_max_err},
                "notes": self.notes}


def assign_sizes(exprs: list[Expr], reverse: bool = False) -> dict[str, int]:
    """Small distinct sizes for the named dimensions, in order of appearance (or reversed, for a
    second try when the first sizes make a matrix singular, as X'*X is for a wide X)."""
    names: list[str] = []
    for node in walk(exprs):
        for d in node.shape:
            if isinstance(d, str) and d not in names:
                names.append(d)
    sizes = [SIZES[i % len(SIZES)] + (i // len(SIZES)) for i in range(len(names))]
    return dict(zip(names, sizes[::-1] if reverse else sizes))


def _size(d: Dim, dims: dict[str, int]) -> int:
    return d if isinstance(d, int) else dims[d]


def _careful_symbols(f: Expr) -> set[str]:
    """Symbols inside inv/det/logdet: sampled near a multiple of I, well-conditioned, det > 0."""
    out: set[str] = set()
    for node in walk([f]):
        if isinstance(node, Op) and OPS[node.op].square_arg:
            out |= node.args[0].syms
    return out


def _entry(rng: random.Random, positive: bool) -> Fraction:
    k = rng.randint(1, 12)
    return Fraction(k if positive or rng.random() < 0.5 else -k, 8)


def sample(sym: Sym, dims: dict[str, int], rng: random.Random, positive: bool, careful: bool) -> list[list[Fraction]]:
    """An exact rational value for `sym` honouring its declared properties."""
    r, c = _size(sym.shape[0], dims), _size(sym.shape[1], dims)
    if "dimension" in sym.props:  # a dimension used as a number is that size
        return [[Fraction(dims[sym.name])]]
    b = [[_entry(rng, positive or sym.has("positive")) for _ in range(c)] for _ in range(r)]
    if sym.has("diagonal"):
        b = [[b[i][j] if i == j else Fraction(0) for j in range(c)] for i in range(r)]
    if sym.has("probability"):  # nonnegative, each column sums to 1
        sums = [sum((b[i][j] for i in range(r)), Fraction(0)) for j in range(c)]
        return [[b[i][j] / sums[j] for j in range(c)] for i in range(r)]
    if sym.has("spd"):
        return [[sum((b[i][k] * b[j][k] for k in range(c)), Fraction(0)) + (r if i == j else 0)
                 for j in range(r)] for i in range(r)]
    if sym.has("symmetric"):
        b = [[(b[i][j] + b[j][i]) / 2 for j in range(c)] for i in range(r)]
    if (careful or sym.has("invertible")) and r == c and not sym.has("diagonal"):
        b = [[b[i][j] / 4 + (r if i == j else 0) for j in range(c)] for i in range(r)]
    return b


def sample_point(f: Expr, dims: dict[str, int], seed: int, strategy: int) -> dict[str, list[list[Fraction]]]:
    rng = random.Random(seed * 7919 + strategy)
    careful = _careful_symbols(f) if strategy < 2 else {s for s in f.syms}
    syms = sorted({n for n in walk([f]) if isinstance(n, Sym)}, key=lambda s: s.name)
    return {s.name: sample(s, dims, rng, strategy >= 1, s.name in careful) for s in syms}


def _np(point: dict[str, list[list[Fraction]]]) -> dict[str, np.ndarray]:
    return {k: np.array([[float(x) for x in row] for row in v]) for k, v in point.items()}


def _sp(point: dict[str, list[list[Fraction]]], digits: int | None = None) -> dict[str, sympy.Matrix]:
    """The point as SymPy matrices: exact rationals, or `digits`-digit floats (for losses with
    transcendental functions, whose exact values nest without end and are slow to compare)."""
    def entry(x: Fraction) -> sympy.Expr:
        r = sympy.Rational(x.numerator, x.denominator)
        return r if digits is None else sympy.Float(r, digits)

    return {k: sympy.Matrix([[entry(x) for x in row] for row in v]) for k, v in point.items()}


def _square_args(f: Expr) -> list[Expr]:
    return [n.args[0] for n in walk([f]) if isinstance(n, Op) and OPS[n.op].square_arg]


def find_point(f: Expr, grads: dict[str, Expr], dims: dict[str, int], seed: int) -> dict:
    """A point where the loss and all gradients are finite and every matrix that is inverted or
    whose determinant is taken is well-conditioned (mixed signs first, then positive)."""
    roots, square = [f, *grads.values()], _square_args(f)
    for strategy in range(3):
        point = sample_point(f, dims, seed, strategy)
        try:
            values = numeric(roots + square, _np(point), dims)
        except np.linalg.LinAlgError:
            continue
        conditioned = all(np.linalg.cond(m) < 1e8 for m in values[len(roots):])
        if conditioned and all(np.all(np.isfinite(v)) for v in values):
            return point
    raise DomainError("could not find a point where the loss and its gradient are defined")


def _direction(sym: Sym, dims: dict[str, int], rng: np.random.Generator) -> np.ndarray:
    v = rng.standard_normal((_size(sym.shape[0], dims), _size(sym.shape[1], dims)))
    if sym.has("diagonal"):
        return np.diag(np.diag(v))
    if sym.has("probability"):  # keep every column's sum
        return v - v.mean(axis=0, keepdims=True)
    return (v + v.T) / 2 if sym.has("symmetric") else v


def numeric_check(f: Expr, grads: dict[str, Expr], syms: dict[str, Sym], dims: dict[str, int],
                  point: dict, seed: int) -> float:
    """Max relative error between sum(G .* V) and the directional derivative of f along V."""
    rng = np.random.default_rng(seed)
    x0 = _np(point)
    gvals = dict(zip(grads, numeric(list(grads.values()), x0, dims)))
    worst = 0.0
    for name, g in gvals.items():
        v = _direction(syms[name], dims, rng)
        v /= max(np.linalg.norm(v), 1e-300)

        def along(h: float) -> float:
            plus, minus = dict(x0), dict(x0)
            plus[name], minus[name] = x0[name] + h * v, x0[name] - h * v
            return (numeric([f], plus, dims)[0][0, 0] - numeric([f], minus, dims)[0][0, 0]) / (2 * h)

        h = 1e-3 * max(1.0, float(np.max(np.abs(x0[name]))))
        fd = (4 * along(h / 2) - along(h)) / 3  # Richardson: error O(h^4)
        an = float(np.sum(g * v))
        f0 = abs(float(numeric([f], x0, dims)[0][0, 0]))
        scale = max(abs(fd), abs(an), 1e-6 * (1.0 + f0))  # below this, differences are rounding noise
        err = abs(fd - an) / scale
        if not err < 1e-6:
            raise CheckError(f"numeric check failed for {name}: directional derivative {fd:.12g} "
                             f"by finite differences, {an:.12g} from the gradient (rel. err {err:.1e})")
        worst = max(worst, err)
    return worst


def _entries(sym: Sym, dims: dict[str, int], rng: random.Random, limit: int) -> list[tuple[int, int]]:
    r, c = _size(sym.shape[0], dims), _size(sym.shape[1], dims)
    cells = [(i, j) for i in range(r) for j in range(c)]
    if sym.has("diagonal"):
        cells = [(i, i) for i in range(r)]
    elif sym.has("symmetric"):
        cells = [(i, j) for i, j in cells if i <= j]
    return cells if len(cells) <= limit else sorted(rng.sample(cells, limit))


def _close(a: sympy.Expr, b: sympy.Expr) -> tuple[bool, bool, float]:
    """(equal, compared exactly, abs error)."""
    if a.is_Rational and b.is_Rational:
        return a == b, True, float(abs(a - b))
    da, db = sympy.N(a, DIGITS), sympy.N(b, DIGITS)
    err = abs(complex(da) - complex(db))
    return err <= 1e-25 * max(1.0, abs(complex(db))), False, err


def has_kinks(f: Expr) -> bool:
    """Whether `f` uses an operator that is not differentiable everywhere (relu, abs, ...)."""
    return any(isinstance(n, Op) and OPS[n.op].kink for n in walk([f]))


def _transcendental(n: Expr) -> bool:
    return isinstance(n, Op) and (not OPS[n.op].exact or (n.op == "pow" and n.args[1].value.denominator != 1))


def sympy_check(f: Expr, grads: dict[str, Expr], syms: dict[str, Sym], dims: dict[str, int],
                point: dict, seed: int, report: CheckReport) -> None:
    """Entry-by-entry comparison with SymPy's derivative of the explicit loss."""
    rng = random.Random(seed)
    nodes = walk([f, *grads.values()])
    exact = len(nodes) <= EXACT_NODES or not any(_transcendental(n) for n in nodes)
    x0 = _sp(point, None if exact else DIGITS)
    t = sympy.Symbol("t", real=True)
    gvals = dict(zip(grads, symbolic(list(grads.values()), x0, dims)))
    limit = min(MAX_ENTRIES, max(2, MAX_TOTAL_ENTRIES // max(1, len(gvals))))
    for name, g in gvals.items():
        for i, j in _entries(syms[name], dims, rng, limit):
            bump = sympy.zeros(*x0[name].shape)
            bump[i, j] = 1
            if syms[name].has("symmetric") and i != j:
                bump[j, i] = 1
            if syms[name].has("probability"):  # move mass within the column
                bump[(i + 1) % bump.rows, j] = -1
            env = dict(x0)
            env[name] = x0[name] + t * bump
            ft = symbolic([f], env, dims)[0][0, 0]
            truth = sympy.diff(ft, t).subs(t, 0)
            claim = sum(g[a, b] * bump[a, b] for a in range(bump.rows) for b in range(bump.cols) if bump[a, b])
            ok, exact, err = _close(truth, claim)
            if not ok:
                raise CheckError(f"SymPy check failed for {name} at entry ({i + 1},{j + 1}): "
                                 f"derivative {sympy.N(truth, 15)}, gradient gives {sympy.N(claim, 15)}")
            report.sympy_exact &= exact
            report.sympy_max_err = max(report.sympy_max_err, err)
            report.sympy_entries += 1


def verify(f: Expr, grads: dict[str, Expr], syms: dict[str, Sym], seed: int = 0,
           use_sympy: bool = True, use_numeric: bool = True) -> CheckReport:
    """Run both checks; raise CheckError on any disagreement. Non-smooth losses get up to
    three points, since a random point may land on a kink (e.g. relu at 0)."""
    absent = [n for n in grads if n not in f.syms]
    grads = {n: g for n, g in grads.items() if n in f.syms}
    notes = [f"{n}: zero gradient, nothing to check" for n in absent]
    dims = assign_sizes([f, *grads.values()])
    try:
        find_point(f, grads, dims, seed)
    except DomainError:
        dims = assign_sizes([f, *grads.values()], reverse=True)
    report = CheckReport(dims, notes=notes)
    tries = 3 if has_kinks(f) else 1
    for attempt in range(tries):
        point = find_point(f, grads, dims, seed + attempt)
        try:
            if use_numeric:
                report.numeric_max_rel_err = numeric_check(f, grads, syms, dims, point, seed + attempt)
            if use_sympy:
                sympy_check(f, grads, syms, dims, point, seed + attempt, report)
            return report
        except CheckError:
            if attempt == tries - 1:
                raise
            report = CheckReport(dims, notes=notes)
    return report
