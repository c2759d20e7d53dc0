"""Checking a derivation line by line: `check --chain`.

A derivation is read from plain text (`lhs = expr` lines and `= expr` continuation lines, such
as `matcalc grad --steps` prints) or from the LaTeX `align*`/`aligned` blocks of a note (such as
`--steps --format latex` and `--format markdown` print). A line with a left side starts a group
and is compared with what its left side names; a continuation line is compared with the line
before it. Left sides:

* `df`, `dL`, `\\mathrm{d}f`: the loss's differential (or, after a program's chain-rule step,
  its part through one step: tr(delta' d(step)));
* `da2`: the differential of a program step; `a2`, `delta2`, `L`: the step, delta or loss itself;
* `df/dX`, `d/dX`, `\\frac{\\partial f}{\\partial X}`, `\\nabla_X f`: the gradient with respect to
  a variable or a step, checked against the loss's derivative along a random direction.

Differentials are total: `dX` is a random direction for every variable X, `da2` the
differential of the step a2 along them, `d(e)` that of any expression. Every comparison is
numeric, at three random points (with other sizes each).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

import numpy as np

from ..calculus.differentiate import Differentiator
from ..calculus.rewrite import load_table
from ..core import algebra as al
from ..core.expr import Dif, Expr, Op, Sym
from ..core.registry import fmt_shape, on_change
from ..errors import MatcalcError, ParseError, ShapeError
from ..present.labels import LANGS, RULES, rule_label
from ..syntax.latex_in import latex_to_text
from ..syntax.parser import parse_syn
from ..verify.check import _direction
from .claims import (
    SEEDS,
    Frame,
    Names,
    Reader,
    Verdict,
    close,
    frames,
    names_of,
    rounded,
    values,
)

_BLOCK = re.compile(r"\\begin\{(align\*?|aligned)\}(.*?)\\end\{\1\}", re.DOTALL)


@dataclass(frozen=True)
class Row:
    """One math line of a derivation: `lhs = rhs` (lhs "" for a continuation line)."""

    line: int  # where it is in the text (1-based)
    lhs: str
    rhs: str
    latex: bool
    label: str = ""  # the rule annotation, if any

    def shown(self) -> str:
        return f"{self.lhs} = {self.rhs}" if self.lhs else self.rhs


@dataclass(frozen=True)
class Target:
    """What a left side names: `kind` is value, differential or gradient; `name` is the loss
    ("" ), a step, a variable or a named term; `var` the variable of a gradient."""

    kind: str
    name: str = ""
    var: str = ""


def chain_lines(text: str) -> list[str]:
    """The math lines of a derivation, as written (with their left sides and annotations)."""
    return [raw for _, raw, _ in _raw_rows(text)]


def read_rows(text: str) -> list[Row]:
    """The rows of a derivation: from its LaTeX align blocks if it has any, else from its lines
    (headings, comments, prose and matcalc's summary lines are passed over)."""
    out: list[Row] = []
    for line, raw, latex in _raw_rows(text):
        out += _row(line, raw, latex)
    return out


def _raw_rows(text: str) -> list[tuple[int, str, bool]]:
    blocks = list(_BLOCK.finditer(text))
    if len(blocks) < len(re.findall(r"\\begin\{(?:align\*?|aligned)\}", text)):
        raise ParseError("an align block of the derivation is not closed (\\end{align*} or \\end{aligned})")
    if blocks:
        rows = []
        for b in blocks:
            pos = b.start(2)
            for part in re.split(r"\\\\", b.group(2)):
                stripped = part.strip()
                if stripped:
                    lead = len(part) - len(part.lstrip())
                    rows.append((text.count("\n", 0, pos + lead) + 1, stripped, True))
                pos += len(part) + 2
        return rows
    return [(k, ln.strip(), "&" in ln or "\\" in ln) for k, ln in enumerate(text.splitlines(), 1)
            if ln.strip() and not ln.strip().startswith("#")]


def _row(line: int, raw: str, latex: bool) -> list[Row]:
    """A raw line as rows (`a = b = c` gives two); [] for headings, prose and summaries."""
    label = ""
    if "&&" in raw:
        raw, label = raw.split("&&", 1)
        label = re.sub(r"^\s*\\text\{(.*)\}\s*$", r"\1", label.strip())
    raw = raw.replace("&", " ").strip()
    if not latex:
        if re.fullmatch(r"[^=]*[:：]", raw) or re.match(r"(loss|shapes|layout)\s{2,}", raw):
            return []  # a heading, or the summary's loss/shapes/layout lines
        raw = re.sub(r"^(where|其中)\s+", "", raw)
    parts = [p.strip() for p in raw.split("=")]
    if len(parts) == 1:
        return [Row(line, "", _strip_label(parts[0], latex), latex, label)] if _parses(parts[0], latex) else []
    lhs, rest = parts[0], parts[1:]
    if lhs and _target(lhs) is None:
        if not latex and re.search(r"[:：]", lhs) and not _parses(lhs, latex):
            return []  # prose with an '=' in it (a note, the check's summary: "verified: ... (n=2)")
        rest = [lhs, *rest]
        lhs = ""
    if not all(rest):
        raise ParseError(f"line {line} has an empty side: {raw}")
    rows = [Row(line, lhs, _strip_label(rest[0], latex), latex, label)]
    return rows + [Row(line, "", _strip_label(r, latex), latex) for r in rest[1:]]


def _parses(text: str, latex: bool) -> bool:
    try:
        parse_syn(latex_to_text(text) if latex else text)
        return True
    except MatcalcError:
        return False


@cache
def _labels() -> tuple[str, ...]:
    """Every rule annotation matcalc prints, longest first."""
    names = {r.name for t in ("differentials", "adjoints", "simplify") for r in load_table(t)} | set(RULES)
    labels = {rule_label(n, lang) for n in names for lang in LANGS} | {w for pair in RULES.values() for w in pair}
    return tuple(sorted(labels, key=len, reverse=True))


on_change(_labels.cache_clear)


def _strip_label(text: str, latex: bool) -> str:
    """A text line without the rule annotation matcalc prints on its right (when the line does
    not parse with it)."""
    if latex or _parses(text, latex):
        return text
    bare = re.sub(r"\s+\[[^\]]*\]$", "", text)  # a citation: [Matrix Cookbook (x)]
    bare = re.sub(r"\s{2,}\((scalar|\w+ x \w+)\)$", "", bare)  # the shape after a result line
    for label in _labels():
        if bare.endswith(label) and bare[:-len(label)][-1:].isspace():
            return bare[:-len(label)].rstrip()
    return bare


def _target(lhs: str) -> Target | None:
    """What a left side names, or None when it is no name, differential or gradient."""
    lhs = lhs.strip()
    m = (re.fullmatch(r"\\frac\{\s*\\partial\s*(.*?)\}\{\s*\\partial\s*(.*)\}", lhs)
         or re.fullmatch(r"\\frac\{\s*(?:\\mathrm\{d\}|d)\s*(.*?)\}\{\s*(?:\\mathrm\{d\}|d)\s*(.*)\}", lhs))
    if m:
        return _gradient(m.group(1), m.group(2))
    m = re.fullmatch(r"\\nabla_\{?\s*([^{}\s]+?)\s*\}?\s*(.*)", lhs)
    if m:
        return _gradient(m.group(2), m.group(1))
    if "\\" in lhs or "{" in lhs:
        try:
            lhs = latex_to_text(lhs).replace(" ", "")
        except MatcalcError:
            return None
    m = re.fullmatch(r"(?:d|∂)([A-Za-z]\w*)?\s*/\s*(?:d|∂)([A-Za-z]\w*)", lhs)
    if m:
        return Target("gradient", m.group(1) or "", m.group(2))
    if re.fullmatch(r"[A-Za-z]\w*", lhs):
        return Target("name", lhs)
    return None


def _gradient(of: str, var: str) -> Target | None:
    try:
        of, var = (latex_to_text(x).replace(" ", "") if x.strip() else "" for x in (of, var))
    except MatcalcError:
        return None
    return Target("gradient", of, var) if re.fullmatch(r"\w*", of) and re.fullmatch(r"\w+", var) else None


def check_chain(expr: str, lines: str | list[str], let: str | dict | None = None) -> Verdict:
    """The first line of a derivation that does not follow (from the line before, or from what
    its left side names), with a counterexample; `correct` when every line does. `lines` is the
    derivation's text, or its lines."""
    if not isinstance(expr, str) or not (isinstance(lines, str) or isinstance(lines, (list, tuple))
                                         and all(isinstance(x, str) for x in lines)):
        raise MatcalcError("check_chain needs the loss as text and the derivation as text or a list of lines")
    rows = read_rows(lines if isinstance(lines, str) else "\n".join(lines))
    if len(rows) < 2 and not (rows and rows[0].lhs):
        raise MatcalcError("a derivation needs at least two lines (or one line with a left side, df/dX = ...)")
    names = names_of(expr, let)
    return Chain(names, Reader(names, differentials=True)).check(rows)


@dataclass(frozen=True)
class Ref:
    """What a row is compared with: the line before (`before`), nothing (an unnamed first
    line), any of `exprs` (a value or differential), or the loss's derivative along `var`."""

    kind: str  # "before", "none", "exprs", "gradient"
    what: str = ""
    exprs: tuple[Expr, ...] = ()
    var: str = ""


@dataclass
class Chain:
    """The comparisons of one derivation of one loss."""

    names: Names
    reader: Reader

    def check(self, rows: list[Row]) -> Verdict:
        """Read every row (a row that cannot be read is a wrong line; a name the loss lacks an
        input error), then compare each with its reference at the same random points."""
        exprs: list[Expr] = []
        for row in rows:
            expect = self.expected(row) if row.lhs else exprs[-1].shape if exprs else None
            try:
                exprs.append(self.reader.read(row.rhs, expect, what=f"line {row.line}", latex=row.latex))
            except (ShapeError, ParseError) as err:
                if getattr(err, "unknown_name", None):
                    raise
                return _wrong(row, "shape" if isinstance(err, ShapeError) else "parse",
                              f"line {row.line} ({row.shown()}): {err}")
        refs = [self.reference(row, e, k == 0) for k, (row, e) in enumerate(zip(rows, exprs))]
        fr = frames(self.names.loss, [*exprs, *(x for r in refs for x in r.exprs)], self.names.variables,
                    self.reader.moving())
        for k, (row, e, ref) in enumerate(zip(rows, exprs, refs)):
            if ref.kind == "before":
                ref = Ref("exprs", f"line {row.line} ({row.rhs}) does not follow from line {rows[k - 1].line} "
                          f"({rows[k - 1].rhs})", (exprs[k - 1],))
            bad = self.compare(e, ref, fr)
            if bad is not None:
                return _wrong(row, "chain", ref.what, bad)
        return Verdict("correct", "", checked=f"{len(rows)} lines, each equal to the one before or to what its "
                       f"left side names, at {len(SEEDS)} random points", what="derivation")

    def target(self, row: Row) -> Target | None:
        """What the row's left side names, spelt as the loss spells it."""
        t = _target(row.lhs) if row.lhs else None
        return Target(t.kind, self.reader.spell(t.name) if t.name else "", self.reader.spell(t.var) if t.var else "") \
            if t else None

    def expected(self, row: Row) -> tuple | None:
        """The shape of what a row's left side names (a gradient has its variable's), so that
        sizes left open, like those of ones in LaTeX (\\mathbf{1}), are inferred."""
        t = self.target(row)
        if t is None:
            return None
        known = {**self.names.named, **self.names.variables}
        name = t.var if t.kind == "gradient" else t.name
        if name in known:
            return known[name].shape
        if t.kind == "gradient":
            return None
        rest = name[1:] if name.startswith("d") else ""
        return known[rest].shape if rest in known else (1, 1)

    def reference(self, row: Row, e: Expr, first: bool) -> Ref:
        """What a row is compared with. A continuation row: the row before (an unnamed first
        row: the loss's differential if it holds differentials, else nothing); a chain-rule row
        (annotated so by matcalc) restarts the loss's differential."""
        if not row.lhs and row.label in RULES["chain"]:
            return self.loss_differential(row)
        if not row.lhs:
            return Ref("before") if not first else self.loss_differential(row) if e.has_d else Ref("none")
        target = self.target(row)
        if target is None:
            raise ParseError(f"line {row.line}: cannot read the left side {row.lhs!r}")
        if target.kind == "gradient":
            return self.gradient_reference(row, target)
        name, known = target.name, {**self.names.named, **self.names.variables}
        if name in known:
            return Ref("exprs", f"line {row.line} ({row.shown()}) is not {name} as the loss defines it",
                       (known[name],))
        rest = name[1:] if name.startswith("d") else None
        if rest is not None and (rest in self.names.variables or rest in self.names.steps):
            of = self.names.variables.get(rest) or self.names.steps[rest]
            return Ref("exprs", f"line {row.line} ({row.shown()}) is not the differential of {rest}",
                       (self.reader.differential(of),))
        if rest is not None:  # dL, df: the loss's differential
            return self.loss_differential(row)
        return Ref("exprs", f"line {row.line} ({row.shown()}) is not the loss", (self.names.loss,))

    def loss_differential(self, row: Row) -> Ref:
        """The loss's differential, or (in a program) its part through one step,
        tr(delta' d(step)), which is where each step's chain-rule lines start."""
        parts = [Op("sum", (al.hadamard(self.names.named[delta], self.reader.differential(self.names.steps[step])),))
                 for step, delta in self.names.deltas.items()]
        more = " (nor its part through one step, tr(delta' d(step)))" if parts else ""
        return Ref("exprs", f"line {row.line} ({row.shown()}) is not the differential of the loss{more}",
                   (self.reader.differential(self.names.loss), *parts))

    def gradient_reference(self, row: Row, target: Target) -> Ref:
        var = target.var
        if target.name in self.names.variables or target.name in self.names.named:
            raise ParseError(f"line {row.line}: only gradients of the loss can be checked, not of {target.name}")
        if var not in self.names.variables and var not in self.names.steps:
            raise ParseError(f"line {row.line}: {var} is not a variable or step of the loss "
                             f"(symbols: {self.names.symbols_text()})")
        return Ref("gradient", f"line {row.line} ({row.shown()}) is not the gradient with respect to {var}", var=var)

    def compare(self, e: Expr, ref: Ref, fr: list[Frame]) -> dict | None:
        """None when the row holds; else a counterexample."""
        if ref.kind == "gradient":
            return self.compare_gradient(e, ref.var, fr)
        if ref.kind == "none":
            return None
        worst = None
        for c in ref.exprs:
            if c.shape != e.shape:
                worst = worst or {"shapes": [fmt_shape(e.shape), fmt_shape(c.shape)]}
                continue
            bad = _first_difference(e, c, fr)
            if bad is None:
                return None
            worst = bad if worst is None or "shapes" in worst else worst
        return worst

    def compare_gradient(self, g: Expr, var: str, fr: list[Frame]) -> dict | None:
        """sum(G .* V) against the loss's derivative along V (V: a random direction of the
        variable, or of the step with the step made a free symbol)."""
        shape = (self.names.variables.get(var) or self.names.steps[var]).shape
        if g.shape != shape:
            return {"shapes": [fmt_shape(g.shape), fmt_shape(shape)]}
        f, sym = self.names.loss, self.names.variables.get(var)
        if sym is None:  # a step: the loss with the step as a free symbol
            step = self.names.steps[var]
            sym = Sym(var, step.shape)
            f = al.substitute(f, {step: sym, al.group(step): sym})
        df = Differentiator(frozenset([var]))(f)
        for seed, frame in zip(SEEDS, fr):
            point = dict(frame.point)
            if var in self.names.steps:
                point[var] = values([self.names.steps[var]], frame.point, frame.dims)[0]
            v = _direction(sym, frame.dims, np.random.default_rng(seed + 11))
            vg, vd = values([g, df], point, frame.dims, {Dif(sym): v})
            claim = np.array([[float(np.sum(vg * v))]])
            if not close(claim, vd):
                return {**rounded(frame), "direction": np.round(v, 4).tolist(),
                        "claim": float(claim[0, 0]), "derivative": float(vd[0, 0])}
        return None


def _first_difference(a: Expr, b: Expr, fr: list[Frame]) -> dict | None:
    for frame in fr:
        va, vb = values([a, b], frame.point, frame.dims, frame.directions)
        if not close(va, vb):
            return {**rounded(frame), "before": np.round(vb, 6).tolist(), "after": np.round(va, 6).tolist()}
    return None


def _wrong(row: Row, kind: str, detail: str, counterexample: dict | None = None) -> Verdict:
    return Verdict("wrong", "", [{"kind": kind, "detail": detail, "line": row.line}], counterexample,
                   what="derivation")


__all__ = ["Row", "chain_lines", "check_chain", "read_rows"]
