"""One engine: f -> df (differential rules) -> gradients (trace tricks, reverse mode), keeping its
trace; the gradients are then simplified by the same run's Simplifier, which keeps its rewrites.

`api.grad` derives through `run` (a program's step gradients too); the step-by-step derivation
renders a Run's trace (`present.derivation.derivation`), so it shows the steps the engine took.
A program's derivation by blocks runs the same engine on each step's own form. (The verdicts
differentiate claims and chains with the same Differentiator.)
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..core.expr import Expr
from .adjoint import Visit, gradients
from .differentiate import Differentiator
from .simplify import Simplifier
from .steps import Log


@dataclass
class Run:
    """The engine's run on a scalar f: df, the raw gradients {variable: G} with
    df = sum tr(G' dX), the raw gradients of the named nodes {step name: G} (its `watch`), and
    the trace: each node's differential expansion (`diff.expansions`), each reverse-mode visit
    (`visits`) and each simplification (`simp.trace`, as the gradients are simplified)."""

    f: Expr
    diff: Differentiator
    df: Expr
    raw: dict[str, Expr]
    cotangents: dict[str, Expr]
    simp: Simplifier
    visits: list[Visit] = field(default_factory=list)

    @property
    def wrt(self) -> frozenset[str]:
        return self.diff.wrt


def run(f: Expr, wrt: frozenset[str], steps: dict[str, Expr] | None = None, log: Log | None = None,
        opaque: frozenset[str] = frozenset()) -> Run:
    """The engine on f with respect to the symbols `wrt`; `steps` ({name: node of f}) are a
    program's named steps, whose gradients come back in `cotangents`; `opaque` symbols stand for
    values that may be singular everywhere (see `rewrite.predicates`)."""
    steps, log = steps or {}, log or Log()
    diff = Differentiator(wrt, log, frozenset(steps.values()), opaque=opaque)
    df = diff(f)
    watch = {diff.memo[e]: n for n, e in steps.items() if e in diff.memo and diff.memo[e].has_d}
    visits: list[Visit] = []
    raw, cot = gradients(df, wrt, log, watch, trace=visits)
    return Run(f, diff, df, raw, cot, Simplifier(wrt, log), visits)
