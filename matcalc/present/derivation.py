"""The derivation as a teacher writes it, line by line, each line naming its rule.

Three stages, each a sequence of whole expressions, every one equal to the one before:
* differential: start from d(f) and expand the outermost pending `d(...)` by its rule from
  `rules/differentials.rules`, one rule per line, until only the dX of the variables remain;
* trace: df = tr(df) ("a scalar equals its trace"), then the trace tricks of
  `rules/adjoints.rules` move one operator at a time out of the way of each dX, until
  df = tr(G1' dX1) + tr(G2' dX2) + ...;
* gradient: each G simplified by `rules/simplify.rules`, one rule per line.
The lines render the engine's own run (its `Differentiator.expansions`, the reverse-mode `Visit`s of
`adjoint.gradients`, the `Simplifier.trace`) on whole expressions, so every line shown is a step
the engine took and the last lines are its results; `check_lines` confirms numerically that
consecutive lines agree.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..calculus.adjoint import Visit, gradients
from ..calculus.differentiate import Differentiator
from ..calculus.engine import Run
from ..calculus.simplify import Simplifier
from ..core import algebra as al
from ..core.expr import Dif, DiffOf, Expr, Eye, Num, Op, Sym, walk
from ..errors import CheckError, DomainError
from ..verify.check import MAX_FD_ERR, _np, assign_sizes, find_point, ridders
from ..verify.evaluate import numeric

MAX_LINES = 400  # a stage longer than this is cut short: its last line ("cut") is the engine's result


@dataclass(frozen=True)
class Line:
    """One line: `lhs = expr`, obtained from the line before by `rule` ("" for a stage's first)."""

    stage: str  # "differential", "trace", "gradient"
    rule: str
    lhs: str  # "df", or the variable whose gradient this is
    expr: Expr


def differential_lines(diff: Differentiator, f: Expr, lhs: str = "df", final: Expr | None = None) -> list[Line]:
    """d(f), then one line per expansion the engine makes, outermost pending d(...) first, until
    only the dX of the variables remain. Expansions not made yet are made by the engine
    (`diff.expand`) as the lines need them. With `final` (the engine's df), the last line is
    `final`: reached by the expansions, or else after a line cut short ("cut") or a line that only
    writes the sum in normal form ("normal-form": powers of one base combined across steps)."""
    cur = diff.pending(f)
    lines = [Line("differential", "", lhs, cur)]
    target = None
    while len(lines) < MAX_LINES:
        target = next((n for n in reversed(walk([cur])) if isinstance(n, DiffOf)), None)
        if target is None:
            break
        rule, rhs = diff.expand(target.expr)
        cur = al.substitute(cur, {target: rhs}, inside=lambda n: diff.tag in n.tags)
        lines.append(Line("differential", rule, lhs, cur))
    if final is not None and cur != final:
        lines.append(Line("differential", "cut" if cur.has_pending else "normal-form", lhs, final))
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
    """The engine's reverse mode on df (seeded with g0, else 1), one line per node it processes:
    df = tr(df) ("a scalar equals its trace"; or, for a program's step s with dL = tr(G0' ds),
    dL = tr(G0' d(s's definition))), then each trace trick the engine applied (and each gathering
    of a node's uses, "collect") until every term is tr(G' dX). Also returns the gradients."""
    visits: list[Visit] = []
    grads, _ = gradients(df, wrt, seed=g0, trace=visits)
    return render_visits(df, visits, g0, lhs), grads


def render_visits(df: Expr, visits: list[Visit], g0: Expr | None, lhs: str) -> list[Line]:
    """The lines of a reverse-mode trace: the terms tr(G' P) of df as the visits transform them."""
    terms: list[tuple[Expr, Expr]] = [(g0 if g0 is not None else al.num(1), df)]
    lines = [Line("trace", "scalar-trace" if g0 is None else "chain", lhs, _shown(terms))]
    for k, v in enumerate(visits):
        at = [k for k, (_, p) in enumerate(terms) if p == v.node]
        if len(lines) >= MAX_LINES or not at:
            done: list[tuple[Expr, Expr]] = [(u.g, u.node) for u in visits if isinstance(u.node, Dif)]
            lines.append(Line("trace", "cut", lhs, _shown(done)))  # the remaining visits at once
            break
        i = at[0]
        terms = [t for k, t in enumerate(terms) if k not in at[1:]]
        terms[i] = (v.g, v.node)
        if len(at) > 1:  # one node reached along several paths: its left factors add up
            lines.append(Line("trace", "collect", lhs, _shown(terms)))
        if v.rule:
            terms = terms[:i] + [(g2, child) for child, g2 in v.parts] + terms[i + 1:]
            lines.append(Line("trace", v.rule, lhs, _shown(terms)))
    return lines


def gradient_lines(name: str, g: Expr, simp: Simplifier) -> list[Line]:
    """The raw G, then one line per rewrite the engine's simplifier made of a part of it (in the
    order made; a rewrite of a shared part, made once, shows wherever the part occurs) until G is
    the engine's result."""
    result = simp(g)
    lines = [Line("gradient", "", name, g)]
    cur, rounds = g, 0
    while cur != result and rounds <= MAX_REPLAYS and len(lines) < MAX_LINES:
        rounds += 1
        present = set(walk([cur]))
        for step in simp.trace:
            if step.before in present and len(lines) < MAX_LINES:
                cur = al.substitute(cur, {step.before: step.after})
                present = set(walk([cur]))
                lines.append(Line("gradient", step.rule, name, cur))
    if cur != result:  # the rest of the engine's simplification at once
        lines.append(Line("gradient", "cut" if len(lines) >= MAX_LINES else "simplify", name, result))
    return lines


MAX_REPLAYS = 8  # passes over the simplifier's trace (a shared part rewritten early shows later)


def derivation(run: Run, variables: list[str]) -> list[Line]:
    """The engine's run rendered: its differential expansions, its reverse-mode visits and each
    variable's simplification; a line that shows nothing new (a step whose effect is invisible
    in print) is left out."""
    lines = differential_lines(run.diff, run.f, final=run.df)
    if run.df.has_d:
        lines += render_visits(run.df, run.visits, None, "df")
        lines += [ln for name in variables if name in run.raw for ln in gradient_lines(name, run.raw[name], run.simp)]
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
    values = numeric([ln.expr for ln in lines], x0, dims, known)  # at once: the lines share most subtrees
    for ln, value in zip(lines, values):
        ref = df_v if ln.stage != "gradient" else prev if ln.rule else None
        if consecutive_only:
            ref = prev if ln is not lines[0] else None
        elif ln.stage == "gradient" and not ln.rule:  # the gradient read off: <G, V_X> is d f along V_X
            only = {k: (a if k == ln.lhs else np.zeros_like(a)) for k, a in v.items()}
            (ref, e), prev = _directional(f, x0, only, dims), value
            value = np.array([[np.sum(value * v[ln.lhs])]])
            slack = max(slack, e)
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
    (which is trusted only while below MAX_FD_ERR), DomainError where either is not finite."""
    if not (np.all(np.isfinite(value)) and np.all(np.isfinite(ref))):  # norm2(step(r)) with step(r) = 0
        raise DomainError(f"derivation line ({ln.rule}) is not defined at the point")
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
                   simp: Simplifier, asked: tuple[str, ...] = ()) -> list[Block]:
    """Backpropagation by steps, as the notes write it: the loss's differential in terms of the
    steps it uses (dL = tr(delta2' da2)), then for each step, last first, its own differential
    under the trace with its delta (tr(delta2' d(W2*h1)) = tr((delta2*h1')' dW2) + ...), which
    gives the deltas of the steps it uses and the variables' gradients. `steps` holds each step
    written with the earlier steps as symbols; `delta` names each step's gradient. Only the
    steps that depend on a variable (or on a step asked for, in `asked`) are differentiated:
    the others are constants of the derivation (the engine never differentiated them either)."""
    live = set(variables) | set(asked)
    for name, e in steps.items():
        if e.syms & live:
            live.add(name)
    own = frozenset(live)
    blocks: list[Block] = []
    contrib: dict[str, list[Expr]] = {}
    diff = Differentiator(own)
    lines = differential_lines(diff, loss)
    more, grads = trace_lines(lines[-1].expr, own) if lines[-1].expr.has_d else ([], {})
    blocks.append(Block(lines + more, loss, own))
    _add(contrib, grads)
    for name in reversed(list(steps)):
        if name not in contrib:
            continue
        g = Sym(delta[name], steps[name].shape)
        blocks.append(Block(gradient_lines(name, al.add(*contrib.pop(name)), simp), None, own))
        body = differential_lines(diff, steps[name], "d" + name)
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
