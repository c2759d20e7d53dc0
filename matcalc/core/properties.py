"""The property table: everything matcalc knows about a declared property, in one row.

A row states what the property means, what it implies, whether only a square matrix can have
it, how the samplers make a random draw have it (one transform, used on exact rationals and on
floats alike), its admissible directions (exact single-entry ones for the SymPy check, and a map
from a free random matrix for the numeric checks), its projection of a gradient, a test that a
value has it, and its predicate for rules. Adding a property is adding one row; a completeness
test (tests/test_properties.py) fails when a row lacks a part.

Several properties combine as follows. Implications are closed over (`implied`). The samplers
draw every entry at random (positive when a held row says so), then apply the held rows'
`make` in `stage` order; a `final` row's result is the sample. Directions and projections are
those of the first held row in `stage` order whose map is not the identity (the most
restrictive one: diagonal before probability before symmetric). The free entries of the exact
check are filtered by every held row; a single-entry direction is the entry plus every held
row's `bump` (in table order).

This module imports nothing else of matcalc: the tree (`expr.Sym.has`) asks it.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Callable, Iterable

import numpy as np

Matrix = np.ndarray  # floats, or Fractions in an object array (exact sampling)
Triple = tuple[int, int, int]  # (row, col, +-1): one entry of an exact direction


@dataclass(frozen=True)
class Property:
    """One declared property (`NAME: SHAPE PROPERTY ...`) and its semantics."""

    name: str
    means: str  # what it means, in words
    implies: tuple[str, ...]  # the properties it implies directly
    square: bool  # only a square matrix can have it
    stage: int  # the order in which samplers apply `make`, and the precedence of directions
    positive_entries: bool  # the samplers draw its entries positive
    make: Callable[[Matrix, frozenset[str]], Matrix]  # a random draw -> one that has it (given the held set)
    final: bool  # `make`'s result is the sample: later stages are skipped
    direction: Callable[[Matrix], Matrix]  # a free random matrix -> an admissible direction
    free_entry: Callable[[int, int], bool]  # whether entry (i, j) is a free coordinate (exact check)
    bump: Callable[[int, int, int], tuple[Triple, ...]]  # (i, j, rows) -> entries moving with (i, j)
    project: Callable[[Matrix], Matrix]  # a gradient -> its part along the admissible directions
    holds: Callable[[Matrix, float], bool]  # whether a float value has it (tolerance)
    suggest: bool  # the needs-property diagnosis of a wrong claim tries declaring it
    # a constant, never a variable (integer: the k of X^k): only a scalar has it (declared without
    # a shape it is a scalar), it has no free entries and no directions (never differentiated:
    # --wrt on it is an error), and the samplers never move or rescale it
    constant: bool = False


# ---- the maps the rows use ----------------------------------------------------------------------

def _same(b: Matrix, held: frozenset[str] = frozenset()) -> Matrix:
    """The identity: nothing to do (an open condition, or one the entries' draw already meets)."""
    return b


def _zeros(b: Matrix, rows: int, cols: int) -> Matrix:
    """A rows x cols zero matrix in b's number type (Fraction(0) in an object array, else +0.0)."""
    if b.dtype == object:
        return np.array([[b.flat[0] * 0] * cols for _ in range(rows)], dtype=object).reshape(rows, cols)
    return np.zeros((rows, cols), dtype=b.dtype)


def _eye_like(b: Matrix) -> Matrix:
    """The identity matrix of b's rows, in b's number type (Fraction stays Fraction)."""
    out = _zeros(b, b.shape[0], b.shape[0])
    for i in range(b.shape[0]):
        out[i, i] += 1
    return out


def _diagonal_part(b: Matrix, held: frozenset[str] = frozenset()) -> Matrix:
    """b with every entry off the diagonal set to zero."""
    out = _zeros(b, *b.shape)
    for i in range(min(b.shape)):
        out[i, i] = b[i, i]
    return out


def _symmetric_part(b: Matrix, held: frozenset[str] = frozenset()) -> Matrix:
    """(B + B')/2 of a square B (a ValueError otherwise: never broadcast)."""
    if b.shape[0] != b.shape[1]:
        raise ValueError(f"a symmetric matrix is square, not {b.shape[0]} x {b.shape[1]}")
    return (b + b.T) / 2


def _column_sums_one(b: Matrix, held: frozenset[str]) -> Matrix:
    """b (positive) with each column divided by its sum."""
    return b / b.sum(axis=0, keepdims=True)


def _column_sums_zero(b: Matrix) -> Matrix:
    """b minus each column's mean: a direction that keeps every column's sum."""
    return b - b.mean(axis=0, keepdims=True)


def _gram(b: Matrix, held: frozenset[str]) -> Matrix:
    """B*B' + rows*I: symmetric positive definite."""
    return b @ b.T + b.shape[0] * _eye_like(b)


def _near_identity(b: Matrix, held: frozenset[str]) -> Matrix:
    """A square non-diagonal b shrunk and moved to near a multiple of I (well-conditioned); a
    diagonal draw (nonzero entries) is invertible as it is."""
    if b.shape[0] != b.shape[1] or "diagonal" in held:
        return b
    return b / 4 + b.shape[0] * _eye_like(b)


def _small_integer(b: Matrix, held: frozenset[str]) -> Matrix:
    """Each entry mapped to an integer in 3..5 (from its magnitude, so the draw stays random), in
    b's number type (Fraction stays Fraction). Not 1 or 2: the k of X^k at 2 makes the gradient
    of tr(X^(k-1)) symmetric, so a transposed claim would pass."""
    out = b.copy()
    for idx in np.ndindex(b.shape):
        x = b[idx]
        out[idx] = (3 + int(abs(x) * 8) % 3) * (x * 0 + 1)
    return out


def _no_direction(b: Matrix) -> Matrix:
    """The zero matrix: a constant has no admissible direction (and its gradient no part along one)."""
    return _zeros(b, *b.shape)


def _no_entry(i: int, j: int) -> bool:
    """No entry is a free coordinate."""
    return False


def _any_entry(i: int, j: int) -> bool:
    """Every entry is a free coordinate."""
    return True


def _no_bump(i: int, j: int, rows: int) -> tuple[Triple, ...]:
    """Nothing moves with an entry."""
    return ()


def _square(v: Matrix) -> bool:
    """Whether v is a square matrix."""
    return v.ndim == 2 and v.shape[0] == v.shape[1]


def _is_symmetric(v: Matrix, tol: float) -> bool:
    """Square and V = V' within tol."""
    return _square(v) and bool(np.allclose(v, v.T, rtol=0, atol=tol))


def _is_spd(v: Matrix, tol: float) -> bool:
    """Symmetric with every eigenvalue > tol."""
    return _is_symmetric(v, tol) and bool(np.min(np.linalg.eigvalsh((v + v.T) / 2)) > tol)


def _is_invertible(v: Matrix, tol: float) -> bool:
    """Square with condition number < 1/tol."""
    return _square(v) and bool(np.all(np.isfinite(v))) and bool(np.linalg.cond(v) < 1 / tol)


def _is_positive(v: Matrix, tol: float) -> bool:
    """Every entry > 0 (strictly, whatever tol)."""
    return bool(np.all(v > 0))


def _is_diagonal(v: Matrix, tol: float) -> bool:
    """Square with every entry off the diagonal within tol of 0."""
    return _square(v) and bool(np.allclose(v - np.diag(np.diag(v)), 0, rtol=0, atol=tol))


def _is_integer(v: Matrix, tol: float) -> bool:
    """A 1 x 1 value that is an integer (exactly, whatever tol)."""
    return v.shape == (1, 1) and bool(np.isfinite(v[0, 0])) and float(v[0, 0]) == round(float(v[0, 0]))


def _is_probability(v: Matrix, tol: float) -> bool:
    """Entries >= -tol and every column summing to 1 within tol."""
    return bool(np.all(v >= -tol)) and bool(np.allclose(v.sum(axis=0), 1, rtol=0, atol=tol))


# ---- the table ----------------------------------------------------------------------------------

ROWS = (
    Property(name="symmetric", means="A' = A", implies=(), square=True, stage=4, positive_entries=False,
             make=_symmetric_part, final=False, direction=_symmetric_part, free_entry=lambda i, j: i <= j,
             bump=lambda i, j, rows: ((j, i, 1),) if i != j else (), project=_symmetric_part,
             holds=_is_symmetric, suggest=True),
    Property(name="spd", means="symmetric positive definite", implies=("symmetric", "invertible"), square=True,
             stage=3, positive_entries=False, make=_gram, final=True, direction=_same, free_entry=_any_entry,
             bump=_no_bump, project=_same, holds=_is_spd, suggest=False),
    Property(name="invertible", means="square with an inverse", implies=(), square=True, stage=5,
             positive_entries=False, make=_near_identity, final=False, direction=_same, free_entry=_any_entry,
             bump=_no_bump, project=_same, holds=_is_invertible, suggest=False),
    Property(name="positive", means="every entry > 0", implies=(), square=False, stage=0, positive_entries=True,
             make=_same, final=False, direction=_same, free_entry=_any_entry, bump=_no_bump, project=_same,
             holds=_is_positive, suggest=False),
    Property(name="diagonal", means="square, zero off the diagonal", implies=("symmetric",), square=True, stage=1,
             positive_entries=False, make=_diagonal_part, final=False, direction=_diagonal_part,
             free_entry=lambda i, j: i == j, bump=_no_bump, project=_diagonal_part, holds=_is_diagonal,
             suggest=False),
    Property(name="probability", means="nonnegative, each column sums to 1", implies=("positive",), square=False,
             stage=2, positive_entries=False, make=_column_sums_one, final=True, direction=_column_sums_zero,
             free_entry=_any_entry, bump=lambda i, j, rows: (((i + 1) % rows, j, -1),), project=_column_sums_zero,
             holds=_is_probability, suggest=True),
    # the exponent k of a matrix power X^k: sampled 2..4, exactly and in floats
    Property(name="integer", means="an integer constant (a scalar, never a variable: the k of X^k)", implies=(),
             square=False, stage=6, positive_entries=False, make=_small_integer, final=True, direction=_no_direction,
             free_entry=_no_entry, bump=_no_bump, project=_no_direction, holds=_is_integer, suggest=False,
             constant=True),
)
TABLE: dict[str, Property] = {p.name: p for p in ROWS}
PROPERTIES: tuple[str, ...] = tuple(TABLE)  # in the order messages list them
_STAGED = sorted(ROWS, key=lambda p: p.stage)


def implied(props: Iterable[str]) -> frozenset[str]:
    """`props` and everything they imply (transitively); names not in the table are kept as they are."""
    out, todo = set(), list(props)
    while todo:
        p = todo.pop()
        if p not in out:
            out.add(p)
            todo += TABLE[p].implies if p in TABLE else ()
    return frozenset(out)


_IMPLIERS = {p: frozenset(q for q in TABLE if p in implied([q])) for p in TABLE}


def has(props: frozenset[str], prop: str) -> bool:
    """Whether a symbol declared with `props` has `prop` (declared, or implied by one declared)."""
    return not props.isdisjoint(_IMPLIERS.get(prop, (prop,)))


def square_property(props: Iterable[str]) -> str | None:
    """The first of `props` (in their order) that only a square matrix can have, or None."""
    return next((p for p in props if any(TABLE[q].square for q in implied([p]) if q in TABLE)), None)


def constant(props: Iterable[str]) -> str | None:
    """The first of `props` (and what they imply) that makes a symbol a constant, never a variable
    (a scalar, never differentiated, moved or rescaled: `integer`), or None."""
    return next((p for p in sorted(implied(props)) if p in TABLE and TABLE[p].constant), None)


def constrained(props: frozenset[str]) -> bool:
    """Whether the admissible directions of a symbol with `props` are not all directions (its
    gradient as shown is then the unconstrained one)."""
    return any(TABLE[p].direction is not _same for p in implied(props) if p in TABLE)


def _held(props: Iterable[str]) -> list[Property]:
    """The rows a symbol with `props` has, in `stage` order."""
    every = implied(props)
    return [row for row in _STAGED if row.name in every]


def _shape_up(b: Matrix, rows: list[Property]) -> Matrix:
    """Apply each row's `make` in stage order, stopping after a final one."""
    held = frozenset(r.name for r in rows)
    for row in rows:
        b = row.make(b, held)
        if row.final:
            break
    return b


def _entry(rng: random.Random, positive: bool) -> Fraction:
    """A random nonzero k/8, |k| <= 12; positive, or of random sign."""
    k = rng.randint(1, 12)
    return Fraction(k if positive or rng.random() < 0.5 else -k, 8)


def sample_exact(props: frozenset[str], rows: int, cols: int, rng: random.Random, positive: bool = False,
                 careful: bool = False) -> list[list[Fraction]]:
    """A random rational rows x cols value with every property of `props` (entries k/8 drawn row by
    row, positive if `positive` or a held row says so). `careful`: treat it as invertible (it is
    inverted or its determinant taken)."""
    held = _held(props | ({"invertible"} if careful else set()))
    pos = positive or any(r.positive_entries for r in held)
    b = np.array([[_entry(rng, pos) for _ in range(cols)] for _ in range(rows)], dtype=object).reshape(rows, cols)
    return [[Fraction(x) for x in row] for row in _shape_up(b, held).tolist()]


def sample_float(props: frozenset[str], rows: int, cols: int, rng: np.random.Generator,
                 positive: bool = False) -> Matrix:
    """A random float rows x cols value with every property of `props` (entries of magnitude in
    [1/8, 3/2], positive if `positive` or a held row says so)."""
    held = _held(props)
    b = rng.uniform(0.125, 1.5, (rows, cols))
    if not (positive or any(r.positive_entries for r in held)):
        b = b * rng.choice([-1.0, 1.0], (rows, cols))
    return _shape_up(b, held)


def _first_map(props: frozenset[str], part: Callable[[Property], Callable[[Matrix], Matrix]]) -> \
        Callable[[Matrix], Matrix]:
    """The map `part` of the first held row (stage order) where it is not the identity."""
    return next((part(r) for r in _held(props) if part(r) is not _same), _same)


def direction(props: frozenset[str], v: Matrix) -> Matrix:
    """The free random matrix `v` made an admissible direction for a symbol with `props`."""
    return _first_map(props, lambda r: r.direction)(v)


def project(props: frozenset[str], g: Matrix) -> Matrix:
    """The gradient `g` projected on the admissible directions of a symbol with `props`."""
    return _first_map(props, lambda r: r.project)(g)


def free_entries(props: frozenset[str], rows: int, cols: int) -> list[tuple[int, int]]:
    """The entries that are free coordinates of a symbol with `props` (row by row)."""
    held = _held(props)
    return [(i, j) for i in range(rows) for j in range(cols) if all(r.free_entry(i, j) for r in held)]


def bump(props: frozenset[str], rows: int, cell: tuple[int, int]) -> list[Triple]:
    """The exact admissible direction of one free entry, as (row, col, +-1) triples: the entry,
    then what every held row (table order) moves with it."""
    every = implied(props)
    return [(cell[0], cell[1], 1)] + [t for r in ROWS if r.name in every for t in r.bump(cell[0], cell[1], rows)]


def satisfies(props: frozenset[str], value: Matrix, tol: float = 1e-9) -> bool:
    """Whether the float `value` has every property of `props` (and all they imply)."""
    return all(r.holds(np.asarray(value, dtype=float), tol) for r in _held(props))


def predicate(prop: str) -> Callable[[Any], bool]:
    """The rule condition `prop`: a symbol declared with it (or with a property implying it).
    Only symbols carry declarations (a frozenset `props`); structural knowledge (A*A' is
    symmetric) is the rules' own. A constant property (integer) also holds for a 1 x 1 number
    that has it and for sums and products of such (`k - 1`, `2*k`): the exponents of X^k."""
    def declared(e: Any) -> bool:
        return isinstance(getattr(e, "props", None), frozenset) and has(e.props, prop)

    if not (prop in TABLE and TABLE[prop].constant):
        return declared

    def closed(e: Any) -> bool:
        if declared(e):
            return True
        if getattr(e, "shape", None) != (1, 1):
            return False
        if hasattr(e, "value"):  # a number
            return TABLE[prop].holds(np.array([[float(e.value)]]), 0.0)
        return getattr(e, "op", None) in ("add", "mul") and all(closed(a) for a in e.args)

    return closed


def suggestions(shape: tuple[Any, Any]) -> list[str]:
    """The properties the needs-property diagnosis tries for a symbol of `shape` (never a scalar)."""
    return [r.name for r in ROWS if r.suggest and shape != (1, 1) and (not r.square or shape[0] == shape[1])]
