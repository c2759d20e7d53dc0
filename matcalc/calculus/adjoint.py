"""df -> gradients: the trace tricks of `rules/adjoints.rules`, applied in reverse mode.

Starting from tr(1*df), each node P of df that contains a differential receives its left factor
G (summed over all the places P is used) and hands G2 on to its part Z via the first rule that
matches tr(G'*P) => tr(G2'*Z). Nodes are processed by decreasing height, so every contribution
to a node's G has arrived before the node is processed: each node is visited once and each G is
shared, so the cost is linear in the size of df.
"""
from __future__ import annotations

import heapq
from dataclasses import dataclass
from itertools import count

from ..core import algebra as al
from ..core.expr import Dif, Expr, Op
from ..core.registry import fmt_shape
from ..errors import MatcalcError, ShapeError, UnsupportedError
from ..syntax.parser import Syn
from ..syntax.printing import to_text
from .rewrite import Rule, first_match, index, instantiate, predicates
from .steps import Log


def targets(rule: Rule) -> list[tuple[str, Syn]]:
    """The (part, new left factor) pairs of a right side `tr(G2'*Z) + tr(G3'*W) ...`."""
    rhs, out = rule.rhs, []
    assert rhs is not None, f"adjoint rule {rule.name} has no right side"
    terms = [rhs] if rhs.kind != "add" else _flatten_add(rhs)
    for t in terms:
        ok = t.kind == "call" and t.value == "tr" and t.args[0].kind == "mul"
        if not ok or t.args[0].args[0].kind != "transpose" or t.args[0].args[1].kind != "name":
            raise MatcalcError(f"adjoint rule {rule.name}: right side must be a sum of tr(G2'*Z)")
        out.append((t.args[0].args[1].value, t.args[0].args[0].args[0]))
    return out


def _flatten_add(s: Syn) -> list[Syn]:
    return [x for a in s.args for x in (_flatten_add(a) if a.kind == "add" else [a])]


@dataclass(frozen=True)
class Visit:
    """One node of df processed in reverse mode: its left factor G (summed over its uses), the
    rule that moved it out of the way, and the (part, new left factor) pairs it handed on; a
    differential dX has no rule and no parts: its G is (a term of) X's gradient."""

    node: Expr
    g: Expr
    rule: str = ""
    parts: tuple[tuple[Expr, Expr], ...] = ()


def gradients(df: Expr, wrt: frozenset[str], log: Log | None = None, watch: dict[Expr, str] | None = None,
              seed: Expr | None = None, tag: int = 0,
              trace: list[Visit] | None = None) -> tuple[dict[str, Expr], dict[str, Expr]]:
    """({name: G} with tr(S' df) = sum of tr(G' dX) over the dX of `tag`, S the `seed` (1 for a
    scalar df: then G are the gradients in denominator layout; a matrix S of df's shape gives the
    vector-Jacobian product S -> G), and {label: G} for the nodes of df in `watch`: e.g. the
    differentials of named intermediates, whose G is the gradient with respect to them).
    Each node processed is appended to `trace` (a Visit), in the order processed."""
    log, watch = log or Log(), watch or {}
    if tag not in df.tags:
        return {}, {}
    start = al.num(1) if seed is None else seed
    if start.shape != df.shape:
        raise ShapeError(f"the seed is {fmt_shape(start.shape)} but the differential is {fmt_shape(df.shape)}")
    candidates, preds = index("adjoints"), predicates(wrt, tag)
    tie = count()
    pending: dict[Expr, list[Expr]] = {df: [start]}
    heap = [(-df.height, next(tie), df)]
    grads: dict[str, list[Expr]] = {}
    seen: dict[str, list[Expr]] = {}
    while heap:
        node = heapq.heappop(heap)[2]
        g = al.add(*pending.pop(node))
        if node in watch:
            seen.setdefault(watch[node], []).append(g)
        if isinstance(node, Dif):
            grads.setdefault(node.var.name, []).append(g)
            if trace is not None:
                trace.append(Visit(node, g))
            continue
        found = first_match(candidates(node), node, preds, {"G": g})
        if found is None:
            what = node.op if isinstance(node, Op) else type(node).__name__
            raise UnsupportedError(f"no trace trick moves '{what}' out of the way in '{to_text(node)}'")
        rule, b = found
        parts = tuple((b[part], instantiate(rule, gsyn, b, b[part].shape)) for part, gsyn in targets(rule))
        if trace is not None:
            trace.append(Visit(node, g, rule.name, parts))
        for child, g2 in parts:
            log.add("adjoint", rule.name, node, child)
            if child not in pending:
                pending[child] = []
                heapq.heappush(heap, (-child.height, next(tie), child))
            pending[child].append(g2)
    return {name: al.add(*gs) for name, gs in grads.items()}, {name: al.add(*gs) for name, gs in seen.items()}
