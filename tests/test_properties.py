"""The property table (`matcalc/core/properties.py`), tested row by row: every test is generated from
the table, so a new property is tested by adding its row.

For each property: exact and float samples have it (and what it implies), directions are
admissible (the point moved a little along one still has it), single-entry exact directions too,
the projection of a gradient is idempotent, lands on the admissible directions and keeps
tr(G' V) for every admissible V; and every row has every part.
"""
from __future__ import annotations

import dataclasses
import random
from fractions import Fraction

import numpy as np
import pytest

from matcalc.calculus.rewrite import predicates
from matcalc.core import properties as P
from matcalc.core.expr import Sym
from matcalc.syntax.parser import parse_decls

NAMES = list(P.PROPERTIES)
SEEDS = range(6)


def shapes(name: str) -> list[tuple[int, int]]:
    """The sizes a property is tested at: square only if it needs it, else tall and square too;
    1 x 1 for a constant (`constant`: only a scalar has it)."""
    if P.TABLE[name].constant:
        return [(1, 1)]
    return [(3, 3), (1, 1)] if P.TABLE[name].square else [(3, 2), (3, 3), (4, 1)]


def cases():
    return [(name, r, c) for name in NAMES for r, c in shapes(name)]


def exact_floats(value: list[list[Fraction]]) -> np.ndarray:
    return np.array([[float(x) for x in row] for row in value])


def moved(x: np.ndarray, v: np.ndarray) -> np.ndarray:
    """x plus a small step along v (small against x's entries)."""
    return x + 1e-4 * v / max(float(np.max(np.abs(v))), 1e-300)


# ---- completeness -------------------------------------------------------------------------------

def test_every_row_has_every_part():
    for row in P.ROWS:
        for f in dataclasses.fields(row):
            value = getattr(row, f.name)
            assert value is not None, (row.name, f.name)
            if "Callable" in str(f.type):
                assert callable(value), (row.name, f.name)
        assert row.name and row.means, row.name
        assert all(q in P.TABLE and q != row.name for q in row.implies), row.name
    assert len({row.stage for row in P.ROWS}) == len(P.ROWS), "stages are distinct (a total order)"
    assert P.PROPERTIES == tuple(row.name for row in P.ROWS)


@pytest.mark.parametrize("name", NAMES)
def test_every_module_knows_the_row(name):
    """The declaration reader, the rules and the tree all take a property from its row."""
    if P.TABLE[name].constant:  # a constant is a scalar, declared with or without its shape
        assert parse_decls(f"A: {name}")["A"].shape == (1, 1) == parse_decls(f"A: scalar {name}")["A"].shape
        with pytest.raises(Exception, match="scalar"):
            parse_decls(f"A: 3 x 3 {name}")
        assert P.constant({name}) == name and not P.free_entries(frozenset({name}), 1, 1)
    decl = parse_decls(f"A: {'scalar' if P.TABLE[name].constant else '3 x 3'} {name}")["A"]
    assert decl.props == {name}
    assert name in predicates(frozenset())
    assert Sym("A", (3, 3), frozenset({name})).has(name)
    if P.TABLE[name].square:
        with pytest.raises(Exception, match="square"):
            parse_decls(f"A: 3 x 2 {name}")


@pytest.mark.parametrize("name", NAMES)
def test_holds_is_not_vacuous(name):
    """A matrix with none of the properties (mixed signs, singular, not symmetric) fails each test."""
    assert not P.TABLE[name].holds(np.array([[1.0, 2.0], [-2.0, -4.0]]), 1e-9)


# ---- implications -------------------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_implications(name):
    closure = P.implied([name])
    assert name in closure
    for q in P.TABLE[name].implies:
        assert q in closure and P.implied([q]) <= closure
    sym = Sym("A", (3, 3), frozenset({name}))
    for q in NAMES:
        assert sym.has(q) == (q in closure), (name, q)
    for r, c in shapes(name):
        value = P.sample_float(frozenset({name}), r, c, np.random.default_rng(0))
        assert all(P.TABLE[q].holds(value, 1e-9) for q in closure), (name, r, c)


# ---- samples ------------------------------------------------------------------------------------

@pytest.mark.parametrize("name,r,c", cases())
def test_exact_samples_have_it(name, r, c):
    for seed in SEEDS:
        for positive in (False, True):
            for careful in (False, True):
                value = P.sample_exact(frozenset({name}), r, c, random.Random(seed), positive, careful)
                assert all(type(x) is Fraction for row in value for x in row)
                assert (len(value), len(value[0])) == (r, c)
                assert P.satisfies(frozenset({name}), exact_floats(value), 1e-12), (name, seed, value)


@pytest.mark.parametrize("name,r,c", cases())
def test_float_samples_have_it(name, r, c):
    for seed in SEEDS:
        value = P.sample_float(frozenset({name}), r, c, np.random.default_rng(seed))
        assert value.shape == (r, c) and value.dtype == float
        assert P.satisfies(frozenset({name}), value), (name, seed, value)


def test_same_seed_same_sample():
    for name in NAMES:
        r, c = shapes(name)[0]
        a = P.sample_exact(frozenset({name}), r, c, random.Random(3))
        assert a == P.sample_exact(frozenset({name}), r, c, random.Random(3))


# ---- directions ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name,r,c", cases())
def test_directions_are_admissible(name, r, c):
    props = frozenset({name})
    for seed in SEEDS:
        rng = np.random.default_rng(seed)
        x = P.sample_float(props, r, c, rng)
        v = P.direction(props, rng.standard_normal((r, c)))
        assert v.shape == (r, c)
        assert P.satisfies(props, moved(x, v)), (name, seed)
        assert np.allclose(P.direction(props, v), v), "an admissible direction is its own direction"


@pytest.mark.parametrize("name,r,c", [(n, r, c) for n, r, c in cases() if r > 1])
def test_single_entry_directions_are_admissible(name, r, c):
    """The exact check's directions: each free entry with what moves with it (additively)."""
    props = frozenset({name})
    x = exact_floats(P.sample_exact(props, r, c, random.Random(1)))
    cells = P.free_entries(props, r, c)
    assert cells, name
    for cell in cells:
        v = np.zeros((r, c))
        for i, j, s in P.bump(props, r, cell):
            v[i, j] += s
        assert P.satisfies(props, moved(x, v)), (name, cell)


@pytest.mark.parametrize("name,r,c", cases())
def test_constrained_means_fewer_directions(name, r, c):
    """`constrained` (the gradient shown is the unconstrained one) iff some direction is lost."""
    props = frozenset({name})
    v = np.random.default_rng(0).standard_normal((r, c))
    if r > 1:
        assert P.constrained(props) == (not np.allclose(P.direction(props, v), v)), name


# ---- projections --------------------------------------------------------------------------------

@pytest.mark.parametrize("name,r,c", cases())
def test_projection(name, r, c):
    props = frozenset({name})
    for seed in SEEDS:
        rng = np.random.default_rng(seed)
        g = rng.standard_normal((r, c))
        pg = P.project(props, g)
        assert pg.shape == g.shape
        assert np.allclose(P.project(props, pg), pg), "idempotent"
        x = P.sample_float(props, r, c, rng)
        assert P.satisfies(props, moved(x, pg)), "lands on the admissible directions"
        v = P.direction(props, rng.standard_normal((r, c)))
        assert np.isclose(np.sum(g * v), np.sum(pg * v)), "keeps tr(G' V) for every admissible V"


# ---- diagnosis ----------------------------------------------------------------------------------

def test_suggestions_respect_square_and_scalar():
    assert P.suggestions((1, 1)) == []
    assert all(not P.TABLE[p].square for p in P.suggestions(("n", "m")))
    assert set(P.suggestions(("n", "n"))) == {r.name for r in P.ROWS if r.suggest}
