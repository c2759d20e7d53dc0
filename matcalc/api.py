"""`grad`: text (or a tree) in, verified closed-form gradients out."""
from __future__ import annotations

import sys
from dataclasses import dataclass, field

from . import algebra as al
from .adjoint import gradients
from .check import CheckReport, verify
from .differentiate import Differentiator
from .errors import MatcalcError, ShapeError
from .expr import Expr, Sym, walk
from .parser import Decl, parse_decls, parse_syn
from .printing import to_latex, to_text
from .registry import fmt_shape
from .share import common_subexpressions
from .simplify import Simplifier
from .steps import Log
from .typer import DIM_NAMES, default_shape, to_expr

LAYOUTS = ("denominator", "numerator")


@dataclass(frozen=True)
class Gradient:
    """One gradient: `text` is in the input syntax and parses back to `expr`."""

    name: str
    expr: Expr
    text: str
    latex: str
    shape: str


@dataclass
class Result:
    loss: Expr
    loss_text: str
    layout: str
    gradients: dict[str, Gradient]
    where: list[tuple[str, Expr]]
    where_text: list[tuple[str, str]]
    symbols: dict[str, Sym]
    check: CheckReport | None
    notes: list[str] = field(default_factory=list)
    log: Log = field(default_factory=Log)

    def __getitem__(self, name: str) -> Gradient:
        return self.gradients[name]

    def to_dict(self) -> dict:
        return {
            "loss": self.loss_text,
            "layout": self.layout,
            "gradients": {n: {"text": g.text, "latex": g.latex, "shape": g.shape} for n, g in self.gradients.items()},
            "where": [[n, t] for n, t in self.where_text],
            "check": self.check.to_dict() if self.check else None,
            "notes": self.notes,
        }

    def __str__(self) -> str:
        shapes = ", ".join(f"{s.name}: {fmt_shape(s.shape)}" for s in self.symbols.values())
        what = "each gradient has its variable's shape" if self.layout == "denominator" else "transposed gradients"
        lines = [f"loss    {self.loss_text}", f"shapes  {shapes}", f"layout  {self.layout} ({what})", ""]
        lines += [f"{'where' if i == 0 else '':8}{n} = {t}" for i, (n, t) in enumerate(self.where_text)]
        lines += [f"d/d{n} = {g.text}    ({g.shape})" for n, g in self.gradients.items()]
        lines += ["", *self.notes, self.check.summary() if self.check else "not verified (--no-check)"]
        return "\n".join(lines)

    def _repr_latex_(self) -> str:
        body = r" \\ ".join(rf"\frac{{\partial f}}{{\partial {g.name}}} &= {g.latex}" for g in self.gradients.values())
        return rf"$\begin{{aligned}}{body}\end{{aligned}}$"


def _decls(let: str | dict[str, Decl] | None) -> dict[str, Decl]:
    if let is None or let == "":
        return {}
    return parse_decls(let) if isinstance(let, str) else dict(let)


def parse(text: str, let: str | dict[str, Decl] | None = None) -> Expr:
    """Parse and type an expression in the text syntax."""
    return to_expr(text, parse_syn(text), _decls(let))


def _symbols(f: Expr) -> dict[str, Sym]:
    return {n.name: n for n in walk([f]) if isinstance(n, Sym)}


def grad(expr: str | Expr, wrt: str | list[str] | tuple[str, ...], let: str | dict | None = None,
         layout: str = "denominator", check: bool = True, seed: int = 0, sympy_check: bool = True) -> Result:
    """Gradients of the scalar loss `expr` with respect to each variable in `wrt`, verified."""
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 20000))
    if layout not in LAYOUTS:
        raise MatcalcError(f"unknown layout {layout!r} (use denominator or numerator)")
    f = parse(expr, let) if isinstance(expr, str) else getattr(expr, "expr", expr)
    if not isinstance(f, Expr):
        raise MatcalcError(f"grad needs a loss as text or a matcalc expression, got {type(expr).__name__}")
    if not f.is_scalar:
        raise ShapeError(f"the loss is {fmt_shape(f.shape)}; a gradient needs a scalar")
    names = [wrt] if isinstance(wrt, str) else list(wrt)
    syms, notes = _variables(f, names, _decls(let))
    log = Log()
    wrt_set = frozenset(names)
    df = Differentiator(wrt_set, log)(f)
    raw = gradients(df, wrt_set, log)
    simp = Simplifier(wrt_set, log)
    grads = {n: simp(raw[n]) if n in raw else al.zero(syms[n].shape) for n in names}
    report = verify(f, grads, syms, seed, sympy_check) if check else None
    if layout == "numerator":
        grads = {n: simp(al.transpose(g)) for n, g in grads.items()}
    return _result(f, expr if isinstance(expr, str) else to_text(f), layout, grads, syms, report, notes, log)


def _variables(f: Expr, names: list[str], decls: dict[str, Decl]) -> tuple[dict[str, Sym], list[str]]:
    """The loss's symbols plus any variable absent from it (shaped by its declaration or its
    default kind, with fresh dimension names), and notes for the reader."""
    syms = _symbols(f)
    used = {d for s in syms.values() for d in s.shape if isinstance(d, str)} | set(syms) | set(names)
    notes = []
    for n in names:
        if n not in syms:
            syms[n] = _absent_symbol(n, decls.get(n), used)
            used |= {d for d in syms[n].shape if isinstance(d, str)}
            notes.append(f"{n} does not occur in the loss; its gradient is zero")
        elif {"symmetric", "spd", "diagonal", "probability"} & syms[n].props:
            notes.append(f"{n} is declared {' '.join(sorted(syms[n].props))}: its gradient is the unconstrained "
                         f"one G (df = tr(G' d{n}) for every admissible d{n}, which is what the checks test)")
    return syms, notes


def _absent_symbol(name: str, decl: Decl | None, used: set[str]) -> Sym:
    if decl is not None and decl.shape is not None:
        return Sym(name, decl.shape, decl.props)
    fresh = iter(d for d in DIM_NAMES if d not in used)
    rows, cols = default_shape(name)
    r = next(fresh) if rows else 1
    square = decl is not None and {"symmetric", "spd", "invertible", "diagonal"} & decl.props
    c = (r if square else next(fresh)) if cols else 1
    return Sym(name, (r, c), decl.props if decl else frozenset())


def _result(f: Expr, loss_text: str, layout: str, grads: dict[str, Expr], syms: dict[str, Sym],
            report: CheckReport | None, notes: list[str], log: Log) -> Result:
    names, where = common_subexpressions(list(grads.values()))
    where_text = []
    for name, e in where:
        own = {k: v for k, v in names.items() if k != e}
        where_text.append((name, to_text(e, own)))
    out = {n: Gradient(n, g, to_text(g, names), to_latex(g, names), fmt_shape(g.shape)) for n, g in grads.items()}
    return Result(f, loss_text, layout, out, where, where_text, {k: syms[k] for k in sorted(syms)}, report,
                  notes, log)
