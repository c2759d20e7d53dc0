"""`grad`: text (or a tree) in, verified closed-form gradients out, as an immutable `Result`.

The entry points of the package's Python API live here; the result (`matcalc.result`) and its
output forms (`matcalc.present.formats`) live apart. Planned, not yet provided: `jacobian` and `hessian`
(from the tagged differentials and the seeded adjoint: vector-Jacobian and Hessian-vector
products are already in `matcalc.calculus.adjoint`), `to_code` (NumPy, PyTorch, JAX from the registry's
code templates) and `to_sympy` (SymPy matrix expressions).
"""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from functools import partial
from itertools import count
from typing import Callable

import numpy as np

from .calculus.engine import Run, run
from .calculus.rewrite import invertible_everywhere, predicates
from .calculus.steps import Log
from .core import algebra as al
from .core import limits, properties
from .core.expr import Expr, Num, Op, Sym, walk
from .core.registry import OPS, fmt_shape
from .errors import DomainError, MatcalcError, ShapeError
from .present.derivation import check_blocks, check_lines, derivation, program_blocks
from .present.formats import Derivation
from .present.share import common_subexpressions
from .result import Gradient, Result
from .syntax.parser import Decl, parse_decls, parse_syn, snippet
from .syntax.printing import to_latex, to_text
from .syntax.typer import DIM_NAMES, default_shape, to_expr, to_program
from .verify.check import CheckReport, verify

__all__ = ["grad", "parse", "load", "Program", "Result", "Gradient", "LAYOUTS", "wrt_names", "delta_name"]

LAYOUTS = ("denominator", "numerator")


def _decls(let: str | dict[str, Decl] | None) -> dict[str, Decl]:
    if let is None or let == "":
        return {}
    return parse_decls(let) if isinstance(let, str) else dict(let)


def parse(text: str, let: str | dict[str, Decl] | None = None) -> Expr:
    """Parse and type an expression in the text syntax."""
    return to_expr(text, parse_syn(text), _decls(let))


@dataclass(frozen=True)
class Program:
    """A loss given as named steps: `intermediates` maps each name to its (typed) expression."""

    loss: Expr
    text: str
    intermediates: dict[str, Expr]
    sources: dict[str, str] = field(default_factory=dict)  # each step as the user wrote it
    loss_name: str | None = None
    local: dict[str, Expr] = field(default_factory=dict)  # each step with the earlier ones as symbols
    local_loss: Expr | None = None  # the last statement so
    written: dict[str, Sym] = field(default_factory=dict)  # every symbol written, even if unused

    def as_function_of(self, name: str) -> Expr:
        """The loss as a function of the value of step `name`: the steps after it recomputed
        from a symbol `name`, every other step inlined. Its gradient with respect to that
        symbol is dL/d(name) as the program defines it (the sum over the step's uses)."""
        swap: dict[Expr, Expr] = {}
        for n, e in self.local.items():
            if n != name:
                swap[Sym(n, e.shape)] = al.group(al.substitute(e, swap))
        assert self.local_loss is not None
        return al.substitute(self.local_loss, swap)


def load(expr: str | Expr, decls: dict[str, Decl]) -> Program:
    """Text (an expression, or a program of `name = expr` steps) or a tree, as a Program."""
    if not isinstance(expr, str):
        f = getattr(expr, "expr", expr)
        if not isinstance(f, Expr):
            raise MatcalcError(f"grad needs a loss as text or a matcalc expression, got {type(expr).__name__}")
        limits.check_tree(f)
        return Program(f, to_text(f), {})
    syn = parse_syn(expr, "program")
    steps, written = to_program(expr, syn, decls)
    inter = {name: e for name, e, _ in steps[:-1] if name is not None}
    local = {name: loc for name, _, loc in steps[:-1] if name is not None}
    text = "; ".join(snippet(expr, stmt) for stmt in syn.args)  # without comments and line breaks
    sources = {stmt.value: snippet(expr, stmt.args[0]) for stmt in syn.args if stmt.kind == "assign"}
    return Program(steps[-1][1], text, inter, sources, steps[-1][0], local, steps[-1][2], written)


def _symbols(f: Expr) -> dict[str, Sym]:
    return {n.name: n for n in walk([f]) if isinstance(n, Sym)}


@limits.with_recursion_room
def grad(expr: str | Expr, wrt: str | list[str] | tuple[str, ...], let: str | dict | None = None,
         layout: str = "denominator", check: bool = True, seed: int = 0, sympy_check: bool = True) -> Result:
    """Gradients of the scalar loss `expr` with respect to each variable in `wrt`, verified.

    `expr` may be a program (`a1 = W1*x; h1 = sigmoid(a1); L = ...`): results then use its names,
    and the gradients with respect to its intermediates (the backpropagated errors) are named
    `delta<k>` (`delta2` for `a2`); an intermediate may also be asked for in `wrt`."""
    if layout not in LAYOUTS:
        raise MatcalcError(f"unknown layout {layout!r} (use denominator or numerator)")
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2 ** 32:
        raise MatcalcError(f"seed must be an integer from 0 to 2^32 - 1, got {seed!r}")
    decls = _decls(let)
    prog = load(expr, decls)
    f = prog.loss
    if not f.is_scalar:
        raise ShapeError(f"the loss is {fmt_shape(f.shape)}; a gradient needs a scalar{_scalar_hint(f, decls)}")
    names = wrt_names(wrt)
    _known_variables(names, f, prog, decls)
    asked_inter = [n for n in names if n in prog.intermediates]
    variables = [n for n in names if n not in prog.intermediates]
    syms, notes = _variables(f, variables, decls, prog.written)
    notes += [f"{n} is one symbol (for a product write {'*'.join(n)})" for n in sorted(_symbols(f))
              if GLUED.fullmatch(n) and n not in decls]
    kinks = sorted({n.op for n in walk([f]) if isinstance(n, Op) and OPS[n.op].kink})
    if kinks:
        notes.append(f"{', '.join(kinks)}: at a kink (argument 0) the derivative is taken as 0 "
                     "(step(0) = 0, sign(0) = 0), a subgradient")
    log = Log()
    through = frozenset(variables)
    steps = {n: al.group(e) for n, e in prog.intermediates.items()}
    engine = run(f, through, steps, log)
    notes += _invertible_where_used(engine)
    raw, cot, simp = engine.raw, engine.cotangents, engine.simp
    grads = {n: simp(raw[n]) if n in raw else al.zero(syms[n].shape) for n in variables}
    deltas = {n: simp(g) for n, g in cot.items()}
    by_step = {n: _step_gradient(prog, n) for n in asked_inter}
    for n, (_, g_v) in by_step.items():
        back: dict[Expr, Expr] = {Sym(n, g_v.shape): steps[n]}
        deltas[n] = grads[n] = simp(al.substitute(g_v, back))
        if (prog.local_loss is not None and n not in prog.local_loss.syms
                and not any(n in e.syms for e in prog.local.values())):
            notes.append(f"the step {n} is not used by the loss; its gradient is zero")
    report = None
    if check:
        report = verify(f, {n: grads[n] for n in variables}, syms, seed, sympy_check)
        for n, (f_v, g_v) in by_step.items():
            report = report.merged(verify(f_v, {n: g_v}, _symbols(f_v) | {n: Sym(n, g_v.shape)}, seed, sympy_check))
    if layout == "numerator":
        grads = {n: simp(al.transpose(g)) for n, g in grads.items()}
    shown = prog if prog.intermediates or f.height <= DEEP else _named_steps(prog, through, set(syms))
    derive = partial(_derivation_lines, shown, variables, engine, frozenset(syms), report is not None, seed,
                     tuple(asked_inter))
    return _result(prog, layout, {n: grads[n] for n in names}, syms, deltas, asked_inter, report, notes, log, derive)


DEEP = 12  # a flat loss taller than this is derived step by step, as a program, so that the
# derivation grows linearly with the depth of the loss instead of repeating it on every line


def _named_steps(prog: Program, wrt: frozenset[str], taken: set[str]) -> Program:
    """A deep flat loss as a program: each function's argument and each function's value that
    depends on the variables (and is not a leaf) becomes a step s1, s2, ... (innermost first)."""
    calls = [n for n in walk([prog.loss]) if isinstance(n, Op) and OPS[n.op].parse_name and OPS[n.op].public]
    wanted = {a for c in calls for a in c.args} | set(calls)
    fresh = (f"s{k}" for k in count(1) if f"s{k}" not in taken)
    inter: dict[str, Expr] = {}
    local: dict[str, Expr] = {}
    swap: dict[Expr, Expr] = {}
    for node in walk([prog.loss]):
        if node in wanted and node is not prog.loss and isinstance(node, Op) and node.syms & wrt:
            name = next(fresh)
            inter[name], local[name] = node, al.substitute(node, swap)
            swap[node] = Sym(name, node.shape)
    return Program(prog.loss, prog.text, inter, {}, None, local, al.substitute(prog.loss, swap))


def _invertible_where_used(engine: Run) -> list[str]:
    """A note for each part whose differential rule writes its inverse where the loss does not
    (`Rule.inverts`), unless the part is generic (invertible but on a set of measure zero, where
    the gradient is the formula's limit), and for each part a rule needs `generic` (the
    adjugate's): the gradient holds where the part is invertible. A product can be singular for
    every value at some sizes (A'*A with A wide), where the formula is undefined."""
    out, generic = [], predicates(frozenset())["generic"]
    for rule, b in engine.diff.applied.values():
        parts = [b[var] for pred, var in rule.conds if pred == "generic"]
        parts += [b[var] for var in sorted(rule.inverts) if not generic(b[var])]
        for part in (p for p in parts if not invertible_everywhere(p)):
            out.append(f"the differential of {to_text(part)} ({rule.name}) uses inv({to_text(part)}): the "
                       f"gradient holds where {to_text(part)} is invertible")
    return list(dict.fromkeys(out))


def _step_gradient(prog: Program, name: str) -> tuple[Expr, Expr]:
    """(L as a function of step `name`, dL/d(name) in terms of the symbol `name`): the engine's
    gradient of `prog.as_function_of(name)` with respect to that symbol."""
    f_v, value = prog.as_function_of(name), prog.intermediates[name]
    generic = predicates(frozenset())["generic"](value)  # Z1 = A - A is singular: so is its symbol
    engine = run(f_v, frozenset({name}), opaque=frozenset() if generic else frozenset({name}))
    return f_v, engine.simp(engine.raw.get(name, al.zero(prog.intermediates[name].shape)))


def _by_steps(prog: Program, symbols: frozenset[str]) -> tuple[Expr, dict[str, Expr], dict[str, str]]:
    """The loss and each step written with the earlier steps as symbols, and the delta names
    (none of them one of the result's `symbols`)."""
    assert prog.local_loss is not None
    taken = set(symbols) | set(prog.intermediates)
    delta = {}
    for name in prog.intermediates:
        delta[name] = delta_name(name, taken)
        taken.add(delta[name])
    return prog.local_loss, dict(prog.local), delta


def _derivation_lines(prog: Program, variables: list[str], engine: Run, symbols: frozenset[str], check: bool,
                      seed: int, asked: tuple[str, ...] = ()) -> Derivation:
    """The derivation's lines (the engine's run on a flat loss rendered; a program's steps, and
    a deep loss's, by blocks, each step's run of the engine rendered), the loss's steps as (name,
    text, latex), the names of the steps, and (with `check`) the line check: every line checked
    numerically against the one before."""
    names = {e: n for n, e in prog.intermediates.items() if not isinstance(e, (Sym, Num))}
    names.update({al.group(e): n for e, n in list(names.items())})
    loss_name = prog.loss_name or "f"
    loss = [(n, prog.sources.get(n, to_text(e, names, True)), to_latex(e, names, True))
            for n, e in prog.intermediates.items()]
    written = prog.sources.get(loss_name) or (prog.text if not prog.intermediates else to_text(prog.loss, names, True))
    loss.append((loss_name, written, to_latex(prog.loss, names, True)))
    used = [v for v in variables if v in prog.loss.syms]
    if prog.intermediates:  # the steps appear as symbols: the lines print them by name anyway
        names = {}
        blocks = program_blocks(*_by_steps(prog, symbols), used, engine.simp, asked)
        lines = [ln for b in blocks for ln in b.lines]
        run_check = partial(check_blocks, blocks, prog.loss, prog.intermediates)
    else:
        lines = derivation(engine, used)
        run_check = partial(check_lines, lines, prog.loss, engine.wrt)
    line_check = _line_check(run_check, seed, len(lines)) if check else ""
    return Derivation(tuple(lines), tuple(loss), names, loss_name, line_check)


LINE_POINTS = 3  # points tried for the line check before it is reported as not done


def _line_check(run_check: Callable[[int], float], seed: int, n: int) -> str:
    """The line check's report: at the first of a few points where every line is defined (a line
    may not be, where the loss is: tr(x'*dx)/norm2(x) at x = 0); a disagreement raises."""
    for s in range(seed, seed + LINE_POINTS):
        try:
            with np.errstate(all="ignore"):  # an undefined line is told by its value, not a warning
                return f"derivation: all {n} lines checked numerically (rel. err {run_check(s):.0e})"
        except DomainError:
            continue
    return f"derivation: lines not checked (no point among {LINE_POINTS} where every line is defined)"


def wrt_names(wrt: str | list[str] | tuple[str, ...]) -> list[str]:
    """The variables asked for: `"W1,W2"` (or `["W1", "W2"]`, or `["W1,W2"]`) is two of them."""
    items = [wrt] if isinstance(wrt, str) else list(wrt)
    if not all(isinstance(w, str) for w in items):
        raise MatcalcError("wrt must be a variable's name or a list of names")
    names = [n.strip() for w in items for n in w.split(",")]
    for n in names:
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", n):
            raise MatcalcError(f"--wrt {n!r} is not a variable name")
    return list(dict.fromkeys(names))


GLUED = re.compile(r"[A-Z]{2,}")  # `AX`: two capitals run together, most likely a product A*X


def _known_variables(names: list[str], f: Expr, prog: Program, decls: dict[str, Decl]) -> None:
    """A variable must occur in the loss, be a step of the program, or be declared (then its
    gradient is zero, with a note): a typo is an error naming the closest symbol, not a zero."""
    symbols = sorted(set(_symbols(f)) | set(prog.intermediates) | set(prog.written))
    for n in names:
        if n in symbols or n in decls:
            continue
        close = difflib.get_close_matches(n, symbols, 1, 0.5) or [s for s in symbols if s.lower() == n.lower()]
        glued = [s for s in symbols if n in s and GLUED.fullmatch(s)]
        hint = (f"; '{glued[0]}' is one symbol (for a product write {'*'.join(glued[0])})" if glued
                else f"; did you mean {close[0]}?" if close else "")
        raise MatcalcError(f"--wrt {n}: '{n}' does not occur in the loss (its symbols: {', '.join(symbols)}){hint}; "
                           f"declare it with --let to get its zero gradient")


def _scalar_hint(f: Expr, decls: dict[str, Decl]) -> str:
    """Undeclared names a-g are scalars by default: the usual reason a loss is not."""
    names = sorted(n for n, s in _symbols(f).items() if n not in decls and s.is_scalar and not any(default_shape(n)))
    if not names:
        return ""
    return f" (note: {', '.join(names)} {'is' if len(names) == 1 else 'are'} scalar by default; " \
           f"declare e.g. --let \"{names[0]}: n\" for a vector)"


def _variables(f: Expr, names: list[str], decls: dict[str, Decl],
               written: dict[str, Sym]) -> tuple[dict[str, Sym], list[str]]:
    """Every symbol written (in the loss, or in a step it does not use), plus any declared variable
    absent from it (shaped by its declaration or its default kind, with fresh dimension names),
    and notes for the reader."""
    syms = {**written, **_symbols(f)}
    used = {d for s in syms.values() for d in s.shape if isinstance(d, str)} | set(syms) | set(names)
    notes = []
    for n in names:
        if n not in f.syms and n in syms:
            notes.append(f"{n} does not occur in the loss once it is simplified (or only in a step the loss "
                         "does not use); its gradient is zero")
        elif n not in syms:
            syms[n] = _absent_symbol(n, decls.get(n), used)
            used |= {d for d in syms[n].shape if isinstance(d, str)}
            notes.append(f"{n} does not occur in the loss; its gradient is zero")
        elif properties.constrained(syms[n].props):
            notes.append(f"{n} is declared {' '.join(sorted(syms[n].props))}: its gradient is the unconstrained "
                         f"one G (df = tr(G' d{n}) for every admissible d{n}, which is what the checks test)")
    return syms, notes


def _absent_symbol(name: str, decl: Decl | None, used: set[str]) -> Sym:
    """The symbol of a declared variable absent from the loss: its declared shape, else its default
    kind's with fresh dimension names (square when a declared property needs it)."""
    if decl is not None and decl.shape is not None:
        return Sym(name, decl.shape, decl.props)
    fresh = iter(d for d in DIM_NAMES if d not in used)
    rows, cols = default_shape(name)
    r = next(fresh) if rows else 1
    square = decl is not None and properties.square_property(decl.props) is not None
    c = (r if square else next(fresh)) if cols else 1
    return Sym(name, (r, c), decl.props if decl else frozenset())


def delta_name(name: str, taken: set[str]) -> str:
    """The name of dL/d(name): `a2` -> `delta2`, `z_3` -> `delta_3`, `y` -> `delta_y`."""
    m = re.fullmatch(r"[A-Za-z]+(_?\d+)", name)
    out = "delta" + m.group(1) if m else "delta_" + name
    return out if out not in taken else "delta_" + name


def _result(prog: Program, layout: str, grads: dict[str, Expr], syms: dict[str, Sym], deltas: dict[str, Expr],
            asked: list[str], report: CheckReport | None, notes: list[str], log: Log,
            derive: Callable[[], Derivation] | None = None) -> Result:
    taken = set(syms) | set(prog.intermediates)
    fixed = {e: n for n, e in prog.intermediates.items() if not isinstance(e, (Sym, Num))}
    fixed.update({al.group(e): n for e, n in list(fixed.items())})
    named_deltas: dict[Expr, str] = {}
    for n, g in sorted(deltas.items(), key=lambda item: list(prog.intermediates).index(item[0])):
        g = al.split_scalars(g)[1]  # delta2 = A2 - Y, with the 1/m of a batch mean left outside
        # scalar products merge into their surroundings (2*x*r), so a scalar delta is not named
        if not isinstance(g, (Sym, Num)) and not g.is_scalar and g not in named_deltas:
            named_deltas[g] = delta_name(n, taken)
            taken.add(named_deltas[g])
    for n in asked:  # an intermediate asked for is always named, and its gradient is its definition
        if deltas.get(n) in named_deltas:
            fixed[deltas[n]] = named_deltas.pop(deltas[n])
    names, where = common_subexpressions(list(grads.values()), fixed, named_deltas, taken=frozenset(taken))
    where_text = [(n, prog.sources.get(n) or to_text(e, names, expand=True)) for n, e in where]
    where_latex = [(n, to_latex(e, names, expand=True)) for n, e in where]
    # a gradient that is a named delta prints as its name (db2 = delta2); an intermediate asked
    # for prints its definition (the where entry of its delta is then that same text)
    out = {n: Gradient(n, g, to_text(g, names, g in fixed), to_latex(g, names, g in fixed), fmt_shape(g.shape))
           for n, g in grads.items()}
    return Result(prog.loss, prog.text, layout, out, where, where_text, where_latex,
                  {k: syms[k] for k in sorted(syms)}, report, notes, log, derive)
