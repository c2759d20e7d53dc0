"""Common sub-expressions: name each sizeable sub-expression used more than once, once.

Reverse mode shares sub-expressions between gradients (the hidden activations, the
backpropagated errors); naming them keeps the printed result of an L-layer network linear in L.
"""
from __future__ import annotations

from itertools import count

from ..core.expr import Expr, Op, walk
from ..syntax.printing import to_text

MIN_NODES = 4  # `inv(X)'` (3 nodes) is clearer written out; `tanh(W1*x)` (4) gets a name


def _small(e: Expr, limit: int = MIN_NODES) -> bool:
    """Whether the tree under `e` has fewer than `limit` nodes (counting repeats)."""
    budget = [limit]

    def visit(n: Expr) -> bool:
        budget[0] -= 1
        return budget[0] > 0 and all(visit(c) for c in n.children)

    return visit(e)


MIN_CHARS = 10  # a sub-expression repeated within one gradient is named only if at least this long


def _top_level(roots: list[Expr]) -> set[Expr]:
    """The factors and terms a result is directly built from (through products, sums and
    transposes): `delta1` in `delta1*x'`, but not `W2'*delta2` inside `(W2'*delta2).*h1`."""
    out: set[Expr] = set()
    stack = list(roots)
    while stack:
        node = stack.pop()
        if node in out:
            continue
        out.add(node)
        if isinstance(node, Op) and node.op in ("mul", "matmul", "add", "transpose", "group"):
            stack.extend(node.args)
    return out


SEVERAL = -1  # `_reach`'s value for a node that occurs in more than one root


def _reach(order: list[Expr], roots: list[Expr]) -> dict[Expr, int]:
    """For each node, the index of the one root it occurs in, or SEVERAL. (An index, not the set
    of them: a set per node would make this quadratic in the depth of a network's result.)"""
    reach: dict[Expr, int] = {}

    def meet(node: Expr, i: int) -> None:
        j = reach.get(node)
        reach[node] = i if j is None or j == i else SEVERAL

    for i, r in enumerate(roots):
        meet(r, i)
    for node in reversed(order):  # parents before children
        k = reach.get(node)
        if k is not None:
            for c in node.children:
                meet(c, k)
    return reach


def common_subexpressions(roots: list[Expr], fixed: dict[Expr, str] | None = None,
                          offered: dict[Expr, str] | None = None,
                          prefix: str = "t", taken: frozenset[str] = frozenset()
                          ) -> tuple[dict[Expr, str], list[tuple[str, Expr]]]:
    """(names, where): `where` lists (name, expr) in evaluation order. Sub-expressions in `fixed`
    (a program's intermediates) are always named where they occur; the others are named when they
    are used twice or more, are not tiny, and either occur in several results (the activations
    and errors shared by the gradients of a network) or are long: with the name `offered` for
    them (`delta2`), else `t1`, `t2`, ... (skipping the names in `taken`, the loss's own)."""
    fixed, offered = fixed or {}, offered or {}
    order = walk(roots)
    reach = _reach(order, roots)
    uses: dict[Expr, int] = {r: 1 for r in roots}
    for node in order:
        for c in node.children:
            uses[c] = uses.get(c, 0) + 1
    names: dict[Expr, str] = {}
    where: list[tuple[str, Expr]] = []
    top = _top_level(roots)
    used = set(taken) | set(fixed.values()) | set(offered.values())
    fresh = (f"{prefix}{k}" for k in count(1) if f"{prefix}{k}" not in used)
    for node in order:
        if node in fixed:
            names[node] = fixed[node]
            if fixed[node] not in (n for n, _ in where):  # a2 and its group(a2) are one step
                where.append((names[node], node))
            continue
        if node in offered and node in top and not _small(node, 3):
            names[node] = offered[node]  # a backpropagated error that a gradient is built from
            where.append((names[node], node))
            continue
        trivial = isinstance(node, Op) and node.op == "transpose" and node.args[0] in names
        candidate = uses.get(node, 0) >= 2 and isinstance(node, Op) and not _small(node) and node not in roots
        if candidate and not trivial and (reach[node] == SEVERAL or len(to_text(node, names)) >= MIN_CHARS):
            names[node] = offered[node] if node in offered else next(fresh)
            where.append((names[node], node))
    return names, where


def dag_size(roots: list[Expr]) -> int:
    """Number of distinct nodes: the size of a result with sharing."""
    return len(walk(roots))
