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
from fractions import Fraction

import numpy as np

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10
    import tomli as tomllib

from ..api import Result, _decls, grad
from ..calculus.differentiate import Differentiator
from ..core import algebra as al
from ..core import properties
from ..core.expr import Expr, Op, Sym, walk
from ..core.registry import fmt_shape
from ..errors import CheckError, DomainError, MatcalcError, ParseError, ShapeError
from ..syntax.latex_in import looks_like_latex
from ..syntax.parser import Decl
from ..syntax.printing import to_text
from ..verify.check import FLAT, _np, assign_sizes, find_point, verify
from .chain import chain_lines, check_chain
from .claims import (
    SEEDS,
    TOL,
    Names,
    Reader,
    Verdict,
    close,
    frames,
    merged_decls,
    names_of,
    rounded,
    values,
    where_of,
)


def _decls_of(r: Result) -> dict[str, Decl]:
    return {n: Decl(n, s.shape, s.props - {"dimension"}) for n, s in r.symbols.items() if "dimension" not in s.props}


def check(expr: str, wrt: str, claim: str, let: str | dict | None = None, seed: int = 0) -> Verdict:
    """The verdict on `claim` as the gradient of `expr` with respect to `wrt`. A claim naming a
    symbol the loss does not have (other than a step or delta name) is a ParseError."""
    _text_args(expr=expr, wrt=wrt, claim=claim)
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", wrt.strip()):
        raise ParseError(f"--wrt needs one variable name, got {wrt!r}")
    r = grad(expr, [wrt.strip()], let, seed=seed)
    wrt = wrt.strip()
    latex = looks_like_latex(claim)
    v = _check(r, wrt, claim, names_of(expr, let, r), let)
    if latex:  # the gradient in the claim's own notation
        v.gradient = r[wrt].latex
    v.where = where_of(r, latex)
    return v


def _text_args(**args: object) -> None:
    """Each argument is text (a clear error for None, numbers, lists)."""
    for name, value in args.items():
        if not isinstance(value, str):
            raise MatcalcError(f"{name} must be text, got {type(value).__name__}")


def _check(r: Result, wrt: str, claim: str, names: Names, let) -> Verdict:
    g = r[wrt].expr
    reader = Reader(names)
    try:
        c = reader.read(claim, g.shape)
    except ShapeError:
        try:  # read without the expected shape: a claim of the wrong shape is diagnosed below
            c = Reader(names).read(claim)
        except ShapeError as err:
            return Verdict("wrong", r[wrt].text, [{"kind": "shape", "detail": str(err)}])
    if c.shape != g.shape:
        kinds = [{"kind": "shape", "detail": f"the claim is {fmt_shape(c.shape)} but the gradient has the shape of "
                                              f"{wrt}, {fmt_shape(g.shape)}"}]
        if c.shape == (g.shape[1], g.shape[0]) and _same(r.loss, al.transpose(c), g):
            kinds.append({"kind": "transpose", "detail": "the claim is the transpose of the gradient"})
        return Verdict("wrong", r[wrt].text, kinds)
    undefined = _undefined(r.loss, c, g)
    if undefined:
        return Verdict("wrong", r[wrt].text, [undefined], _counterexample(r.loss, c, g))
    if _same(r.loss, c, g) and _verified(r, wrt, c):
        return Verdict("correct", r[wrt].text, checked=f"compared at {len(SEEDS)} random points; "
                       + (r.check.summary() if r.check else ""))
    return Verdict("wrong", r[wrt].text, _diagnose(r, wrt, c, g, names.loss_text, let), _counterexample(r.loss, c, g))


def _verified(r: Result, wrt: str, c: Expr) -> bool:
    """The claim passes the gradient checks themselves (numeric with a high-precision fallback,
    and SymPy's exact or 25-digit series): agreeing in float64 is not enough where the gradient
    is lost in rounding (tanh(det(X)) saturated makes G and 2*G both 0.0)."""
    if wrt not in r.loss.syms:  # a step or an absent variable: the float comparison is the check
        return True
    try:
        report = verify(r.loss, {wrt: c}, dict(r.symbols))
    except CheckError:
        return False
    except MatcalcError:  # no point or no sizes to check at: the float comparison stands
        return True
    if wrt in report.unverified:  # 0 wherever tried: G, 2*G and 0 all pass there
        raise DomainError(f"cannot decide: {FLAT} (the gradient of {wrt})")
    return True


SMALL = 1e-4  # a true gradient is compared where some entry is at least this (`close` has an absolute floor)


def _values(f: Expr, exprs: list[Expr], seed: int, truth: Expr | None = None) -> tuple[list[np.ndarray], dict, dict]:
    """Values at a random point (where the loss and the true gradient `truth` are defined, and
    `truth` not so small that every claim is close to it); each seed uses other sizes, so that
    a factor 1/m shows as such."""
    base = assign_sizes([f, *exprs])
    dims = {k: v + seed for k, v in base.items()}
    grads = {"truth": truth} if truth is not None else {}
    try:
        point = _np(find_point(f, grads, dims, seed, tuple(exprs), SMALL))
    except DomainError:  # undefined at the larger sizes (A*A' with A: D x 2 is singular for D > 2)
        dims = dict(base)
        point = _np(find_point(f, grads, dims, seed, tuple(exprs), SMALL))
    for s in {n for n in walk([f, *exprs]) if isinstance(n, Sym) and "dimension" in n.props}:
        point[s.name] = np.array([[float(dims[s.name])]])
    return values(exprs, point, dims), point, dims


def _undefined(f: Expr, c: Expr, g: Expr) -> dict | None:
    """A diagnosis when the claim is not finite where the loss and its gradient `g` are."""
    for seed in SEEDS:
        (vc,), _, _ = _values(f, [c], seed, g)
        if not np.all(np.isfinite(vc)):
            return {"kind": "undefined", "detail": "the claim is not finite where the loss is defined (a division "
                    "by zero, the log of a non-positive value, an overflow?)"}
    return None


def _same(f: Expr, a: Expr, b: Expr) -> bool:
    for seed in SEEDS:
        (va, vb), _, _ = _values(f, [a, b], seed, b)
        if not close(va, vb):
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
    runs = [_values(f, [c, g], seed, g)[0] for seed in SEEDS]
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
        (vc, vg), _, dims = _values(f, [c, g], seed, g)
        with np.errstate(all="ignore"):  # beyond float64: no factor is found
            denom = float(np.sum(vg * vg))
            if not 1e-300 < denom < np.inf:
                return None
            k = float(np.sum(vc * vg)) / denom
            if not np.allclose(vc, k * vg, rtol=1e-7, atol=1e-9):
                return None
        ks.append((k, dims))
    k0 = ks[0][0]
    if abs(k0) < 1e-12:
        return None  # a zero claim: no factor mends it
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
    """Declare one property more (those the property table suggests for the symbol's shape: a
    square symbol symmetric, a vector a probability) and see whether the claim then holds."""
    out = []
    for name, s in r.symbols.items():
        if name == wrt or "dimension" in s.props:
            continue
        for prop in properties.suggestions(s.shape):
            if prop in s.props:
                continue
            extra = merged_decls(_decls_of(r), _decls(let))
            extra[name] = Decl(name, s.shape, s.props | {prop})
            try:  # a diagnosis, not a verdict: the engine's gradient unchecked is enough
                r2 = grad(expr, [wrt], extra, check=False)
                variables = {n: s for n, s in r2.symbols.items() if "dimension" not in s.props}
                c2 = Reader(Names(r2.loss, expr, extra, variables, {}, {})).read(to_text(c))
            except MatcalcError:
                continue
            if c2.shape == r2[wrt].expr.shape and _same(r2.loss, c2, r2[wrt].expr):
                out.append({"kind": "needs-property",
                            "detail": f"the claim holds only if {name} is {prop} (declare '{name}: {prop}')"})
    return out


def _counterexample(f: Expr, c: Expr, g: Expr) -> dict:
    (vc, vg), point, dims = _values(f, [c, g], SEEDS[0], g)
    diff = np.abs(vc - vg)
    diff[~np.isfinite(diff)] = np.inf
    worst = np.dstack(np.unravel_index(np.argsort(-diff, axis=None), diff.shape))[0][:4]
    return {"sizes": dims,
            "point": {k: np.round(v, 4).tolist() for k, v in point.items()},
            "entries": [{"entry": f"({i + 1},{j + 1})", "claim": float(vc[i, j]), "gradient": float(vg[i, j])}
                        for i, j in worst if not diff[i, j] <= TOL]}


def check_differential(expr: str, claim: str, let: str | dict | None = None) -> Verdict:
    """The verdict on a claimed differential `df = ...` (the `df =` is optional), written with
    `dX` (or `d(X)`, `d(A*X)`) for the differential of each variable X it involves: the claim
    is compared with the loss's differential in the variables whose differentials it uses."""
    _text_args(expr=expr, claim=claim)
    m = re.match(r"^\s*(\\mathrm\{d\}\s*\w*|d\w*|\\mathrm\{d\w*\})\s*&?=", claim)
    claim = claim[m.end():] if m else claim
    names = names_of(expr, let)
    reader = Reader(names, differentials=True)
    c = reader.read(claim, what="the claimed differential")
    wrt = frozenset(reader.moving())
    df = Differentiator(wrt)(names.loss)
    truth = to_text(df)
    if c.shape != df.shape:
        return Verdict("wrong", truth, [{"kind": "shape", "detail": f"the claimed differential is "
                                         f"{fmt_shape(c.shape)}, but the loss is {fmt_shape(df.shape)}"}],
                       what="differential")
    runs, worst = [], None
    for frame in frames(names.loss, [c, df], names.variables, wrt):
        known = {d: v for d, v in frame.directions.items() if d.var.name in wrt}
        vc, vt = values([c, df], frame.point, frame.dims, frame.directions)
        runs.append((float(vc[0, 0]), float(vt[0, 0])))
        if worst is None and not close(vc, vt):
            worst = {**rounded(frame), "directions": {f"d{d.var.name}": np.round(v, 4).tolist()
                                                      for d, v in known.items()},
                     "claim": float(vc[0, 0]), "differential": float(vt[0, 0])}
    if worst is None:
        return Verdict("correct", truth, checked=f"compared at {len(SEEDS)} random points and directions",
                       what="differential")
    return Verdict("wrong", truth, _ratio(runs), worst, what="differential")


def _ratio(runs: list[tuple[float, float]]) -> list[dict]:
    """A sign or constant factor, when the claim is the same multiple of the differential at
    every point tried."""
    if any(abs(t) < 1e-12 for _, t in runs):
        return []
    ks = [c / t for c, t in runs]
    if not all(abs(k - ks[0]) <= 1e-7 * max(1.0, abs(ks[0])) for k in ks) or abs(ks[0] - 1) < 1e-7:
        return []
    if abs(ks[0] + 1) < 1e-7:
        return [{"kind": "sign", "detail": "the claim has the wrong sign"}]
    factor = Fraction(ks[0]).limit_denominator(1000)
    return [{"kind": "factor", "detail": f"the claim is {factor} times the differential"}]


def check_file(path: str) -> list[tuple[str, Verdict | MatcalcError]]:
    """Many claims at once (a course's CI): a TOML file of [[claim]] tables, or a JSON list, each
    with `loss`, `let` (optional) and either `wrt` + `claim`, `differential`, or `chain` (a list
    of lines, or one text); `name` labels it. Returns (name, verdict or the error of a bad entry)."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as err:
        raise MatcalcError(f"cannot read {path}: {err.strerror}") from None
    try:
        data = json.loads(raw) if path.endswith(".json") else tomllib.loads(raw.decode("utf-8")).get("claim", [])
    except (ValueError, tomllib.TOMLDecodeError) as err:
        raise MatcalcError(f"cannot read {path}: {err}") from None
    if not isinstance(data, list):
        raise MatcalcError(f"cannot read {path}: expected a list of claims ([[claim]] tables, or a JSON list)")
    out: list[tuple[str, Verdict | MatcalcError]] = []
    for k, entry in enumerate(data, 1):
        name = str(entry.get("name", f"claim {k}")) if isinstance(entry, dict) else f"claim {k}"
        try:
            out.append((name, _one(entry)))
        except MatcalcError as err:
            out.append((name, err))
        except RecursionError:
            out.append((name, MatcalcError("the entry is too deeply nested")))
    return out


def _one(entry: object) -> Verdict:
    if not isinstance(entry, dict):
        raise MatcalcError("an entry must be a table with `loss` and `wrt` + `claim`, `differential` or `chain`")
    loss, let = entry.get("loss"), entry.get("let", "")
    if not loss:
        raise MatcalcError("an entry needs `loss`")
    _text_args(loss=loss, let=let)
    if "chain" in entry:
        chain = entry["chain"]
        if not isinstance(chain, (str, list)) or not all(isinstance(x, str) for x in chain):
            raise MatcalcError("`chain` must be text or a list of lines")
        return check_chain(loss, chain, let)
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


def as_json(results: list[tuple[str, Verdict | MatcalcError]]) -> list[dict]:
    """The results of a batch file as JSON data: one object per claim, with its name and either
    the verdict's fields or `error` (the error's kind and message)."""
    out = []
    for name, v in results:
        if isinstance(v, MatcalcError):
            out.append({"name": name, "verdict": "error", "error": str(v), "error_kind": type(v).__name__})
        else:
            out.append({"name": name, **v.to_dict()})
    return out


__all__ = ["Verdict", "as_json", "chain_lines", "check", "check_chain", "check_differential", "check_file", "table"]
