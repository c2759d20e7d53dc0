"""f -> df: the differential rules of `rules/differentials.rules`, applied once per node.

Memoised by node, so a sub-expression used twice has its differential derived once and shared.
"""
from __future__ import annotations

from . import properties
from .errors import UnsupportedError
from .expr import Dif, Expr, Op, Sym, walk
from .printing import to_text
from .registry import OPS
from .rewrite import first_match, index, instantiate, predicates
from .steps import Log


class Differentiator:
    """Differentiates with respect to the symbols named in `wrt`, logging each rule applied.

    The differential of each node in `steps` (a program's named steps) is kept whole, as
    `group(d(step))`, so that it stays one node of df however its uses combine around it: the
    cotangent that node receives in reverse mode is then the step's whole gradient.

    The differentials it makes carry `tag`: differentiating df (whose dX have tag 0) again with
    tag 1 gives the second differential, the dX of tag 0 held fixed (d(dX) = 0)."""

    def __init__(self, wrt: frozenset[str], log: Log | None = None, steps: frozenset[Expr] = frozenset(),
                 tag: int = 0) -> None:
        self.wrt, self.log, self.steps, self.tag = wrt, log or Log(), steps, tag
        self.candidates = index("differentials")
        self.preds = predicates(wrt, tag)
        self.memo: dict[Expr, Expr] = {}

    def __call__(self, e: Expr) -> Expr:
        if e not in self.memo:
            de = self._derive(e)
            self.memo[e] = Op("group", (de,)) if e in self.steps and de.has_d and not _grouped(de) else de
        return self.memo[e]

    def _derive(self, e: Expr) -> Expr:
        if isinstance(e, Sym) and e.name in self.wrt:
            _not_constant(e)
            return Dif(e, self.tag)
        found = first_match(self.candidates(e), e, self.preds)
        if found is None:
            for node in walk([e]):  # a declared constant asked for as a variable says so first
                if isinstance(node, Sym) and node.name in self.wrt:
                    _not_constant(node)
            what = e.op if isinstance(e, Op) else type(e).__name__
            why = f": {OPS[e.op].no_differential}" if isinstance(e, Op) and OPS[e.op].no_differential else ""
            raise UnsupportedError(f"no differential rule for '{what}' in '{to_text(e)}'{why}")
        rule, b = found
        out = instantiate(rule, rule.rhs, b, e.shape, lambda name: self._dname(name, b))
        if rule.name != "d-constant":
            self.log.add("differential", rule.name, e, out)
        return out

    def _dname(self, name: str, b: dict[str, Expr]) -> Expr | None:
        if name.startswith("d") and name[1:] in b:
            return self(b[name[1:]])
        return None


def _not_constant(e: Sym) -> None:
    """UnsupportedError if `e` is declared a constant (integer: the k of X^k), never a variable."""
    prop = properties.constant(e.props)
    if prop:
        raise UnsupportedError(f"'{e.name}' is declared {prop}: a constant, never a variable (it cannot be "
                               "differentiated)")


def _grouped(e: Expr) -> bool:
    return isinstance(e, Op) and e.op == "group"


def differential(f: Expr, wrt: frozenset[str], log: Log | None = None, tag: int = 0) -> Expr:
    """df: the differential of `f`, linear in the `dX` (of `tag`) of each X in `wrt`."""
    return Differentiator(wrt, log, tag=tag)(f)
