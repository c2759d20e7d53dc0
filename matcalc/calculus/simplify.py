"""Simplification: `rules/simplify.rules` applied bottom-up to a fixed point, memoised by node.

Children are simplified first; then the first rule matching the rebuilt node fires and its result
is simplified again. The memo is shared across all gradients of one derivation, so shared
sub-expressions are simplified once and stay shared.
"""
from __future__ import annotations

from itertools import combinations

from ..core import algebra as al
from ..core.expr import Expr, Num, Op
from ..core.registry import OPS
from ..errors import ShapeError
from .rewrite import PYTHON_RULES, could_match, holds, index, instantiate, load_table, match, predicates, python_rule
from .steps import Log, Step


def _term_parts(t: Expr) -> tuple[list[Expr], list[Expr]]:
    """A term as (scalar factors, matrix-product factors): `2*a*A*B` -> ([2, a], [A, B])."""
    scalars: list[Expr] = []
    if isinstance(t, Op) and t.op == "mul" and not t.is_scalar:
        scalars, t = list(t.args[:-1]), t.args[-1]
    factors = list(t.args) if isinstance(t, Op) and t.op == "matmul" else [t]
    return scalars, factors


@python_rule
def kron_vec(e: Expr) -> Expr | None:
    """`kron(B, A)*vec(X) => vec(A*X*B')` (Matrix Cookbook 520), also for a sum of (scaled)
    Kronecker products times one vec: `(kron(B, A) + kron(D, C))*vec(X) => vec(A*X*B' + C*X*D')`,
    when every A*X*B' conforms (a pattern cannot state that). This direction is the simplification:
    the (p*m) x (q*n) Kronecker product is never formed (O(mnpq) entries against the products of
    the factors) and the result is the matrix form a reader writes; reshape(vec(M), X) then folds
    to M. Terminates: every kron of the product disappears."""
    if not (isinstance(e, Op) and e.op == "matmul" and len(e.args) >= 2):
        return None
    k, v = e.args[-2], e.args[-1]
    if not (isinstance(v, Op) and v.op == "vec"):
        return None
    x = v.args[0]
    parts = []
    for t in (k.args if isinstance(k, Op) and k.op == "add" else (k,)):
        scalars, body = al.split_scalars(t)
        if not (isinstance(body, Op) and body.op == "kron"):
            return None
        b, a = body.args
        if a.shape[1] != x.shape[0] or b.shape[1] != x.shape[1]:
            return None
        parts.append(al.mul(*scalars, al.matmul(a, x, al.transpose(b))))
    out = al.call("vec", al.add(*parts))
    return al.matmul(*e.args[:-2], out) if len(e.args) > 2 else out


@python_rule
def factor_scalar(e: Expr) -> Expr | None:
    """`A/m - Y/m => (A - Y)/m`: a scalar factor (not a number) common to every term comes out.
    Terminates: the copies of the factor become one."""
    if not (isinstance(e, Op) and e.op == "add"):
        return None
    parts = [_scalar_factors(t) for t in e.args]
    common = [f for f in parts[0] if all(f in p for p in parts[1:])]
    if not common:
        return None
    inv = [al.power(f, -1) for f in common]
    return al.mul(*common, al.add(*(al.mul(*inv, t) for t in e.args)))


def _scalar_factors(t: Expr) -> list[Expr]:
    """The symbolic scalar factors of a term (not its number, nor its matrix body)."""
    if not (isinstance(t, Op) and t.op == "mul"):
        return []
    scalars = t.args if t.is_scalar else t.args[:-1]
    return [f for f in scalars if not isinstance(f, Num)]


@python_rule
def factor_common(e: Expr) -> Expr | None:
    """`A*C + B*C => (A + B)*C` and `C*A + C*B => C*(A + B)`, for the factor shared by most terms.

    Only matrix-product terms of two or more factors take part, so nothing becomes `(I + A)*x`.
    Terminates: each application removes at least one copy of the shared factor.
    """
    if not (isinstance(e, Op) and e.op == "add"):
        return None
    parts = [_term_parts(t) for t in e.args]
    best: tuple[int, str, Expr] | None = None
    for side, pick in (("right", -1), ("left", 0)):
        groups: dict[Expr, int] = {}
        for _scalars, factors in parts:
            if len(factors) >= 2:
                groups[factors[pick]] = groups.get(factors[pick], 0) + 1
        for f, n in groups.items():
            if n >= 2 and (best is None or n > best[0]):
                best = (n, side, f)
    if best is None:
        return None
    _, side, f = best
    pick = -1 if side == "right" else 0
    inside, outside = [], []
    for t, (scalars, factors) in zip(e.args, parts):
        if len(factors) >= 2 and factors[pick] == f:
            rest = factors[:-1] if side == "right" else factors[1:]
            inside.append(al.mul(*scalars, al.matmul(*rest)))
        else:
            outside.append(t)
    group = al.add(*inside)
    return al.add(al.matmul(group, f) if side == "right" else al.matmul(f, group), *outside)


@python_rule
def elementwise_transpose(e: Expr) -> Expr | None:
    """`f(A')' => f(A)` for an elementwise f: the transposes cancel through f."""
    if not (isinstance(e, Op) and e.op == "transpose" and isinstance(e.args[0], Op)):
        return None
    inner = e.args[0]
    if not (OPS[inner.op].elementwise and isinstance(inner.args[0], Op) and inner.args[0].op == "transpose"):
        return None
    return al.call(inner.op, inner.args[0].args[0])


@python_rule
def distribute_cancelling(e: Expr) -> Expr | None:
    """`S .* (B + C./S) => S .* B + C` (and likewise for scalar factors: `a*(x/a + b) => x + a*b`):
    a factor is multiplied into a sum when it cancels in at least one term. Terminates: each
    application removes a factor from at least one term and is never undone (nothing factors
    elementwise or scalar products back out)."""
    if not (isinstance(e, Op) and e.op in ("hadamard", "mul")):
        return None
    build = al.hadamard if e.op == "hadamard" else al.mul
    for i, s in enumerate(e.args):
        if isinstance(s, Op) and s.op == "add":
            others = e.args[:i] + e.args[i + 1:]
            if any(_cancels(others, t, e.op) for t in s.args):
                return al.add(*(build(*others, t) for t in s.args))
    return None


def _cancels(others: tuple[Expr, ...], term: Expr, op: str) -> bool:
    """Whether a factor of `others` meets a reciprocal power of itself in `term` (x and 1./x)."""
    mine = dict(al.base_exp(f) for o in others for f in _factors(o, op))
    for f in _factors(term, op):
        base, p = al.base_exp(f)  # a number's powers are not combined (3*3^-0.5 stays): skip them
        if base in mine and (p > 0) != (mine[base] > 0) and not isinstance(base, Num):
            return True
    return False


def _factors(e: Expr, op: str) -> tuple[Expr, ...]:
    if isinstance(e, Op) and e.op == "mul" and op == "hadamard" and not e.is_scalar:
        return e.args[:-1] + _factors(e.args[-1], op)
    return e.args if isinstance(e, Op) and e.op == op else (e,)


EXPAND_LIMIT = 40  # nodes: expanding is tried only on small sums, where its cost is bounded


@python_rule
def expand_if_shorter(e: Expr) -> Expr | None:
    """`A.*(1 - Y) - Y.*(1 - A) => A - Y`: multiply out the products of a small sum when the
    terms then cancel to something smaller. Terminates: the result is strictly smaller."""
    if not (isinstance(e, Op) and e.op == "add") or _tree_size(e, EXPAND_LIMIT) >= EXPAND_LIMIT:
        return None
    raw = [t2 for t in e.args for t2 in _expand(t)]
    expanded = al.add(*raw)
    kept = len(expanded.args) if isinstance(expanded, Op) and expanded.op == "add" else 1
    cancelled = kept < len(raw)
    return expanded if cancelled and _tree_size(expanded, EXPAND_LIMIT) < _tree_size(e, EXPAND_LIMIT) else None


def _expand(t: Expr) -> list[Expr]:
    """The terms of `t` multiplied out over one sum among its elementwise or scalar factors."""
    if not (isinstance(t, Op) and t.op in ("hadamard", "mul")):
        return [t]
    build = al.hadamard if t.op == "hadamard" else al.mul
    for i, f in enumerate(t.args):
        if isinstance(f, Op) and f.op == "add":
            rest = t.args[:i] + t.args[i + 1:]
            return [x for s in f.args for x in _expand(build(*rest, s))]
        if isinstance(f, Op) and f.op == "hadamard" and t.op == "mul":
            inner = _expand(f)
            if len(inner) > 1:
                return [build(*(t.args[:i] + t.args[i + 1:]), x) for x in inner]
    return [t]


def _tree_size(e: Expr, limit: int) -> int:
    """Nodes of the written-out sum-and-product structure (anything else, such as a function
    call or a matrix product, counts as one node); counting stops at `limit`."""
    count, stack = 0, [e]
    while stack and count < limit:
        node = stack.pop()
        count += 1
        if isinstance(node, Op) and node.op in ("add", "mul", "hadamard", "pow", "transpose"):
            stack.extend(node.args)
    return count


@python_rule
def negate_sum(e: Expr) -> Expr | None:
    """`-A - B => -(A + B)`: a sum of negated terms shows its sign once (and, inside a product,
    the sign moves to the front: `C*(-A - B)*D` becomes `-C*(A + B)*D`)."""
    if not (isinstance(e, Op) and e.op == "add" and all(al.split_coef(t)[0] < 0 for t in e.args)):
        return None
    return al.neg(al.add(*(al.neg(t) for t in e.args)))


MAX_CHAIN = 100  # rewrites of one node in a row; a longer chain is a cycle of rules (a bug to report)
MAX_PASSES = 8  # passes after the first; each is cheap, since unchanged sub-trees are memoised


class Simplifier:
    """Simplifies by the rules of `rules/simplify.rules`; keeps its rewrites in `trace`."""

    def __init__(self, wrt: frozenset[str] = frozenset(), log: Log | None = None) -> None:
        self.log = log or Log()
        self.rules = load_table("simplify")
        self.candidates = index("simplify")
        self.preds = predicates(wrt)
        self.memo: dict[Expr, Expr] = {}
        self.chain = 0  # rewrites in a row now in progress (see MAX_CHAIN)
        self.trace: list[Step] = []  # every rewrite, in the order made: what a derivation shows

    def __call__(self, e: Expr) -> Expr:
        """`e` simplified: bottom-up passes until one changes nothing (so simplifying the
        result again gives the same tree)."""
        out = self._pass(e)
        for _ in range(MAX_PASSES):
            again = self._pass(out)
            if again == out:
                break
            out = again
        return out

    def _pass(self, e: Expr) -> Expr:
        if e in self.memo:
            return self.memo[e]
        node = e
        for _ in range(MAX_PASSES):  # a constructor may build new children: simplify those too
            if not isinstance(node, Op) or all(self.memo.get(a) == a for a in node.args):
                break
            args = tuple(self._pass(a) for a in node.args)
            if args == node.args:
                break
            node = al.build_op(node.op, args)
        out = self._rewrite(node)
        self.memo[e] = out
        return out

    def _rewrite(self, e: Expr) -> Expr:
        if e in self.memo and self.memo[e] is not e:
            return self.memo[e]
        if self.chain >= MAX_CHAIN:  # rules that undo each other: stop with an equal tree
            return e
        for rule in self.candidates(e):
            new = self._apply(rule, e)
            if new is not None and new != e:
                self.log.add("simplify", rule.name, e, new)
                self.trace.append(Step("simplify", rule.name, e, new))
                self.chain += 1
                try:
                    out = self._pass(new)
                finally:
                    self.chain -= 1
                self.memo[e] = out
                return out
        self.memo[e] = e
        return e

    def _apply(self, rule, e: Expr) -> Expr | None:
        """The rule's rewrite of `e` (or of two of its operands), or None. An identity applies
        only where its right side is well-shaped: `reshape(vec(A), B) => A` needs A shaped like
        B, `vec(A) + vec(B) => vec(A + B)` needs A and B alike; elsewhere it does not apply."""
        if rule.fn is not None:
            return PYTHON_RULES[rule.fn](e)
        for part, rebuild in _parts(rule, e):
            for b in match(rule.pattern, part, {}):
                if holds(rule, b, self.preds):
                    try:
                        return rebuild(instantiate(rule, rule.rhs, b, part.shape))
                    except ShapeError:
                        continue
        return None


def _parts(rule, e: Expr):
    """The node itself, then (for a two-operand pattern of the same operator) every pair of
    operands of a longer sum or product, or pair of adjacent factors of a matrix product, with a
    function putting the rewritten pair back among the other operands."""
    yield e, lambda new: new
    heads = rule.heads or frozenset()
    if not (isinstance(e, Op) and e.op in heads and len(e.args) > 2 and len(rule.pattern.args) == 2):
        return
    f = e.args
    if e.op == "matmul":
        for i in range(len(f) - 1):
            yield al.matmul(f[i], f[i + 1]), lambda new, i=i: al.matmul(*f[:i], new, *f[i + 2:])
        return
    first, second = ([could_match(q, x) for x in f] for q in rule.pattern.args)
    for i, j in combinations(range(len(f)), 2):
        if not (first[i] and second[j] or first[j] and second[i]):
            continue  # only pairs whose operands the two sides could match (vec(A) + vec(B): two vecs)
        rest = [x for k, x in enumerate(f) if k not in (i, j)]
        yield al.build_op(e.op, (f[i], f[j])), lambda new, rest=rest: al.build_op(e.op, (new, *rest))


def simplify(e: Expr, log: Log | None = None) -> Expr:
    return Simplifier(log=log)(e)
