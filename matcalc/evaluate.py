"""Evaluate trees with NumPy (floats) or SymPy (exact), through the registry's evaluators.

Memoised per call, so shared sub-expressions are evaluated once.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import sympy

from .errors import MatcalcError
from .expr import Dif, Expr, Eye, Num, Op, Sym, walk
from .registry import OPS, Dim


def _size(d: Dim, dims: dict[str, int]) -> int:
    return d if isinstance(d, int) else dims[d]


def _leaf_numpy(e: Expr, env: dict, dims: dict[str, int]):
    if isinstance(e, Sym):
        return env[e.name]
    if isinstance(e, Num):
        return np.full((_size(e.shape[0], dims), _size(e.shape[1], dims)), float(e.value))
    if isinstance(e, Eye):
        return np.eye(_size(e.n, dims))
    raise MatcalcError(f"cannot evaluate the differential {e.var.name}")


def _leaf_sympy(e: Expr, env: dict, dims: dict[str, int]):
    if isinstance(e, Sym):
        return env[e.name]
    if isinstance(e, Num):
        v = sympy.Rational(e.value.numerator, e.value.denominator)
        return sympy.Matrix(_size(e.shape[0], dims), _size(e.shape[1], dims), lambda i, j: v)
    if isinstance(e, Eye):
        return sympy.eye(_size(e.n, dims))
    raise MatcalcError(f"cannot evaluate the differential {e.var.name}")


def _evaluate(roots: list[Expr], env: dict, dims: dict[str, int], leaf: Callable, backend: str,
              known: dict | None = None) -> list:
    values: dict[Expr, object] = dict(known or {})
    for node in walk(roots):
        if node in values:
            continue
        if isinstance(node, Op):
            fn = getattr(OPS[node.op], backend)
            values[node] = fn(*(values[a] for a in node.args))
        else:
            values[node] = leaf(node, env, dims)
    return [values[r] for r in roots]


def numeric(roots: list[Expr], env: dict[str, np.ndarray], dims: dict[str, int],
            known: dict[Expr, np.ndarray] | None = None) -> list[np.ndarray]:
    """Float values of `roots` (2-D arrays) at the point `env`; `known` gives the values of
    nodes that have none of their own (the differentials dX in a derivation's lines)."""
    return _evaluate(roots, env, dims, _leaf_numpy, "numpy", known)


def symbolic(roots: list[Expr], env: dict[str, sympy.Matrix], dims: dict[str, int]) -> list[sympy.Matrix]:
    """SymPy matrices of `roots` at the point `env` (entries may contain symbols)."""
    return _evaluate(roots, env, dims, _leaf_sympy, "sympy")


__all__ = ["numeric", "symbolic"]
