"""Shapes by unification: `Syn` -> `Expr`.

Pass 1 (`infer`) gives every sub-expression a shape whose dimensions are names, integers or
unknowns, unifying them as operators demand (`x'*A*x` forces `A` to be n x n), and decides what
each `*` means (matrix product, or scalar multiple when one side is 1 x 1). Pass 2 (`build`) names
the dimensions still unknown and builds the tree through the canonical constructors.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from fractions import Fraction
from itertools import chain, count
from typing import Callable, Union, cast

from ..core import algebra as al
from ..core import limits, properties
from ..core.expr import Expr, Num, Op, Sym, walk
from ..core.registry import FUNCTION_NAMES, Dim, DimProd, OpInfo, Shape, dim_mul, dim_names, overloads
from ..core.registry import resolve as resolve_call
from ..errors import ParseError, ShapeError, UnsupportedError
from .parser import Decl, Syn, snippet

DIM_NAMES = ("n", "m", "p", "q", "r", "s", "k", "l", "t", "u", "v", "w")
CONSTRUCTORS = ("eye", "ones", "zeros", "vector", "matrix")


class Unknown:
    """An unknown dimension (compared by identity). The unknown sizes of a vector or matrix
    named by the default kinds may not become 1: `x/y` with vectors is an error, not a
    silent reinterpretation of y as a scalar."""

    __slots__ = ("unit_ok",)

    def __init__(self, unit_ok: bool = True) -> None:
        self.unit_ok = unit_ok


Term = Union[str, int, DimProd, Unknown]  # a dimension, or one still unknown
ShapeT = tuple[Term, Term]


def _open_product(t: object) -> bool:
    """Whether a (found) term is a product with an unknown factor."""
    return isinstance(t, DimProd) and any(isinstance(f, Unknown) for f in t.factors)


def _is_open(t: object) -> bool:
    """Whether a (found) term is unknown or a product with an unknown factor."""
    return isinstance(t, Unknown) or _open_product(t)


KIND_NAMES = {(False, False): "a scalar (a-g)", (True, False): "a column vector (h-z)", (True, True): "a matrix (A-Z)"}


def default_shape(name: str) -> tuple[bool, bool]:
    """Default kind by first letter, as on matrixcalculus.org: a-g scalar, h-z vector, A-Z matrix.
    Returns (rows unknown, cols unknown)."""
    c = name[0]
    if "a" <= c <= "g":
        return False, False
    return (True, False) if c.islower() else (True, True)


@dataclass
class Typer:
    """Types one expression. `bound(name)` supplies already-built sub-expressions (rule variables,
    named intermediates); `decls` the user's declarations; `closed` forbids free symbols."""

    text: str
    decls: dict[str, Decl] = field(default_factory=dict)
    bound: Callable[[str], Expr | None] = lambda name: None
    closed: bool = False
    parent: dict = field(default_factory=dict)
    info: dict = field(default_factory=dict)
    defs: dict = field(default_factory=dict)  # program intermediates: name -> Syn of its definition
    built: dict = field(default_factory=dict)  # name -> Expr, filled in pass 2
    symbols: dict = field(default_factory=dict)
    numbers: set = field(default_factory=set)
    local: bool = False  # pass 2 builds a step's uses of earlier steps as symbols, not inlined
    pending: list = field(default_factory=list)  # product dimensions not yet decidable: (a, b)

    # ---- unification ----------------------------------------------------------------------------
    def find(self, t: Term) -> Term:
        while isinstance(t, Unknown) and t in self.parent:
            t = self.parent[t]
        if isinstance(t, DimProd):  # a product: its factors as far as they are known
            return cast(Term, dim_mul(*(self.find(f) for f in t.factors)))
        return t

    def unify_dim(self, a: Term, b: Term) -> bool:
        a, b = self.find(a), self.find(b)
        if a is b or (not isinstance(a, Unknown) and a == b):
            return True
        for var, val in ((a, b), (b, a)):  # an unknown equal to a product still open: bound to it
            if isinstance(var, Unknown) and isinstance(val, DimProd) and _open_product(val):
                if any(f is var for f in val.factors):
                    return False  # n = n*k
                self.parent[var] = val
                return True
        if _open_product(a) or _open_product(b):  # m*n against k*p, or against a name: decided later
            self.pending.append((a, b))
            return True
        if isinstance(a, Unknown) and isinstance(b, Unknown):
            b.unit_ok = b.unit_ok and a.unit_ok
        elif isinstance(a, Unknown) or isinstance(b, Unknown):
            var, val = (a, b) if isinstance(a, Unknown) else (b, a)
            assert isinstance(var, Unknown)
            if val == 1 and not var.unit_ok:
                return False
            a, b = var, val
        else:
            return False
        self.parent[a] = b
        return True

    def settle(self) -> None:
        """Decide the product dimensions left open by pass 1 (`vec(A)'*vec(B)`, A and B of unknown
        sizes): each pair is re-unified once its factors are known; two products with the same
        number of factors still open are unified factor by factor, in the order written, slowest
        index first as vec and kron write them (B gets A's shape). ShapeError for a pair that
        cannot hold, or that nothing decides."""
        while self.pending and (self._settle_pass(False) or self._settle_pass(True)):
            pass
        if self.pending:
            a, b = self.pending[0]
            raise ShapeError(f"cannot infer the sizes in the dimensions {self.show_dim(a)} and {self.show_dim(b)}: "
                             "declare the shapes")

    def _settle_pass(self, factorwise: bool) -> bool:
        """One pass over the open pairs; with `factorwise`, stop after the first pair unified
        factor by factor (it may decide the others). Whether anything was decided."""
        progress, todo, self.pending = False, self.pending, []
        for i, (a, b) in enumerate(todo):
            a, b = self.find(a), self.find(b)
            if not (_is_open(a) or _is_open(b)) or isinstance(a, Unknown) or isinstance(b, Unknown):
                ok = self.unify_dim(a, b)
            elif factorwise and isinstance(a, DimProd) and isinstance(b, DimProd) and len(a.factors) == len(b.factors):
                ok = all(self.unify_dim(x, y) for x, y in zip(a.factors, b.factors))
                self.pending.extend(todo[i + 1:])
                if not ok:
                    raise ShapeError(f"shape mismatch: dimension {self.show_dim(a)} cannot equal {self.show_dim(b)}")
                return True
            else:
                self.pending.append((a, b))
                continue
            if not ok:
                raise ShapeError(f"shape mismatch: dimension {self.show_dim(a)} cannot equal {self.show_dim(b)}")
            progress = True
        return progress

    def show_dim(self, t: Term) -> str:
        t = self.find(t)
        if isinstance(t, DimProd):
            return "*".join("?" if isinstance(f, Unknown) else str(f) for f in t.factors)
        return "?" if isinstance(t, Unknown) else str(t)

    def show(self, s: ShapeT) -> str:
        r, c = (self.find(t) for t in s)
        r, c = (self.show_dim(t) for t in (r, c))
        return "scalar" if (r, c) == (1, 1) else f"{r} x {c}"

    def fail(self, syn: Syn, what: str, a: ShapeT, b: ShapeT) -> ShapeError:
        text = snippet(self.text, syn)
        return ShapeError(f"shape mismatch in '{text}': {what} ({self.show(a)} and {self.show(b)}){self.hint(text)}")

    def hint(self, text: str) -> str:
        """Say the default kind of each undeclared name in `text` (a-g scalar, h-z column
        vector, A-Z matrix), the usual surprise behind a shape error."""
        words = sorted(set(re.findall(r"[A-Za-z][A-Za-z0-9_]*", text)) & set(self.symbols) - set(self.decls))
        if not words:
            return ""
        kinds = [f"{n} is {KIND_NAMES[default_shape(n)]}" for n in words]
        example = next((n for n in words if not any(default_shape(n))), None)
        decl = f"'{example}: n' for a vector" if example else f"'{words[0]}: scalar' for a scalar"
        return f"; note: by default {', '.join(kinds)} (from the first letter); declare e.g. {decl}"

    def unify(self, syn: Syn, a: ShapeT, b: ShapeT, what: str) -> None:
        if not (self.unify_dim(a[0], b[0]) and self.unify_dim(a[1], b[1])):
            raise self.fail(syn, what, a, b)

    def known_scalar(self, s: ShapeT) -> bool:
        return self.find(s[0]) == 1 and self.find(s[1]) == 1

    def scalarish(self, syn: Syn, s: ShapeT) -> bool:
        return id(syn) in self.numbers or self.known_scalar(s)

    def never_scalar(self, s: ShapeT) -> bool:
        """Whether `s` can no longer become 1 x 1 (a dimension other than 1, or an unknown size
        of a default-kind vector or matrix): a 1 x 1 operand added to it is broadcast."""
        for t in (self.find(t) for t in s):
            if (isinstance(t, Unknown) and not t.unit_ok) or (not isinstance(t, Unknown) and t != 1):
                return True
        return False

    def make_scalar(self, syn: Syn, s: ShapeT, what: str) -> None:
        self.unify(syn, s, (1, 1), what)

    # ---- pass 1 ---------------------------------------------------------------------------------
    def infer(self, s: Syn) -> ShapeT:
        shape, decision = getattr(self, "infer_" + s.kind)(s)
        self.info[id(s)] = (shape, decision)
        return shape

    def infer_number(self, s: Syn) -> tuple[ShapeT, str]:
        self.numbers.add(id(s))
        return (Unknown(), Unknown()), "number"

    def infer_name(self, s: Syn) -> tuple[ShapeT, str]:
        name = s.value
        if name in self.defs:
            if id(self.defs[name]) in self.numbers:  # a step that is a number is one where used
                self.numbers.add(id(s))
            return self.info[id(self.defs[name])][0], "def"
        e = self.bound(name)
        if e is not None:
            return e.shape, "bound"
        if name not in self.decls and name in self.declared_dims():
            return (1, 1), "dimension"  # a dimension used as a number: `.../m` for a batch mean
        if name in ("eye",):
            v = Unknown()
            return (v, v), "eye"
        if name in ("ones", "zeros"):
            return (Unknown(), Unknown()), name
        if name in FUNCTION_NAMES or name in CONSTRUCTORS:
            raise ParseError(f"'{name}' is a function: write {name}(...)", self.text, s.span[0])
        if self.closed:
            raise ParseError(f"unknown name '{name}'", self.text, s.span[0])
        return self.symbol_shape(name), "symbol"

    def declared_dims(self) -> set[str]:
        return {n for decl in self.decls.values() if decl.shape for d in decl.shape for n in dim_names(d)}

    def infer_assign(self, s: Syn) -> tuple[ShapeT, str]:
        name = s.value
        if name in self.defs or name in self.symbols or name in self.decls:
            what = "defined twice" if name in self.defs else "used before its definition, or declared"
            raise ParseError(f"'{name}' is {what}", self.text, s.span[0])
        shape = self.infer(s.args[0])
        self.defs[name] = s.args[0]
        return shape, "assign"

    def symbol_shape(self, name: str) -> ShapeT:
        if name not in self.symbols:
            decl = self.decls.get(name)
            if decl is not None and decl.shape is not None:
                self.symbols[name] = decl.shape
            else:
                rows, cols = default_shape(name)
                r = Unknown(False) if rows else 1
                c = Unknown(False) if cols else 1
                if decl is not None and properties.square_property(decl.props) is not None:
                    c = r
                self.symbols[name] = (r, c)
        return self.symbols[name]

    def infer_transpose(self, s: Syn) -> tuple[ShapeT, str]:
        r, c = self.infer(s.args[0])
        if id(s.args[0]) in self.numbers:
            self.numbers.add(id(s))
        return (c, r), "transpose"

    def infer_neg(self, s: Syn) -> tuple[ShapeT, str]:
        shape = self.infer(s.args[0])
        if id(s.args[0]) in self.numbers:  # -2 is still a number: scalar in products
            self.numbers.add(id(s))
        return shape, "neg"

    def infer_add(self, s: Syn) -> tuple[ShapeT, str]:
        a, b = (self.infer(x) for x in s.args)
        for i, (one, other) in enumerate(((a, b), (b, a))):  # x - c: a 1 x 1 operand is broadcast
            if id(s.args[i]) not in self.numbers and self.known_scalar(one) and self.never_scalar(other):
                return other, f"broadcast{i}"
        self.unify(s, a, b, "a sum needs equal shapes")
        if id(s.args[0]) in self.numbers and id(s.args[1]) in self.numbers:
            self.numbers.add(id(s))
        return a, s.kind

    infer_sub = infer_add

    def infer_mul(self, s: Syn) -> tuple[ShapeT, str]:
        """`*` is a scalar multiple when a side is 1 x 1 or a number, else a matrix product."""
        (x, y), (a, b) = s.args, (self.infer(z) for z in s.args)
        if self.scalarish(x, a) or self.scalarish(y, b):
            return self.scale(s, x, y, a, b), "scale"
        if not self.unify_dim(a[1], b[0]):
            raise self.fail(s, "the columns of the left factor must match the rows of the right", a, b)
        return (a[0], b[1]), "matmul"

    def scale(self, s: Syn, x: Syn, y: Syn, a: ShapeT, b: ShapeT) -> ShapeT:
        """Shape of a scalar multiple; a number in a product is a scalar (unless both sides are
        numbers, whose product may still be broadcast in a sum)."""
        if id(x) in self.numbers and id(y) in self.numbers:
            self.numbers.add(id(s))
            self.unify(s, a, b, "numbers")
            return a
        for side, shape in ((x, a), (y, b)):
            if id(side) in self.numbers:
                self.make_scalar(side, shape, "scalar factor")
        return b if self.known_scalar(a) else a

    infer_matmul = infer_mul

    def numeric(self, s: Syn, x: Syn, y: Syn, shape: ShapeT) -> ShapeT:
        if id(x) in self.numbers and id(y) in self.numbers:
            self.numbers.add(id(s))
        return shape

    def infer_div(self, s: Syn) -> tuple[ShapeT, str]:
        (x, y), (a, b) = s.args, (self.infer(z) for z in s.args)
        if not (self.unify_dim(b[0], 1) and self.unify_dim(b[1], 1)):
            raise ShapeError(f"in '{snippet(self.text, s)}': '/' divides by a scalar, but "
                             f"'{snippet(self.text, y)}' is {self.show(b)}; use ./ for elementwise division")
        if id(x) in self.numbers and id(y) not in self.numbers:  # 2/a is a scalar
            self.make_scalar(x, a, "numerator")
        return self.numeric(s, x, y, a), "div"

    def infer_hadamard(self, s: Syn) -> tuple[ShapeT, str]:
        (x, y), (a, b) = s.args, (self.infer(z) for z in s.args)
        broadcast = s.kind == "ediv" and id(x) in self.numbers and id(y) not in self.numbers  # 1./x
        if not broadcast and (self.scalarish(x, a) or self.scalarish(y, b)):
            return self.scale(s, x, y, a, b), "scale"
        self.unify(s, a, b, "elementwise operands need equal shapes")
        return a, s.kind

    infer_ediv = infer_hadamard

    def infer_pow(self, s: Syn) -> tuple[ShapeT, str]:
        (x, y), (a, b) = s.args, (self.infer(z) for z in s.args)
        self.make_scalar(y, b, "exponent")
        if s.kind == "epow" or self.scalarish(x, a):
            return self.numeric(s, x, y, a), "elementwise"
        self.unify(s, (a[0], a[0]), a, "a matrix power needs a square matrix")
        return a, "matpow"

    infer_epow = infer_pow

    def infer_call(self, s: Syn) -> tuple[ShapeT, str]:
        f = s.value
        if f in CONSTRUCTORS:
            return self.infer_constructor(s)
        if f not in FUNCTION_NAMES and (f in self.decls or f in self.symbols or self.bound(f) is not None):
            self.info[id(s)] = self.infer_entry(s)  # x(3), W(1,2): an entry of a symbol
            return self.info[id(s)]
        if f not in FUNCTION_NAMES:
            raise UnsupportedError(f"unknown function '{f}' in '{snippet(self.text, s)}'"
                                   f" (known: {', '.join(sorted(FUNCTION_NAMES))})")
        arity = overloads(f)[0].arity or 1
        if len(s.args) != arity:
            raise ParseError(f"{f} takes {'one argument' if arity == 1 else f'{arity} arguments'}, "
                             f"got {len(s.args)}", self.text, s.span[0])
        shapes = [self.infer(x) for x in s.args]
        for x, b in zip(s.args, shapes):
            if id(x) in self.numbers and not any(r.elementwise for r in overloads(f)):  # softmax(0): scalar
                self.make_scalar(x, b, "a number as an argument")
        a = shapes[0]
        row = resolve_call(f, self.find(a[1]) == 1)
        self.constrain_arg(s, row, a, shapes)
        if row.elementwise and id(s.args[0]) in self.numbers:  # exp(2) is a number too
            self.numbers.add(id(s))
        # shape rules treat dimensions as opaque values (`dim_mul` keeps unknown factors), so they
        # pass unknowns through
        found = tuple((self.find(b[0]), self.find(b[1])) for b in shapes)
        return cast(ShapeT, row.shape(cast(tuple[Shape, ...], found))), row.name

    def constrain_arg(self, s: Syn, row: OpInfo, a: ShapeT, shapes: list[ShapeT] | None = None) -> None:
        """Unify the argument's shape `a` with what `row.arg_shape` demands (square, a column,
        "like_last": a column with as many entries as the last argument, of `shapes`, has)."""
        if row.arg_shape == "like_last" and shapes:
            last = shapes[-1]
            self.unify(s, a, (cast(Term, dim_mul(self.find(last[1]), self.find(last[0]))), 1),  # as vec
                       f"{s.value} needs a column with as many entries as its last argument")
        if row.arg_shape == "kron_of_rest" and shapes:  # the shape of kron(second, third)
            (r, c), (p, q) = ((self.find(x), self.find(y)) for x, y in shapes[1:3])
            self.unify(s, a, (cast(Term, dim_mul(r, p)), cast(Term, dim_mul(c, q))),
                       f"{s.value} needs the shape of the Kronecker product of its other arguments")
        of = " of a matrix" if len(overloads(s.value)) > 1 else ""
        if row.arg_shape == "square":
            self.unify(s, a, (a[0], a[0]), f"{s.value}{of} needs a square matrix")
        elif row.arg_shape == "column":
            self.unify(s, a, (a[0], 1), f"{s.value} needs a column vector")

    def infer_literal(self, s: Syn) -> tuple[ShapeT, str]:
        widths = {len(row.args) for row in s.args}
        if len(widths) != 1:
            raise ShapeError(f"in '{snippet(self.text, s)}': the rows of a matrix literal have different lengths")
        for row in s.args:
            for e in row.args:
                self.make_scalar(e, self.infer(e), "an entry of a matrix literal")
        return (len(s.args), widths.pop()), "literal"

    def build_literal(self, s: Syn, d: str) -> Expr:
        entries = [self.build(e) for row in s.args for e in row.args]
        return Op("literal", (Num(Fraction(0), (len(s.args), len(s.args[0].args))), *entries))

    def infer_entry(self, s: Syn) -> tuple[ShapeT, str]:
        self.symbol_shape(s.value)  # registers the symbol's shape
        if len(s.args) not in (1, 2) or not all(a.kind == "number" and a.value.denominator == 1 and a.value > 0
                                                for a in s.args):
            raise ParseError(f"an entry is {s.value}(i) or {s.value}(i,j) with positive integers", self.text,
                             s.span[0])
        return (1, 1), "entry"

    def build_entry(self, s: Syn, d: str) -> Expr:
        m = self.bound(s.value) or self.built.get(s.value) or self.symbol_expr(s.value)
        if self.local and s.value in self.defs:
            m = Sym(s.value, m.shape)
        i, j = (s.args[0].value, 1) if len(s.args) == 1 else (s.args[0].value, s.args[1].value)
        if len(s.args) == 1 and m.shape[1] != 1:
            i, j = 1, s.args[0].value  # a row vector's entries run along its columns
        return Op("entry", (m, Num(Fraction(i)), Num(Fraction(j))))

    def symbol_expr(self, name: str) -> Sym:
        decl = self.decls.get(name)
        rows, cols = (self.find(t) for t in self.symbols[name])
        if _is_open(rows) or _is_open(cols):
            raise ShapeError(f"cannot infer the size of '{name}'")
        return Sym(name, cast(Shape, (rows, cols)), decl.props if decl else frozenset())

    def infer_constructor(self, s: Syn) -> tuple[ShapeT, str]:
        f, args = s.value, s.args
        if f in ("vector", "matrix"):
            if len(args) != 1:
                raise ParseError(f"{f}(c) takes one constant", self.text, s.span[0])
            self.make_scalar(args[0], self.infer(args[0]), "constant")
            return ((Unknown(), 1) if f == "vector" else (Unknown(), Unknown())), f
        if not 1 <= len(args) <= (1 if f == "eye" else 2):
            raise ParseError(f"{f} takes {'one dimension' if f == 'eye' else 'one or two dimensions'}",
                             self.text, s.span[0])
        dims = [self.dim_arg(a) for a in args]
        if f == "eye":
            return (dims[0], dims[0]), f
        return (dims[0], dims[1] if len(dims) == 2 else 1), f

    def dim_arg(self, a: Syn) -> Dim:
        if a.kind == "number" and a.value.denominator == 1 and a.value > 0:
            limits.check_dim(int(a.value), f"dimension in '{snippet(self.text, a)}'")
            return int(a.value)
        if a.kind == "name":
            return a.value
        if a.kind == "mul":  # a product of dimensions: ones(m*n)
            return dim_mul(*(self.dim_arg(x) for x in a.args))
        raise ParseError("a dimension is a name, a positive integer or a product of them", self.text, a.span[0])

    # ---- pass 2 ---------------------------------------------------------------------------------
    def name_dims(self) -> None:
        """Give every dimension still unknown after pass 1 a fresh name, in order of appearance
        (after deciding the product dimensions: `settle`)."""
        self.settle()
        taken = {n for s in self.symbols.values() for t in s if not _is_open(t) for n in dim_names(cast(Dim, t))}
        taken |= set(self.symbols)
        pool = chain((n for n in DIM_NAMES if n not in taken), (f"d{i}" for i in count(1) if f"d{i}" not in taken))
        for _, shape in sorted(self.symbols.items()):
            for t in shape:
                t = self.find(t)
                for f in (t.factors if isinstance(t, DimProd) else (t,)):
                    if isinstance(f, Unknown) and isinstance(self.find(f), Unknown):
                        self.parent[self.find(f)] = next(pool)

    def resolve(self, s: Syn, default: Dim | None = None) -> tuple[Dim, Dim]:
        shape = self.info[id(s)][0]
        out = []
        for t in shape:
            t = self.find(t)
            if isinstance(t, Unknown):
                if default is None:
                    raise ShapeError(f"cannot infer the size of '{snippet(self.text, s)}'")
                self.parent[t] = t = default
            if _is_open(t):
                raise ShapeError(f"cannot infer the size of '{snippet(self.text, s)}'")
            out.append(t)
        return out[0], out[1]

    def build(self, s: Syn) -> Expr:
        decision = self.info[id(s)][1]
        try:
            return getattr(self, "build_" + s.kind)(s, decision)
        except ShapeError as err:
            if "in '" in str(err):
                raise
            raise ShapeError(f"in '{snippet(self.text, s)}': {err}") from None

    def build_number(self, s: Syn, d: str) -> Expr:
        return Num(s.value, self.resolve(s, 1))

    def build_name(self, s: Syn, d: str) -> Expr:
        if d == "def" and self.local:  # the step as written: earlier steps are symbols
            return Sym(s.value, self.built[s.value].shape)
        if d == "def":  # kept whole inside later steps: x*W stays a unit in (x*W)*c
            return al.group(self.built[s.value])
        if d == "bound":
            bound = self.bound(s.value)
            assert bound is not None
            return bound
        if d == "dimension":
            return al.dim_value(s.value)
        if d == "symbol":
            decl = self.decls.get(s.value)
            return Sym(s.value, self.resolve(s), decl.props if decl else frozenset())
        shape = self.resolve(s)
        return al.eye(shape[0]) if d == "eye" else Num(Fraction(1 if d == "ones" else 0), shape)

    def build_assign(self, s: Syn, d: str) -> Expr:
        self.built[s.value] = self.build(s.args[0])
        return self.built[s.value]

    def build_transpose(self, s: Syn, d: str) -> Expr:
        return al.transpose(self.build(s.args[0]))

    def build_neg(self, s: Syn, d: str) -> Expr:
        return al.neg(self.build(s.args[0]))

    def build_add(self, s: Syn, d: str) -> Expr:
        a, b = (self.build(x) for x in s.args)
        if d.startswith("broadcast"):  # c*ones(m,n): the 1 x 1 operand as a constant matrix
            if d == "broadcast0":
                a = al.mul(a, Num(Fraction(1), b.shape))
            else:
                b = al.mul(b, Num(Fraction(1), a.shape))
        return al.add(a, b) if s.kind == "add" else al.sub(a, b)

    build_sub = build_add

    def build_mul(self, s: Syn, d: str) -> Expr:
        a, b = (self.build(x) for x in s.args)
        if isinstance(a, Num) and isinstance(b, Num) and id(s) in self.numbers:  # 2*3, broadcast alike
            return Num(a.value * b.value, a.shape)
        return al.mul(a, b) if d == "scale" else al.matmul(a, b)

    build_matmul = build_mul

    def build_div(self, s: Syn, d: str) -> Expr:
        a, b = (self.build(x) for x in s.args)
        return al.mul(a, al.power(b, -1))

    def build_hadamard(self, s: Syn, d: str) -> Expr:
        a, b = (self.build(x) for x in s.args)
        if s.kind == "ediv":
            b = al.power(b, -1)
        if isinstance(a, Num) and isinstance(b, Num) and id(s) in self.numbers:
            return Num(a.value * b.value, a.shape)
        return al.mul(a, b) if d == "scale" else al.hadamard(a, b)

    build_ediv = build_hadamard

    def build_pow(self, s: Syn, d: str) -> Expr:
        if d == "matpow" and not isinstance(power := self.build(s.args[1]), Num):  # X^k, k a symbol
            return self.matpow(s, self.build(s.args[0]), power)
        base, p = self.build(s.args[0]), self.constant(s.args[1])
        if d == "elementwise":
            if not (isinstance(base, Num) and p.denominator == 1):  # a folded constant is bounded by al.power
                limits.check_exponent(p, f"exponent in '{snippet(self.text, s)}':")
            out = al.power(base, p)
            if isinstance(out, Op) and out.op == "pow":  # (a^p)^q folds to a^(p*q)
                limits.check_exponent(al.exponent(out), f"exponent in '{snippet(self.text, s)}':")
            return out
        if p.denominator != 1:
            raise UnsupportedError(f"matrix power with a non-integer exponent in '{snippet(self.text, s)}'")
        factors = len(base.args) if isinstance(base, Op) and base.op == "matmul" else 1
        limits.check_matrix_power(p * factors)  # (X^a)^b is a product of a*b factors
        k = int(p)
        factor = base if k > 0 else al.call("inv", base)
        return al.matmul(*[factor] * abs(k)) if k else al.eye(base.shape[0])

    build_epow = build_pow

    def matpow(self, s: Syn, base: Expr, k: Expr) -> Expr:
        """`X^k` (or `matpow(X, k)`) with an exponent that is no number: the matpow row, for an
        integer constant k (sums and products of integers and symbols declared `integer`)."""
        if isinstance(k, Num):  # matpow(X, 3) is X^3: the product
            if k.value.denominator != 1:
                raise UnsupportedError(f"matrix power with a non-integer exponent in '{snippet(self.text, s)}'")
            limits.check_matrix_power(k.value * (len(base.args) if isinstance(base, Op) and base.op == "matmul" else 1))
            factor = base if k.value > 0 else al.call("inv", base)
            return al.matmul(*[factor] * abs(int(k.value))) if k.value else al.eye(base.shape[0])
        if not _integer_constant(k):
            loose = sorted(n.name for n in walk([k]) if isinstance(n, Sym) and not n.has("integer"))
            hint = f" (declare it: '{loose[0]}: scalar integer')" if loose else ""
            raise UnsupportedError(f"matrix power '{snippet(self.text, s)}': the exponent must be a number or an "
                                   f"integer constant{hint}")
        for n in walk([k]):  # X^(k - 9e91): the checks would evaluate X to that power
            if isinstance(n, Num):
                limits.check_matrix_power(n.value)
        return al.call("matpow", base, k)

    def constant(self, s: Syn) -> Fraction:
        e = self.build(s)
        if not isinstance(e, Num):
            raise UnsupportedError(f"exponent '{snippet(self.text, s)}' is not a constant")
        return e.value

    def build_call(self, s: Syn, d: str) -> Expr:
        if d == "entry":
            return self.build_entry(s, d)
        if d in ("vector", "matrix"):
            return Num(self.constant(s.args[0]), self.resolve(s))
        if d in ("eye", "ones", "zeros"):
            shape = self.resolve(s)
            return al.eye(shape[0]) if d == "eye" else Num(Fraction(1 if d == "ones" else 0), shape)
        if d == "matpow":  # the rule lines' name for X^k: the same checks
            return self.matpow(s, self.build(s.args[0]), self.build(s.args[1]))
        return al.call(d, *(self.build(x) for x in s.args))


def to_program(text: str, syn: Syn, decls: dict[str, Decl] | None = None
               ) -> tuple[list[tuple[str | None, Expr, Expr]], dict[str, Sym]]:
    """Type a program (`Syn` of kind `program`): [(name or None, expr, local)] for its statements,
    typed together (one unification over all of them), each able to use the names defined before
    it. `expr` has the earlier steps inlined (kept whole by `group`); `local` is the statement as
    written, with the earlier steps as symbols (nothing folded across steps). Also every symbol
    written, typed, even one that folds away (`A - A`) or sits in a step the loss does not use."""
    t = Typer(text, decls or {})
    with limits.recursion_room():  # a long chain `a + b + ...` is a deep syntax tree
        for stmt in syn.args:
            t.infer(stmt)
        t.name_dims()
        inlined = [t.build(stmt) for stmt in syn.args]
        t.local = True
        local = [t.build(stmt) for stmt in syn.args]
    _check_constants(inlined + local)
    if not inlined[-1].is_scalar:  # a loss that is not scalar because a scalar was broadcast in it
        for site in _broadcasts(t, syn.args[-1]):
            a, b = (t.info[id(x)][0] for x in site.args)
            raise t.fail(site, "a sum needs equal shapes", a, b)
    statements = [(stmt.value if stmt.kind == "assign" else None, e, l) for stmt, e, l in zip(syn.args, inlined, local)]
    return statements, {name: t.symbol_expr(name) for name in sorted(t.symbols)}


def to_expr(text: str, syn: Syn, decls: dict[str, Decl] | None = None,
            bound: Callable[[str], Expr | None] | None = None, closed: bool = False,
            expect: tuple[Dim, Dim] | None = None) -> Expr:
    """Type and build `syn` (parsed from `text`); `expect` unifies the root with a known shape."""
    t = Typer(text, decls or {}, bound or (lambda name: None), closed)
    with limits.recursion_room():  # a long chain `a + b + ...` is a deep syntax tree
        shape = t.infer(syn)
        if expect is not None:
            t.unify(syn, shape, expect, "expected shape")
        t.name_dims()
        out = t.build(syn)
    _check_constants([out])
    return out


def _integer_constant(e: Expr) -> bool:
    """Whether `e` is an integer constant: integers and symbols declared `integer` combined by
    sums and products (`k - 1`, `2*k`): the property table's predicate, as the rules ask it."""
    return properties.predicate("integer")(e)


def _broadcasts(t: Typer, s: Syn) -> list[Syn]:
    """The sums in `s` where a 1 x 1 operand was broadcast, outermost first."""
    here = [s] if s.kind in ("add", "sub") and str(t.info.get(id(s), (None, ""))[1]).startswith("broadcast") else []
    return here + [x for a in s.args for x in _broadcasts(t, a)]


def _check_constants(exprs: list[Expr]) -> None:
    """Constants folded while building (`1e200*1e200`) stay within the limits of `matcalc.core.limits`."""
    if not any(e.out_of_range for e in exprs):  # cached per node: no walk of a rule's bound subtrees
        return
    for e in walk(exprs):
        if isinstance(e, Num):
            limits.check_constant(e.value)
