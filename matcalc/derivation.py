"""The derivation as a teacher writes it, line by line, each line naming its rule.

Three stages, each a sequence of whole expressions, every one equal to the one before:
* differential: start from d(f) and expand the outermost pending `d(...)` by its rule from
  `rules/differentials.rules`, one rule per line, until only the dX of the variables remain;
* trace: df = tr(df) ("a scalar equals its trace"), then the trace tricks of
  `rules/adjoints.rules` move one operator at a time out of the way of each dX, until
  df = tr(G1' dX1) + tr(G2' dX2) + ...;
* gradient: each G simplified by `rules/simplify.rules`, one rule per line.
The lines are built by replaying the same rule tables the engine uses, on whole expressions;
`check_lines` confirms numerically that consecutive lines agree.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

import numpy as np

from . import algebra as al
from .adjoint import targets
from .check import MAX_FD_ERR, _np, assign_sizes, find_point, ridders
from .errors import CheckError, UnsupportedError
from .evaluate import numeric
from .expr import Dif, DiffOf, Expr, Eye, Num, Op, Sym, walk
from .printing import to_text
from .rewrite import first_match, index, instantiate, predicates
from .simplify import Simplifier

MAX_LINES = 400  # a derivation longer than this is cut short (with a line saying so)


@dataclass(frozen=True)
class Line:
    """One line: `lhs = expr`, obtained from the line before by `rule` ("" for a stage's first)."""

    stage: str  # "differential", "trace", "gradient"
    rule: str
    lhs: str  # "df", or the variable whose gradient this is
    expr: Expr


def _rule_for(rules: list, e: Expr, preds: dict, seed: dict | None = None) -> tuple:
    """The rule the engine applies to `e` and its bindings (an UnsupportedError if none does)."""
    found = first_match(rules, e, preds, seed)
    if found is None:
        raise UnsupportedError(f"the derivation has no rule for '{to_text(e)}'")
    return found


def differential_lines(f: Expr, wrt: frozenset[str], lhs: str = "df") -> list[Line]:
    """d(f) expanded one rule at a time, outermost pending differential first."""
    rules, preds = index("differentials"), predicates(wrt)

    def pending(e: Expr) -> Expr:
        if isinstance(e, Sym) and e.name in wrt:
            return Dif(e)
        return al.zero(e.shape) if preds["constant"](e) else DiffOf(e)

    def pending_of(b: dict[str, Expr]) -> Callable[[str], Expr | None]:
        """A rule's `dA` for a bound name A: the pending differential of what A is bound to."""
        return lambda name: pending(b[name[1:]]) if name.startswith("d") and name[1:] in b else None

    cur = pending(f)
    lines = [Line("differential", "", lhs, cur)]
    while len(lines) < MAX_LINES:
        target = next((n for n in reversed(walk([cur])) if isinstance(n, DiffOf)), None)
        if target is None:
            break
        rule, b = _rule_for(rules(target.expr), target.expr, preds)
        rhs = instantiate(rule, rule.rhs, b, target.shape, pending_of(b))
        cur = al.substitute(cur, {target: rhs})
        lines.append(Line("differential", rule.name, lhs, cur))
    return lines


def _shown(terms: list[tuple[Expr, Expr]]) -> Expr:
    """tr(G1'*P1) + tr(G2'*P2) + ..., built as written (no canonical reordering)."""
    def one(g: Expr, p: Expr) -> Expr:
        if (isinstance(g, Num) and g.value == 1 and g.is_scalar) or isinstance(g, Eye):
            return p if isinstance(p, Op) and p.op == "tr" else Op("tr", (p,))
        left = g if g.is_scalar else al.transpose(g)
        return Op("tr", (Op("mul" if g.is_scalar else "matmul", (left, p)),))

    shown = [one(g, p) for g, p in terms]
    return shown[0] if len(shown) == 1 else Op("add", tuple(shown))


def trace_lines(df: Expr, wrt: frozenset[str], g0: Expr | None = None,
                lhs: str = "df") -> tuple[list[Line], dict[str, Expr]]:
    """df = tr(df) (or, for a program's step s with dL = tr(G0' ds), dL = tr(G0' d(s's
    definition)): then one trace trick per line until every term is tr(G' dX)."""
    rules, preds = index("adjoints"), predicates(wrt)
    terms: list[tuple[Expr, Expr]] = [(g0 if g0 is not None else al.num(1), df)]
    lines = [Line("trace", "scalar-trace" if g0 is None else "chain", lhs, _shown(terms))]
    while len(lines) < MAX_LINES:
        open_ = [i for i, (_, p) in enumerate(terms) if not isinstance(p, Dif)]
        if not open_:
            break
        i = max(open_, key=lambda k: terms[k][1].height)
        same = [k for k, (_, p) in enumerate(terms) if p == terms[i][1]]
        if len(same) > 1:  # one node reached along several paths: its left factors add up
            g = al.add(*(terms[k][0] for k in same))
            terms = [t for k, t in enumerate(terms) if k not in same[1:]]
            terms[same[0]] = (g, terms[same[0]][1])
            lines.append(Line("trace", "collect", lhs, _shown(terms)))
            continue
        g, p = terms[i]
        rule, b = _rule_for(rules(p), p, preds, {"G": g})
        new = [(instantiate(rule, gs, b, b[part].shape), b[part]) for part, gs in targets(rule)]
        terms = terms[:i] + new + terms[i + 1:]
        lines.append(Line("trace", rule.name, lhs, _shown(terms)))
    grads: dict[str, list[Expr]] = {}
    for g, p in terms:
        assert isinstance(p, Dif)
        grads.setdefault(p.var.name, []).append(g)
    return lines + _gathered(terms, lhs), {n: al.add(*gs) for n, gs in grads.items()}


def _gathered(terms: list[tuple[Expr, Expr]], lhs: str) -> list[Line]:
    """The final df = sum tr(G' dX), one term per variable (if terms had to be gathered)."""
    by_var: dict[Expr, list[Expr]] = {}
    for g, p in terms:
        by_var.setdefault(p, []).append(g)
    if all(len(gs) == 1 for gs in by_var.values()):
        return []
    return [Line("trace", "collect", lhs, _shown([(al.add(*gs), p) for p, gs in by_var.items()]))]


def gradient_lines(name: str, g: Expr, simp: Simplifier) -> list[Line]:
    """The raw G, then one simplification rule per line (innermost rewrite first)."""
    lines = [Line("gradient", "", name, g)]
    cur = g
    while len(lines) < MAX_LINES:
        step = _first_rewrite(cur, simp)
        if step is None:
            break
        rule, before, after = step
        cur = al.substitute(cur, {before: after})
        lines.append(Line("gradient", rule, name, cur))
    return lines


def _first_rewrite(e: Expr, simp: Simplifier) -> tuple[str, Expr, Expr] | None:
    for node in walk([e]):
        for rule in simp.candidates(node):
            new = simp._apply(rule, node)
            if new is not None and new != node:
                return rule.name, node, new
    return None


def derivation(f: Expr, variables: list[str], wrt: frozenset[str], simp: Simplifier) -> list[Line]:
    """All lines: differential, trace tricks, and each variable's gradient simplified; a line
    that shows nothing new (a step whose effect is invisible in print) is left out."""
    lines = differential_lines(f, wrt)
    if lines[-1].expr.has_d:
        more, grads = trace_lines(lines[-1].expr, wrt)
        lines += more
        lines += [ln for name in variables if name in grads for ln in gradient_lines(name, grads[name], simp)]
    return [ln for i, ln in enumerate(lines)
            if i == 0 or ln.stage != lines[i - 1].stage or ln.lhs != lines[i - 1].lhs or ln.expr != lines[i - 1].expr]


def check_lines(lines: list[Line], f: Expr, wrt: frozenset[str], seed: int = 0, tol: float = 1e-6,
                consecutive_only: bool = False, base: Expr | None = None,
                defs: dict[str, Expr] | None = None, at: tuple[dict, dict] | None = None) -> float:
    """Every line equals the one before, as a function: at a random point and direction, each
    differential/trace line evaluates to the directional derivative of f (a pending d(e) is
    evaluated by central differences of e), and each gradient line to the same matrix as the
    line before. The point is check.py's (sizes and values where `base`, else f, is defined; each
    step's symbol in `defs` holding its value there), or `at` = (dims, values) when given. Returns the
    largest disagreement relative to the values compared; raises CheckError above `tol` (or above the
    differences' own error estimate, when that is larger but below MAX_FD_ERR)."""
    if at is None:
        at = _point_for(base if base is not None else f, [f] + [ln.expr for ln in lines], seed, defs)
    dims, x0 = at[0], dict(at[1])
    rng0 = np.random.default_rng(seed + 1)
    for node in walk([f] + [ln.expr for ln in lines]):  # a delta symbol: any value will do
        if isinstance(node, Sym) and node.name not in x0:
            x0[node.name] = rng0.standard_normal((dims.get(node.shape[0], node.shape[0]),
                                                  dims.get(node.shape[1], node.shape[1])))
    rng = np.random.default_rng(seed)
    v = {k: rng.standard_normal(a.shape) if k in wrt else np.zeros(a.shape) for k, a in x0.items()}
    known: dict[Expr, np.ndarray] = {}
    slack = 0.0  # the largest error estimate of a finite difference used
    for node in walk([ln.expr for ln in lines]):
        if isinstance(node, Dif):
            known[node] = v[node.var.name]
        elif isinstance(node, DiffOf):
            known[node], e = _directional(node.expr, x0, v, dims)
            slack = max(slack, e)
    df_v, e = _directional(f, x0, v, dims)  # the same for every differential and trace line
    slack = max(slack, e)
    worst, prev = 0.0, None
    for ln in lines:
        value = numeric([ln.expr], x0, dims, known)[0]
        ref = df_v if ln.stage != "gradient" else prev if ln.rule else None
        if consecutive_only:
            ref = prev if ln is not lines[0] else None
        elif ln.stage == "gradient" and not ln.rule:  # the gradient read off: <G, V_X> is d f along V_X
            only = {k: (a if k == ln.lhs else np.zeros_like(a)) for k, a in v.items()}
            (ref, e), value = _directional(f, x0, only, dims), np.array([[np.sum(value * v[ln.lhs])]])
            slack = max(slack, e)
            prev = numeric([ln.expr], x0, dims, known)[0]
        if ref is not None:
            worst = max(worst, _line_error(ln, value, ref, tol, slack))
        if consecutive_only or not (ln.stage == "gradient" and not ln.rule):
            prev = value
    return worst


def _point_for(base: Expr, exprs: list[Expr], seed: int, defs: dict[str, Expr] | None) -> tuple[dict, dict]:
    """Sizes and float values at a point where `base` is defined, found as the gradient checks
    find theirs; a step's symbol (`defs`: name -> the step in the variables) takes its value."""
    also = (*exprs, *(defs or {}).values())
    dims = assign_sizes([base, *also])
    x0 = _np(find_point(base, {}, dims, seed, also))
    if defs:
        x0.update(zip(defs, numeric(list(defs.values()), x0, dims)))
    return dims, x0


def _line_error(ln: Line, value: np.ndarray, ref: np.ndarray, tol: float, slack: float) -> float:
    """The disagreement of a line with its reference, relative to their size (at least 1); raises
    CheckError when it exceeds both `tol` and four times the finite differences' error estimate
    (which is trusted only while below MAX_FD_ERR)."""
    scale = max(1.0, float(np.max(np.abs(ref))), float(np.max(np.abs(value))))
    err = float(np.max(np.abs(value - ref))) / scale
    allowed = max(tol, min(4 * slack / scale, MAX_FD_ERR))
    if not err <= allowed:
        raise CheckError(f"derivation line ({ln.rule}) does not follow: rel. err {err:.1e}")
    return err


def _directional(e: Expr, x0: dict, v: dict, dims: dict) -> tuple[np.ndarray, float]:
    """(d e along v, error estimate), by central differences extrapolated (Ridders), from a step
    scaled to the point."""
    def at(t: float):
        with np.errstate(all="ignore"):
            return numeric([e], {k: x0[k] + t * v[k] for k in x0}, dims)[0]

    scale = max([1.0] + [float(np.max(np.abs(a))) for k, a in x0.items() if np.any(v[k])])
    return ridders(at, 1e-3 * scale)


@dataclass(frozen=True)
class Block:
    """Lines checked together: against `f` (a block's own scalar), or, with f None, only each
    line against the one before (a gradient gathered from several blocks, simplified)."""

    lines: list[Line]
    f: Expr | None
    wrt: frozenset[str]


def program_blocks(loss: Expr, steps: dict[str, Expr], delta: dict[str, str], variables: list[str],
                   simp: Simplifier) -> list[Block]:
    """Backpropagation by steps, as the notes write it: the loss's differential in terms of the
    steps it uses (dL = tr(delta2' da2)), then for each step, last first, its own differential
    under the trace with its delta (tr(delta2' d(W2*h1)) = tr((delta2*h1')' dW2) + ...), which
    gives the deltas of the steps it uses and the variables' gradients. `steps` holds each step
    written with the earlier steps as symbols; `delta` names each step's gradient."""
    own = frozenset(variables) | frozenset(steps)
    blocks: list[Block] = []
    contrib: dict[str, list[Expr]] = {}
    lines = differential_lines(loss, own)
    more, grads = trace_lines(lines[-1].expr, own) if lines[-1].expr.has_d else ([], {})
    blocks.append(Block(lines + more, loss, own))
    _add(contrib, grads)
    for name in reversed(list(steps)):
        if name not in contrib:
            continue
        g = Sym(delta[name], steps[name].shape)
        blocks.append(Block(gradient_lines(name, al.add(*contrib.pop(name)), simp), None, own))
        body = differential_lines(steps[name], own, "d" + name)
        more, grads = trace_lines(body[-1].expr, own, g) if body[-1].expr.has_d else ([], {})
        sym = Sym(name, steps[name].shape)
        shown = [body[0]] + [replace(ln, expr=al.substitute(ln.expr, {steps[name]: sym})) for ln in body[1:]]
        more = [replace(ln, expr=al.substitute(ln.expr, {steps[name]: sym})) for ln in more]
        grads = {k: al.substitute(v, {steps[name]: sym}) for k, v in grads.items()}
        blocks.append(Block(shown, steps[name], own))  # d(step): a matrix-valued differential
        blocks.append(Block(more, Op("tr", (al.matmul(al.transpose(g), steps[name]),)), own))
        _add(contrib, grads)
    for name in variables:
        if name in contrib:
            blocks.append(Block(gradient_lines(name, al.add(*contrib[name]), simp), None, own))
    return blocks


def _add(contrib: dict[str, list[Expr]], grads: dict[str, Expr]) -> None:
    for n, g in grads.items():
        contrib.setdefault(n, []).append(g)


def check_blocks(blocks: list[Block], base: Expr, defs: dict[str, Expr], seed: int = 0) -> float:
    """check_lines for each block, at a point where the whole loss `base` is defined, each step's
    symbol holding its value there (`defs`: name -> the step in the variables); a block without
    its own scalar is checked line against line."""
    scalars = [b.f if b.f is not None else Op("sum", (b.lines[0].expr,)) for b in blocks]
    at = _point_for(base, scalars + [ln.expr for b in blocks for ln in b.lines], seed, defs)  # one point for all
    worst = 0.0
    for b, f in zip(blocks, scalars):
        worst = max(worst, check_lines(b.lines, f, b.wrt, seed, consecutive_only=b.f is None, base=base, defs=defs,
                                       at=at))
    return worst
