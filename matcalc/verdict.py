"""`check`: is a hand-derived gradient right? A verdict, a counterexample and a diagnosis.

The true gradient is derived (and itself verified); the claim, read in the same syntax with the
same shapes, is compared with it numerically at random points honouring the declarations.
When they differ, the diagnoses that fit are named: the claim's shape is wrong (which product
does not conform), it is the transpose, it is off by a constant factor or by sign, it misses a
term of the gradient or has an extra one, or it is right only under a property the loss did not
declare (`A symmetric`, `y probability`).
"""
from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10
    import tomli as tomllib

from . import algebra as al
from .api import Result, _decls, grad
from .check import _np, assign_sizes, find_point
from .errors import MatcalcError, ShapeError
from .evaluate import numeric
from .differentiate import Differentiator
from .expr import Dif, Expr, Op, Sym, walk
from .latex_in import latex_to_text, looks_like_latex
from .parser import Decl, parse_syn
from .printing import to_text
from .registry import fmt_shape
from .typer import to_expr

TOL = 1e-7
SEEDS = (0, 1, 2)


@dataclass
class Verdict:
    verdict: str  # "correct" or "wrong"
    gradient: str
    diagnoses: list[dict] = field(default_factory=list)
    counterexample: dict | None = None
    checked: str = ""
    what: str = "gradient"  # or "differential"

    @property
    def correct(self) -> bool:
        return self.verdict == "correct"

    def to_dict(self) -> dict:
        return {"verdict": self.verdict, "diagnoses": self.diagnoses, "counterexample": self.counterexample,
                "gradient": self.gradient, "checked": self.checked}

    def __str__(self) -> str:
        if self.correct and self.what == "derivation":
            return f"correct: every line follows from the one before\n{self.checked}"
        if self.correct:
            return f"correct: the claim equals the {self.what} {self.gradient}\n{self.checked}"
        lines = ["wrong"] + [f"  {d['kind']}: {d['detail']}" for d in self.diagnoses]
        ce = self.counterexample or {}
        if ce:
            lines.append(f"counterexample at sizes {ce['sizes']}:")
            lines += [f"  {k} = {v}" for k, v in {**ce["point"], **ce.get("directions", {})}.items()]
            lines += [f"  entry {e['entry']}: claim {e['claim']:.6g}, gradient {e['gradient']:.6g}"
                      for e in ce.get("entries", [])]
            if "differential" in ce:
                lines.append(f"  claim {ce['claim']:.6g}, differential {ce['differential']:.6g}")
        if self.gradient:
            lines.append(f"the {self.what} is {self.gradient}")
        return "\n".join(lines)


def _decls_of(r: Result) -> dict[str, Decl]:
    return {n: Decl(n, s.shape, s.props - {"dimension"}) for n, s in r.symbols.items() if "dimension" not in s.props}


def _read_claim(claim: str, r: Result, decls: dict[str, Decl], shape=None, names: Result | None = None) -> Expr:
    """A claim in the text syntax or in LaTeX, with the names of `names`' `where` (the steps of
    a program and their deltas) usable, and sizes left open inferred from the expected shape."""
    claim = latex_to_text(claim) if looks_like_latex(claim) else claim
    named = {n: e for n, e in (names or r).where}
    return to_expr(claim, parse_syn(claim), decls, bound=lambda name: named.get(name), closed=False,
                   expect=shape)


def check(expr: str, wrt: str, claim: str, let: str | dict | None = None, seed: int = 0) -> Verdict:
    """The verdict on `claim` as the gradient of `expr` with respect to `wrt`."""
    r = grad(expr, [wrt], let, seed=seed)
    v = _check(r, expr, wrt, claim, let)
    if looks_like_latex(claim):  # the gradient in the claim's own notation
        v.gradient = r[wrt].latex
    return v


def _check(r: Result, expr: str, wrt: str, claim: str, let) -> Verdict:
    g = r[wrt].expr
    decls = {**_decls_of(r), **_decls(let)}
    every = [n for n, s in r.symbols.items() if "dimension" not in s.props]
    names = grad(expr, every, let, check=False) if r.where or "=" in expr else r  # every delta named
    try:
        c = _read_claim(claim, r, decls, g.shape, names)
    except ShapeError:
        try:  # read without the expected shape: a claim of the wrong shape is diagnosed below
            c = _read_claim(claim, r, decls, None, names)
        except ShapeError as err:
            return Verdict("wrong", r[wrt].text, [{"kind": "shape", "detail": str(err)}])
    if c.shape != g.shape:
        kinds = [{"kind": "shape", "detail": f"the claim is {fmt_shape(c.shape)} but the gradient has the shape of "
                                              f"{wrt}, {fmt_shape(g.shape)}"}]
        if c.shape == (g.shape[1], g.shape[0]) and _same(r.loss, al.transpose(c), g):
            kinds.append({"kind": "transpose", "detail": "the claim is the transpose of the gradient"})
        return Verdict("wrong", r[wrt].text, kinds)
    if _same(r.loss, c, g):
        return Verdict("correct", r[wrt].text, checked=f"compared at {len(SEEDS)} random points; "
                       + (r.check.summary() if r.check else ""))
    return Verdict("wrong", r[wrt].text, _diagnose(r, wrt, c, g, expr, let), _counterexample(r.loss, c, g))


def _values(f: Expr, exprs: list[Expr], seed: int) -> tuple[list[np.ndarray], dict, dict]:
    """Values at a random point; each seed uses other sizes, so that a factor 1/m shows as such."""
    dims = {k: v + seed for k, v in assign_sizes([f, *exprs]).items()}
    point = _np(find_point(f, {}, dims, seed))
    for s in {n for n in walk([f, *exprs]) if isinstance(n, Sym) and "dimension" in n.props}:
        point[s.name] = np.array([[float(dims[s.name])]])
    return numeric(exprs, point, dims), point, dims


def _same(f: Expr, a: Expr, b: Expr) -> bool:
    for seed in SEEDS:
        (va, vb), _, _ = _values(f, [a, b], seed)
        if not np.allclose(va, vb, rtol=TOL, atol=TOL * max(1.0, float(np.max(np.abs(vb))))):
            return False
    return True


def _diagnose(r: Result, wrt: str, c: Expr, g: Expr, expr: str, let) -> list[dict]:
    out = []
    if c.shape[0] == c.shape[1] and _same(r.loss, al.transpose(c), g):
        out.append({"kind": "transpose", "detail": "the claim is the transpose of the gradient"})
    k = _factor(r.loss, c, g)
    if k is not None:
        out.append({"kind": "sign", "detail": "the claim has the wrong sign"} if k == "-1" else
                   {"kind": "factor", "detail": f"the claim is {k} times the gradient: divide it by {k}"})
    out += _terms(r.loss, c, g)
    out += _entries(r.loss, c, g)
    out += _properties(r, wrt, c, expr, let) if not _entries(r.loss, c, g) else []
    return out


def _entries(f: Expr, c: Expr, g: Expr) -> list[dict]:
    """For a claim written entry by entry: which entries are wrong, and whether a wrong entry is
    another entry of the gradient (misplaced), at every point tried."""
    if not (isinstance(c, Op) and c.op == "literal"):
        return []
    runs = [_values(f, [c, g], seed)[0] for seed in SEEDS]
    rows, cols = runs[0][0].shape
    out = []
    for i in range(rows):
        for j in range(cols):
            if all(np.isclose(vc[i, j], vg[i, j], rtol=TOL, atol=TOL) for vc, vg in runs):
                continue
            home = [(k, m) for k in range(rows) for m in range(cols)
                    if all(np.isclose(vc[i, j], vg[k, m], rtol=TOL, atol=TOL) for vc, vg in runs)]
            text = to_text(c.args[1 + i * cols + j])
            if home:
                k, m = home[0]
                out.append({"kind": "misplaced-entry", "detail": f"entry ({i + 1},{j + 1}) of the claim, {text}, is "
                            f"the gradient's entry ({k + 1},{m + 1})"})
            else:
                out.append({"kind": "wrong-entry", "detail": f"entry ({i + 1},{j + 1}) of the claim, {text}, is wrong"})
    return out


def _factor(f: Expr, c: Expr, g: Expr) -> str | None:
    """A constant k with c = k*g at every point (named as a fraction or 1/m for a dimension m)."""
    ks = []
    for seed in SEEDS:
        (vc, vg), _, dims = _values(f, [c, g], seed)
        denom = float(np.sum(vg * vg))
        if denom < 1e-300:
            return None
        k = float(np.sum(vc * vg)) / denom
        if not np.allclose(vc, k * vg, rtol=1e-7, atol=1e-9):
            return None
        ks.append((k, dims))
    k0 = ks[0][0]
    if all(abs(k - k0) <= 1e-7 * max(1, abs(k0)) for k, _ in ks):
        frac = Fraction(k0).limit_denominator(1000)
        return None if frac == 1 else str(frac)
    for name in ks[0][1]:  # k varies with a size: 1/m, m, ...
        for power in (1, -1, 2, -2):
            if all(abs(k - dims[name] ** power) <= 1e-7 * abs(k) for k, dims in ks):
                return name if power == 1 else f"1/{name}" if power == -1 else f"{name}^{power}"
    return None


def _term_list(e: Expr) -> list[Expr]:
    return list(e.args) if isinstance(e, Op) and e.op == "add" else [e]


def _terms(f: Expr, c: Expr, g: Expr) -> list[dict]:
    out = []
    for t in _term_list(g):
        if len(_term_list(g)) > 1 and _same(f, al.add(c, t), g):
            out.append({"kind": "missing-term", "detail": f"the claim misses the term {to_text(t)}"})
    for t in _term_list(c):
        if len(_term_list(c)) > 1 and _same(f, al.sub(c, t), g):
            out.append({"kind": "extra-term", "detail": f"the claim has an extra term {to_text(t)}"})
    return out


def _properties(r: Result, wrt: str, c: Expr, expr: str, let) -> list[dict]:
    """Declare one property more (a square symbol symmetric, a vector a probability) and see
    whether the claim then holds."""
    out = []
    for name, s in r.symbols.items():
        if name == wrt or "dimension" in s.props:
            continue
        props = (["symmetric"] if s.shape[0] == s.shape[1] and s.shape != (1, 1) else []) + \
                (["probability"] if s.shape != (1, 1) else [])
        for prop in props:
            if prop in s.props:
                continue
            extra = {**_decls_of(r), **_decls(let)}
            extra[name] = Decl(name, s.shape, s.props | {prop})
            try:
                r2 = grad(expr, [wrt], extra)
                c2 = _read_claim(to_text(c), r2, extra)
            except MatcalcError:
                continue
            if _same(r2.loss, c2, r2[wrt].expr):
                out.append({"kind": "needs-property",
                            "detail": f"the claim holds only if {name} is {prop} (declare '{name}: {prop}')"})
    return out


def _counterexample(f: Expr, c: Expr, g: Expr) -> dict:
    (vc, vg), point, dims = _values(f, [c, g], SEEDS[0])
    diff = np.abs(vc - vg)
    worst = np.dstack(np.unravel_index(np.argsort(-diff, axis=None), diff.shape))[0][:4]
    return {"sizes": dims,
            "point": {k: np.round(v, 4).tolist() for k, v in point.items()},
            "entries": [{"entry": f"({i + 1},{j + 1})", "claim": float(vc[i, j]), "gradient": float(vg[i, j])}
                        for i, j in worst if diff[i, j] > TOL]}


def check_differential(expr: str, claim: str, let: str | dict | None = None) -> Verdict:
    """The verdict on a claimed differential `df = ...` (the `df =` is optional), written with
    `dX` for the differential of each variable X it involves."""
    claim = claim.split("=", 1)[1] if re.match(r"^\s*(\\mathrm\{d\}\s*)?d?\w*\s*=", claim) else claim
    claim = latex_to_text(claim) if looks_like_latex(claim) else claim
    r = grad(expr, [], let, check=False)
    decls = {**_decls_of(r), **_decls(let)}
    variables = {n: s for n, s in r.symbols.items() if "dimension" not in s.props}

    def bound(name: str) -> Expr | None:
        return Dif(variables[name[1:]]) if name.startswith("d") and name[1:] in variables else None

    c = to_expr(claim, parse_syn(claim), decls, bound=bound)
    wrt = frozenset(n.var.name for n in walk([c]) if isinstance(n, Dif)) or frozenset(variables)
    df = Differentiator(wrt)(r.loss)
    truth = to_text(df)
    if c.shape != df.shape:
        return Verdict("wrong", truth, [{"kind": "shape", "detail": f"the claimed differential is "
                                         f"{fmt_shape(c.shape)}, but the loss is {fmt_shape(df.shape)}"}],
                       what="differential")
    worst = None
    for seed in SEEDS:
        dims = {k: v + seed for k, v in assign_sizes([r.loss, c, df]).items()}
        point = _np(find_point(r.loss, {}, dims, seed))
        rng = np.random.default_rng(seed)
        known = {Dif(s): rng.standard_normal(point[n].shape) for n, s in variables.items() if n in wrt}
        vc, vt = numeric([c, df], point, dims, known)
        if not np.allclose(vc, vt, rtol=TOL, atol=TOL * max(1.0, float(np.max(np.abs(vt))))):
            worst = {"sizes": dims, "point": {k: np.round(v, 4).tolist() for k, v in point.items()},
                     "directions": {f"d{d.var.name}": np.round(v, 4).tolist() for d, v in known.items()},
                     "claim": float(vc[0, 0]), "differential": float(vt[0, 0])}
            break
    if worst is None:
        return Verdict("correct", truth, checked=f"compared at {len(SEEDS)} random points and directions",
                       what="differential")
    k = worst["claim"] / worst["differential"] if worst["differential"] else None
    kinds = [{"kind": "sign" if abs(k + 1) < 1e-7 else "factor",
              "detail": "the claim has the wrong sign" if abs(k + 1) < 1e-7 else
              f"the claim is {Fraction(k).limit_denominator(1000)} times the differential"}] \
        if k is not None and _constant_ratio(r.loss, c, df, known_vars=variables, wrt=wrt, k=k) else []
    return Verdict("wrong", truth, kinds, worst, what="differential")


def _constant_ratio(f: Expr, c: Expr, df: Expr, known_vars: dict, wrt: frozenset[str], k: float) -> bool:
    for seed in SEEDS[1:]:
        dims = {n: v + seed for n, v in assign_sizes([f, c, df]).items()}
        point = _np(find_point(f, {}, dims, seed))
        rng = np.random.default_rng(seed + 7)
        known = {Dif(s): rng.standard_normal(point[n].shape) for n, s in known_vars.items() if n in wrt}
        vc, vt = numeric([c, df], point, dims, known)
        if not np.allclose(vc, k * vt, rtol=1e-7, atol=1e-9):
            return False
    return True


def chain_lines(text: str) -> list[str]:
    """The math lines of a derivation: `= ...` lines of plain text, or the rows of a LaTeX or
    Markdown `align`/`aligned` block (`&=` separated, rows ended by `\\\\`)."""
    m = re.search(r"\\begin\{align\*?\}(.*?)\\end\{align\*?\}|\\begin\{aligned\}(.*?)\\end\{aligned\}", text, re.S)
    rows = re.split(r"\\\\", m.group(1) or m.group(2)) if m else text.splitlines()
    out = []
    for row in rows:
        row = re.sub(r"&&.*$", "", row.strip())  # an annotation column (\text{...})
        row = row.replace("&", "").strip()
        if not row or row.startswith("#"):
            continue
        out.append(row.split("=", 1)[1].strip() if "=" in row else row)
    return out


def check_chain(expr: str, lines: list[str], let: str | dict | None = None) -> Verdict:
    """The first line of a hand derivation that does not follow from the one before (with a
    counterexample), or `correct` when each does. Lines may hold differentials (dX); a first
    line that does is compared with the loss's differential."""
    lines = chain_lines("\n".join(lines))
    if len(lines) < 2:
        raise MatcalcError("a derivation needs at least two lines")
    r = grad(expr, [], let, check=False)
    decls = {**_decls_of(r), **_decls(let)}
    variables = {n: s for n, s in r.symbols.items() if "dimension" not in s.props}

    def bound(name: str) -> Expr | None:
        return Dif(variables[name[1:]]) if name.startswith("d") and name[1:] in variables else None

    exprs = []
    for k, line in enumerate(lines, 1):
        text = latex_to_text(line) if looks_like_latex(line) else line
        try:
            exprs.append(to_expr(text, parse_syn(text), decls, bound=bound))
        except MatcalcError as err:
            return Verdict("wrong", "", [{"kind": "shape" if isinstance(err, ShapeError) else "parse",
                                          "detail": f"line {k} ({line}): {err}"}], what="derivation")
    wrt = frozenset(n.var.name for e in exprs for n in walk([e]) if isinstance(n, Dif))
    if wrt:
        exprs.insert(0, Differentiator(wrt)(r.loss))
        lines = [f"d({expr})"] + lines
    for k in range(1, len(exprs)):
        bad = _differs(r.loss, exprs[k - 1], exprs[k], variables, wrt)
        if bad is not None:
            shown = k if wrt else k + 1  # the number of line k as the user counts them
            where = "the first line is not the differential of the loss" if wrt and k == 1 else \
                f"line {shown} ({lines[k]}) does not follow from line {shown - 1} ({lines[k - 1]})"
            return Verdict("wrong", "", [{"kind": "chain", "detail": where}], bad, what="derivation")
    return Verdict("correct", "", checked=f"{len(lines)} lines, each equal to the one before at "
                   f"{len(SEEDS)} random points", what="derivation")


def _differs(f: Expr, a: Expr, b: Expr, variables: dict, wrt: frozenset[str]) -> dict | None:
    if a.shape != b.shape:
        return {"sizes": {}, "point": {}, "shapes": [fmt_shape(a.shape), fmt_shape(b.shape)]}
    for seed in SEEDS:
        dims = {k: v + seed for k, v in assign_sizes([f, a, b]).items()}
        point = _np(find_point(f, {}, dims, seed))
        rng = np.random.default_rng(seed)
        known = {Dif(s): rng.standard_normal(point[n].shape) for n, s in variables.items() if n in wrt}
        va, vb = numeric([a, b], point, dims, known)
        if not np.allclose(va, vb, rtol=TOL, atol=TOL * max(1.0, float(np.max(np.abs(va))))):
            return {"sizes": dims, "point": {k: np.round(v, 4).tolist() for k, v in point.items()},
                    "directions": {f"d{d.var.name}": np.round(v, 4).tolist() for d, v in known.items()},
                    "before": np.round(va, 6).tolist(), "after": np.round(vb, 6).tolist()}
    return None


def check_file(path: str) -> list[tuple[str, Verdict | MatcalcError]]:
    """Many claims at once (a course's CI): a TOML file of [[claim]] tables, or a JSON list, each
    with `loss`, `let` (optional) and either `wrt` + `claim`, `differential`, or `chain` (a list
    of lines); `name` labels it. Returns (name, verdict or the error of a bad entry)."""
    with open(path, "rb") as fh:
        raw = fh.read()
    try:
        data = json.loads(raw) if path.endswith(".json") else tomllib.loads(raw.decode("utf-8")).get("claim", [])
    except (ValueError, tomllib.TOMLDecodeError) as err:
        raise MatcalcError(f"cannot read {path}: {err}") from None
    out: list[tuple[str, Verdict | MatcalcError]] = []
    for k, entry in enumerate(data, 1):
        name = str(entry.get("name", f"claim {k}"))
        try:
            out.append((name, _one(entry)))
        except MatcalcError as err:
            out.append((name, err))
    return out


def _one(entry: dict) -> Verdict:
    loss, let = entry.get("loss"), entry.get("let", "")
    if not loss:
        raise MatcalcError("an entry needs `loss`")
    if "chain" in entry:
        return check_chain(loss, list(entry["chain"]), let)
    if "differential" in entry:
        return check_differential(loss, entry["differential"], let)
    if "wrt" not in entry or "claim" not in entry:
        raise MatcalcError("an entry needs `wrt` and `claim` (or `differential`, or `chain`)")
    return check(loss, entry["wrt"], entry["claim"], let)


def table(results: list[tuple[str, Verdict | MatcalcError]]) -> str:
    """One line per claim: name, verdict, what is wrong."""
    width = max([len(n) for n, _ in results] + [5])
    rows = []
    for name, v in results:
        if isinstance(v, MatcalcError):
            rows.append(f"{name:<{width}}  error    {str(v).splitlines()[0]}")
        else:
            rows.append(f"{name:<{width}}  {v.verdict:<7}  {'; '.join(d['kind'] for d in v.diagnoses)}".rstrip())
    wrong = sum(not isinstance(v, Verdict) or not v.correct for _, v in results)
    return "\n".join(rows + [f"{len(results) - wrong} correct, {wrong} wrong or unreadable"])
