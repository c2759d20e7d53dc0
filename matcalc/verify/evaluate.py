"""Evaluate trees with NumPy (floats) or SymPy (exact), through the registry's evaluators.

Memoised per call, so shared sub-expressions are evaluated once.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import sympy
else:  # imported by the first symbolic evaluation
    from ..core.lazy import sympy

from ..core.expr import Dif, Expr, Eye, Num, Op, Sym, walk
from ..core.registry import OPS, Dim, dim_size
from ..errors import MatcalcError


def _size(d: Dim, dims: dict[str, int]) -> int:
    return dim_size(d, dims)


def _differential(e: Expr) -> str:
    """The name of a differential leaf for messages: dX, or d(...) for an unexpanded one."""
    return "d" + e.var.name if isinstance(e, Dif) else "d(...)"


def _leaf_numpy(e: Expr, env: dict, dims: dict[str, int]):
    if isinstance(e, Sym) and e.name not in env and "dimension" in e.props:  # `/m`: the size m
        return np.array([[float(dims[e.name])]])
    if isinstance(e, Sym):
        return env[e.name]
    if isinstance(e, Num):
        return np.full((_size(e.shape[0], dims), _size(e.shape[1], dims)), float(e.value))
    if isinstance(e, Eye):
        return np.eye(_size(e.n, dims))
    raise MatcalcError(f"cannot evaluate the differential {_differential(e)}")


def _leaf_sympy(e: Expr, env: dict, dims: dict[str, int]):
    if isinstance(e, Sym) and e.name not in env and "dimension" in e.props:
        return sympy.Matrix([[dims[e.name]]])
    if isinstance(e, Sym):
        return env[e.name]
    if isinstance(e, Num):
        v = sympy.Rational(e.value.numerator, e.value.denominator)
        return sympy.Matrix(_size(e.shape[0], dims), _size(e.shape[1], dims), lambda i, j: v)
    if isinstance(e, Eye):
        return sympy.eye(_size(e.n, dims))
    raise MatcalcError(f"cannot evaluate the differential {_differential(e)}")


def _evaluate(roots: list[Expr], env: dict, dims: dict[str, int], leaf: Callable, backend: str,
              known: dict | None = None, order: list[Expr] | None = None) -> list:
    given = known or {}  # read, never copied: a caller may pass the values of a whole tree
    values: dict[Expr, object] = {}

    def get(node: Expr) -> object:
        return values[node] if node in values else given[node]

    for node in order if order is not None else walk(roots):
        if node in values or node in given:
            continue
        if isinstance(node, Op):
            fn = getattr(OPS[node.op], backend)
            values[node] = fn(*(get(a) for a in node.args))
        else:
            values[node] = leaf(node, env, dims)
    return [get(r) for r in roots]


def numeric(roots: list[Expr], env: dict[str, np.ndarray], dims: dict[str, int],
            known: dict[Expr, np.ndarray] | None = None, order: list[Expr] | None = None) -> list[np.ndarray]:
    """Float values of `roots` (2-D arrays) at the point `env`; `known` gives the values of
    nodes that have none of their own (the differentials dX in a derivation's lines) or that
    are not to be recomputed. `order`, when given, is the list of nodes to compute, children
    first (the nodes that depend on a moved symbol; every other node's value is in `known`)."""
    return _evaluate(roots, env, dims, _leaf_numpy, "numpy", known, order)


def symbolic(roots: list[Expr], env: dict[str, sympy.Matrix], dims: dict[str, int]) -> list[sympy.Matrix]:
    """SymPy matrices of `roots` at the point `env` (entries may contain symbols)."""
    return _evaluate(roots, env, dims, _leaf_sympy, "sympy")


__all__ = ["numeric", "symbolic"]
