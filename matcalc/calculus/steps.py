"""The rewrite log: every rule application recorded as (stage, rule, before, after).

It is the step-by-step derivation for free, and the first place to look when something is wrong.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..core.expr import Expr


@dataclass(frozen=True, slots=True)
class Step:
    stage: str  # "differential", "adjoint", "simplify"
    rule: str
    before: Expr
    after: Expr


@dataclass
class Log:
    steps: list[Step] = field(default_factory=list)

    def add(self, stage: str, rule: str, before: Expr, after: Expr) -> None:
        self.steps.append(Step(stage, rule, before, after))
