"""Smart constructors: the only way nodes are built, so every tree stays canonical.

They do the mechanical bookkeeping that teaches nothing: flatten nested sums and products, fold
numbers, drop zeros and identities, sort commutative operands, and keep scalar factors outside
matrix products (`A*(2*B)` is built as `2*(A*B)`). Identities a reader should see applied
(transposes, traces, factoring) are rules in `rules/simplify.rules`, not here.
"""
from __future__ import annotations

from fractions import Fraction
from functools import lru_cache
from typing import Callable

from ..errors import ShapeError
from .expr import Expr, Eye, Num, Op, Sym, sort_key
from .limits import check_power_fold
from .registry import OPS, SCALAR, Dim, DimProd, Shape, fmt_shape


@lru_cache(maxsize=1024)
def num(value: int | Fraction, shape: Shape = SCALAR) -> Num:
    """A number (nodes are immutable, so equal numbers may be one shared object)."""
    return Num(Fraction(value), shape)


def eye(n) -> Expr:
    """The identity; the 1 x 1 identity is the number 1."""
    return num(1) if n == 1 else Eye(n)


def zero(shape: Shape) -> Num:
    return Num(Fraction(0), shape)


def dim_value(d: Dim) -> Expr:
    """A dimension used as a number: `3`, or the size `m` (`sum(x)/m` for a batch mean)."""
    if isinstance(d, DimProd):  # m*n used as a number: the product of its factors
        return mul(*(dim_value(f) for f in d.factors))
    return num(d) if isinstance(d, int) else Sym(d, SCALAR, frozenset({"dimension"}))


def is_zero(e: Expr) -> bool:
    return isinstance(e, Num) and e.value == 0


def is_num(e: Expr, value: int | Fraction | None = None) -> bool:
    return isinstance(e, Num) and (value is None or e.value == value)


def split_coef(e: Expr) -> tuple[Fraction, Expr]:
    """`2*A*x` -> (2, A*x): the numeric coefficient and the rest."""
    if isinstance(e, Op) and e.op == "mul" and isinstance(e.args[0], Num) and e.args[0].is_scalar:
        rest = e.args[1:]
        return e.args[0].value, rest[0] if len(rest) == 1 else Op("mul", rest)
    if isinstance(e, Num) and e.is_scalar:
        return e.value, Num(Fraction(1))
    return Fraction(1), e


def split_scalars(e: Expr) -> tuple[list[Expr], Expr]:
    """`2*a*A*x` -> ([2, a], A*x): the scalar factors of a matrix and its matrix part."""
    if isinstance(e, Op) and e.op == "mul" and not e.is_scalar:
        return list(e.args[:-1]), e.args[-1]
    return [], e


def _check_same(shapes: list[Shape], what: str) -> Shape:
    for s in shapes[1:]:
        if s != shapes[0]:
            raise ShapeError(f"{what} of a {fmt_shape(shapes[0])} and a {fmt_shape(s)} operand")
    return shapes[0]


def add(*terms: Expr) -> Expr:
    """Sum: flattened, numbers folded, like terms collected (`A + 2*A` -> `3*A`), sorted."""
    shape = _check_same([t.shape for t in terms], "sum")
    coefs: dict[Expr, Fraction] = {}
    alone: dict[Expr, Expr | None] = {}  # the term itself while no like term joined it: not rebuilt
    constant = Fraction(0)
    for t in _flatten("add", terms):
        if isinstance(t, Num):
            constant += t.value
            continue
        c, rest = split_coef(t)
        alone[rest] = None if rest in coefs or isinstance(rest, Num) else t  # 20*ones(n) folds: rebuilt
        coefs[rest] = coefs.get(rest, Fraction(0)) + c
    out = [alone[rest] or mul(num(c), rest) for rest, c in coefs.items() if c != 0]
    if any(isinstance(t, Op) and t.op == "add" for t in out):  # -(-(A + B)) is the sum A + B: flatten it
        return add(*out, Num(constant, shape))
    if constant != 0:
        out.append(Num(constant, shape))
    if not out:
        return zero(shape)
    if len(out) == 1:
        return out[0]
    out.sort(key=_term_order)
    return Op("add", tuple(out))


def _term_order(t: Expr) -> tuple:
    """Positive terms first, products before plain terms (`A*x + b`, `X*w - y`), then canonical."""
    coef, rest = split_coef(t)
    product = isinstance(rest, Op) and rest.op in ("matmul", "mul", "hadamard")
    return (coef < 0, not product, sort_key(rest))


def neg(e: Expr) -> Expr:
    return mul(num(-1), e)


def sub(a: Expr, b: Expr) -> Expr:
    return add(a, neg(b))


def _flatten(op: str, items: tuple[Expr, ...]) -> list[Expr]:
    out: list[Expr] = []
    for it in items:
        if isinstance(it, Op) and it.op == op:
            out.extend(it.args)
        else:
            out.append(it)
    return out


def matmul(*factors: Expr) -> Expr:
    """Matrix product: flattened; identities dropped; 1 x 1 factors and scalar multiples moved out."""
    flat = _flatten("matmul", factors)
    shape = OPS["matmul"].shape(tuple(f.shape for f in flat))
    if any(is_zero(f) for f in flat):
        return zero(shape)
    scalars: list[Expr] = []
    kept: list[Expr] = []
    items: list[Expr] = []
    for f in flat:  # a scaled product's scalars go outside and its factors join this product
        if isinstance(f, Op) and f.op == "mul" and not f.is_scalar:
            scalars.extend(f.args[:-1])
            f = f.args[-1]
        items.extend(f.args if isinstance(f, Op) and f.op == "matmul" else (f,))
    for f in items:
        if isinstance(f, Num) and f.value != 1 and not f.is_scalar:  # c*ones: the c goes outside
            scalars.append(num(f.value))
            f = Num(Fraction(1), f.shape)
        if len(flat) > 1 and f.is_scalar:
            scalars.append(f)
        elif kept and isinstance(f, Num) and isinstance(kept[-1], Num):
            scalars.append(dim_value(f.shape[0]))  # ones(r,k)*ones(k,c) = k*ones(r,c)
            kept[-1] = Num(Fraction(1), (kept[-1].shape[0], f.shape[1]))
        elif not isinstance(f, Eye):
            kept.append(f)
    body = _split_scalar_chain(kept) if kept else None
    if body is None:
        body = Eye(shape[0]) if shape != SCALAR else num(1)
    return mul(*scalars, body) if scalars else body


def _split_scalar_chain(kept: list[Expr]) -> Expr:
    """A product containing a 1 x 1 sub-chain is a scalar multiple, as the parser reads it:
    `x'*y*y'*x` is `(x'*y)*(y'*x)` and `A*y*y'*y*y'` is `(y'*y)*A*y*y'`. Scanning from the left,
    each factor with one row starts a sub-chain that ends at the first factor with one column."""
    scalars: list[Expr] = []
    chain: list[Expr] = []
    i = 0
    while i < len(kept):
        j = next((j for j in range(i, len(kept)) if kept[j].shape[1] == 1), None) if kept[i].shape[0] == 1 else None
        if j is None or (i == 0 and j == len(kept) - 1) or j == i:
            chain.append(kept[i])
            i += 1
            continue
        scalars.append(Op("matmul", tuple(kept[i:j + 1])))
        i = j + 1
    if not chain:  # the whole product split into scalars
        return mul(*scalars)
    body = chain[0] if len(chain) == 1 else Op("matmul", tuple(chain))
    return mul(*scalars, body) if scalars else body


def mul(*factors: Expr) -> Expr:
    """Scalar multiplication: 1 x 1 factors (commuting, numbers folded, powers of equal bases
    combined) times at most one matrix, which stays last."""
    flat = _flatten("mul", factors)
    shape = OPS["mul"].shape(tuple(f.shape for f in flat))
    coef = Fraction(1)
    powers: dict[Expr, Fraction] = {}
    body: Expr | None = None
    for f in flat:
        if isinstance(f, Num) and f.is_scalar:
            coef *= f.value
        elif not f.is_scalar:
            body = f
        else:
            base, p = base_exp(f)
            powers[base] = powers.get(base, Fraction(0)) + p
    if coef == 0 or (body is not None and is_zero(body)):
        return zero(shape)
    if isinstance(body, Num) and not powers:  # 2*ones(n) is the constant vector of 2s
        body, coef = Num(body.value * coef, body.shape), Fraction(1)
    elif isinstance(body, Num):  # a*(2*ones(n)) keeps its number in front: 2*a*ones(n)
        body, coef = Num(Fraction(1), body.shape), coef * body.value
    out = sorted((power(b, p) for b, p in powers.items() if p != 0), key=sort_key)
    if len({base_exp(o)[0] for o in out}) < len(out):  # ((a^-1)^q)^2 became a power of a: combine again
        return mul(num(coef), *out, *([body] if body is not None else []))
    out = [o for o in out if not is_num(o, 1)]
    if body is not None:
        out.append(body)
    if coef != 1 or not out:
        out.insert(0, num(coef) if out or shape == SCALAR else Num(coef, shape))
    return out[0] if len(out) == 1 else Op("mul", tuple(out))


def value_of(e: Expr) -> Fraction:
    """The value of a number node (an exponent, an index)."""
    assert isinstance(e, Num), e
    return e.value


def exponent(e: Op) -> Fraction:
    """The constant exponent of a `pow` node."""
    return value_of(e.args[1])


def base_exp(e: Expr) -> tuple[Expr, Fraction]:
    """`x.^p` -> (x, p); anything else is its own base with exponent 1."""
    if isinstance(e, Op) and e.op == "pow":
        return e.args[0], exponent(e)
    return e, Fraction(1)


def hadamard(*factors: Expr) -> Expr:
    """Elementwise product; a 1 x 1 or constant factor makes it a scalar multiple."""
    flat = _flatten("hadamard", factors)
    if all(f.is_scalar for f in flat):
        return mul(*flat)
    shape = _check_same([f.shape for f in flat if not f.is_scalar], "elementwise product")
    scalars = [f for f in flat if f.is_scalar]
    rest: list[Expr] = []
    for f in flat:
        if f.is_scalar:
            continue
        if isinstance(f, Op) and f.op == "mul":
            scalars.extend(f.args[:-1])
            f = f.args[-1]
        if isinstance(f, Num):
            scalars.append(num(f.value))
        else:
            rest.append(f)
    if any(is_zero(s) for s in scalars):
        return zero(shape)
    if not rest:
        return mul(*scalars, Num(Fraction(1), shape))
    powers: dict[Expr, Fraction] = {}
    for f in _flatten("hadamard", tuple(rest)):
        base, p = base_exp(f)
        powers[base] = powers.get(base, Fraction(0)) + p
    rest = [power(b, p) for b, p in powers.items() if p != 0]
    if len({base_exp(r)[0] for r in rest}) < len(rest) or any(isinstance(r, Op) and r.op == "mul" for r in rest):
        # a power folded into another base, or distributed over a scalar multiple: combine again
        return hadamard(*scalars, *rest) if scalars else hadamard(*rest)
    if not rest:
        return mul(*scalars, Num(Fraction(1), shape))
    body = rest[0] if len(rest) == 1 else Op("hadamard", tuple(sorted(rest, key=sort_key)))
    return mul(*scalars, body) if scalars else body


def transpose(e: Expr) -> Expr:
    """A': scalars, identities and constant matrices are their own transposes; A'' is A."""
    if e.is_scalar or isinstance(e, Eye):
        return e
    if isinstance(e, Op) and e.op == "transpose":
        return e.args[0]
    if isinstance(e, Num):
        return Num(e.value, (e.shape[1], e.shape[0]))
    return Op("transpose", (e,))


def power(base: Expr, p: Fraction | int) -> Expr:
    """Elementwise power with a constant exponent (a plain power for a scalar)."""
    p = Fraction(p)
    if p == 1:
        return base
    if p == 0:
        return Num(Fraction(1), base.shape)
    if isinstance(base, Num) and (p.denominator == 1 and (base.value != 0 or p > 0)):
        check_power_fold(base.value, p)  # 2^2^2^2^2^2 is refused before it is computed
        return Num(base.value ** int(p), base.shape)
    if isinstance(base, Op) and base.op == "pow" and p.denominator == 1:
        return power(base.args[0], exponent(base) * p)
    if isinstance(base, Op) and base.op == "mul" and p.denominator == 1:
        return mul(*(power(f, p) for f in base.args))
    return Op("pow", (base, num(p)))


N_ARY = ("add", "matmul", "mul", "hadamard")


def group(e: Expr) -> Expr:
    """A program step kept whole inside later steps; needed only around what would otherwise
    merge into its surroundings (sums and products: x*W stays a unit in (x*W)*c)."""
    return Op("group", (e,)) if isinstance(e, Op) and e.op in N_ARY else e


def call(op: str, arg: Expr, *more: Expr) -> Expr:
    """A function-call operator applied to its arguments (one, or the row's arity); an argument
    that gives only its shape (`OpInfo.shape_only`) is kept as a zero matrix of that shape;
    linear ones map zero (in the first argument) to zero and diag of a constant vector is a
    scaled identity (number folding); identities such as inv(eye) = eye are rules."""
    if more:
        args = tuple(zero(a.shape) if i in OPS[op].shape_only else a for i, a in enumerate((arg, *more)))
        node = Op(op, args)
        if (OPS[op].linear and is_zero(arg)) or (OPS[op].multilinear and any(map(is_zero, args))):
            return zero(node.shape)
        return node
    if OPS[op].linear and is_zero(arg):
        return zero(Op(op, (arg,)).shape)
    if op == "diag" and isinstance(arg, Num):  # diag(c*ones(n)) = c*eye(n)
        return mul(num(arg.value), eye(arg.shape[0]))
    return Op(op, (arg,))


def build_op(op: str, args: tuple[Expr, ...]) -> Expr:
    """Rebuild a node of kind `op` from (possibly changed) arguments through its constructor."""
    n_ary = {"add": add, "matmul": matmul, "mul": mul, "hadamard": hadamard}
    if op in n_ary:
        return n_ary[op](*args)
    if op == "transpose":
        return transpose(args[0])
    if op == "pow":
        return power(args[0], value_of(args[1]))
    return call(op, *args)


def substitute(e: Expr, swap: dict[Expr, Expr], memo: dict[Expr, Expr] | None = None,
               inside: Callable[[Expr], bool] | None = None) -> Expr:
    """`e` with every sub-expression equal to a key of `swap` replaced by its value, each node
    visited rebuilt by its constructor. `inside(node)` False says no key occurs under node, which
    is then kept as it is, unvisited (the cost is that of the part where keys may occur)."""
    memo = {} if memo is None else memo
    if e in swap:
        return swap[e]
    if not isinstance(e, Op) or (inside is not None and not inside(e)):
        return e
    if e not in memo:
        memo[e] = build_op(e.op, tuple(substitute(a, swap, memo, inside) for a in e.args))
    return memo[e]
