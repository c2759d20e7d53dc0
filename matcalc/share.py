"""Common sub-expressions: name each sizeable sub-expression used more than once, once.

Reverse mode shares sub-expressions between gradients (the hidden activations, the
backpropagated errors); naming them keeps the printed result of an L-layer network linear in L.
"""
from __future__ import annotations

from .expr import Expr, Op, walk
from .printing import to_text

MIN_NODES = 4  # `inv(X)'` (3 nodes) is clearer written out; `tanh(W1*x)` (4) gets a name


def _small(e: Expr, limit: int = MIN_NODES) -> bool:
    """Whether the tree under `e` has fewer than `limit` nodes (counting repeats)."""
    budget = [limit]

    def visit(n: Expr) -> bool:
        budget[0] -= 1
        return budget[0] > 0 and all(visit(c) for c in n.children)

    return visit(e)


MIN_CHARS = 10  # a sub-expression repeated within one gradient is named only if at least this long


def _reach(order: list[Expr], roots: list[Expr]) -> dict[Expr, frozenset[int]]:
    """For each node, the indices of the roots it occurs in."""
    reach: dict[Expr, set[int]] = {}
    for i, r in enumerate(roots):
        reach.setdefault(r, set()).add(i)
    for node in reversed(order):  # parents before children
        for c in node.children:
            reach.setdefault(c, set()).update(reach.get(node, ()))
    return {k: frozenset(v) for k, v in reach.items()}


def common_subexpressions(roots: list[Expr], prefix: str = "t") -> tuple[dict[Expr, str], list[tuple[str, Expr]]]:
    """(names, where): `where` lists (name, expr) in evaluation order. A sub-expression is named
    when it is used twice or more, is not tiny, and either occurs in several results (the
    activations and errors shared by the gradients of a network) or is long."""
    order = walk(roots)
    reach = _reach(order, roots)
    uses: dict[Expr, int] = {r: 1 for r in roots}
    for node in order:
        for c in node.children:
            uses[c] = uses.get(c, 0) + 1
    names: dict[Expr, str] = {}
    where: list[tuple[str, Expr]] = []
    for node in order:
        trivial = isinstance(node, Op) and node.op == "transpose" and node.args[0] in names
        candidate = uses.get(node, 0) >= 2 and isinstance(node, Op) and not _small(node) and node not in roots
        if candidate and not trivial and (len(reach[node]) > 1 or len(to_text(node, names)) >= MIN_CHARS):
            names[node] = f"{prefix}{len(where) + 1}"
            where.append((names[node], node))
    return names, where


def dag_size(roots: list[Expr]) -> int:
    """Number of distinct nodes: the size of a result with sharing."""
    return len(walk(roots))
