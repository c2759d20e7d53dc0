"""f -> df: the differential rules of `rules/differentials.rules`, applied once per node.

Each node's rule application is kept (`Differentiator.applied`: the rule and its bindings); the
derivation's differential lines show those applications on the whole expression (`expand`).
Memoised by node, so a sub-expression used twice has its differential derived once and shared.
"""
from __future__ import annotations

from typing import Callable

from ..core import algebra as al
from ..core import properties
from ..core.expr import Dif, DiffOf, Expr, Op, Sym, walk
from ..core.registry import OPS
from ..errors import MatcalcError, UnsupportedError
from ..syntax.printing import to_text
from .rewrite import Binds, Rule, first_match, index, instantiate, predicates
from .steps import Log


class Differentiator:
    """Differentiates with respect to the symbols named in `wrt`, one rule per node.

    `self(e)` applies the first differential rule that matches `e` (`rule_for`, recorded in
    `applied`) with each `dA` of its right side the differential `self(A)`; memoised by node, so a
    sub-expression used twice has its differential derived once and shared. `expand(e)` is the
    same rule application with each `dA` left pending (`DiffOf(A)`): the line a derivation shows
    for that step of the engine.

    The differential of each node in `steps` (a program's named steps) is kept whole, as
    `group(d(step))`, so that it stays one node of df however its uses combine around it: the
    cotangent that node receives in reverse mode is then the step's whole gradient.

    The differentials it makes carry `tag`: differentiating df (whose dX have tag 0) again with
    tag 1 gives the second differential, the dX of tag 0 held fixed (d(dX) = 0)."""

    def __init__(self, wrt: frozenset[str], log: Log | None = None, steps: frozenset[Expr] = frozenset(),
                 tag: int = 0, opaque: frozenset[str] = frozenset()) -> None:
        self.wrt, self.log, self.steps, self.tag = wrt, log or Log(), steps, tag
        self.candidates = index("differentials")
        self.preds = predicates(wrt, tag, opaque)
        self.memo: dict[Expr, Expr] = {}
        self.applied: dict[Expr, tuple[Rule, Binds]] = {}  # node -> the rule applied and its bindings
        self.expansions: dict[Expr, tuple[str, Expr]] = {}  # node -> (rule, right side with d(A) pending)

    def __call__(self, e: Expr) -> Expr:
        if e not in self.memo:
            top = self.pending(e)
            if isinstance(top, DiffOf):
                rule, b = self.rule_for(e)
                top = instantiate(rule, rule.rhs, b, e.shape, lambda name: self._part(name, b, self))
                self.log.add("differential", rule.name, e, top)
            self.memo[e] = Op("group", (top,)) if e in self.steps and top.has_d and not _grouped(top) else top
        return self.memo[e]

    def pending(self, e: Expr) -> Expr:
        """The differential of `e` as a rule's right side holds it before it is expanded: dX for
        a variable, 0 for a constant, else `d(e)` pending."""
        if isinstance(e, Sym) and e.name in self.wrt:
            _not_constant(e)
            return Dif(e, self.tag)
        return al.zero(e.shape) if self.preds["constant"](e) else DiffOf(e, self.tag)

    def rule_for(self, e: Expr) -> tuple[Rule, Binds]:
        """The first differential rule matching `e` and its bindings (memoised); an
        UnsupportedError names the operator no rule differentiates."""
        if e not in self.applied:
            found = first_match(self.candidates(e), e, self.preds)
            if found is None:
                raise _no_rule(e, self.wrt)
            self.applied[e] = found
        return self.applied[e]

    def expand(self, e: Expr) -> tuple[str, Expr]:
        """(rule, d(e) by the rule the engine applies to `e`, the parts' differentials pending):
        the same right side as `self(e)` builds, with `d(A)` in place of `self(A)` (memoised)."""
        if e not in self.expansions:
            rule, b = self.rule_for(e)
            shallow = instantiate(rule, rule.rhs, b, e.shape, lambda name: self._part(name, b, self.pending))
            self.expansions[e] = (rule.name, shallow)
        return self.expansions[e]

    @staticmethod
    def _part(name: str, b: Binds, differential: Callable[[Expr], Expr]) -> Expr | None:
        """A rule's `dA` for a bound name A: `differential` of what A is bound to."""
        return differential(b[name[1:]]) if name.startswith("d") and name[1:] in b else None


def _no_rule(e: Expr, wrt: frozenset[str]) -> MatcalcError:
    """The error for a node no differential rule matches (a declared constant asked for as a
    variable says so first)."""
    for node in walk([e]):
        if isinstance(node, Sym) and node.name in wrt:
            _not_constant(node)
    what = e.op if isinstance(e, Op) else type(e).__name__
    why = f": {OPS[e.op].no_differential}" if isinstance(e, Op) and OPS[e.op].no_differential else ""
    return UnsupportedError(f"no differential rule for '{what}' in '{to_text(e)}'{why}")


def _not_constant(e: Sym) -> None:
    """UnsupportedError if `e` is declared a constant (integer: the k of X^k), never a variable."""
    prop = properties.constant(e.props)
    if prop:
        raise UnsupportedError(f"'{e.name}' is declared {prop}: a constant, never a variable (it cannot be "
                               "differentiated)")


def _grouped(e: Expr) -> bool:
    return isinstance(e, Op) and e.op == "group"
