"""Printers: the input syntax (parses back to an equal tree) and LaTeX, from one precedence scheme.

`names` maps shared sub-expressions to the names they were given in a `where` list.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from fractions import Fraction

from ..core.algebra import exponent, neg, power, split_coef, value_of
from ..core.expr import Dif, DiffOf, Expr, Eye, Num, Op, Sym
from ..core.registry import OPS, Dim, DimProd, overloads

ADD, MUL, NEG, POW, POST, ATOM = 1, 2, 3, 4, 5, 6

# What the context of a node tells a reader of its LaTeX about its shape: (rows known, columns
# known, known to be square). A constant matrix prints bare (`\mathbf{1}`, `I`) only where the
# context gives its size, else with it (`\mathbf{1}_{n}`, `I_{n}`): see `LatexPrinter.render`.
Ctx = tuple[bool, bool, bool]
FREE: Ctx = (False, False, False)
KNOWN: Ctx = (True, True, False)


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

    _here: object = None  # the context a node is rendered in (LaTeX's: see LatexPrinter)

    def __init__(self, names: dict[Expr, str] | None = None) -> None:
        self.names = names or {}
        self._memo: dict[tuple, tuple[str, int]] = {}

    def __call__(self, e: Expr, expand: bool = False) -> str:
        """`e` as text; with `expand`, `e` itself is written out even if it has a name (for the
        definition of that name)."""
        return self.render(e, expand)[0]

    def render(self, e: Expr, expand: bool = False) -> tuple[str, int]:
        """`e` rendered, once per node and context for the printer's life: the lines of a
        derivation share most of their subtrees."""
        key = (e, expand, self._here)
        if key not in self._memo:
            self._memo[key] = self._render(e, expand)
        return self._memo[key]

    def _render(self, e: Expr, expand: bool) -> tuple[str, int]:
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
        # a negative factor after another (an unnamed step -eye in 2*(-eye)): `2 -I` would read as 2 - I
        top = [self.paren(t) if i and t.startswith("-") else t for i, t in enumerate(top)]
        bottom = [self.paren(b) if b.startswith("-") else b for b in bottom]
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


def latex_dim(d: Dim) -> str:
    """A dimension in LaTeX, as `latex_in` reads it back: `n`, `3`, `d_{1}`, a product of
    dimensions juxtaposed (`m n`, `2 k`)."""
    return " ".join(latex_name(f) if isinstance(f, str) else str(f)
                    for f in (d.factors if isinstance(d, DimProd) else (d,)))


class LatexPrinter(TextPrinter):
    r"""Renders LaTeX for notes: juxtaposed products, `^{T}` (or `^{\top}`), `X^{-1}`, `X^{-T}`,
    `\odot`.

    A constant matrix prints bare (`\mathbf{1}`, `\mathbf{0}`, `I`) where a reader knows its
    size from its context, and with its size elsewhere (`\mathbf{1}_{n}`, `\mathbf{1}_{n}^{T}`,
    `\mathbf{0}_{m \times n}`, `I_{n}`). The context of the whole expression is the left side
    of its equation (a gradient, a derivation's line: its shape is known), unless the equation
    defines a name (`expand`: a `where` line, a step). Below the root, a node's
    context (`Ctx`) passes only through shape-keeping nodes (sums, elementwise products and powers,
    scalar multiples, transposes, differentials, steps); a term of a sum or elementwise product
    with an `anchored` term is known, and so are the inner sides of a factor of a matrix product
    next to an anchored factor. Everything else (a function's argument, a scalar factor, a
    denominator) is on its own: `FREE`."""

    star, had, ediv = " ", r" \odot ", r" \oslash "

    def __init__(self, names: dict[Expr, str] | None = None, transpose: str = "T") -> None:
        super().__init__(names)
        self.T = r"\top" if transpose == "top" else "T"
        self._child: Callable[[Expr], Ctx] | None = None  # the context a child gets (None: FREE)
        self._here: Ctx = FREE  # the context of the node being rendered
        self._anchor: dict[Expr, bool] = {}

    def __call__(self, e: Expr, expand: bool = False) -> str:
        """`e` as the right side of an equation whose left side has its shape (a gradient, a
        line of a derivation), or with `expand`, defines a name (whose shape `e` gives)."""
        self._child = None if expand else self._known
        return super().__call__(e, expand)

    def render(self, e: Expr, expand: bool = False) -> tuple[str, int]:
        """`e` under the context its parent's `_child` gives it (FREE if none); its own
        children are FREE unless its `op_` method says otherwise (`under`)."""
        child, here = self._child, self._here
        self._child, self._here = None, child(e) if child else FREE
        if isinstance(e, DiffOf):  # d(X) has the shape of X
            self._child = self._same
        try:
            return super().render(e, expand)
        finally:
            self._child, self._here = child, here

    def under(self, child: Callable[[Expr], Ctx], method: Callable[[Op], tuple[str, int]], e: Op
              ) -> tuple[str, int]:
        """`method(e)`, each child `c` of `e` rendered under the context `child(c)`."""
        self._child = child
        return method(e)

    def _known(self, _: Expr) -> Ctx:
        return KNOWN

    def _same(self, _: Expr) -> Ctx:
        """The context of the node being rendered (read when its child starts)."""
        return self._here

    def anchored(self, e: Expr) -> bool:
        """Whether a reader knows the shape of `e` from its LaTeX alone: a symbol, a name, a
        function's value (its argument printed on its own); a sum with an anchored term, a
        product with anchored ends. Never a number (it is broadcast) nor a constant matrix."""
        if e not in self._anchor:
            self._anchor[e] = self._anchored(e)
        return self._anchor[e]

    def _anchored(self, e: Expr) -> bool:
        if e in self.names or isinstance(e, (Sym, Dif)):
            return True
        if isinstance(e, (Num, Eye)):
            return False
        if isinstance(e, DiffOf):
            return self.anchored(e.expr)
        assert isinstance(e, Op)
        if e.op in ("add", "hadamard"):
            return any(self.anchored(a) for a in e.args)
        if e.op == "matmul":
            return self.anchored(e.args[0]) and self.anchored(e.args[-1])
        if e.op == "mul":
            parts = [a for a in e.args if not (isinstance(a, Num) and a.is_scalar)]
            return bool(parts) and all(self.anchored(a) for a in parts)
        if e.op in ("transpose", "pow", "group"):
            return self.anchored(e.args[0])
        return True

    def _alike(self, e: Op) -> Callable[[Expr], Ctx]:
        """The context of a term of a sum or elementwise product: known next to an anchored
        term, else the node's own."""
        ctx = KNOWN if any(self.anchored(a) for a in e.args) else self._here
        return lambda _: ctx

    def _factors(self, e: Op) -> Callable[[Expr], Ctx]:
        """The context of a factor of a matrix product: its rows are known after an anchored
        factor, its columns before one; at the ends, from the product's context (when that
        is square, as in tr(...), from the anchored other end)."""
        args, (rows, cols, square) = e.args, self._here
        known, last = [self.anchored(a) for a in args], len(args) - 1
        r = [known[i - 1] if i else rows or (square and known[last]) for i in range(len(args))]
        c = [known[i + 1] if i < last else cols or (square and known[0]) for i in range(len(args))]

        def ctx(f: Expr) -> Ctx:
            at = [i for i, a in enumerate(args) if a is f]
            return (all(r[i] for i in at), all(c[i] for i in at), False) if at else FREE
        return ctx

    def _argument(self, e: Op) -> Callable[[Expr], Ctx] | None:
        """The context of a function's argument: on its own, square when the function takes
        only a square matrix (tr, det, inv)."""
        name = OPS[e.op].parse_name
        square = OPS[e.op].arg_shape == "square" and name is not None and len(overloads(name)) == 1
        return (lambda _: (False, False, True)) if square else None

    def size(self, shape: tuple[Dim, Dim]) -> str:
        r"""The subscript giving a constant's size: `_{n}` (n x 1), `_{n}^{T}` (1 x n),
        `_{m \times n}`."""
        r, c = shape
        if c == 1:
            return f"_{{{latex_dim(r)}}}"
        if r == 1:
            return f"_{{{latex_dim(c)}}}^{{{self.T}}}"
        return rf"_{{{latex_dim(r)} \times {latex_dim(c)}}}"

    def name(self, n: str) -> str:
        return latex_name(n)

    def dif(self, n: str, tag: int = 0) -> str:
        return r"\mathrm{d}" + (f"_{{{tag}}}" if tag else "") + latex_name(n)

    def eye(self, e: Eye) -> str:
        """`I` where the context knows a side (the identity is square), else `I_{n}`."""
        rows, cols, _ = self._here
        return "I" if rows or cols else f"I_{{{latex_dim(e.n)}}}"

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
        rows, cols, _ = self._here
        size = "" if rows and cols else self.size(e.shape)
        body = rf"\mathbf{{{0 if e.value == 0 else 1}}}{size}"
        if e.value in (0, 1):
            return body, POST if "^" in size else ATOM
        return f"{fmt_number(e.value)} {body}", MUL

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

    def op_add(self, e: Op) -> tuple[str, int]:
        return self.under(self._alike(e), super().op_add, e)

    def op_hadamard(self, e: Op) -> tuple[str, int]:
        return self.under(self._alike(e), super().op_hadamard, e)

    def op_mul(self, e: Op) -> tuple[str, int]:
        """A scalar multiple: its matrix factor has its context, a scalar factor is on its own."""
        here = self._here
        return self.under(lambda f: FREE if f.is_scalar else here, super().op_mul, e)

    def op_matmul(self, e: Op) -> tuple[str, int]:
        return self.under(self._factors(e), super().op_matmul, e)

    def op_group(self, e: Op) -> tuple[str, int]:
        return self.under(self._same, super().op_group, e)

    def op_transpose(self, e: Op) -> tuple[str, int]:
        """`X^{T}`, `X^{-T}`; a transposed node has its context with the sides swapped."""
        inner = e.args[0]
        if isinstance(inner, Op) and inner.op == "inv" and inner not in self.names:
            self._child = self._argument(inner)
            return self.sup(inner.args[0], "-" + self.T), POST
        rows, cols, square = self._here
        self._child = lambda _: (cols, rows, square)
        return self.sup(inner, self.T), POST

    def op_inv(self, e: Op) -> tuple[str, int]:
        self._child = self._argument(e)
        return self.sup(e.args[0], "-1"), POST

    def op_matpow(self, e: Op) -> tuple[str, int]:
        """X^k with a symbolic integer k: `X^{k}`, `X^{k - 1}` (read back by latex_in)."""
        return self.sup(e.args[0], self.render(e.args[1])[0]), POST

    def op_pow(self, e: Op) -> tuple[str, int]:
        """`x^{2}`, `{X}^{\\circ 2}`, `1 \\oslash X`: an elementwise power has its base's context."""
        base, p = e.args[0], exponent(e)
        here = self._here
        self._child = lambda f: FREE if f.is_scalar else here
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
        self._child = self._argument(e)
        return (row.latex_matrix if matrix and row.latex_matrix else row.latex).format(self.render(arg)[0]), ATOM


def to_text(e: Expr, names: dict[Expr, str] | None = None, expand: bool = False) -> str:
    return TextPrinter(names)(e, expand)


def to_latex(e: Expr, names: dict[Expr, str] | None = None, expand: bool = False) -> str:
    return LatexPrinter(names)(e, expand)
