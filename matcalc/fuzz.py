"""A fuzzing harness for matcalc: random losses and programs, independent oracles, an input fuzzer.

Generators are driven by the operator registry (`registry.OPS`), so a new row is fuzzed without
a change here; only the domains of a few functions (log needs a positive argument, ...) are
listed below. Every generated case is text in the input syntax with its declarations, exactly
what a user types; its reproducer is one line.

Oracles (each independent of the code under test; the engine is `grad` -> differentiate ->
adjoint -> simplify):

  fd          the gradient against our own central differences (Richardson, two step sizes) for
              symbols and program steps; a step's true gradient is defined by the program: the
              steps are typed one by one (earlier steps as symbols), evaluated in order with
              NumPy, and the step's value overridden by v0 + t*V
  verified    the check's verdict agrees: a gradient failing `fd` that `grad` reports verified is
              the worst finding (`VERIFIED-WRONG`); a correct gradient the check rejects is a
              false alarm (`check-false-alarm`)
  derivation  the derivation's last gradient line equals the result (numerically)
  simplify    simplifying a result again leaves it unchanged
  roundtrip   printed text parses back to an equal tree (structure) / value (numerically)
  latex       emitted LaTeX reads back (`latex_in`) to an equal value
  layout      layout="numerator" gives the transposes
  verdict     `check` says correct for the true gradient and wrong for 2G, -G and G'
  formats     to_dict() and every CLI output format succeed
  input/cli   (input fuzzer) every input gets a result or a MatcalcError within the time bound, and
              a --wrt name neither in the loss nor declared is an error; the CLI exits 0/1 with
              output or 2 with one `matcalc:` line on stderr

The cheap oracles (fd, roundtrip, simplify, with grad(check=False)) run on every case, the others
on every `full_every`-th (verdicts on every `verdict_every`-th); see `Options`.

Outcome classes of a case, worst first: hang, crash, wrong, contract, nopoint, unsupported,
inconclusive (our own oracle could not decide, e.g. no finite point), ok.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import random
import re
import shlex
import signal
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field

import numpy as np

from . import cli
from .api import grad
from .core import properties
from .core.expr import PROPERTIES, Expr, Eye, Op, Sym, walk
from .core.registry import OPS, SCALAR, dim_size
from .errors import CheckError, DomainError, MatcalcError, UnsupportedError
from .syntax.latex_in import latex_to_text
from .syntax.parser import Decl, parse_decls, parse_syn
from .syntax.printing import to_text
from .syntax.typer import default_shape, to_expr
from .verify.evaluate import numeric

CLASSES = ("hang", "crash", "wrong", "contract", "nopoint", "unsupported", "inconclusive", "ok")
FAILING = ("hang", "crash", "wrong")
KINDS = ("loss", "program", "input", "cli")
ALL_KINDS = KINDS + ("corpus",)  # corpus: the and README's examples
WEIGHTS = {"loss": 45, "program": 35, "input": 15, "cli": 5, "corpus": 1}

BIG = 1e8  # values beyond this at a random point of size ~1 mean an ill-conditioned matrix

# Domains the registry does not state: what an argument must be, what a result is.
NEEDS_ARG = {"log": "pos", "sqrt": "pos", "logdet": "spd"}
GIVES = {"exp": "pos", "sigmoid": "pos", "softplus": "pos", "softmax": "pos"}


# ---- cases and outcomes -------------------------------------------------------------------------

@dataclass
class Case:
    """One generated input. `steps` is the program as (name, text) pairs (the loss last, its
    name None for a plain loss); `argv` is set for CLI cases."""

    kind: str
    text: str
    wrt: list[str]
    let: str = ""
    steps: list[tuple[str | None, str]] = field(default_factory=list)
    argv: list[str] | None = None
    label: str = ""  # a short description for inputs too long to print
    stdin: str = ""
    shapes: dict = field(default_factory=dict)  # the generator's own symbol table: name -> Decl

    def repro(self) -> str:
        """One line that re-runs the case."""
        if self.argv is not None:  # files made by the fuzzer are shown as <fuzz>/NAME (see _file)
            argv = [a.replace(_FILES.get("dir", "\0"), "<fuzz>") for a in self.argv]
            return "matcalc " + " ".join(shlex.quote(a) for a in argv)
        if self.label or len(self.text) > 400 or not self.text.isprintable():
            text = self.label or repr(self.text[:200]) + "..."
            return f"matcalc.grad({text}, wrt={self.wrt!r}, let={self.let!r})"
        args = [shlex.quote(self.text)] + [f"--wrt {shlex.quote(w)}" for w in self.wrt]
        if self.let:
            args.append(f"--let {shlex.quote(self.let)}")
        return "matcalc grad " + " ".join(args)


@dataclass
class Finding:
    """One oracle failure."""

    cls: str
    oracle: str
    message: str
    etype: str = ""
    tag: str = ""  # what groups it (default: the message's first line)

    def key(self) -> tuple[str, str, str]:
        """Similar findings group together: class, oracle, exception type, normalised message."""
        first = self.tag or (self.message.strip().splitlines()[0] if self.message.strip() else "")
        first = re.sub(r"\(its symbols:[^)]*\)|did you mean [^?]*\?", "_", first)  # a typo's suggestions
        first = re.sub(r"'[^']*'", "'_'", first)
        first = re.sub(r"-?\d+(\.\d+)?(e[-+]?\d+)?", "N", first)
        return self.cls, self.oracle, f"{self.etype}: {first[:90]}" if self.etype else first[:90]


@dataclass
class Outcome:
    """A case's findings and its class (the worst finding's)."""

    index: int
    kind: str
    repro: str
    findings: list[Finding] = field(default_factory=list)
    full: bool = False
    seconds: float = 0.0

    @property
    def cls(self) -> str:
        ranks = [CLASSES.index(f.cls) for f in self.findings]
        return CLASSES[min(ranks)] if ranks else "ok"


class Timeout(BaseException):
    """Raised by the alarm; a BaseException so that `except Exception` in the code under test
    cannot swallow it."""


@contextlib.contextmanager
def time_limit(seconds: float):
    """Raise Timeout in this (main) thread after `seconds` of wall time."""
    def fire(signum, frame):
        raise Timeout()

    old = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def limit_memory(gigabytes: float) -> None:
    """Cap this process's address space, so a huge allocation is a MemoryError, not a swap storm."""
    try:
        import resource
        cap = int(gigabytes * 2**30)
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        if soft == resource.RLIM_INFINITY or soft > cap:
            resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    except (ImportError, ValueError, OSError):
        pass


# ---- the loss generator ---------------------------------------------------------------------------

DIM_POOL = ("n", "m", "p", "q", "k", "D")
NAMES = {"scalar": ["a", "b", "c", "beta", "lam", "g", "alpha"],
         "col": ["x", "y", "u", "v", "w", "z", "h", "t"],
         "row": ["r", "s", "o"],
         "mat": ["A", "B", "C", "W", "X", "Y", "U", "V", "S", "P", "M", "W1", "W2", "Q"]}
STEP_NAMES = ("a{i}", "h{i}", "s{i}", "z{i}", "A{i}", "Z{i}", "e{i}", "t{i}", "delta{i}")


@dataclass
class Node:
    """Generated text with the precedence of its outermost operator: 1 sum, 2 product,
    3 negation, 4 power, 5 transpose, 6 atom (the grammar's levels)."""

    text: str
    prec: int

    def at(self, prec: int) -> str:
        """The text, parenthesised if it binds looser than `prec`."""
        return self.text if self.prec >= prec else f"({self.text})"


@dataclass
class Var:
    """A symbol or program step the generator can use: its shape, properties, what it is."""

    name: str
    shape: tuple
    props: frozenset = frozenset()
    declare: bool = True
    step: bool = False
    gives: str | None = None  # for a step: "pos" / "spd" if built to be so
    with_shape: bool = False  # its declaration must give the shape


def _kind(shape: tuple) -> str:
    if shape == SCALAR:
        return "scalar"
    return "col" if shape[1] == 1 else "row" if shape[0] == 1 else "mat"


def _satisfies(v: Var, need: str | None) -> bool:
    """Whether values of `v` are fit where `need` is required (pos, spd, inv)."""
    if need is None:
        return True
    if v.step:
        return v.gives == need or (need == "inv" and v.gives == "spd")
    if need == "pos":
        return bool({"positive", "probability"} & v.props)
    if need == "spd":
        return "spd" in v.props
    return bool({"spd", "invertible"} & v.props)


def _functions() -> list[str]:
    """Non-elementwise operators with a call syntax that the engine differentiates."""
    return [n for n, op in OPS.items() if op.parse_name and op.calculus and not op.elementwise and op.arity == 1
            and n != "group"]


def _elementwise() -> list[str]:
    return [n for n, op in OPS.items() if op.parse_name and op.calculus and op.elementwise]


class Gen:
    """Random well-shaped scalar losses and programs, as text with declarations."""

    def __init__(self, rng: random.Random, full_decls: bool | None = None) -> None:
        self.rng = rng
        self.dims: list[str | int] = list(rng.sample(DIM_POOL, rng.randint(2, 3)))
        if rng.random() < 0.2:
            self.dims.append(rng.choice([2, 3, 4]))
        self.full = rng.random() < 0.5 if full_decls is None else full_decls
        self.vars: list[Var] = []
        self.used_names: set[str] = set()

    # ---- helpers
    def dim(self):
        return self.rng.choice(self.dims)

    def shape(self) -> tuple:
        """A random shape: scalar, column, row, square or rectangular matrix."""
        r = self.rng.random()
        if r < 0.2:
            return SCALAR
        if r < 0.5:
            return (self.dim(), 1)
        if r < 0.55:
            return (1, self.dim())
        d = self.dim()
        return (d, d) if r < 0.8 else (d, self.dim())

    def name(self, kind: str) -> str:
        for n in NAMES[kind] + [f"{n}{i}" for i in range(3, 9) for n in NAMES[kind][:3]]:
            if n not in self.used_names:
                self.used_names.add(n)
                return n
        raise RuntimeError("out of names")

    def number(self) -> Node:
        """A positive number (negative ones come from negation)."""
        return Node(self.rng.choice(["2", "3", "0.5", "1.5", "10", "0.1", "4"]), 6)

    # ---- leaves
    def new_symbol(self, shape: tuple, need: str | None) -> Var:
        kind = _kind(shape)
        name = self.name(kind)
        square = kind == "mat" and shape[0] == shape[1]
        props: set[str] = set()
        if need == "pos":
            props.add("probability" if kind in ("col", "mat") and self.rng.random() < 0.3 else "positive")
        elif need in ("spd", "inv"):
            props.add("spd" if need == "spd" or self.rng.random() < 0.5 else "invertible")
        elif square and self.rng.random() < 0.4:  # a matrix property (a constant such as integer is a scalar)
            props.add(self.rng.choice([p for p in PROPERTIES if not properties.constant({p})]))
        elif kind == "col" and self.rng.random() < 0.1:
            props.add("probability")
        elif self.rng.random() < 0.08:
            props.add("positive")
        rows, cols = default_shape(name)
        default_ok = (not props and rows == (shape[0] != 1) and cols == (shape[1] != 1)
                      and all(isinstance(d, str) for d in shape))
        v = Var(name, shape, frozenset(props), declare=self.full or not default_ok or self.rng.random() < 0.3)
        self.vars.append(v)
        return v

    def leaf(self, shape: tuple, need: str | None) -> Node:
        """A step, an existing symbol, a new symbol or a number of this shape."""
        fits = [v for v in self.vars if v.shape == shape and _satisfies(v, need)]
        steps = [v for v in fits if v.step]
        if steps and self.rng.random() < 0.7:
            return Node(self.rng.choice(steps).name, 6)
        if shape == SCALAR and need in (None, "pos") and self.rng.random() < 0.2:
            return self.number()
        if fits and self.rng.random() < 0.5:
            return Node(self.rng.choice(fits).name, 6)
        return Node(self.new_symbol(shape, need).name, 6)

    # ---- composite
    def expr(self, shape: tuple, depth: int, need: str | None = None, top: bool = False) -> Node:
        """A random expression of `shape` whose values satisfy `need` (None, pos, spd, inv)."""
        if need == "spd" and shape == SCALAR:
            need = "pos"
        if depth <= 0 or (self.rng.random() < 0.1 and not top):
            return self.leaf(shape, need)
        options = {None: self.any_options, "pos": self.pos_options}.get(need, self.spd_options)(shape)
        weights = [w for w, _ in options]
        fn = self.rng.choices([f for _, f in options], weights)[0]
        node = fn(shape, depth - 1, need)
        return node if node is not None else self.leaf(shape, need)

    def any_options(self, s: tuple) -> list:
        scalar, square = s == SCALAR, s[0] == s[1]
        opts = [(2, self.g_add), (2, self.g_scale), (3, self.g_elementwise), (3, self.g_function),
                (3, self.g_matmul), (1, self.g_transpose), (1, self.g_neg)]
        if not scalar:
            opts += [(1, self.g_hadamard), (1, self.g_epow), (1, self.g_broadcast), (1, self.g_constant)]
        if scalar and self.full:
            opts += [(1, self.g_per_dimension)]
        if square and not scalar:
            opts += [(1, self.g_matpow), (1, self.g_plus_eye)]
        if scalar:
            opts += [(2, self.g_scalar_pow), (1, self.g_quadratic), (1, self.g_trace_power)]
        return opts

    def pos_options(self, s: tuple) -> list:
        opts = [(3, self.g_positive_fn), (1, self.g_add), (1, self.g_scale), (1, self.g_square_plus_one)]
        if s != SCALAR:
            opts += [(1, self.g_hadamard)]
        else:
            opts += [(2, self.g_positive_reduce), (1, self.g_scalar_pow)]
        return opts

    def spd_options(self, s: tuple) -> list:
        return [(3, self.g_gram), (1, self.g_add), (1, self.g_scale), (1, self.g_inverse), (1, self.g_diag_pos)]

    def g_add(self, s, depth, need):
        a, b = self.expr(s, depth, need), self.expr(s, depth, need)
        op = "+" if need is not None or self.rng.random() < 0.6 else "-"
        return Node(f"{a.at(1)} {op} {b.at(2)}", 1)

    def g_scale(self, s, depth, need):
        a = self.expr(s, depth, need)
        if self.rng.random() < 0.3:
            return Node(f"{a.at(2)}/{self.expr(SCALAR, depth - 1, 'pos').at(3)}", 2)
        c = self.expr(SCALAR, depth - 1, "pos" if need else None) if self.rng.random() < 0.5 else self.number()
        return Node(f"{c.at(2)}*{a.at(3)}", 2)

    def g_neg(self, s, depth, need):
        return Node(f"-{self.expr(s, depth, need).at(4)}", 3)  # not --a: the CLI would read an option

    def g_hadamard(self, s, depth, need):
        a = self.expr(s, depth, need)
        if self.rng.random() < 0.3:
            return Node(f"{a.at(2)}./{self.expr(s, depth, 'pos').at(3)}", 2)
        return Node(f"{a.at(2)}.*{self.expr(s, depth, need).at(3)}", 2)

    def g_epow(self, s, depth, need):
        if self.rng.random() < 0.5:
            return Node(f"{self.expr(s, depth).at(5)}.^{self.rng.choice(['2', '3'])}", 4)
        return Node(f"{self.expr(s, depth, 'pos').at(5)}.^{self.rng.choice(['-1', '0.5', '1.5', '-2'])}", 4)

    def g_scalar_pow(self, s, depth, need):
        if need is None and self.rng.random() < 0.5:
            return Node(f"{self.expr(s, depth).at(5)}^{self.rng.choice(['2', '3'])}", 4)
        return Node(f"{self.expr(s, depth, 'pos').at(5)}^{self.rng.choice(['-1', '0.5', '2', '1.5', '-0.5'])}", 4)

    def integer_exponent(self) -> Node | None:
        """A symbol declared `scalar integer` (the k of X^k; a constant, never asked for in wrt), as
        itself or `k - 1`, `k + 1`; None when the names are used up."""
        fits = [v for v in self.vars if "integer" in v.props]
        fresh = [n for n in ("k", "k2", "j", "j2") if n not in self.used_names and n not in self.dims]  # no dimension
        if fresh and not (fits and self.rng.random() < 0.5):
            self.used_names.add(fresh[0])
            fits = [Var(fresh[0], SCALAR, frozenset({"integer"}))]
            self.vars.append(fits[0])
        if not fits:
            return None
        k = self.rng.choice(fits).name
        return Node(self.rng.choice([k, k, f"({k} - 1)", f"({k} + 1)"]), 6)

    def g_trace_power(self, s, depth, need):
        """tr(X^k) or det(X^k) with an integer-declared k (Matrix Cookbook 121, 122)."""
        k, d = self.integer_exponent(), self.dim()
        if k is None:
            return None
        fn = self.rng.choice(["tr", "det"])
        return Node(f"{fn}({self.expr((d, d), depth, 'inv' if fn == 'det' else None).at(5)}^{k.text})", 6)

    def g_matpow(self, s, depth, need):
        if self.rng.random() < 0.15 and (k := self.integer_exponent()) is not None:  # X^k: differentiable only
            return Node(f"{self.expr(s, depth).at(5)}^{k.text}", 4)  # under tr or det (else unsupported)
        if self.rng.random() < 0.6:
            return Node(f"{self.expr(s, depth).at(5)}^{self.rng.choice(['2', '3'])}", 4)
        return Node(f"{self.expr(s, depth, 'inv').at(5)}^{self.rng.choice(['-1', '-2'])}", 4)

    def g_transpose(self, s, depth, need):
        return Node(f"{self.expr((s[1], s[0]), depth, need).at(5)}'", 5)

    def g_matmul(self, s, depth, need):
        k = self.dim()
        if s == SCALAR and self.rng.random() < 0.5:  # an inner product x'*y
            v = self.expr((k, 1), depth)
            return Node(f"{v.at(5)}'*{self.expr((k, 1), depth).at(3)}", 2)
        op = "@" if self.rng.random() < 0.1 else "*"
        return Node(f"{self.expr((s[0], k), depth).at(2)}{op}{self.expr((k, s[1]), depth).at(3)}", 2)

    def g_quadratic(self, s, depth, need):
        k = self.dim()
        x, a = self.expr((k, 1), depth - 1), self.expr((k, k), depth - 1)
        return Node(f"{x.at(5)}'*{a.at(3)}*{x.at(3)}", 2)

    def g_broadcast(self, s, depth, need):
        return Node(f"{self.number().text} - {self.expr(s, depth).at(2)}", 1)

    def g_constant(self, s, depth, need):
        """A constant matrix added to an expression: ones/zeros with sizes (all symbols are
        declared then), or vector(c)/matrix(c) whose sizes are inferred."""
        r, c = s
        if self.full and self.rng.random() < 0.5:
            const = self.rng.choice(["ones", "zeros"]) + (f"({r})" if c == 1 else f"({r},{c})")
            const = f"ones({c})'" if r == 1 and const.startswith("ones") else const
        else:
            const = f"{'vector' if c == 1 else 'matrix'}({self.rng.choice(['2', '0.5', '1'])})"
            if r == 1:
                const = f"vector({self.rng.choice(['2', '0.5'])})'"
        return Node(f"{self.expr(s, depth, need).at(1)} + {const}", 1)

    def g_per_dimension(self, s, depth, need):
        """A scalar divided by a dimension name used as a number (a batch mean: sum(...)/m)."""
        d = self.rng.choice([d for d in self.dims if isinstance(d, str)] or ["n"])
        used = {x for v in self.vars for x in v.shape}
        if d not in used:
            return None
        return Node(f"{self.expr(s, depth, need).at(2)}/{d}", 2)

    def g_plus_eye(self, s, depth, need):
        eye = f"eye({s[0]})" if self.full and self.rng.random() < 0.5 else "eye"
        return Node(f"{self.expr(s, depth).at(1)} + {eye}", 1)

    def g_elementwise(self, s, depth, need):
        f = self.rng.choice(_elementwise())
        return Node(f"{OPS[f].parse_name}({self.expr(s, depth, NEEDS_ARG.get(f)).text})", 6)

    def g_positive_fn(self, s, depth, need):
        f = self.rng.choice([f for f in GIVES if f in OPS])
        if not (OPS[f].elementwise or s != SCALAR):
            return self.leaf(s, need)
        return Node(f"{OPS[f].parse_name}({self.expr(s, depth, NEEDS_ARG.get(f)).text})", 6)

    def g_square_plus_one(self, s, depth, need):
        sq = f"{self.expr(s, depth).at(5)}{'^' if s == SCALAR else '.^'}2"
        return Node(f"1 + {sq}", 1)

    def g_positive_reduce(self, s, depth, need):
        inner = self.shape()
        if self.rng.random() < 0.5 and inner != SCALAR:
            return Node(f"sum({self.expr(inner, depth, 'pos').text})", 6)
        if self.rng.random() < 0.5:
            return Node(f"norm2({self.expr(inner, depth).text})^2 + 1", 1)
        d = self.dim()
        fn = self.rng.choice(["det", "tr"])
        return Node(f"{fn}({self.expr((d, d), depth, 'spd').text})", 6)

    def g_function(self, s, depth, need):
        """A registry operator whose shape rule maps some argument shape to `s`."""
        k = self.dim()
        cands = {s, (k, k), (s[0], 1), (k, 1), (s[0], s[0]), (s[1], s[1]), (k, s[1]), (s[0], k), (s[1], s[0])}
        choices = []
        for name in _functions():
            for a in cands:
                try:
                    if OPS[name].shape((a,)) == s:
                        choices.append((name, a))
                except MatcalcError:  # the shape rule rejects this argument shape
                    continue
        if not choices:
            return None
        name, a = self.rng.choice(sorted(choices, key=str))
        arg_need = NEEDS_ARG.get(name, "inv" if OPS[name].square_arg else None)
        if name == "det" and self.rng.random() < 0.5:
            arg_need = "spd"
        return Node(f"{OPS[name].parse_name}({self.expr(a, depth, arg_need).text})", 6)

    def g_gram(self, s, depth, need):
        k = self.dim()
        eye = f"eye({s[0]})" if self.full and self.rng.random() < 0.3 else "eye"
        if self.rng.random() < 0.5:
            x = self.expr((k, s[0]), depth)
            gram = f"{x.at(5)}'*{x.at(3)}"
        else:
            x = self.expr((s[0], k), depth)
            gram = f"{x.at(2)}*{x.at(5)}'"
        if self.rng.random() < 0.15:  # spd only where the factor is tall: the samplers must find such sizes
            return Node(gram, 2)
        return Node(f"{gram} + {eye}", 1)

    def g_inverse(self, s, depth, need):
        return Node(f"inv({self.expr(s, depth, 'spd').text})", 6)

    def g_diag_pos(self, s, depth, need):
        return Node(f"diag({self.expr((s[0], 1), depth, 'pos').text})", 6)

    # ---- whole cases
    def decls(self) -> str:
        """The `let` text: each declared symbol's shape and properties, grouped at random."""
        def spec(v: Var) -> str:
            r, c = v.shape
            shape = "scalar" if v.shape == SCALAR else f"{r}" if c == 1 else f"{r} x {c}"
            if c == 1 and r != 1 and self.rng.random() < 0.1:
                shape = f"vector({r})"
            props = " ".join(sorted(v.props))
            rows, cols = default_shape(v.name)
            if props and all(isinstance(d, str) for d in v.shape) and rows == (r != 1) and cols == (c != 1) \
                    and not self.full and not v.with_shape and self.rng.random() < 0.3:
                return props  # properties only: the shape comes from the default kind
            return f"{shape} {props}".strip()

        groups: dict[str, list[str]] = {}
        for v in self.vars:
            if v.declare and not v.step:
                groups.setdefault(spec(v), []).append(v.name)
        parts = []
        for sp, names in groups.items():
            if self.rng.random() < 0.5:
                parts.append(f"{', '.join(names)}: {sp}")
            else:
                parts += [f"{n}: {sp}" for n in names]
        self.rng.shuffle(parts)
        return "; ".join(parts)

    def symbols_in(self, text: str) -> list[str]:
        """The generated symbols that occur in `text` (a discarded branch may have made others)."""
        words = _words(text)
        return [v.name for v in self.vars if not v.step and v.name in words]

    def pick_wrt(self, steps: bool, text: str) -> list[str]:
        """Variables to ask for: symbols of the text (and, for a program, some steps)."""
        syms = [n for n in self.symbols_in(text) if not any(v.name == n and "integer" in v.props for v in self.vars)]
        out = self.rng.sample(syms, min(len(syms), self.rng.randint(1, 3)))
        names = [v.name for v in self.vars if v.step]
        if steps and names:
            out += self.rng.sample(names, min(len(names), self.rng.randint(1, 2)))
        return out

    def loss(self) -> Case:
        """A scalar loss in one expression."""
        text = self.expr(SCALAR, self.rng.randint(2, 4), top=True).text
        if not self.symbols_in(text):
            text = f"{text} + sum({self.leaf((self.dim(), 1), None).text})"
        return Case("loss", text, self.pick_wrt(False, text), self.decls(), [(None, text)], shapes=self.table())

    def program(self) -> Case:
        """A program of named steps; wrt takes symbols and steps."""
        steps: list[tuple[str | None, str]] = []
        for i in range(1, self.rng.randint(2, 5)):  # half the steps have the shape of the one before
            before = [v for v in self.vars if v.step]
            shape = before[-1].shape if before and self.rng.random() < 0.5 else self.shape()
            name = self.rng.choice(STEP_NAMES).format(i=i)
            while name in self.used_names:
                name += "_"
            self.used_names.add(name)  # before its text: no symbol of it (nor of a later step) takes the name
            need = self.rng.choice([None, None, None, "pos", "spd"]) if shape[0] == shape[1] else None
            if shape == SCALAR and self.rng.random() < 0.2:
                text, need = self.rng.choice(["-4", "3", "0.5", "-1"]), None
            else:
                text = self.expr(shape, self.rng.randint(1, 2), need).text
            steps.append((name, text))
            self.vars.append(Var(name, shape, step=True, gives=need if shape != SCALAR or need != "spd" else "pos"))
        final = self.expr(SCALAR, self.rng.randint(1, 3), top=True).text
        last = [v for v in self.vars if v.step][-1]
        if last.name not in _words(final) and self.rng.random() < 0.7:  # mostly, the loss uses the last step
            final = f"{final} + {last.name if last.shape == SCALAR else f'sum({last.name})'}"
        loss_name = self.rng.choice(["L", "E", "f", "loss"])
        steps.append((loss_name, final))
        self.declare_unused(steps)
        text = "; ".join(f"{n} = {t}" for n, t in steps)
        if not self.symbols_in(text):
            return self.program_with_symbol(steps, text)
        return Case("program", text, self.pick_wrt(True, text), self.decls(), steps, shapes=self.table())

    def table(self) -> dict:
        """The symbols' shapes and properties as the generator meant them."""
        return {v.name: Decl(v.name, v.shape, v.props) for v in self.vars if not v.step}

    def declare_unused(self, steps: list[tuple[str | None, str]]) -> None:
        """Symbols met only in steps the loss does not use get declared: nothing in the loss
        fixes their shapes, and the oracles type each step on its own."""
        words = {n: _words(t) for n, t in steps}
        used, todo = set(), [steps[-1][0]]
        while todo:
            n = todo.pop()
            used.add(n)
            todo += [w for w in words[n] if w in words and w not in used]
        in_used = set().union(*(words[n] for n in used))
        for v in self.vars:
            if not v.step and v.name not in in_used:
                v.declare = v.with_shape = True

    def program_with_symbol(self, steps, text) -> Case:
        """Programs made only of numbers still need a variable: add one to the loss."""
        v = self.leaf((self.dim(), 1), None).text
        name, final = steps[-1]
        steps[-1] = (name, f"{final} + sum({v})")
        text = "; ".join(f"{n} = {t}" for n, t in steps)
        return Case("program", text, self.pick_wrt(True, text), self.decls(), steps, shapes=self.table())


# Cases from the issue and the README, run by the tests (and with --kind corpus).
CORPUS = [
    ("s1 = exp(a); L = log(s1)", ["a", "s1"], ""),
    ("s1 = inv(S); L = det(s1)", ["S", "s1"], "S: m x m spd"),
    ("h1 = -4; h2 = h1/2; L = h2/a", ["h1", "a"], "a: scalar positive"),
    ("y = x*W; L = y*c", ["y", "W", "x"], "x: 1 x D; c: vector(k)"),
    ("log(det(X'*X))", ["X"], "X: m x n"),
    ("det(X'*A*X)", ["X"], "X: m x n"),
    ("tr(inv(X'*C*X)*A)", ["X"], "X: m x n; C: m x m spd"),
    ("exp(tr(a*S)^2)^0.5", ["a"], "S: n x n; a: scalar"),
    ("cos(1000*x'*x)", ["x"], ""),
    ("tr(inv(X)*A)", ["X"], "X: 12 x 12"),
    ("tr(A*X*B)", ["X"], ""),
    ("x'*A*x", ["x"], "A: n x n symmetric"),
    ("a'*inv(X)*b", ["X"], "a, b: n"),
    ("0.5*norm2(W2*tanh(W1*x) - y)^2", ["W1", "W2"], ""),
    ("a1 = W1*x; h1 = sigmoid(a1); a2 = W2*h1; L = -y'*log(softmax(a2))", ["W1", "W2", "a1", "h1", "a2"],
     "y: probability"),
    (("Z1 = W1*X + b1*ones(m)'; A1 = tanh(Z1); Z2 = W2*A1 + b2*ones(m)'; A2 = sigmoid(Z2); "
      "E = -sum(Y.*log(A2) + (1 - Y).*log(1 - A2))/m"), ["W1", "b1", "W2", "b2", "X", "Z1", "A1"],
     "X: 3 x m; W1: 5 x 3; b1: 5; W2: 2 x 5; b2: 2; Y: 2 x m"),
]


def corpus_case(rng: random.Random) -> Case:
    return corpus_entry(rng.randrange(len(CORPUS)))


def corpus_entry(i: int) -> Case:
    """The i-th case of the corpus (issue and README examples); programs split into steps."""
    text, wrt, let = CORPUS[i]
    parts = [p.strip() for p in text.split(";")]
    steps = [_assignment(p) for p in parts]
    return Case("program" if len(steps) > 1 else "loss", text, wrt, let, steps)


def _assignment(statement: str) -> tuple[str | None, str]:
    """`name = text` as (name, text); a bare expression as (None, text)."""
    name, eq, text = statement.partition(" = ")
    return (name, text) if eq else (None, statement)


def generate(kind: str, rng: random.Random) -> Case:
    """A case of `kind` (loss, program, input, cli), short enough to read."""
    if kind in ("input", "cli", "corpus"):
        return {"input": input_case, "cli": cli_case, "corpus": corpus_case}[kind](rng)
    for _ in range(20):
        case = Gen(rng).loss() if kind == "loss" else Gen(rng).program()
        if len(case.text) <= 220:
            return case
    return case


# ---- the numeric model of a case (the oracles' side) ----------------------------------------------

class Model:
    """A case made numeric without the differentiation engine: symbol shapes from the result,
    each step typed on its own (earlier steps as symbols), NumPy evaluation in program order."""

    def __init__(self, case: Case, symbols: dict[str, Sym], rng: np.random.Generator,
                 shapes: dict[str, tuple] | None = None) -> None:
        self.rng = rng
        shapes = shapes or {}
        declared = parse_decls(case.let) if case.let else {}
        result = {n: Decl(n, s.shape, s.props) for n, s in symbols.items() if "dimension" not in s.props}
        # the result's shapes; for symbols it lacks (in unused steps, or in a loss that folds to a
        # constant) the let, then the generator's own shapes: each step is typed on its own
        self.decls = {**case.shapes, **declared, **result}
        bound: dict[str, Sym] = {}
        self.steps = []
        for name, text in case.steps:  # a step asked for has its gradient's shape (dims shared)
            shape = shapes.get(name) if name is not None else None
            e = to_expr(text, parse_syn(text), self.decls, bound=bound.get, expect=shape)
            self.steps.append((name, e))
            if name is not None:
                bound[name] = Sym(name, e.shape)
        self.step_syms = bound
        self.syms = {n.name: n for n in walk([e for _, e in self.steps])
                     if isinstance(n, Sym) and n.name not in bound and "dimension" not in n.props}
        self.dims: dict[str, int] = {}
        self.size_dims([e for _, e in self.steps] + list(self.syms.values()))

    def resize(self) -> None:
        """New sizes for every named dimension (a loss may be defined only when X is tall)."""
        names = list(self.dims)
        self.dims = {}
        self.size_dims([Sym(n, (n, 1)) for n in self.rng.permutation(names)])

    def size_dims(self, exprs: list) -> None:
        """Give every named dimension met in `exprs` a size (distinct where possible)."""
        for node in walk(exprs):
            shape = (node.n, node.n) if isinstance(node, Eye) else node.shape
            for d in shape:
                if isinstance(d, str) and d not in self.dims:
                    free = [k for k in range(2, 7) if k not in self.dims.values()] or list(range(2, 7))
                    self.dims[d] = int(self.rng.choice(free))

    def value(self, s: Sym) -> np.ndarray:
        """A random value honouring the declared properties."""
        r, c = (dim_size(d, self.dims) for d in s.shape)
        b = self.rng.standard_normal((r, c)) * 0.7
        if s.has("integer"):  # the k of X^k: a small integer
            return np.full((r, c), float(self.rng.integers(2, 5)))
        if s.has("probability"):
            b = np.abs(b) + 0.1
            return b / b.sum(axis=0, keepdims=True)
        if s.has("positive"):
            b = self.rng.uniform(0.5, 2.0, (r, c))
        if s.has("spd"):
            return b @ b.T / max(c, 1) + np.eye(r)
        if s.has("diagonal"):
            b = np.diag(np.diag(b)) + (np.eye(r) if s.has("positive") else 0)
        if s.has("symmetric"):
            b = (b + b.T) / 2
        if s.has("invertible") and r == c:
            b = b / 2 + r * np.eye(r)
        return b

    def direction(self, name: str, like: np.ndarray) -> np.ndarray:
        """A random direction admissible for the variable (symmetric for symmetric, ...)."""
        v = self.rng.standard_normal(like.shape)
        s = self.syms.get(name)
        if s is not None and s.has("diagonal"):
            v = np.diag(np.diag(v))
        elif s is not None and s.has("probability"):
            v = v - v.mean(axis=0, keepdims=True)
        elif s is not None and s.has("symmetric"):
            v = (v + v.T) / 2
        return v / max(float(np.linalg.norm(v)), 1e-300)

    def point(self) -> dict[str, np.ndarray]:
        """Values for the symbols; a dimension used as a number takes its size (one that no
        symbol in play has, e.g. of a symbol that folded away, gets a size of its own)."""
        env = {n: self.value(s) for n, s in self.syms.items()}
        for node in walk([e for _, e in self.steps]):
            if isinstance(node, Sym) and "dimension" in node.props:
                env[node.name] = np.array([[float(self.dims.setdefault(node.name, 3))]])
        return env

    def run(self, env: dict, override: dict | None = None, jitter: tuple[np.random.Generator, str] | None = None) \
            -> dict[str, np.ndarray]:
        """Every step's value, in order, with `override` replacing a step's value (and, with
        `jitter` = (generator, name), every operation that depends on the variable or step
        `name` perturbed as rounding would: see `value_of`)."""
        vals = dict(env)
        moving = {jitter[1]} if jitter is not None else set()
        for i, (name, e) in enumerate(self.steps):
            key = name if name is not None else f"#{i}"
            if override and key in override:
                vals[key] = override[key]
                continue
            vals[key] = self.value_of(e, vals, jitter[0] if jitter else None, frozenset(moving))
            if name is not None and e.syms & moving:
                moving.add(name)
        vals["#loss"] = vals[self.steps[-1][0] or f"#{len(self.steps) - 1}"]
        return vals

    def value_of(self, e, vals: dict, jitter: np.random.Generator | None = None,
                 moving: frozenset[str] = frozenset()) -> np.ndarray:
        """A step's value; NaN where it is undefined (a singular matrix inverted). With `jitter`,
        the value of every operation that depends on a name in `moving` is perturbed by a
        relative JITTER (tens of rounding errors) before it is used: how much the result
        moves is the scale of the rounding error in its variation along that name
        (sin(sum(x) - det(A^4)) with det ~ 1e23 moves by O(1): x is lost in the det's rounding,
        and differences in x measure nothing)."""
        try:
            if jitter is None:
                return numeric([e], vals, self.dims)[0]
            known: dict = {}
            for node in walk([e]):
                v = numeric([node], vals, self.dims, known, [node])[0]
                if isinstance(node, Op) and node.syms & moving and not _small_integers(v):
                    v = v * (1 + JITTER * jitter.uniform(-1.0, 1.0, np.shape(v)))
                known[node] = v
            return known[e]
        except np.linalg.LinAlgError:
            r, c = (d if isinstance(d, int) else self.dims[d] for d in e.shape)
            return np.full((r, c), np.nan)

    def loss(self, env: dict, name: str, x: np.ndarray, jitter: np.random.Generator | None = None) -> float:
        """The loss with variable or step `name` set to x (with `jitter`, the operations that
        depend on `name` perturbed)."""
        how = (jitter, name) if jitter is not None else None
        if name in self.step_syms:
            vals = self.run(env, {name: x}, how)
        else:
            vals = self.run({**env, name: x}, jitter=how)
        return float(vals["#loss"][0, 0])


JITTER = 1e-14  # relative perturbation of each operation's value (~45 rounding errors) estimating the rounding


def _small_integers(v: np.ndarray) -> bool:
    """Whether every entry is a small integer (the k + 1 of X^(k+1), a count, 0 or 1): exact in
    float64, and perturbing it would make X^(k+1) undefined."""
    a = np.asarray(v, dtype=float)
    return bool(np.all(np.isfinite(a)) and np.all(np.abs(a) < 2 ** 20) and np.all(a == np.round(a)))


def _finite(*xs) -> bool:
    return all(np.all(np.isfinite(x)) for x in xs)


def fd_compare(model: Model, env: dict, base: dict, name: str, g: np.ndarray,
               g_spread: float = 0.0) -> tuple[str, str]:
    """`fd_at` from the first step; a "wrong" is confirmed at steps 64 and 4096 times smaller,
    and small against the variable's smallest entry, since a step that is small against the
    variable's largest entry can still span periods of the loss (cos(a1) - a1 with a1 =
    exp(10 + a) ~ 2e4: the differences see only the linear term) or take a small entry across
    a kink (relu(exp(10*u)) with entries from 1e-5 to 1e8)."""
    verdict = fd_at(model, env, base, name, g, g_spread)
    entries = np.abs(base[name])[np.abs(base[name]) > 1e-300]
    with np.errstate(all="ignore"):  # the ratio of 1e8 to a subnormal entry overflows: capped
        spread = min(float(np.max(entries) / np.min(entries)), 1e8) if entries.size else 1.0
    for shrink in (64.0, 4096.0, *([spread] if spread > 4096 else [])):
        if verdict[0] != "wrong":
            break
        verdict = fd_at(model, env, base, name, g, g_spread, shrink)
    return verdict


def fd_at(model: Model, env: dict, base: dict, name: str, g: np.ndarray,
          g_spread: float = 0.0, shrink: float = 1.0) -> tuple[str, str]:
    """('ok' | 'wrong' | 'inconclusive', message): <G, V> against the directional derivative of
    the loss along a random admissible V, by central differences with Richardson extrapolation
    at two step sizes (their disagreement bounds the truncation error), from a step on which
    the loss changes little at the gradient's rate; the rounding error of the loss itself is
    estimated by evaluating it with every operation perturbed (`Model.value_of`): where that
    error, divided by the step, is not small against the derivative, nothing is decided; nor
    where the gradient's own rounding (`g_spread`: how far its entries move with every operation
    perturbed, see `gradient_spread`) is as large as the disagreement (a det of a singular
    product, 0 in exact arithmetic, is 1e-7 in float64)."""
    x0 = base[name]
    v = model.direction(name, x0)
    h = 1e-3 * max(1.0, float(np.max(np.abs(x0)))) / shrink
    an = float(np.sum(g * v))
    f0 = float(base["#loss"][0, 0])
    while abs(an) * h > 1e-2 * (1.0 + abs(f0)) and h > 1e-12:  # the step must resolve the loss's
        h /= 100  # variation: cos of a huge argument oscillates within a step of 1e-3, aliasing

    def ends(step: float) -> tuple[float, float]:
        return model.loss(env, name, x0 + step * v), model.loss(env, name, x0 - step * v)

    with np.errstate(all="ignore"):
        (p1, m1), (p2, m2), (p3, m3) = ends(h), ends(h / 2), ends(h / 4)
        jitter = np.random.default_rng(len(name))  # its own stream: the model's draws stay as they were
        wobble = max(abs(model.loss(env, name, x0, jitter) - f0) for _ in range(2))
    d1, d2, d3 = (p1 - m1) / (2 * h), (p2 - m2) / h, (p3 - m3) / (h / 2)
    r1, r2 = (4 * d2 - d1) / 3, (4 * d3 - d2) / 3
    # one-sided slopes differ by ~f''*step where f is smooth, by a constant jump at a kink
    k2, k3 = abs((p2 - f0) - (f0 - m2)) / (h / 2), abs((p3 - f0) - (f0 - m3)) / (h / 4)
    if not _finite(r1, r2, an):
        what = "nonfinite" if _finite(r1, r2) else "inconclusive"
        return what, f"not finite: central differences {r2}, the gradient gives {an}"
    mag = max(abs(r2), abs(an))
    # rounding in f, amplified by 1/h: below this nothing is known; a confirmation at a smaller step
    # (shrink > 1) turns "wrong" into "ok" only on differences its rounding estimate resolves
    floor = 1e-8 * (1.0 + abs(f0)) if shrink == 1 else 0.0
    rounding = 8 * wobble / h if np.isfinite(wobble) else np.inf  # the loss's own rounding, in r2
    noise = abs(r1 - r2)
    kink = k3 > 0.75 * k2 and k3 > 1e-3 * mag + 1e3 * floor
    if rounding > 1e-5 * mag + floor:  # so that it widens the tolerance for "wrong" below by at most this
        return "inconclusive", (f"the loss's rounding error ({wobble:.1e}, divided by the step {h:.1e}) is not small "
                                f"against the derivative: central differences {r2:.6g}, the gradient {an:.6g}")
    if noise > 1e-3 * mag + floor or kink:
        return "inconclusive", f"central differences disagree ({r1:.6g} vs {r2:.6g}) or a kink"
    err = abs(an - r2)
    g_round = 8 * g_spread * float(np.sum(np.abs(v)))
    if err > 1e-6 * mag + 10 * noise + floor + rounding and err <= g_round:
        return "inconclusive", f"the gradient's rounding ({g_round:.1e}) is as large as its disagreement ({err:.1e})"
    if err > 1e-6 * mag + 10 * noise + floor + rounding:
        return "wrong", (f"d/d{name}: directional derivative {r2:.10g} by central differences, "
                         f"{an:.10g} from the gradient (rel. err {err / mag:.1e})")
    return "ok", ""


def gradient_spread(model: Model, env: dict, base: dict, e) -> float:
    """How far the gradient's entries move when every operation is perturbed by JITTER: the scale
    of its own rounding error (two draws, the larger)."""
    known = {**env, **{k: v for k, v in base.items() if not k.startswith("#")}}
    g = eval_grad(model, env, base, e)
    jitter = np.random.default_rng(7)
    with np.errstate(all="ignore"):
        moved = [model.value_of(e, known, jitter, frozenset(known)) for _ in range(2)]
    spread = max(float(np.max(np.abs(m - g), initial=0.0)) for m in moved)
    return spread if np.isfinite(spread) else 0.0


def _through_overflow(model: Model, base: dict) -> bool:
    """Whether running the program at the point passes through a value beyond float64 (exp(det(X))
    = inf inside exp(-exp(det(X))) = 0): a NaN gradient there is float arithmetic (inf*0), which
    central differences of the finite loss cannot judge."""
    known = {k: v for k, v in base.items() if not k.startswith("#")}
    with np.errstate(all="ignore"):
        for _, e in model.steps:
            nodes = walk([e])
            try:
                values = numeric(nodes, known, model.dims)
            except (np.linalg.LinAlgError, ArithmeticError, MatcalcError):
                return True
            if not _finite(*values):
                return True
    return False


def singular_part(model: Model, env: dict, base: dict, parts: list) -> str | None:
    """The text of the first of `parts` (square matrices) that is singular at the point (a
    condition number over 1e10, or no finite value), or None."""
    known = {**env, **{k: v for k, v in base.items() if not k.startswith("#")}}
    model.size_dims(parts)
    with np.errstate(all="ignore"):
        for p in parts:
            m = model.value_of(p, known)
            if m.shape[0] == m.shape[1] and (not _finite(m) or np.linalg.cond(m) > 1e10):
                return to_text(p)
    return None


def inverted(e) -> list:
    """The matrices that `e` inverts."""
    return [n.args[0] for n in walk([e]) if isinstance(n, Op) and n.op == "inv"]


STATED = re.compile(r"holds where (.+) is invertible")


def outside_stated_domain(r, model: Model, env: dict, base: dict) -> str | None:
    """A part that the result's notes say must be invertible for its formulas to hold (`holds
    where P is invertible`) and that is singular at the point, or None."""
    names = _where_env(r, model)
    parts = []
    for note in r.notes:
        m = STATED.search(note)
        if m:
            try:
                parts.append(_read(m.group(1), model, names))
            except MatcalcError:
                continue
    return singular_part(model, env, base, parts)


def eval_grad(model: Model, env: dict, base: dict, e) -> np.ndarray:
    """The value of a result expression at the point (steps take their values there)."""
    model.size_dims([e])
    known = {**env, **{k: v for k, v in base.items() if not k.startswith("#")}}
    with np.errstate(all="ignore"):  # inf*0 is nan, which the oracles judge: no warning on stderr
        return model.value_of(e, known)


# ---- oracles --------------------------------------------------------------------------------------

def oracle_fd(case: Case, r, model: Model, tries: int = 4) -> tuple[list[Finding], dict]:
    """Gradient vs central differences for every name in wrt (new sizes and points until each
    is decided); returns the findings and the verdict per name: ok, wrong or inconclusive."""
    verdicts: dict[str, str] = {n: "inconclusive" for n in case.wrt}
    messages: dict[str, str] = {}
    retry = ("inconclusive", "nonfinite")
    for attempt in range(tries):
        if attempt:
            model.resize()
        env = model.point()
        with np.errstate(all="ignore"):
            base = model.run(env)
        if not _finite(*base.values()) or max(float(np.max(np.abs(v))) for v in base.values()) > BIG:
            continue  # undefined, or so large that a matrix was nearly singular: other sizes
        for name in [n for n in case.wrt if verdicts[n] in retry]:
            with np.errstate(all="ignore"):
                g = eval_grad(model, env, base, r[name].expr)
            if name not in base:  # absent from the loss: the gradient is zero
                zero = _finite(g) and not np.any(g)
                verdicts[name] = "ok" if zero else "wrong"
                messages[name] = "" if zero else f"d/d{name} of a name absent from the loss is not 0"
                continue
            if g.shape != base[name].shape:
                verdicts[name], messages[name] = "wrong", f"d/d{name} has shape {g.shape}, {name} {base[name].shape}"
                continue
            spread = gradient_spread(model, env, base, r[name].expr) if _finite(g) else 0.0
            verdicts[name], messages[name] = fd_compare(model, env, base, name, g, spread)
            if verdicts[name] == "nonfinite" and _through_overflow(model, base):
                verdicts[name] = "inconclusive"
            part = outside_stated_domain(r, model, env, base) if verdicts[name] == "nonfinite" else None
            if part is not None:  # det(A'*A)*inv(A'*A) with A wide: the result says it holds where A'*A is invertible
                verdicts[name], messages[name] = "inconclusive", f"{part} is singular here, and the result says so"
            if verdicts[name] == "wrong" and float(np.max(np.abs(g))) > BIG:
                verdicts[name] = "inconclusive"  # G was built from a nearly singular matrix
        if not set(retry) & set(verdicts.values()):
            break
    out = [Finding("wrong", "fd", messages[n], tag=_fd_tag(model, n, messages[n]))
           for n, v in verdicts.items() if v == "wrong"]
    kinks = any(isinstance(e, Op) and OPS[e.op].kink for e in walk([e for _, e in model.steps]))
    out += [Finding("inconclusive" if kinks else "wrong", "fd-nonfinite", messages[n])
            for n, v in verdicts.items() if v == "nonfinite"]
    verdicts = {n: "inconclusive" if v == "nonfinite" else v for n, v in verdicts.items()}
    out += [Finding("inconclusive", "fd", messages.get(n, "no point where the loss is finite and moderate"))
            for n, v in verdicts.items() if v == "inconclusive"]
    return out, verdicts


def _fd_tag(model: Model, name: str, message: str) -> str:
    """How a wrong gradient is grouped: of a step or a symbol, zero or not, or its shape."""
    what = "step" if name in model.step_syms else "symbol"
    if "has shape" in message:
        return f"the gradient of a {what} has a wrong shape"
    zero = re.search(r", (-?0(\.0*)?|-?0e[-+]?\d+) from the gradient", message)
    return f"the gradient of a {what} is {'0 (a silent zero)' if zero else 'wrong'}"


def _numeric_equal(model: Model, a, b, tries: int = 2) -> tuple[bool, str]:
    """Whether two result expressions agree at random points (relative to their magnitude, and
    beyond the rounding of either: see `gradient_spread`)."""
    for _ in range(tries):
        env = model.point()
        with np.errstate(all="ignore"):
            base = model.run(env)
            va, vb = eval_grad(model, env, base, a), eval_grad(model, env, base, b)
        if va.shape != vb.shape:
            return False, f"shapes {va.shape} and {vb.shape}"
        if singular_part(model, env, base, inverted(a) + inverted(b)) is not None:
            continue  # both forms hold where the matrices they invert are invertible: not here
        if not _finite(va, vb):
            if _finite(va) != _finite(vb):
                return False, "one side is not finite"
            continue
        scale = max(1.0, float(np.max(np.abs(vb))))
        err = float(np.max(np.abs(va - vb))) / scale
        if err > 1e-7 and err * scale > 8 * max(gradient_spread(model, env, base, x) for x in (a, b)):
            return False, f"values differ (rel. err {err:.1e})"  # beyond both trees' rounding (det of a singular X^4)
    return True, ""


def _where_env(r, model: Model) -> dict:
    """The names a printed result may use: its `where` names, then the program's steps (a `where`
    line is printed as the step was written, with the names of earlier steps)."""
    return {**model.step_syms, **{n: e for n, e in r.where}}


def _strip_groups(e: Expr) -> Expr:
    """The tree without `group` nodes (which only mark a program's steps)."""
    done: dict = {}
    for node in walk([e]):
        if isinstance(node, Op):
            args = tuple(done[a] for a in node.args)
            done[node] = args[0] if node.op == "group" else node if args == node.args else Op(node.op, args)
        else:
            done[node] = node
    return done[e]


def _read(text: str, model: Model, names: dict, shape=None):
    """Text typed with the result's symbols declared and its `where` names bound (and, for a
    gradient, its shape expected, as `check` reads claims)."""
    return to_expr(text, parse_syn(text), model.decls, bound=names.get, expect=shape)


def oracle_roundtrip(case: Case, r, model: Model) -> list[Finding]:
    """Printed text (the `where` lines, then each gradient) parses back to an equal tree; if not
    structurally, then at least to an equal value (reported as different classes)."""
    out, names = [], _where_env(r, model)
    items = [(n, t, names[n], False) for n, t in r.where_text]
    items += [(g.name, g.text, g.expr, True) for g in r.gradients.values()]
    for n, text, target, gradient in items:
        lhs = f"d/d{n}" if gradient else n
        try:
            back = _read(text, model, names, target.shape if gradient else None)
        except MatcalcError as err:
            out.append(Finding("wrong", "roundtrip-parse", f"{lhs} = {text}: {err}", type(err).__name__,
                               tag=_short(err)))
            continue
        if _strip_groups(back) == _strip_groups(target):
            continue
        try:
            same, why = _numeric_equal(model, back, target)
        except KeyError as err:
            out.append(Finding("wrong", "roundtrip-undefined", f"{lhs} = {text}: name {err} not defined"))
            continue
        if not same:
            twice = len({w for w, _ in r.where}) < len(r.where)
            tag = f"{'a gradient' if gradient else 'a where line'} reads back to another " \
                  f"{'shape' if 'shape' in why else 'value'}" + (" (a name defined twice in where)" if twice else "")
            out.append(Finding("wrong", "roundtrip-value", f"{lhs} = {text}: {why}", tag=tag))
        elif gradient and len(case.steps) == 1:  # a program's steps are `group` nodes: value only
            out.append(Finding("contract", "roundtrip-tree", f"{lhs} = {text} reads back as {to_text(back)}"))
    return out


def oracle_latex(case: Case, r, model: Model) -> list[Finding]:
    """Every emitted LaTeX gradient (and `where` line) reads back to an equal value."""
    out, names = [], _where_env(r, model)
    items = [(n, t, names[n], names[n].shape) for n, t in r.where_latex]  # as a reader knows it
    items += [(g.name, g.latex, g.expr, g.expr.shape) for g in r.gradients.values()]
    for n, tex, target, shape in items:
        try:
            back = _read(latex_to_text(tex), model, names, shape)
            same, why = _numeric_equal(model, back, target)
        except MatcalcError as err:
            out.append(Finding("wrong", "latex-read", f"{n}: {tex}: {err}", type(err).__name__, tag=_short(err)))
            continue
        except KeyError as err:
            out.append(Finding("wrong", "latex-read", f"{n}: {tex}: name {err} not defined", "KeyError",
                               tag=f"name {err} not defined"))
            continue
        if not same:
            out.append(Finding("wrong", "latex-value", f"{n}: {tex}: {why}", tag=why.split("(")[0]))
    return out


def oracle_simplify(case: Case, r, model: Model) -> list[Finding]:
    """Simplifying a result again changes nothing."""
    from .calculus.simplify import Simplifier
    wrt = {n for n in case.wrt if n not in model.step_syms}
    deps = {n: e for n, e in model.steps if n is not None}
    for n in case.wrt:
        if n in deps:
            wrt |= _step_symbols(deps, n)
    simp, out = Simplifier(frozenset(wrt)), []
    for g in r.gradients.values():
        again = simp(g.expr)
        if again != g.expr:
            out.append(Finding("contract", "simplify-idempotent", f"d/d{g.name} = {g.text} simplifies again to "
                               f"{to_text(again)}", tag="a result simplifies further"))
    return out


def _step_symbols(deps: dict, name: str) -> set[str]:
    """The symbols a step depends on, through earlier steps."""
    out: set[str] = set()
    for s in deps[name].syms:
        out |= _step_symbols(deps, s) if s in deps else {s}
    return out


def oracle_derivation(case: Case, r, model: Model) -> list[Finding]:
    """The last gradient line of the derivation for each wrt name equals the result. Lines of
    a program use the steps and their deltas as symbols: steps take their values, a delta the
    value of the last gradient line of its step (evaluated in derivation order)."""
    lines = r.lines()[0]
    env = model.point()
    with np.errstate(all="ignore"):
        base = model.run(env)
    if not _finite(*base.values()):
        return [Finding("inconclusive", "derivation", "no finite point")]
    steps = [n for n, _ in model.steps[:-1] if n is not None]
    taken, delta = set(r.symbols) | set(steps), {}
    for s in steps:
        delta[s] = delta_name(s, taken)
        taken.add(delta[s])
    known = {k: v for k, v in base.items() if not k.startswith("#")}
    last: dict[str, np.ndarray] = {}
    model.size_dims([ln.expr for ln in lines if ln.stage == "gradient"])
    for ln in lines:
        if ln.stage != "gradient":
            continue
        try:
            with np.errstate(all="ignore"):
                last[ln.lhs] = model.value_of(ln.expr, known)
        except KeyError as err:  # a name we cannot resolve (not a step, symbol or delta<k>)
            return [Finding("inconclusive", "derivation", f"a gradient line uses {err}, which we cannot evaluate")]
        if ln.lhs in delta:
            known[delta[ln.lhs]] = last[ln.lhs]
    out = []
    for n in case.wrt:
        g = eval_grad(model, env, base, r[n].expr)
        want = last.get(n, np.zeros_like(g))
        if want.shape == g.shape and not _finite(g, want):
            out.append(Finding("inconclusive", "derivation", f"d/d{n} is not finite at the point"))
            continue
        scale = max(1.0, float(np.max(np.abs(g))))
        if want.shape != g.shape or not (float(np.max(np.abs(want - g))) <= 1e-7 * scale):
            shown = "has no gradient line (zero)" if n not in last else "ends with another gradient"
            tag = f"for a {'step' if n in model.step_syms else 'symbol'} the derivation {shown}"
            out.append(Finding("wrong", "derivation", f"d/d{n}: the derivation {shown} than the result {r[n].text}",
                               tag=tag))
    return out


def delta_name(name: str, taken: set[str]) -> str:
    """The README's naming of dL/d(step): `a2` -> `delta2`, `y` -> `delta_y` (if not taken)."""
    m = re.fullmatch(r"[A-Za-z]+(_?\d+)", name)
    out = "delta" + m.group(1) if m else "delta_" + name
    return out if out not in taken else "delta_" + name


def oracle_verified(case: Case, fd: dict[str, str], seed: int) -> list[Finding]:
    """grad with the check on: a gradient that fails `fd` must not be reported verified; a
    gradient that passes must not be rejected."""
    try:
        r = grad(case.text, case.wrt, case.let, check=True, seed=seed)
    except CheckError as err:
        bad = [n for n, v in fd.items() if v == "wrong"]
        if bad:  # the check caught the wrong gradient (the fd finding stands)
            return []
        if _no_point(str(err)):
            return [Finding("nopoint", "check-nopoint", _short(err), "CheckError")]
        if fd and all(v == "ok" for v in fd.values()):
            return [Finding("crash", "check-false-alarm", _short(err), "CheckError")]
        return [Finding("inconclusive", "check", _short(err), "CheckError")]
    except DomainError as err:
        return [Finding("nopoint", "check-nopoint", str(err), "DomainError")]
    wrong = [n for n, v in fd.items() if v == "wrong"]
    if wrong and r.check is not None and "verified" in r.check.summary() and "not verified" not in r.check.summary():
        return [Finding("wrong", "VERIFIED-WRONG", f"d/d{', d/d'.join(wrong)} wrong but reported "
                        f"'{r.check.summary()}'")]
    return []


def oracle_verdict(case: Case, r, model: Model, fd: dict[str, str]) -> list[Finding]:
    """`check` says correct for the (fd-confirmed) gradient, wrong for 2G, -G and G'."""
    from .verdicts.verdict import check
    out = []
    for n in [n for n in case.wrt if fd.get(n) == "ok"][:1]:
        g = r[n].expr
        text = to_text(g)
        env = model.point()
        with np.errstate(all="ignore"):
            base = model.run(env)
            val = eval_grad(model, env, base, g)
        claims = [(text, True)]
        big = _finite(val) and float(np.max(np.abs(val))) > 1e-6
        if big:
            claims += [(f"2*({text})", False), (f"-({text})", False)]
        if big and g.shape[0] == g.shape[1] and g.shape != SCALAR and \
                float(np.max(np.abs(val - val.T))) > 1e-6 * max(1.0, float(np.max(np.abs(val)))):
            claims.append((f"({text})'", False))
        for claim, correct in claims:
            try:
                v = check(case.text, n, claim, case.let)
            except MatcalcError as err:
                cls = _error_class(err)
                out.append(Finding(cls, "verdict-error", f"check --wrt {n} --claim {claim!r}: {_short(err)}",
                                   type(err).__name__))
                continue
            if v.correct != correct:
                out.append(Finding("wrong", "verdict", f"check --wrt {n} --claim {claim!r} says {v.verdict}"))
    return out


def oracle_layout(case: Case, r, model: Model) -> list[Finding]:
    """layout="numerator" gives the transpose of each (denominator) gradient."""
    num = grad(case.text, case.wrt, case.let, layout="numerator", check=False)
    out = []
    for n in case.wrt:
        same, why = _numeric_equal(model, num[n].expr, Op("transpose", (r[n].expr,)))
        if not same:
            out.append(Finding("wrong", "layout", f"numerator d/d{n} = {num[n].text} is not the transpose of "
                               f"{r[n].text}: {why}"))
    return out


def oracle_formats(case: Case, r) -> list[Finding]:
    """to_dict(), the text/steps renderings and every CLI format succeed."""
    out = []
    try:
        json.dumps(r.to_dict())
        for fn in (str, lambda x: x.steps_text(), lambda x: x.steps_latex(), lambda x: x.steps_markdown()):
            fn(r)
    except Exception as err:  # noqa: BLE001 (any failure here is a finding)
        out.append(Finding("crash", "formats-api", _short(err), type(err).__name__))
    base = ["grad", case.text] + [a for w in case.wrt for a in ("--wrt", w)] + (["--let", case.let] if case.let else [])
    for extra in (["--format", "json"], ["--format", "latex"], ["--format", "markdown"], ["--steps"],
                  ["--steps", "--format", "latex", "--lang", "zh"]):
        code, stdout, stderr, exc = run_cli(base + extra + ["--no-check"] * (extra[0] != "--format"
                                                                         or extra[1] != "json"))
        if exc is not None or code != 0 or not stdout.strip():
            why = (exc or stderr).strip().splitlines()[-1] if (exc or stderr).strip() else ""
            cls = "nopoint" if _no_point(why) else "crash"
            out.append(Finding(cls, "formats-cli", f"{' '.join(extra)}: exit {code}: {why}"))
        elif "json" in extra:
            try:
                json.loads(stdout)
            except ValueError as err:
                out.append(Finding("crash", "formats-cli", f"--format json is not JSON: {err}"))
    return out


def _short(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return lines[0] if lines else type(err).__name__


# ---- running one generated case -------------------------------------------------------------------

@dataclass
class Options:
    """What to run: timeouts, and which cases get the expensive oracles."""

    timeout: float = 10.0
    full_every: int = 10  # check, derivation, formats, latex on every k-th case
    verdict_every: int = 50  # check() of G, 2G, -G, G' on every k-th case
    seed: int = 0


def run_math(case: Case, index: int, opt: Options) -> Outcome:
    """The gradient oracles on a generated loss or program."""
    full = opt.full_every > 0 and index % opt.full_every == 0
    out = Outcome(index, case.kind, case.repro(), full=full)
    try:
        with time_limit(opt.timeout):
            r = grad(case.text, case.wrt, case.let, check=False)
    except UnsupportedError as err:
        out.findings.append(Finding("unsupported", "grad", _short(err), "UnsupportedError"))
        return out
    except MatcalcError as err:  # a well-formed generated case must get a result
        out.findings.append(Finding(_error_class(err), "grad-rejects", _short(err), type(err).__name__))
        return out
    except Timeout:
        out.findings.append(Finding("hang", "grad", f"over {opt.timeout:g} s"))
        return out
    except Exception as err:  # noqa: BLE001 (a fuzzer reports every exception)
        out.findings.append(Finding("crash", "grad", _where(err), type(err).__name__))
        return out
    try:
        model = _model(case, r, np.random.default_rng([opt.seed, index]))
    except MatcalcError as err:  # a step the engine typed in context that we cannot type alone
        out.findings.append(Finding("inconclusive", "model", _short(err), type(err).__name__))
        return out
    cheap = [("fd", lambda: oracle_fd(case, r, model)), ("roundtrip", lambda: (oracle_roundtrip(case, r, model), None)),
             ("simplify", lambda: (oracle_simplify(case, r, model), None))]
    fd: dict[str, str] = {}
    for name, fn in cheap:
        found, verdicts = _stage(name, fn, opt.timeout)
        out.findings += found
        fd = verdicts if name == "fd" and isinstance(verdicts, dict) else fd
    if full:
        out.findings += _expensive(case, r, model, fd, index, opt)
    return out


def _model(case: Case, r, rng: np.random.Generator) -> Model:
    """The case's model with the result's shapes; if they do not type the text (a symbol that
    folds away gets a shape of its own in the result), with the declared and generated ones."""
    try:
        return Model(case, r.symbols, rng, {n: g.expr.shape for n, g in r.gradients.items()})
    except MatcalcError:
        if not case.shapes:
            raise
        return Model(case, {}, rng)


def _expensive(case: Case, r, model: Model, fd: dict, index: int, opt: Options) -> list[Finding]:
    """The sampled oracles, each under its own time limit."""
    found: list[Finding] = []
    stages = [("check", lambda: oracle_verified(case, fd, opt.seed)),
              ("derivation", lambda: oracle_derivation(case, r, model)),
              ("latex", lambda: oracle_latex(case, r, model)),
              ("layout", lambda: oracle_layout(case, r, model)),
              ("formats", lambda: oracle_formats(case, r))]
    if opt.verdict_every > 0 and index % opt.verdict_every == 0:
        stages.append(("verdict", lambda: oracle_verdict(case, r, model, fd)))
    for name, fn in stages:
        limit = opt.timeout * (3 if name in ("verdict", "formats") else 1)
        found += _stage(name, lambda fn=fn: (fn(), None), limit)[0]
    return found


def _stage(name: str, fn, limit: float) -> tuple[list[Finding], object]:
    """Run one oracle under a time limit: (its findings, its extra result); an exception of the
    code under test inside the oracle is a finding of that oracle."""
    try:
        with time_limit(limit):
            return fn()
    except Timeout:
        return [Finding("hang", name, f"over {limit:g} s")], None
    except UnsupportedError as err:
        return [Finding("unsupported", name, _short(err), "UnsupportedError")], None
    except MatcalcError as err:
        return [Finding(_error_class(err), name, _short(err), type(err).__name__)], None
    except Exception as err:  # noqa: BLE001 (a fuzzer reports every exception)
        return [Finding("crash", name, _where(err), type(err).__name__)], None


def _error_class(err: MatcalcError) -> str:
    """nopoint for a check that found no point to decide at (a DomainError or CheckError), else crash."""
    return "nopoint" if _no_point(str(err)) else "crash"


def _no_point(message: str) -> bool:
    """The tool's documented refusals to decide: no point where the loss and gradient are defined,
    or a gradient 0 to working precision wherever sampled (G and 2*G alike there: "cannot decide")."""
    return "could not find a point" in message or "cannot decide" in message


def _where(err: BaseException) -> str:
    """The message and the innermost matcalc frame of an unexpected exception."""
    frames = [f for f in traceback.extract_tb(err.__traceback__) if "matcalc" in f.filename]
    at = f" (at {os.path.basename(frames[-1].filename)}:{frames[-1].lineno} {frames[-1].name})" if frames else ""
    return f"{_short(err)[:120]}{at}"


# ---- the input fuzzer -----------------------------------------------------------------------------

def special_inputs() -> list[tuple[str, list[str], str, str]]:
    """Extreme and malformed inputs: (text, wrt, let, label for the repro or '')."""
    P = "(" * 500 + "a" + ")" * 500
    E = "exp(" * 100 + "a" + ")" * 100
    M = "tr(" + "A*(" * 40 + "A" + ")" * 40 + ")"
    return [
        (P, ["a"], "", "'(' * 500 + 'a' + ')' * 500"),
        (E, ["a"], "", "'exp(' * 100 + 'a' + ')' * 100"),
        (M, ["A"], "", "'tr(' + 'A*(' * 40 + 'A' + ')' * 40 + ')'"),
        ("-" * 3000 + "a", ["a"], "", "'-' * 3000 + 'a'"),
        ("x'*x + " * 3000 + "a", ["x"], "", "\"x'*x + \" * 3000 + 'a'"),
        ("a^1e999999", ["a"], "", ""), ("1e999999*a", ["a"], "", ""), ("x'*x*1e308*1e308", ["x"], "", ""),
        ("2^2^2^2^2^2*a", ["a"], "", ""), ("tr(X^100000000000000000000)", ["X"], "", ""),
        ("tr(X^-1000)", ["X"], "", ""), ("tr(X^1000)", ["X"], "", ""), ("a^0.0000000000000000001", ["a"], "", ""),
        ("sum(x.^1e300)", ["x"], "", ""), ("a*" + "9" * 400, ["a"], "", ""),
        ("", ["x"], "", ""), ("   ", ["x"], "", ""), ("x'*x", [""], "", ""), ("x'*x", [], "", ""),
        ("x'*x", ["x,A"], "", ""), ("tr(W1*X)", ["w1"], "", ""), ("tr(AX)", ["A"], "", ""),
        ("x'*A*x", ["x"], "X: n x m symmetric", ""), ("x'*x", ["x"], "x: 0", ""),
        ("x'*A*x", ["A"], "A: symetric", ""), ("x'*x", ["x"], "x: -1", ""), ("x'*x", ["x"], "x: 1000000 x 1000000", ""),
        ("tr(A)", ["A"], "A: 100000000000 x 100000000000", ""), ("x'*x", ["x"], "x: n x", ""),
        ("x'*x", ["x"], "x: n; x: m", ""), ("x'*x", ["x"], ":", ""), ("x'*x", ["x"], "x", ""),
        ("a; L = sum(x)", ["x"], "", ""), ("x; y; L = sum(x)", ["x"], "", ""), ("L = ", ["x"], "", ""),
        ("= x", ["x"], "", ""), ("a = x; a = 2*x; L = sum(a)", ["x"], "", ""), ("L = sum(L)", ["L"], "", ""),
        ("x = 2*x; L = sum(x)", ["x"], "", ""), ("s = x; L = sum(s)", ["s", "s"], "", ""),
        ("foo(x)", ["x"], "", ""), ("tr()", ["x"], "", ""), ("tr(A, B)", ["A"], "", ""), ("eye(0)", ["a"], "", ""),
        ("sum(ones(-1))", ["a"], "", ""), ("sum(zeros(m,n,p))", ["a"], "", ""), ("sum([1,2;3])*a", ["a"], "", ""),
        ("x(1)", ["x"], "", ""), ("d(X)", ["X"], "", ""), ("tr(dX)", ["X"], "", ""), ("x'*x\x00", ["x"], "", ""),
        ("x'*x\udcff", ["x"], "", ""), ("α*x'*x", ["x"], "", ""), ("x'*x", ["α"], "", ""),
        ("x'\u200b*x", ["x"], "", ""),
        ("log(-1)*a", ["a"], "", ""), ("log(0*a)", ["a"], "", ""), ("sqrt(-a^2 - 1)", ["a"], "", ""),
        ("logdet(-eye(n))*a", ["a"], "", ""), ("det(X - X)", ["X"], "", ""), ("tr(inv(zeros(n,n)))*a", ["a"], "", ""),
        ("a/0", ["a"], "", ""), ("0^-1*a", ["a"], "", ""), ("x./x", ["x"], "", ""), ("sum(x)/0", ["x"], "", ""),
        ("x*x", ["x"], "", ""), ("A", ["A"], "", ""), ("x", ["x"], "", ""), ("tr(X)", ["X"], "X: 3 x 4", ""),
        ("sum(x)", ["x"], "x: 1 x 1", ""), ("sum(X)", ["X"], "X: 1 x n", ""), ("a", ["a"], "a: n", ""),
        ("#", ["x"], "", ""), ("x'*x # comment", ["x"], "", ""), ("\n\n", ["x"], "", ""), (";", ["x"], "", ""),
        ("tr(A*X*B)", ["X"], "A: n x m; A: m x n", ""), ("tr(X)", ["X"], "X: n x n spd symmetric diagonal", ""),
        ("lam*norm2(U)^2", ["U"], "", ""), ("sum(X)/m", ["X"], "", ""), ("sum(X)/n", ["X"], "X: n x n", ""),
        ("group(x)'*x", ["x"], "", ""), ("step(a)", ["a"], "", ""), ("[a, b; c, d]", ["a"], "", ""),
    ]


SYNTAX = "+-*/.^'()[];,=@ xyzAXWabc0123456789eE"


def mutate(text: str, rng: random.Random) -> str:
    """Insert, delete, swap, duplicate or replace characters or names in `text`."""
    s = list(text)
    for _ in range(rng.randint(1, 3)):
        op = rng.choice(["insert", "delete", "swap", "dup", "name", "wrap"])
        i = rng.randrange(len(s) + 1)
        if op == "insert":
            s.insert(i, rng.choice(SYNTAX + "\t\n#$%!?{}<>\\\"é\x00"))
        elif op == "delete" and s:
            del s[min(i, len(s) - 1)]
        elif op == "swap" and len(s) > 1:
            j = min(i, len(s) - 2)
            s[j], s[j + 1] = s[j + 1], s[j]
        elif op == "dup" and s:
            j = rng.randrange(len(s))
            s[i:i] = s[j:j + rng.randint(1, 8)]
        elif op == "name":
            s[i:i] = list(rng.choice(["foo", "tr", "inv", "X", "x", "eye", "ones(", "d", "delta1", "L", "9e9"]))
        else:
            f = rng.choice(sorted(op.parse_name for op in OPS.values() if op.parse_name))
            s = [*f, "(", *s, ")"]
    return "".join(s)


def input_case(rng: random.Random) -> Case:
    """A malformed, extreme or mutated input (text, wrt, declarations)."""
    r = rng.random()
    specials = special_inputs()
    if r < 0.1:
        text, wrt, let, label = rng.choice(specials)
        return Case("input", text, wrt, let, label=label)
    base = Gen(rng).loss() if rng.random() < 0.6 else Gen(rng).program()
    if r < 0.65:
        return Case("input", mutate(base.text, rng), base.wrt, base.let)
    if r < 0.8:
        return Case("input", base.text, base.wrt, mutate(base.let, rng) if base.let else "x: 0")
    if r < 0.9:
        wrt = [mutate(w, rng) if rng.random() < 0.5 else w.lower() for w in base.wrt]
        return Case("input", base.text, wrt, base.let)
    junk = "".join(rng.choice(SYNTAX + "\n;=#") for _ in range(rng.randint(0, 40)))
    return Case("input", junk, rng.choice([["x"], ["A"], ["a", "x"]]), "")


def _words(text: str) -> set[str]:
    return set(re.findall(r"[A-Za-z][A-Za-z0-9_]*", text))


def _declared(let: str) -> set[str]:
    """Names declared in `let` (read leniently: a malformed declaration declares nothing)."""
    try:
        return set(parse_decls(let)) if let.strip() else set()
    except MatcalcError:
        return set()


_SEEN: dict[tuple, list[Finding]] = {}  # input cases already run in this process (the specials recur)


def run_input(case: Case, index: int, opt: Options) -> Outcome:
    """Contract: a Result or a MatcalcError, within the time limit; grad checked on sampled cases.
    An input already run in this process is not run again: it gets the same findings."""
    out = Outcome(index, case.kind, case.repro())
    check = opt.full_every > 0 and index % opt.full_every == 0
    out.full = check
    key = (case.text, tuple(case.wrt), case.let, check, opt.timeout)
    if key in _SEEN:
        out.findings = list(_SEEN[key])
        return out
    try:
        with time_limit(opt.timeout):
            r = grad(case.text, case.wrt, case.let, check=check)
            str(r)
        names = [n.strip() for w in case.wrt for n in w.split(",")]  # `--wrt "A "` and `W1,W2` as the API reads them
        typos = [w for w in names if w not in _words(case.text) and w not in _declared(case.let)]
        if typos:  # the issue: a --wrt name absent from the loss and not declared is an error
            out.findings.append(Finding("wrong", "typo-silent-zero", f"--wrt {typos[0]}: a zero gradient for a "
                                        f"name that is neither in the loss nor declared", tag="typo gives a zero"))
    except Timeout:
        out.findings.append(Finding("hang", "input", f"over {opt.timeout:g} s"))
    except MatcalcError:
        pass
    except BaseException as err:  # RecursionError, MemoryError, ValueError, ...
        if isinstance(err, KeyboardInterrupt):
            raise
        out.findings.append(Finding("crash", "input", _where(err), type(err).__name__))
    _SEEN[key] = list(out.findings)
    return out


# ---- the CLI fuzzer -------------------------------------------------------------------------------

def run_cli(argv: list[str], stdin: str = "") -> tuple[int, str, str, str | None]:
    """matcalc.cli.main(argv) in-process: (exit code, stdout, stderr, traceback or None)."""
    out, err = _stream(), _stream()
    old_in = sys.stdin
    sys.stdin = io.TextIOWrapper(io.BytesIO(stdin.encode("utf-8", "surrogateescape")), encoding="utf-8")
    exc = None
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = cli.main(list(argv))
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 2)
    except Timeout:
        raise
    except BaseException as e:  # noqa: BLE001 (a traceback escaped the CLI)
        code, exc = 1, f"{type(e).__name__}: {_where(e)}"
    finally:
        sys.stdin = old_in
    return code, _text(out), _text(err), exc


def _stream() -> io.TextIOWrapper:
    """A text stream with a binary buffer underneath, like sys.stdout."""
    return io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="replace", write_through=True)


def _text(stream: io.TextIOWrapper) -> str:
    stream.flush()
    buffer = stream.buffer
    assert isinstance(buffer, io.BytesIO)
    return buffer.getvalue().decode("utf-8", "replace")


_FILES: dict[str, str] = {}


def _file(kind: str) -> str:
    """Paths of small files for --program, --chain, --file and notes (made once per process)."""
    if not _FILES:
        d = tempfile.mkdtemp(prefix="matcalc-fuzz-")
        for name, data in {"prog": b"a1 = W1*x\nh1 = tanh(a1)\nL = sum(h1)\n", "latin1": b"L = sum(x) # \xe9\xff\xfe\n",
                           "empty": b"", "note": b"# note\n```matcalc\nloss: x'*x\nwrt: x\n```\n",
                           "chain": b"df = d(tr(A*X))\n   = tr(A*dX)\n", "bin": bytes(range(256)),
                           "claims": b"[[claim]]\nloss = \"x'*x\"\nwrt = \"x\"\nclaim = \"2*x\"\n"}.items():
            with open(os.path.join(d, name), "wb") as fh:
                fh.write(data)
            _FILES[name] = os.path.join(d, name)
        _FILES["missing"] = os.path.join(d, "missing")
        _FILES["dir"] = d
    return _FILES[kind]


def cli_case(rng: random.Random) -> Case:
    """A command line: grad/check/notes with valid, mutated or odd arguments and files."""
    base = Gen(rng).loss() if rng.random() < 0.5 else Gen(rng).program()
    wrt = [a for w in base.wrt for a in ("--wrt", w)]
    let = ["--let", base.let] if base.let else []
    r = rng.random()
    if r < 0.35:
        opts = rng.sample([["--format", rng.choice(["text", "latex", "markdown", "json", "xml"])], ["--steps"],
                           ["--lang", rng.choice(["zh", "en", "fr"])], ["--cite"], ["--transpose", "top"],
                           ["--layout", rng.choice(["numerator", "denominator"])], ["--no-check"],
                           ["--seed", rng.choice(["3", "-1", "abc"])]], rng.randint(0, 3))
        argv = ["grad", base.text, *wrt, *let, *[a for o in opts for a in o]]
        if "--no-check" not in argv and rng.random() < 0.7:
            argv.append("--no-check")
    elif r < 0.55:
        claim = rng.choice([f"2*{base.wrt[0]}", "2*B*x", "0", mutate(base.wrt[0], rng), "W_2^T \\delta_2",
                            "d(X)", "dX", "[1, 2; 3, 4]", ""])
        argv = ["check", base.text, "--wrt", base.wrt[0], "--claim", claim, *let]
        if rng.random() < 0.3:
            argv += ["--format", "json"]
    elif r < 0.65:
        argv = ["check", base.text, "--claim-differential", rng.choice(["df = 0", "df = tr(dX)", "dL = x", "junk ="])]
    elif r < 0.8:
        f = rng.choice(["prog", "latin1", "empty", "missing", "dir", "bin", "-"])
        argv = ["grad", "--program", f if f == "-" else _file(f), "--wrt", rng.choice(["W1", "x", "h1"]), "--no-check"]
        return Case("cli", "", [], argv=argv, stdin=rng.choice(["L = sum(x)", "", "\xff"]))
    elif r < 0.9:
        argv = rng.choice([["check", "tr(A*X)", "--chain", _file(rng.choice(["chain", "latin1", "missing", "bin"]))],
                           ["check", "--file", _file(rng.choice(["claims", "latin1", "missing", "empty"]))],
                           ["notes", _file(rng.choice(["note", "latin1", "missing", "bin", "dir"]))]])
    else:
        argv = rng.choice([[], ["grad"], ["grad", "x'*x"], ["frobnicate"], ["grad", "x'*x", "--wrt"],
                           ["grad", "--wrt", "x"], ["check", "x'*x"], ["grad", "x'*x", "--wrt", "x", "extra"],
                           ["grad", mutate(base.text, rng), *wrt, "--no-check"], ["grad", "-", "--wrt", "x"]])
    return Case("cli", "", [], argv=argv)


def run_cli_case(case: Case, index: int, opt: Options) -> Outcome:
    """Contract: exit 0 (or 1 for a wrong claim) with output, or 2 with one `matcalc:` line on
    stderr (a parse error may add its two caret lines); no traceback; within the time limit."""
    out = Outcome(index, case.kind, case.repro())
    try:
        with time_limit(opt.timeout * 2):
            code, stdout, stderr, exc = run_cli(case.argv or [], case.stdin)
    except Timeout:
        out.findings.append(Finding("hang", "cli", f"over {2 * opt.timeout:g} s"))
        return out
    lines = stderr.strip().splitlines()
    if exc is not None:
        out.findings.append(Finding("crash", "cli-traceback", exc.split(": ", 1)[1], exc.split(":")[0]))
    elif code in (0, 1):
        if not stdout.strip():
            out.findings.append(Finding("crash", "cli-no-output", f"exit {code} with no output"))
        if code == 1 and (case.argv or [""])[0] != "check":
            out.findings.append(Finding("crash", "cli-exit-1", "exit 1 outside `check`"))
    elif code == 2:
        if lines and lines[0].startswith("usage:"):
            out.findings.append(Finding("contract", "cli-usage", f"argparse usage error: {lines[-1]}"))
        elif not lines or not lines[0].startswith("matcalc:"):
            out.findings.append(Finding("crash", "cli-stderr", f"exit 2, stderr {stderr[:80]!r}"))
        elif len(lines) > 1 and not (len(lines) == 3 and lines[2].strip() == "^"):
            out.findings.append(Finding("contract", "cli-multiline", f"{len(lines)} lines on stderr: {lines[0][:80]}"))
    else:
        out.findings.append(Finding("crash", "cli-exit", f"exit code {code}"))
    return out


# ---- campaigns --------------------------------------------------------------------------------------

def case_for(seed: int, index: int, kinds: tuple[str, ...]) -> Case:
    """The index-th case of a campaign: a pure function of (seed, index, kinds)."""
    rng = random.Random(f"matcalc-fuzz:{seed}:{index}")
    kind = rng.choices(kinds, [WEIGHTS[k] for k in kinds])[0]
    return generate(kind, rng)


def run_case(case: Case, index: int, opt: Options) -> Outcome:
    """Run one case with the oracles of its kind; our own bugs are reported, never hidden."""
    limit = sys.getrecursionlimit()
    t0 = time.perf_counter()
    try:
        fn = {"input": run_input, "cli": run_cli_case}.get(case.kind, run_math)
        out = fn(case, index, opt)
    except Timeout:
        out = Outcome(index, case.kind, case.repro(), [Finding("hang", "harness", "timeout outside an oracle")])
    except Exception as err:  # noqa: BLE001 (a bug of the harness itself: shown as such)
        out = Outcome(index, case.kind, case.repro(), [Finding("crash", "HARNESS", _where(err), type(err).__name__)])
    if sys.getrecursionlimit() != limit:  # reported once per process (the change stays)
        out.findings.append(Finding("contract", "global-state", f"sys.setrecursionlimit changed "
                                    f"{limit} -> {sys.getrecursionlimit()} by a library call"))
    out.seconds = time.perf_counter() - t0
    return out


def run_range(seed: int, indices: list[int], kinds: tuple[str, ...], opt: Options) -> list[Outcome]:
    """Run the cases with these indices (a worker's unit of work)."""
    return [run_case(case_for(seed, i, kinds), i, opt) for i in indices]


def groups(outcomes: list[Outcome]) -> dict[tuple, list[tuple[Outcome, Finding]]]:
    """Findings grouped by (class, oracle, message shape), worst class first."""
    out: dict[tuple, list] = {}
    for o in outcomes:
        seen = set()
        for f in o.findings:
            if f.cls == "ok" or f.key() in seen:
                continue
            seen.add(f.key())
            out.setdefault(f.key(), []).append((o, f))
    return dict(sorted(out.items(), key=lambda kv: (CLASSES.index(kv[0][0]), -len(kv[1]))))


def report(outcomes: list[Outcome], seconds: float, examples: int = 3, show: tuple = CLASSES[:-2]) -> list[str]:
    """The campaign's text report; its last four lines are the summary."""
    lines = []
    kinds = sorted({o.kind for o in outcomes}, key=KINDS.index)
    lines.append("class        " + "".join(f"{k:>9}" for k in kinds) + "    total")
    for c in CLASSES:
        row = [sum(1 for o in outcomes if o.kind == k and o.cls == c) for k in kinds]
        lines.append(f"{c:12} " + "".join(f"{n:9d}" for n in row) + f"{sum(row):9d}")
    lines.append("")
    for key, items in groups(outcomes).items():
        if key[0] not in show:
            continue
        lines.append(f"[{key[0]}] {key[1]}: {key[2]}  ({len(items)} cases)")
        shown: list[str] = []
        for o, f in sorted(items, key=lambda it: len(it[0].repro)):
            if len(shown) == examples:
                break
            if o.repro not in shown:
                shown.append(o.repro)
                lines.append(f"    {o.repro}")
                lines.append(f"      -> {f.message[:300]}")
    full = [o for o in outcomes if o.full]
    cheap = [o for o in outcomes if not o.full]
    n = len(outcomes)
    by_oracle: dict[str, int] = {}
    for o in outcomes:
        for cls, oracle in {(f.cls, f.oracle) for f in o.findings}:
            by_oracle[f"{cls}/{oracle}"] = by_oracle.get(f"{cls}/{oracle}", 0) + 1
    unsup: dict[str, int] = {}
    for o in outcomes:
        if o.cls == "unsupported":
            unsup[o.kind] = unsup.get(o.kind, 0) + 1
    lines.append("")
    lines.append(f"time {seconds:.1f} s  rate {n / seconds if seconds else 0:.1f} cases/s  "
                 f"cheap {_mean(cheap) * 1e3:.0f} ms/case  full {_mean(full) * 1e3:.0f} ms/case ({len(full)} full)")
    lines.append("findings by class/oracle: " + (", ".join(f"{k} {v}" for k, v in sorted(by_oracle.items())) or "none"))
    lines.append("unsupported by kind: " + (", ".join(f"{k} {v}" for k, v in unsup.items()) or "none"))
    counts = {c: sum(1 for o in outcomes if o.cls == c) for c in CLASSES}
    lines.append(f"cases {n}  " + "  ".join(f"{c} {counts[c]}" for c in
                                           ("ok", "wrong", "crash", "hang", "unsupported", "nopoint", "contract",
                                            "inconclusive")))
    return lines


def markdown(outcomes: list[Outcome], title: str, examples: int = 2) -> str:
    """The grouped findings as Markdown: a table of classes, then each group with its count,
    oracle and shortest reproducers."""
    counts = {c: sum(1 for o in outcomes if o.cls == c) for c in CLASSES}
    out = [f"## {title}", "", "| " + " | ".join(CLASSES) + " |", "|" + "---|" * len(CLASSES),
           "| " + " | ".join(str(counts[c]) for c in CLASSES) + " |", ""]
    for (cls, oracle, what), items in groups(outcomes).items():
        if cls in ("ok", "inconclusive"):
            continue
        out.append(f"- **{cls}** `{oracle}` ({len(items)} cases): {what.replace('|', '/')}")
        shown: list[str] = []
        for o, f in sorted(items, key=lambda it: len(it[0].repro)):
            if len(shown) < examples and o.repro not in shown:
                shown.append(o.repro)
                msg = f.message.strip().splitlines()[0][:200] if f.message.strip() else ""
                out.append(f"  - `{o.repro}`  \n    → {msg}")
    return "\n".join(out) + "\n"


def _mean(outcomes: list[Outcome]) -> float:
    return sum(o.seconds for o in outcomes) / len(outcomes) if outcomes else 0.0


def campaign(n: int, seed: int = 0, kinds: tuple[str, ...] = KINDS, opt: Options | None = None,
             jobs: int = 1, chunk: int = 25, subprocess: bool = True, progress=None) -> list[Outcome]:
    """Run cases 0..n-1. With subprocess (the default for long runs) the work is done by a pool
    of `jobs` processes, so that a crash of the interpreter itself (a segfault in deep recursion)
    is one finding, not the end of the campaign."""
    opt = opt or Options(seed=seed)
    chunks = [list(range(i, min(i + chunk, n))) for i in range(0, n, chunk)]
    if subprocess:
        return _in_pool(chunks, seed, kinds, opt, jobs, progress)
    outs: list[Outcome] = []
    for c in chunks:
        outs += run_range(seed, c, kinds, opt)
        if progress:
            progress(len(outs))
    return outs


def _in_pool(chunks: list[list[int]], seed: int, kinds: tuple[str, ...], opt: Options, jobs: int,
             progress) -> list[Outcome]:
    """The chunks run by worker processes (memory capped); the chunks of a worker that died are
    run again one case per process."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool
    outs: list[Outcome] = []
    todo = list(chunks)
    while todo:
        with ProcessPoolExecutor(jobs, mp_context=mp.get_context("fork"), initializer=limit_memory,
                                 initargs=(3.0,)) as pool:
            futures = [(c, pool.submit(run_range, seed, c, kinds, opt)) for c in todo]
            todo = []
            for c, fut in futures:
                try:
                    outs += fut.result()
                except BrokenProcessPool:
                    todo.append(c)
                if progress:
                    progress(len(outs))
        if todo:  # rerun a lost chunk one case per process, to name the case that kills it
            outs += _isolate(todo[0], seed, kinds, opt)
            todo = todo[1:]
    return sorted(outs, key=lambda o: o.index)


def _isolate(indices: list[int], seed: int, kinds: tuple[str, ...], opt: Options) -> list[Outcome]:
    """Run each case in its own process; a case whose process dies is a crash."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool
    outs = []
    for i in indices:
        with ProcessPoolExecutor(1, mp_context=mp.get_context("fork")) as pool:
            try:
                outs += pool.submit(run_range, seed, [i], kinds, opt).result()
            except BrokenProcessPool:
                case = case_for(seed, i, kinds)
                outs.append(Outcome(i, case.kind, case.repro(),
                                    [Finding("crash", "process-died", "the interpreter died (segfault?)")]))
    return outs
