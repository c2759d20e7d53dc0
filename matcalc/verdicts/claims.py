"""Reading a claim about a loss: the names it may use and what they stand for.

A claim (a gradient, a differential, a line of a derivation) is read in the text syntax or in
LaTeX, with the loss's shapes. Besides the loss's own symbols it may use the program's step
names, the `delta` names of the steps' gradients and the named sub-expressions of the result;
in a differential, `dX` and `d(expr)` (the differential of any expression of the loss). Any
other name is an input error that names it: a claim about symbols the loss does not have
cannot be checked.
"""
from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field, replace

import numpy as np

from ..api import Result, _decls, delta_name, grad, load
from ..calculus.differentiate import Differentiator
from ..core import properties
from ..core.expr import Dif, Expr, Sym, walk
from ..core.registry import FUNCTION_NAMES
from ..errors import MatcalcError, ParseError, UnsupportedError
from ..syntax.latex_in import latex_to_text, looks_like_latex
from ..syntax.parser import Decl, Syn, parse_syn, snippet
from ..syntax.printing import latex_name
from ..syntax.typer import CONSTRUCTORS, Typer
from ..verify.check import _direction, _np, assign_sizes, find_point
from ..verify.evaluate import numeric

TOL = 1e-7
SEEDS = (0, 1, 2)


@dataclass
class Verdict:
    """The answer of a check: `correct` or `wrong`, the diagnoses that fit, a counterexample, and
    the true gradient (or differential) with the definitions of the names it uses (`where`)."""

    verdict: str  # "correct" or "wrong"
    gradient: str
    diagnoses: list[dict] = field(default_factory=list)
    counterexample: dict | None = None
    checked: str = ""
    what: str = "gradient"  # or "differential", "derivation"
    where: list[tuple[str, str]] = field(default_factory=list)

    @property
    def correct(self) -> bool:
        return self.verdict == "correct"

    def __bool__(self) -> bool:
        """`assert matcalc.check(...)` fails for a wrong claim."""
        return self.correct

    def to_dict(self) -> dict:
        return {"verdict": self.verdict, "diagnoses": self.diagnoses, "counterexample": self.counterexample,
                "gradient": self.gradient, "where": [list(w) for w in self.where], "checked": self.checked}

    def __str__(self) -> str:
        if self.correct and self.what == "derivation":
            return f"correct: every line follows from the one before\n{self.checked}"
        if self.correct:
            return "\n".join([f"correct: the claim equals the {self.what} {self.gradient}", *self._where(),
                              self.checked])
        lines = ["wrong"] + [f"  {d['kind']}: {d['detail']}" for d in self.diagnoses]
        ce = self.counterexample or {}
        if ce.get("sizes"):
            lines.append(f"counterexample at sizes {ce['sizes']}:")
            lines += [f"  {k} = {v}" for k, v in {**ce["point"], **ce.get("directions", {})}.items()]
            lines += [f"  entry {e['entry']}: claim {e['claim']:.6g}, gradient {e['gradient']:.6g}"
                      for e in ce.get("entries", [])]
            if "differential" in ce:
                lines.append(f"  claim {ce['claim']:.6g}, differential {ce['differential']:.6g}")
        if self.gradient:
            lines += [f"the {self.what} is {self.gradient}", *self._where()]
        return "\n".join(lines)

    def _where(self) -> list[str]:
        """The definitions of the names the gradient uses, one a line."""
        return [f"  {'where' if i == 0 else '':6}{n} = {t}" for i, (n, t) in enumerate(self.where)]


def where_of(r: Result, latex: bool = False) -> list[tuple[str, str]]:
    """The `where` definitions of a result (steps, deltas, shared terms), text or LaTeX."""
    if latex:
        return [(latex_name(n), t) for n, t in r.where_latex]
    return list(r.where_text)


@dataclass
class Names:
    """What the names of a claim about one loss stand for: the loss's variables, its program's
    steps (each as an expression of the variables), the deltas (each step's gradient) and the
    result's named sub-expressions."""

    loss: Expr
    loss_text: str
    decls: dict[str, Decl]
    variables: dict[str, Sym]
    steps: dict[str, Expr]
    named: dict[str, Expr]  # steps, deltas and named sub-expressions -> their expressions
    deltas: dict[str, str] = field(default_factory=dict)  # step -> its delta's name

    def symbols_text(self) -> str:
        return ", ".join(sorted(self.variables)) or "none"


def _moving(variables: dict[str, Sym]) -> set[str]:
    """The variables that can vary: all but the declared constants (an integer k of X^k)."""
    return {n for n, s in variables.items() if not properties.constant(s.props)}


def _differentiable(expr: str, name: str, let: str | dict | None) -> bool:
    """Whether the engine has a gradient of the loss with respect to `name`."""
    try:
        grad(expr, [name], let, check=False)
    except UnsupportedError:
        return False
    return True


def merged_decls(known: dict[str, Decl], user: dict[str, Decl]) -> dict[str, Decl]:
    """The loss's symbols as the engine typed them (`known`), with the user's declarations over
    them; a declaration of properties only (`A: positive`) keeps the typed shape, whose
    dimension names a claim may use (`ones(n,m)/m/n`)."""
    out = dict(known)
    for n, d in user.items():
        out[n] = Decl(n, known[n].shape, d.props | known[n].props) if d.shape is None and n in known else d
    return out


def names_of(expr: str, let: str | dict | None, r: Result | None = None) -> Names:
    """The names a claim about the loss `expr` may use (`r`: a result for it, if at hand)."""
    r = r if r is not None else grad(expr, [], let, check=False)
    user = _decls(let)
    prog = load(expr, user)
    variables = {n: s for n, s in r.symbols.items() if "dimension" not in s.props}
    decls = merged_decls({n: Decl(n, s.shape, s.props - {"dimension"}) for n, s in variables.items()}, user)
    moving = sorted(_moving(variables))
    # names the derivation gives: from the gradients in every variable that has one (a variable
    # the engine cannot differentiate through, X in X^k, is left out rather than failing the claim)
    moving = [n for n in moving if _differentiable(expr, n, let)] if prog.intermediates or r.where else moving
    every = grad(expr, moving, let, check=False) if moving and (r.where or prog.intermediates) else r
    named = {n: e for n, e in every.where}
    if not prog.intermediates:
        return Names(r.loss, expr, decls, variables, {}, named)
    try:
        full = grad(expr, [*moving, *prog.intermediates], let, check=False)
    except UnsupportedError:  # a step without a gradient (adj of a singular step) has no delta to name
        asked = [s for s in prog.intermediates if _differentiable(expr, s, let)]
        full = grad(expr, [*moving, *asked], let, check=False)
    steps = dict(prog.intermediates)
    named.update(steps)
    taken = set(variables) | set(prog.intermediates)
    deltas = {}
    for step in (s for s in prog.intermediates if s in full.gradients):  # the derivation's delta names
        deltas[step] = delta_name(step, taken)
        taken.add(deltas[step])
        named.setdefault(deltas[step], full[step].expr)
    return Names(r.loss, expr, decls, variables, steps, named, deltas)


@dataclass
class Reader:
    """Reads claims about one loss. `differentials` allows `dX` and `d(expr)`."""

    names: Names
    differentials: bool = False
    explicit: set[str] = field(default_factory=set)  # variables whose dX is written out

    def moving(self) -> set[str]:
        """The variables that vary: those whose dX the claims write, else all of them (the
        others are held fixed, as `df = x'*A*dx + dx'*A*x` holds A fixed)."""
        return set(self.explicit) or _moving(self.names.variables)

    def read(self, claim: str, expect=None, what: str = "the claim", latex: bool | None = None) -> Expr:
        """The claim (LaTeX if `latex`, or if it looks so) as a typed expression; an error names
        any symbol the loss does not have."""
        if not isinstance(claim, str):
            raise MatcalcError(f"{what} must be text, got {type(claim).__name__}")
        if not claim.strip():
            raise ParseError(f"{what} is empty")
        latex = looks_like_latex(claim) if latex is None else latex
        text = self.from_latex(claim) if latex else claim
        syn = parse_syn(text)
        _number_value(syn, text, what)
        marked: set[int] = set()
        syn = self._mark(text, syn, what, marked)
        self.names_known(text, syn, what)
        t = _ClaimTyper(text, self.names.decls, self.bound, False, differential=self.lifted(marked, what))
        shape = t.infer(syn)
        if expect is not None:
            t.unify(syn, shape, expect, "expected shape")
        t.name_dims()
        e = t.build(syn)
        self.known(e, what)
        return e

    def lifted(self, marked: set[int], what: str) -> Callable[[Syn, Expr], Expr | None]:
        """For the typer: the differential of the argument of a marked d(...) node (None for
        any other node)."""
        def d_of(syn: Syn, arg: Expr) -> Expr | None:
            if id(syn) not in marked:
                return None
            self.known(arg, what)
            if isinstance(arg, Sym):
                self.explicit.add(arg.name)
            return self.differential(arg)
        return d_of

    def from_latex(self, claim: str) -> str:
        """LaTeX as text, with the identity I as `eye` (unless the loss has a symbol I), and each
        name written with or without underscores (W_{1} for W_1 or W1) as the loss spells it."""
        text = latex_to_text(claim, set(self.names.variables) | set(self.names.named))
        return re.sub(r"(?<![\w.])[A-Za-z][A-Za-z0-9_]*", lambda m: self.spell(m.group(0)), text)

    def spell(self, name: str) -> str:
        """`name` as the loss spells it, when only underscores differ and the match is unique
        (LaTeX writes W_{1} for both W1 and W_1); a differential dW_1 likewise."""
        known = {**self.names.variables, **self.names.named}
        if name in known:
            return name
        spelt: dict[str, list[str]] = {}
        for k in known:
            spelt.setdefault(k.replace("_", ""), []).append(k)
        same = spelt.get(name.replace("_", ""), [])
        if len(same) == 1:
            return same[0]
        inner = spelt.get(name[1:].replace("_", ""), []) if name.startswith("d") and not same else []
        return "d" + inner[0] if len(inner) == 1 else name

    def bound(self, name: str) -> Expr | None:
        if name in self.names.named:
            return self.names.named[name]
        if self.differentials and name.startswith("d") and name not in self.names.variables:
            rest = name[1:]
            if rest in self.names.variables:
                self.explicit.add(rest)
                return Dif(self.names.variables[rest])
            if rest in self.names.steps:
                return self.differential(self.names.steps[rest])
        return None

    def differential(self, e: Expr) -> Expr:
        """d(e): linear in the dX of every variable (a step's differential in full)."""
        if e.has_d:
            raise UnsupportedError("d(...) of an expression that holds a differential")
        return Differentiator(frozenset(_moving(self.names.variables)))(e)

    def known(self, e: Expr, what: str) -> None:
        """Every symbol of `e` is one of the loss's (or a dimension used as a number)."""
        for node in walk([e]):
            if isinstance(node, Sym) and "dimension" not in node.props and node.name not in self.names.variables:
                self.unknown(node.name, what)

    def names_known(self, text: str, syn: Syn, what: str) -> None:
        """Before typing: every plain name is the loss's, a dimension, or bound (so that a
        stray name is reported as such, not as the shape error it may cause)."""
        dims = {d for decl in self.names.decls.values() if decl.shape for d in decl.shape if isinstance(d, str)}
        dims |= {d for s in self.names.variables.values() for d in s.shape if isinstance(d, str)}
        ok = set(self.names.variables) | dims | set(CONSTRUCTORS) | FUNCTION_NAMES
        stack = [syn]
        while stack:
            s = stack.pop()
            stack.extend(s.args)
            if s.kind == "name" and s.value not in ok and self.bound(s.value) is None:
                self.unknown(str(s.value), what)

    def unknown(self, name: str, what: str) -> None:
        """The error for a name the loss does not have (with the closest one it has)."""
        known = [*self.names.variables, *self.names.named]
        lower = {k.lower(): k for k in known}
        close = difflib.get_close_matches(name.lower(), list(lower), 1)
        hint = f"; did you mean {lower[close[0]]}?" if close else ""
        if not self.differentials and name[1:] in {**self.names.variables, **self.names.steps}:
            hint = f" ({name} is a differential: check it with --claim-differential or a chain)"
        err = ParseError(f"{what} uses {name}, which is not in the loss (symbols: {self.names.symbols_text()}){hint}")
        err.unknown_name = name  # type: ignore[attr-defined]  # an input error even where others are verdicts
        raise err

    def _mark(self, text: str, syn: Syn, what: str, marked: set[int]) -> Syn:
        """Each call d(e) as a shape-keeping call (typed with the rest of the claim, so that
        sizes inferred from around it reach e), its id in `marked`."""
        args = tuple(self._mark(text, a, what, marked) for a in syn.args)
        if syn.kind == "call" and syn.value == "d" and "d" not in self.names.variables:
            if not self.differentials:
                raise ParseError(f"{what} holds a differential d(...); a gradient has none")
            if len(args) != 1:
                raise ParseError(f"d takes one argument, got {len(args)}", text, syn.span[0])
            node = Syn("call", "group", args, syn.span)
            marked.add(id(node))
            return node
        return replace(syn, args=args) if args else syn


@dataclass
class _ClaimTyper(Typer):
    """The typer, building each marked d(e) as the differential of e (e built in context)."""

    differential: Callable[[Syn, Expr], Expr | None] = lambda syn, arg: None

    def build(self, s: Syn) -> Expr:
        if s.kind == "call" and s.value == "group" and len(s.args) == 1:
            d = self.differential(s, super().build(s.args[0]))
            if d is not None:
                return d
        return super().build(s)


MAX_NUMBER = 1e300  # a claim's numbers (and their products, powers) stay below this
MAX_EXPONENT = 10_000  # the largest power `^` a claim may take (a matrix power is that many products)


def _number_value(syn: Syn, text: str, what: str) -> float | None:
    """The value of a sub-expression made of numbers only (None otherwise), checking every such
    value and every exponent against the limits: a claim with 1e999999 or 2^2^2^2^2^2 is an
    error that says so, not an overflow."""
    vals = [_number_value(a, text, what) for a in syn.args]
    if syn.kind == "pow" and vals[1] is not None and abs(vals[1]) > MAX_EXPONENT:
        raise ParseError(f"{what}: the exponent in '{snippet(text, syn)}' is larger than {MAX_EXPONENT}")
    if syn.kind in ("div", "ediv") and vals[1] == 0:
        raise ParseError(f"{what} divides by zero in '{snippet(text, syn)}'")
    if syn.kind == "number":
        value = syn.value
        if abs(value) > MAX_NUMBER:
            raise ParseError(f"{what}: the number {snippet(text, syn)} is larger than {MAX_NUMBER:g}")
        return float(value)
    if any(v is None for v in vals) or syn.kind not in _ARITH or not vals:
        return None
    try:
        out = _ARITH[syn.kind](*vals)
    except ZeroDivisionError:
        raise ParseError(f"{what} divides by zero in '{snippet(text, syn)}'") from None
    except (OverflowError, ValueError):
        out = float("inf")
    if isinstance(out, complex) or not abs(out) <= MAX_NUMBER:
        raise ParseError(f"{what}: the number '{snippet(text, syn)}' is not finite or larger than {MAX_NUMBER:g}")
    return out


_ARITH: dict[str, Callable[..., float]] = {"neg": lambda a: -a, "add": lambda a, b: a + b, "sub": lambda a, b: a - b,
          "mul": lambda a, b: a * b,
          "div": lambda a, b: a / b, "hadamard": lambda a, b: a * b, "ediv": lambda a, b: a / b,
          "pow": lambda a, b: a ** b, "epow": lambda a, b: a ** b, "transpose": lambda a: a}


@dataclass
class Frame:
    """Sizes, a point honouring the declarations, and a direction for every variable: where
    claims are compared. The frames of a loss differ in sizes (so a factor 1/m shows as such)."""

    dims: dict[str, int]
    point: dict[str, np.ndarray]
    directions: dict[Dif, np.ndarray]


def frames(f: Expr, exprs: list[Expr], variables: dict[str, Sym],
           moving: AbstractSet[str] | None = None) -> list[Frame]:
    """One frame per seed for comparing `exprs` (and `f`); the variables not `moving` have
    direction zero."""
    out = []
    also = (*exprs, *variables.values())  # every symbol compared or moved needs a size and a value
    base = assign_sizes([f, *also])
    for seed in SEEDS:
        dims = {k: v + seed for k, v in base.items()}
        point = _np(find_point(f, {}, dims, seed, also))
        for s in {n for n in walk([f, *exprs]) if isinstance(n, Sym) and "dimension" in n.props}:
            point[s.name] = np.array([[float(dims[s.name])]])
        rng = np.random.default_rng(seed)
        directions = {Dif(s): _direction(s, dims, rng) for _, s in sorted(variables.items())}
        directions = {d: v if moving is None or d.var.name in moving else 0 * v for d, v in directions.items()}
        out.append(Frame(dims, point, directions))
    return out


def values(roots: list[Expr], point: dict, dims: dict, known: dict | None = None) -> list[np.ndarray]:
    """`numeric`, quietly: an overflow or a division by zero gives inf or nan, which the
    comparisons report."""
    with np.errstate(all="ignore"):
        return numeric(roots, point, dims, known)


def rounded(frame: Frame) -> dict:
    """A frame as a counterexample: sizes, point and directions, rounded."""
    return {"sizes": frame.dims, "point": {k: np.round(v, 4).tolist() for k, v in frame.point.items()},
            "directions": {f"d{d.var.name}": np.round(v, 4).tolist() for d, v in frame.directions.items() if v.any()}}


def close(a: np.ndarray, b: np.ndarray, tol: float = TOL) -> bool:
    """Equal up to a tolerance relative to the magnitudes involved."""
    if a.shape != b.shape:
        return False
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        return bool(np.array_equal(a, b))
    scale = max(1.0, float(np.max(np.abs(a), initial=0.0)), float(np.max(np.abs(b), initial=0.0)))
    return bool(np.allclose(a, b, rtol=tol, atol=tol * scale))


__all__ = ["Frame", "MatcalcError", "Names", "Reader", "Verdict", "close", "frames", "merged_decls", "names_of",
           "rounded", "values", "where_of"]
