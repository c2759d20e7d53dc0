"""Printers: the input syntax (parses back to an equal tree) and LaTeX, from one precedence scheme.

`names` maps shared sub-expressions to the names they were given in a `where` list.
"""
from __future__ import annotations

import re
from fractions import Fraction

from .algebra import exponent, neg, power, split_coef, value_of
from .expr import Dif, DiffOf, Expr, Eye, Num, Op, Sym
from .registry import OPS, DimProd

ADD, MUL, NEG, POW, POST, ATOM = 1, 2, 3, 4, 5, 6


def fmt_number(v: Fraction) -> str:
    """A number as typed: `2`, `0.5`, `1/3` (caller parenthesises where needed)."""
    if v.denominator == 1:
        return str(v.numerator)
    d = v.denominator
    while d % 2 == 0:
        d //= 2
    while d % 5 == 0:
        d //= 5
    return f"{float(v):.15g}" if d == 1 else f"{v.numerator}/{v.denominator}"


def _neg_power(e: Expr) -> bool:
    return isinstance(e, Op) and e.op == "pow" and exponent(e) < 0


def _flip(e: Expr) -> Expr:
    """`a^-p` -> `a^p` (for printing `/a^p`)."""
    assert isinstance(e, Op)
    return power(e.args[0], -exponent(e))


class TextPrinter:
    """Renders in the MATLAB-like input syntax; every output parses back to an equal tree."""

    star, had, ediv, T = "*", ".*", "./", "'"

    def __init__(self, names: dict[Expr, str] | None = None) -> None:
        self.names = names or {}

    def __call__(self, e: Expr, expand: bool = False) -> str:
        """`e` as text; with `expand`, `e` itself is written out even if it has a name (for the
        definition of that name)."""
        return self.render(e, expand)[0]

    def render(self, e: Expr, expand: bool = False) -> tuple[str, int]:
        if e in self.names and not expand:
            return self.name(self.names[e]), ATOM
        if isinstance(e, Sym):
            return self.name(e.name), ATOM
        if isinstance(e, Dif):  # a second, independent differential (tag 1) prints as d1X
            return self.dif(e.var.name, e.tag), ATOM
        if isinstance(e, DiffOf):
            if e.expr in self.names:
                return self.dif(self.names[e.expr]), ATOM
            return self.diff_of(self.render(e.expr)[0]), ATOM
        if isinstance(e, Eye):
            return self.eye(e), ATOM
        if isinstance(e, Num):
            return self.number(e)
        assert isinstance(e, Op)
        return getattr(self, "op_" + e.op, self.op_call)(e)

    def wrap(self, e: Expr, min_prec: int) -> str:
        s, p = self.render(e)
        return s if p >= min_prec else self.paren(s)

    # ---- leaves ---------------------------------------------------------------------------------
    def name(self, n: str) -> str:
        return n

    def dif(self, n: str, tag: int = 0) -> str:
        return f"d{tag or ''}{n}"

    def eye(self, e: Eye) -> str:
        return f"eye({e.n})"

    def diff_of(self, inner: str) -> str:
        return f"d({inner})"

    def paren(self, s: str) -> str:
        return f"({s})"

    def number(self, e: Num) -> tuple[str, int]:
        if e.is_scalar:
            s = fmt_number(e.value)
            return s, NEG if e.value < 0 else MUL if "/" in s else ATOM
        r, c = e.shape
        dims = f"{r}" if c == 1 else f"{r},{c}"
        if e.value == 0:
            return f"zeros({dims})", ATOM
        base = f"ones({dims})"
        return (base, ATOM) if e.value == 1 else (f"{self.wrap(Num(e.value), MUL + 1)}{self.star}{base}", MUL)

    # ---- operators ------------------------------------------------------------------------------
    def op_add(self, e: Op) -> tuple[str, int]:
        parts = []
        for i, t in enumerate(e.args):
            if isinstance(t, Num):
                t = Num(t.value)  # a broadcast constant prints as a plain number
            negative = split_coef(t)[0] < 0
            body = self.wrap(neg(t), ADD + 1) if negative else self.wrap(t, ADD)
            parts.append(("-" if i == 0 else " - ") + body if negative else ("" if i == 0 else " + ") + body)
        return "".join(parts), ADD

    def op_mul(self, e: Op) -> tuple[str, int]:
        coef = e.args[0].value if isinstance(e.args[0], Num) else Fraction(1)
        rest = e.args[1:] if isinstance(e.args[0], Num) else e.args
        numer = [f for f in rest if not (f.is_scalar and _neg_power(f))]
        denom = [_flip(f) for f in rest if f.is_scalar and _neg_power(f)]
        sign = "-" if coef < 0 else ""
        coef = abs(coef)
        body = numer[-1] if numer and not numer[-1].is_scalar and _neg_power(numer[-1]) else None
        if body is not None:  # 2*a*x.^-1 reads `2*a./x`
            numer = numer[:-1]
        # a matrix product stays bare only as the last factor: `2*A*x`, `(x'*A*x)*B`
        top = [self.wrap(f, MUL if f is rest[-1] else MUL + 1) for f in numer]
        if coef.numerator != 1 or not top:
            top.insert(0, str(coef.numerator))
        bottom = [self.wrap(f, MUL + 1) for f in denom]
        if coef.denominator != 1:
            bottom.insert(0, str(coef.denominator))
        if body is not None:
            top[-1] += self.ediv + self.wrap(_flip(body), MUL + 1)
        return self.fraction(sign, top, bottom), MUL  # `-S.*Q` is a product: parenthesised after `*`

    def fraction(self, sign: str, top: list[str], bottom: list[str]) -> str:
        return sign + self.star.join(top) + "".join("/" + b for b in bottom)

    def op_matmul(self, e: Op) -> tuple[str, int]:
        """Runs of an equal factor print as a matrix power: `X*X*y` -> `X^2*y`."""
        runs: list[list] = []
        for f in e.args:
            if runs and runs[-1][0] == f and f.shape[0] == f.shape[1]:
                runs[-1][1] += 1
            else:
                runs.append([f, 1])
        return self.star.join(self.wrap(f, MUL + 1) if k == 1 else self.matpow(f, k) for f, k in runs), MUL

    def matpow(self, f: Expr, k: int) -> str:
        return f"{self.wrap(f, POST)}^{k}"

    def op_hadamard(self, e: Op) -> tuple[str, int]:
        pos = [f for f in e.args if not _neg_power(f)]
        neg = [_flip(f) for f in e.args if _neg_power(f)]
        if not pos:
            pos, neg = [e.args[0]], [_flip(f) for f in e.args[1:]]
        s = self.had.join(self.wrap(f, MUL + 1) for f in pos)
        return s + "".join(self.ediv + self.wrap(f, MUL + 1) for f in neg), MUL

    def op_transpose(self, e: Op) -> tuple[str, int]:
        return self.wrap(e.args[0], POST) + self.T, POST

    def op_pow(self, e: Op) -> tuple[str, int]:
        base, p = e.args[0], exponent(e)
        if p < 0 and not base.is_scalar:  # 1./x, 1./x.^2
            return f"1{self.ediv}{self.wrap(_flip(e), MUL + 1)}", MUL
        ps = fmt_number(p)
        ps = ps if "/" not in ps else f"({ps})"
        return f"{self.wrap(base, POST)}{'^' if base.is_scalar else '.^'}{ps}", POW

    def op_call(self, e: Op) -> tuple[str, int]:
        return f"{OPS[e.op].parse_name}({', '.join(self.render(a)[0] for a in e.args)})", ATOM

    def op_matpow(self, e: Op) -> tuple[str, int]:
        """X^k with a symbolic integer k: `X^k`, `X^(k - 1)`, `(A*B)^k`."""
        return f"{self.wrap(e.args[0], POST)}^{self.wrap(e.args[1], ATOM)}", POW

    def op_literal(self, e: Op) -> tuple[str, int]:
        cols = int(e.shape[1])  # type: ignore[arg-type]  # a literal's sizes are integers
        cells = [self.render(x)[0] for x in e.args[1:]]
        rows = [cells[i:i + cols] for i in range(0, len(cells), cols)]
        return self.matrix(rows), ATOM

    def matrix(self, rows: list[list[str]]) -> str:
        return "[" + "; ".join(", ".join(r) for r in rows) + "]"

    def op_entry(self, e: Op) -> tuple[str, int]:
        m, i, j = e.args[0], int(value_of(e.args[1])), int(value_of(e.args[2]))
        index = f"{j}" if m.shape[0] == 1 else f"{i}" if m.shape[1] == 1 else f"{i},{j}"
        return f"{self.wrap(m, ATOM)}({index})", ATOM

    def op_group(self, e: Op) -> tuple[str, int]:
        """An unnamed program step prints as its content (named ones print their name)."""
        return self.render(e.args[0])


GREEK = {"alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa", "lambda",
         "mu", "nu", "xi", "pi", "rho", "sigma", "tau", "phi", "chi", "psi", "omega"}
_GREEK_SHORT = {"lam": "lambda", "eps": "epsilon"}


def latex_name(n: str) -> str:
    """`W1`, `W_1` -> `W_{1}`; `lam`, `alpha` -> `\\lambda`, `\\alpha`; long names -> `\\mathrm{}`;
    a layer index after a double underscore is a bracketed superscript: `b__2` -> `b^{[2]}`."""
    if "__" in n:
        base, layer = n.split("__", 1)
        return f"{latex_name(base)}^{{[{layer}]}}"
    m = re.fullmatch(r"([A-Za-z]+?)_?(\d+|_[A-Za-z0-9]+)?", n)
    head, sub = (m.group(1), m.group(2)) if m else (n.split("_", 1) + [""])[:2]
    sub = sub.lstrip("_").replace("_", ",") if sub else sub
    head = _GREEK_SHORT.get(head, head)
    base = "\\" + head if head in GREEK else head if len(head) == 1 else r"\mathrm{" + head + "}"
    if sub:
        return f"{base}_{{{sub.lstrip('_')}}}"
    return base


class LatexPrinter(TextPrinter):
    """Renders LaTeX for notes: juxtaposed products, `^{T}` (or `^{\\top}`), `X^{-1}`, `X^{-T}`,
    `\\odot`."""

    star, had, ediv = " ", r" \odot ", r" \oslash "

    def __init__(self, names: dict[Expr, str] | None = None, transpose: str = "T") -> None:
        super().__init__(names)
        self.T = r"\top" if transpose == "top" else "T"

    def name(self, n: str) -> str:
        return latex_name(n)

    def dif(self, n: str, tag: int = 0) -> str:
        return r"\mathrm{d}" + (f"_{{{tag}}}" if tag else "") + latex_name(n)

    def eye(self, e: Eye) -> str:
        return "I"

    def diff_of(self, inner: str) -> str:
        return rf"\mathrm{{d}}\left({inner}\right)"

    def paren(self, s: str) -> str:
        return rf"\left({s}\right)"

    def number(self, e: Num) -> tuple[str, int]:
        if e.is_scalar:
            v = e.value
            if v.denominator == 1:
                return str(v.numerator), NEG if v < 0 else ATOM
            return ("-" if v < 0 else "") + rf"\frac{{{abs(v.numerator)}}}{{{v.denominator}}}", NEG if v < 0 else ATOM
        if e.value in (0, 1):
            return rf"\mathbf{{{e.value}}}", ATOM
        return rf"{fmt_number(e.value)} \mathbf{{1}}", MUL

    def fraction(self, sign: str, top: list[str], bottom: list[str]) -> str:
        if not bottom:
            return sign + " ".join(top)
        return sign + rf"\frac{{{' '.join(top)}}}{{{' '.join(bottom)}}}"

    def sup(self, base: Expr, script: str) -> str:
        """`base^{script}`, bracing the base unless it is a plain name."""
        s = self.wrap(base, ATOM)
        plain = isinstance(base, (Sym, Dif)) or base in self.names
        return f"{s}^{{{script}}}" if plain and "^" not in s else f"{{{s}}}^{{{script}}}"

    def matpow(self, f: Expr, k: int) -> str:
        return self.sup(f, str(k))

    def matrix(self, rows: list[list[str]]) -> str:
        return r"\begin{bmatrix}" + r" \\ ".join(" & ".join(r) for r in rows) + r"\end{bmatrix}"

    def op_entry(self, e: Op) -> tuple[str, int]:
        m, i, j = e.args[0], int(value_of(e.args[1])), int(value_of(e.args[2]))
        index = f"{j}" if m.shape[0] == 1 else f"{i}" if m.shape[1] == 1 else f"{i}{j}"
        return f"{self.wrap(m, ATOM)}_{{{index}}}", ATOM

    def op_transpose(self, e: Op) -> tuple[str, int]:
        inner = e.args[0]
        if isinstance(inner, Op) and inner.op == "inv" and inner not in self.names:
            return self.sup(inner.args[0], "-" + self.T), POST
        return self.sup(inner, self.T), POST

    def op_inv(self, e: Op) -> tuple[str, int]:
        return self.sup(e.args[0], "-1"), POST

    def op_matpow(self, e: Op) -> tuple[str, int]:
        """X^k with a symbolic integer k: `X^{k}`, `X^{k - 1}` (read back by latex_in)."""
        return self.sup(e.args[0], self(e.args[1])), POST

    def op_pow(self, e: Op) -> tuple[str, int]:
        base, p = e.args[0], exponent(e)
        if p < 0 and not base.is_scalar:  # 1./x, 1./x.^2
            return f"1{self.ediv}{self.wrap(_flip(e), MUL + 1)}", MUL
        ps = self.number(Num(p))[0]  # 2, -1, \frac{1}{2}, -\frac{1}{2}
        return self.sup(base, ("" if base.is_scalar else r"\circ ") + ps), POW

    def shape_of(self, e: Expr) -> str:
        r"""An argument that gives only its shape (reshape's template), as a zero matrix that reads
        back with its size: `\operatorname{zeros}\left(m, n\right)`."""
        dims = ", ".join("*".join(latex_name(f) if isinstance(f, str) else str(f)
                                  for f in (d.factors if isinstance(d, DimProd) else (d,))) for d in e.shape)
        return rf"\operatorname{{zeros}}\left({dims}\right)"

    def op_call(self, e: Op) -> tuple[str, int]:
        arg, row = e.args[0], OPS[e.op]
        if len(e.args) > 1:  # kron: `\left(A \otimes B\right)`, a sum operand in parentheses
            return row.latex.format(*(self.shape_of(a) if i in row.shape_only else self.wrap(a, MUL)
                                      for i, a in enumerate(e.args))), ATOM
        matrix = row.latex_matrix is not None and 1 not in arg.shape  # e.g. the Frobenius norm of a matrix
        return (row.latex_matrix if matrix and row.latex_matrix else row.latex).format(self(arg)), ATOM


def to_text(e: Expr, names: dict[Expr, str] | None = None, expand: bool = False) -> str:
    return TextPrinter(names)(e, expand)


def to_latex(e: Expr, names: dict[Expr, str] | None = None, expand: bool = False) -> str:
    return LatexPrinter(names)(e, expand)
