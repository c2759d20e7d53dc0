"""Derivation benchmark: how fast matcalc derives, and how the result grows with depth.

    python benchmarks/derive.py            # full run
    python benchmarks/derive.py --quick    # fewer repeats, MLP and program up to L=16
    python benchmarks/derive.py --show     # also print the L=4 program's result in full

Prints numbers only; it asserts nothing about time. Three parts:

(a) the catalogue: every case of tests/test_cookbook.py's CASES when that file exists (else a
    built-in list of classic cases). For each: the median time of `grad(..., check=False)` and the
    time the checks add (median of `grad(..., check=True)` minus the derivation, with SymPy's
    cache cleared before each run so that repeats cost what a first call costs).
(b) the MLP family: loss 0.5*norm2(W_L*tanh(...tanh(W_1*x)) - y)^2, gradient with respect to
    every W_k, for L = 1, 2, 4, ..., 64: derivation time, result size in distinct nodes (dag_size
    over gradients and `where` subexpressions) and in printed characters, and both per layer,
    which stay flat when growth is linear.
(c) the program family: an L-layer network with biases written as a program of steps,
    z1 = W1*x + b1; h1 = tanh(z1); ...; zL = WL*h{L-1} + bL; L = -y'*log(softmax(zL)),
    hidden activation tanh or sigmoid (--activation), gradient with respect to every W_k and b_k,
    for L = 1, 2, 4, ..., 64: the same columns as (b), plus the peak memory of the derivation
    (peak of its Python allocations by tracemalloc, in a fresh subprocess per depth) with its growth
    exponent, the same memory at L = 128, 256, 512 (input limits raised in that subprocess: an
    L=512 program is longer than a program may be), and the size of the L=4 result printed in
    full (print(r)); --show prints it.
(d) check times: what the default checks (numeric + SymPy elementwise) add, over the catalogue,
    the program family at L = 2, 4, 8, 16 (with the growth of check time against the loss size
    in nodes) and declared integer sizes up to 16 x 16; median, p95 and max against the targets
    (p95 under 1 s, max under 3 s).
"""
from __future__ import annotations

import argparse
import gc
import importlib.util
import math
import re
import statistics
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))

from sympy.core.cache import clear_cache  # noqa: E402

import matcalc  # noqa: E402
from matcalc.present.share import dag_size  # noqa: E402

TARGET_CASE_MS = 5.0  # median derivation per catalogue case
TARGET_MLP64_S = 1.0  # MLP with L=64

# (name, loss, wrt, let) -- used when tests/test_cookbook.py has no CASES
BUILTIN_CASES = [
    ("trace AXB", "tr(A*X*B)", ["X"], ""),
    ("quadratic form", "x'*A*x", ["x"], "x: n"),
    ("log det", "log(det(X))", ["X"], "X: n x n"),
    ("det", "det(X)", ["X"], "X: n x n"),
    ("bilinear inverse", "a'*inv(X)*b", ["X"], "a, b: n"),
    ("least squares", "norm2(X*w - y)^2", ["w"], "X: m x n; w: n; y: m"),
    ("ridge", "norm2(X*w - y)^2 + lam*w'*w", ["w"], "X: m x n; w: n; y: m; lam: scalar"),
    ("trace X'BX", "tr(X'*B*X)", ["X"], "B: n x n; X: n x m"),
    ("sum exp", "sum(exp(x))", ["x"], "x: n"),
    ("trace inverse", "tr(inv(X))", ["X"], "X: n x n"),
    ("trace AXBX'", "tr(A*X*B*X')", ["X"], "A: n x n; B: m x m; X: n x m"),
    ("Frobenius", "norm2(X - A)^2", ["X"], "X, A: n x m"),
    ("logistic", "sum(log(1 + exp(-y .* (X*w))))", ["w"], "X: m x n; w: n; y: m"),
    ("one layer", "0.5*norm2(W*tanh(V*x) - y)^2", ["W", "V"], "W: n x h; V: h x m; x: m; y: n"),
    ("matrix factorization", "norm2(U*V' - M)^2", ["U", "V"], "U: m x k; V: n x k; M: m x n"),
]



def result_size(r: matcalc.Result) -> tuple[int, int]:
    """(distinct nodes, printed characters) of all gradients and their `where` definitions."""
    exprs = [g.expr for g in r.gradients.values()] + [e for _, e in r.where]
    chars = sum(len(g.text) for g in r.gradients.values()) + sum(len(w) for _, w in r.where_text)
    return dag_size(exprs), chars


def growth_summary(rows: list[tuple[int, float, int, int]]) -> None:
    """The growth exponent between the two largest depths (1 linear, 2 quadratic), the L=64 target."""
    if len(rows) >= 2:
        (l1, t1, n1, c1), (l2, t2, n2, c2) = rows[-2], rows[-1]
        k = math.log(l2 / l1)
        print(f"    growth exponent L={l1}->{l2} (1 = linear, 2 = quadratic): time {math.log(t2 / t1) / k:.2f}, "
              f"nodes {math.log(n2 / n1) / k:.2f}, chars {math.log(c2 / c1) / k:.2f}")
    big = [row for row in rows if row[0] == 64]
    if big:
        print(f"    target: L=64 under {TARGET_MLP64_S:g} s -> {big[0][1]:.3f} s, "
              f"{'met' if big[0][1] < TARGET_MLP64_S else 'NOT met'}")

# ---------------------------------------------------------------- catalogue


_NAMES = re.compile(r"^\s*[A-Za-z_]\w*(\s*,\s*[A-Za-z_]\w*)*\s*$")


def _wrt_like(x) -> bool:
    if isinstance(x, str):
        return bool(_NAMES.match(x))
    return isinstance(x, (list, tuple)) and bool(x) and all(isinstance(n, str) and _NAMES.match(n) for n in x)


def _as_case(i: int, c) -> tuple[str, str, list[str], str] | None:
    """(name, loss, wrt, let) from one entry of a CASES table, whatever its shape."""
    name = None
    if hasattr(c, "values") and hasattr(c, "id") and not isinstance(c, dict):  # pytest.param
        name, c = c.id, c.values
        c = c[0] if len(c) == 1 else c
    if hasattr(c, "_asdict"):  # a NamedTuple such as test_cookbook's Case
        c = c._asdict()
    if isinstance(c, dict) or hasattr(c, "__dict__") and not isinstance(c, (tuple, list, str)):
        d = c if isinstance(c, dict) else vars(c)
        get = lambda *keys: next((d[k] for k in keys if k in d), None)  # noqa: E731
        loss = get("loss", "expr", "text", "f", "source")
        wrt = get("wrt", "vars", "variables")
        let = get("let", "decls", "declarations", "shapes") or ""
        name = name or get("name", "id", "title")
        if name is None and d.get("eq") is not None and isinstance(loss, str):  # a Cookbook equation
            w = wrt if isinstance(wrt, str) else ",".join(wrt or ())
            name = f"({d['eq']}) {loss} wrt {w}"
    elif isinstance(c, (tuple, list)) and len(c) >= 2:
        # (loss, wrt, let, ...) or (name, loss, wrt, let, ...): wrt is the first field after
        # position 0 that is a list of names or a string of comma-separated names
        k = next((k for k in range(1, len(c)) if _wrt_like(c[k])), None)
        if k is None:
            return None
        loss, wrt = c[k - 1], c[k]
        name = name or (c[k - 2] if k >= 2 and isinstance(c[k - 2], str) else None)
        let = next((x for x in c[k + 1:] if isinstance(x, str) and ":" in x), "")
    else:
        return None
    if isinstance(wrt, str):
        wrt = [w.strip() for w in wrt.replace(";", ",").split(",") if w.strip()]
    if not isinstance(loss, str) or not wrt:
        return None
    return (str(name) if name else f"case {i + 1}", loss, list(wrt), let if isinstance(let, str) else "")


def load_catalogue() -> tuple[str, list[tuple[str, str, list[str], str]]]:
    path = ROOT / "tests" / "test_cookbook.py"
    if not path.exists():
        return "built-in list (tests/test_cookbook.py not found)", BUILTIN_CASES
    try:
        spec = importlib.util.spec_from_file_location("_cookbook_cases", path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        raw = mod.CASES
    except Exception as err:  # noqa: BLE001 -- a benchmark falls back, it does not fail
        return (f"built-in list (could not load tests/test_cookbook.py CASES: {type(err).__name__}: {err})",
                BUILTIN_CASES)
    items = raw.items() if isinstance(raw, dict) else enumerate(raw)
    cases = []
    for key, c in items:
        case = _as_case(len(cases), c)
        if case is None:
            continue
        if isinstance(key, str):  # CASES = {"name": case, ...}
            case = (key, *case[1:])
        cases.append(case)
    if not cases:
        return "built-in list (tests/test_cookbook.py CASES had no usable entries)", BUILTIN_CASES
    return f"tests/test_cookbook.py CASES ({len(cases)} cases)", cases


def median_time(fn, repeats: int, setup=None) -> float:
    times = []
    for _ in range(repeats):
        if setup is not None:
            setup()
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def bench_catalogue(repeats: int, check_repeats: int) -> list[float]:
    source, cases = load_catalogue()
    print(f"(a) catalogue: {source}")
    print(f"    derivation: median of {repeats} runs of grad(..., check=False); "
          f"check: median of {check_repeats} runs of grad(..., check=True) minus the derivation, "
          "SymPy's cache cleared before each")
    width = min(50, max(len(n) for n, *_ in cases))
    head = f"    {'case':<{width}}  {'derive ms':>9}  {'check ms':>9}  {'target':>6}  gradient"
    print(head)
    print("    " + "-" * (len(head) - 4 + 20))
    derive = []
    for name, loss, wrt, let in cases:
        label = name if len(name) <= width else name[: width - 1] + "~"
        try:
            r = matcalc.grad(loss, wrt=wrt, let=let, check=False)
            gc.collect()  # the previous case's check leaves garbage behind
            d = median_time(partial(matcalc.grad, loss, wrt=wrt, let=let, check=False), repeats)
        except Exception as err:  # noqa: BLE001 -- report and go on
            print(f"    {label:<{width}}  {'error':>9}  {'':>9}  {'':>6}  {type(err).__name__}: {err}")
            continue
        try:  # exactly what check=True adds: grad(check=True) minus grad(check=False)
            c = median_time(partial(matcalc.grad, loss, wrt=wrt, let=let, check=True), check_repeats,
                            setup=clear_cache) - d
            check = f"{c * 1e3:9.1f}"
        except Exception as err:  # noqa: BLE001
            check = f"{'fail':>9}"
            print(f"    ! check of {name!r} raised {type(err).__name__}: {str(err)[:200]}")
        derive.append(d)
        ok = "ok" if d * 1e3 < TARGET_CASE_MS else "SLOW"
        text = "; ".join(f"{n}: {g.text}" for n, g in r.gradients.items())
        shown = text[:60] + ('...' if len(text) > 60 else '')
        print(f"    {label:<{width}}  {d * 1e3:9.2f}  {check}  {ok:>6}  {shown}")
    if derive:
        med = statistics.median(derive)
        print(f"    median over {len(derive)} cases: {med * 1e3:.2f} ms, max {max(derive) * 1e3:.2f} ms "
              f"(target: median under {TARGET_CASE_MS:g} ms per case -> "
              f"{'met' if med * 1e3 < TARGET_CASE_MS else 'NOT met'}; "
              f"{sum(d * 1e3 < TARGET_CASE_MS for d in derive)}/{len(derive)} cases under it)")
    return derive


# ---------------------------------------------------------------- MLP family


def mlp(L: int, shapes: str = "square") -> tuple[str, list[str], str]:
    """0.5*norm2(W_L*tanh(W_{L-1}*...tanh(W_1*x)) - y)^2 with its wrt list and declarations.

    square: every W_k is n x n. alternate: layer widths alternate n, m, n, m, ... so that
    W_k is d_k x d_{k-1} with d_0 = n (x: n) and y: d_L."""
    s = "x"
    for k in range(1, L):
        s = f"tanh(W_{k}*{s})"
    loss = f"0.5*norm2(W_{L}*{s} - y)^2"
    wrt = [f"W_{k}" for k in range(1, L + 1)]
    if shapes == "square":
        let = ", ".join(wrt) + ": n x n; x, y: n"
    else:
        dim = lambda k: "n" if k % 2 == 0 else "m"  # noqa: E731
        let = "; ".join(f"W_{k}: {dim(k)} x {dim(k - 1)}" for k in range(1, L + 1)) + f"; x: n; y: {dim(L)}"
    return loss, wrt, let


def bench_mlp(depths: list[int], repeats: int, shapes: str) -> None:
    print(f"(b) MLP family, {shapes} weights: 0.5*norm2(W_L*tanh(...tanh(W_1*x)) - y)^2 wrt W_1..W_L, "
          f"check=False, median of {repeats} runs")
    head = (f"    {'L':>3}  {'loss chars':>10}  {'derive ms':>10}  {'ms / L':>7}  {'nodes':>6}  {'nodes / L':>9}  "
            f"{'chars':>6}  {'chars / L':>9}  {'where':>5}")
    print(head)
    print("    " + "-" * (len(head) - 4))
    rows = []
    for L in depths:
        loss, wrt, let = mlp(L, shapes)
        try:
            r = matcalc.grad(loss, wrt=wrt, let=let, check=False)
            t = median_time(partial(matcalc.grad, loss, wrt=wrt, let=let, check=False), repeats)
        except Exception as err:  # noqa: BLE001
            print(f"    {L:>3}  {len(loss):>10}  error: {type(err).__name__}: {err}")
            continue
        nodes, chars = result_size(r)
        rows.append((L, t, nodes, chars))
        print(f"    {L:>3}  {len(loss):>10}  {t * 1e3:10.1f}  {t * 1e3 / L:7.2f}  {nodes:>6}  {nodes / L:9.1f}  "
              f"{chars:>6}  {chars / L:9.1f}  {len(r.where):>5}")
    growth_summary(rows)
    print("    target: linear growth -> per-layer columns (ms / L, nodes / L, chars / L) stay flat; chars / L creeps")
    print("    up slowly because names lengthen with L (t9 -> t10, W_9 -> W_10), an O(L log L) term in the text only")


# ---------------------------------------------------------------- program family


def program(L: int, activation: str = "tanh", shapes: str = "square") -> tuple[str, list[str], str]:
    """An L-layer network with biases as a program, with its wrt list and declarations.

    z1 = W1*x + b1; h1 = act(z1); ...; zL = WL*h{L-1} + bL; L = -y'*log(softmax(zL)).
    square: every W_k is n x n and every b_k is n. alternate: layer widths alternate n, m, n, ...
    so that W_k is d_k x d_{k-1}, b_k is d_k, with d_0 = n (x: n) and y: d_L. The b_k must be
    declared: a name such as b1 is a scalar by default."""
    steps, h = [], "x"
    for k in range(1, L + 1):
        steps.append(f"z{k} = W{k}*{h} + b{k}")
        if k < L:
            steps.append(f"h{k} = {activation}(z{k})")
            h = f"h{k}"
    steps.append(f"L = -y'*log(softmax(z{L}))")
    wrt = [f"W{k}" for k in range(1, L + 1)] + [f"b{k}" for k in range(1, L + 1)]
    if shapes == "square":
        dim = lambda k: "n"  # noqa: E731
    else:
        dim = lambda k: "n" if k % 2 == 0 else "m"  # noqa: E731
    let = f"x: n; y: {dim(L)}; " + "; ".join(f"W{k}: {dim(k)} x {dim(k - 1)}; b{k}: {dim(k)}" for k in range(1, L + 1))
    return "; ".join(steps), wrt, let


def peak_mb(L: int, activation: str, shapes: str) -> float:
    """Peak traced memory (MB) of grad(program(L), check=False), in a fresh Python process."""
    out = subprocess.run([sys.executable, __file__, "--peak-memory", str(L), "--activation", activation,
                          "--shapes", shapes], capture_output=True, text=True, check=True)
    return float(out.stdout.split()[-1])


def _peak_memory_child(L: int, activation: str, shapes: str) -> None:
    """Print the peak of the Python allocations (MB, tracemalloc) made by grad(program(L)): what
    the derivation needs at its peak, the interpreter, grammar and rule tables excluded. (The
    growth of the resident size would miss what fits in memory the imports freed; tracemalloc
    is exact but slows the derivation about 20-fold, hence a child process and no timing here.)"""
    import tracemalloc

    from matcalc.core import limits
    limits.MAX_INPUT_CHARS = limits.MAX_STATEMENTS = 10 ** 9  # L=512 is longer than a program may be
    matcalc.grad("tr(A*X*B)", wrt="X", check=False)  # grammar and rule tables are not the program's
    text, wrt, let = program(L, activation, shapes)
    tracemalloc.start()
    matcalc.grad(text, wrt=wrt, let=let, check=False)
    print(f"{tracemalloc.get_traced_memory()[1] / 1e6:.3f}")


def bench_program(depths: list[int], repeats: int, shapes: str, activation: str, show: bool,
                  quick: bool = False) -> None:
    print(f"(c) program family, {shapes} weights, {activation} hidden layers: "
          f"z1 = W1*x + b1; h1 = {activation}(z1); ...; L = -y'*log(softmax(zL))")
    print(f"    wrt W1..WL and b1..bL, check=False, median of {repeats} runs; peak MB: tracemalloc's peak "
          "of grad()'s allocations in a fresh process per depth")
    head = (f"    {'L':>3}  {'prog chars':>10}  {'derive ms':>10}  {'ms / L':>7}  {'nodes':>6}  {'nodes / L':>9}  "
            f"{'chars':>6}  {'chars / L':>9}  {'where':>5}  {'peak MB':>7}  {'MB / L':>6}")
    print(head)
    print("    " + "-" * (len(head) - 4))
    rows = []
    memory: list[tuple[int, float]] = []
    for L in depths:
        text, wrt, let = program(L, activation, shapes)
        try:
            r = matcalc.grad(text, wrt=wrt, let=let, check=False)
            t = median_time(partial(matcalc.grad, text, wrt=wrt, let=let, check=False), repeats)
        except Exception as err:  # noqa: BLE001
            print(f"    {L:>3}  {len(text):>10}  error: {type(err).__name__}: {str(err)[:200]}")
            continue
        missing = [w for w in wrt if w not in r.gradients]
        nodes, chars = result_size(r)
        rows.append((L, t, nodes, chars))
        memory.append((L, peak_mb(L, activation, shapes)))
        print(f"    {L:>3}  {len(text):>10}  {t * 1e3:10.1f}  {t * 1e3 / L:7.2f}  {nodes:>6}  {nodes / L:9.1f}  "
              f"{chars:>6}  {chars / L:9.1f}  {len(r.where):>5}  {memory[-1][1]:7.2f}  {memory[-1][1] / L:6.3f}"
              + (f"  ! no gradient for {', '.join(missing)}" if missing else ""))
    growth_summary(rows)
    if len(memory) >= 2 and min(m for _, m in memory[-2:]) > 0:
        (l1, m1), (l2, m2) = memory[-2:]
        print(f"    memory growth exponent L={l1}->{l2}: {math.log(m2 / m1) / math.log(l2 / l1):.2f}")
    if not quick:  # about two minutes: tracemalloc slows L=512 to ~100 s
        deep = [(L, peak_mb(L, activation, shapes)) for L in (128, 256, 512)]
        print("    peak MB deeper (fresh process each): "
              + ", ".join(f"L={L}: {m:.1f} ({m / L:.3f} / L)" for L, m in deep)
              + (f"; exponent L=256->512: {math.log(deep[2][1] / deep[1][1]) / math.log(2):.2f}"
                 if deep[1][1] > 0 and deep[2][1] > 0 else ""))
    print("    target: linear growth -> per-layer columns stay flat (chars / L creeps up slowly as names lengthen)")
    # the L=4 result as a reader sees it: the where list should name the backpropagated deltas
    text, wrt, let = program(4, activation, shapes)
    try:
        r = matcalc.grad(text, wrt=wrt, let=let, check=False)
    except Exception as err:  # noqa: BLE001
        print(f"    L=4 in full: error: {type(err).__name__}: {str(err)[:200]}")
        return
    full = str(r)
    deltas = [n for n, _ in r.where if n.startswith("delta")]
    print(f"    L=4 in full (print(r)): {len(full.splitlines())} lines, {len(full)} chars, {len(r.where)} where "
          f"entries, named deltas: {', '.join(deltas) if deltas else 'none'}{'' if show else ' (--show prints it)'}")
    if show:
        print("\n".join(f"    {line}" if line else "" for line in full.splitlines()))


# ---------------------------------------------------------------- check times

TARGET_CHECK_P95_S = 1.0  # each default check (numeric + SymPy elementwise), 95th percentile
TARGET_CHECK_MAX_S = 3.0  # and worst case

SIZED = [  # declared integer sizes up to 16 x 16: (loss, wrt, let with {n})
    ("tr(inv(X)*A)", ["X"], "X: {n} x {n}; A: {n} x {n}"),
    ("log(det(X))", ["X"], "X: {n} x {n}"),
    ("tr(X'*B*X)", ["X"], "X: {n} x {n}; B: {n} x {n}"),
    ("norm2(X*w - y)^2", ["X", "w"], "X: {n} x {n}; w: {n}; y: {n}"),
    ("0.5*norm2(W2*tanh(W1*x) - y)^2", ["W1", "W2"], "W1, W2: {n} x {n}; x, y: {n}"),
]


def check_time(loss: str, wrt: list[str], let: str, repeats: int = 3) -> float:
    """What the default check adds: the median of grad(check=True) minus the median of
    grad(check=False), `repeats` runs each, SymPy's cache cleared before each run."""
    def run(check: bool) -> None:
        matcalc.grad(loss, wrt=wrt, let=let, check=check)

    derive = median_time(lambda: run(False), repeats, setup=clear_cache)
    return max(0.0, median_time(lambda: run(True), repeats, setup=clear_cache) - derive)


def _stats(label: str, times: list[float]) -> None:
    times = sorted(times)
    p95 = times[min(len(times) - 1, math.ceil(0.95 * len(times)) - 1)]
    ok = p95 < TARGET_CHECK_P95_S and times[-1] < TARGET_CHECK_MAX_S
    print(f"    {label}: n={len(times)}, median {statistics.median(times):.3f} s, p95 {p95:.3f} s, "
          f"max {times[-1]:.3f} s "
          f"(targets: p95 < {TARGET_CHECK_P95_S:g} s, max < {TARGET_CHECK_MAX_S:g} s -> {'met' if ok else 'NOT met'})")


def bench_checks(quick: bool) -> None:
    """Check times over the catalogue, the L-layer programs and the declared-size cases, with the
    growth of the check time against the loss size measured side by side in this run."""
    print("(d) check times: median of 3 grad(check=True) minus median of 3 grad(check=False), SymPy's cache cleared")
    _, cases = load_catalogue()
    everything: list[float] = []
    cat = []
    for name, loss, wrt, let in cases:
        try:
            cat.append(check_time(loss, wrt, let))
        except Exception as err:  # noqa: BLE001
            print(f"    ! {name}: {type(err).__name__}: {str(err)[:150]}")
    _stats("catalogue", cat)
    everything += cat
    print(f"    {'L':>3}  {'loss nodes':>10}  {'check s':>8}  {'s / node (x1e3)':>15}")
    rows = []
    for L in (2, 4, 8, 16):
        text, wrt, let = program(L)
        nodes = dag_size([matcalc.grad(text, wrt=wrt, let=let, check=False).loss])
        t = check_time(text, wrt, let)
        rows.append((L, nodes, t))
        print(f"    {L:>3}  {nodes:>10}  {t:8.3f}  {t / nodes * 1e3:15.3f}")
    everything += [t for *_, t in rows]
    (l1, n1, t1), (l2, n2, t2) = rows[-2], rows[-1]
    if t1 > 0 and t2 > 0:
        print(f"    growth L={l1}->{l2}: loss nodes x{n2 / n1:.2f}, check time x{t2 / t1:.2f} "
              f"(exponent {math.log(t2 / t1) / math.log(n2 / n1):.2f}; 1 = linear in the loss size)")
    sized = []
    for loss, wrt, let in SIZED:
        line = []
        for n in ((4, 16) if quick else (4, 8, 12, 16)):
            t = check_time(loss, wrt, let.format(n=n))
            sized.append(t)
            line.append(f"n={n}: {t:.3f} s")
        print(f"    {loss:<34} " + ", ".join(line))
    _stats("declared sizes", sized)
    everything += sized
    _stats("all checks above", everything)


def bench_wide(widths: list[int]) -> None:
    """A wide flat sum sin(a0*x) + ... + sin(a{n-1}*x): the gradient, and the step-by-step
    derivation with its line check (one line per term split off by the sum rule, each as long
    as the sum: quadratic in n by construction, cut short past 400 lines)."""
    print("(e) wide sums: sin(a0*x) + ... + sin(a{n-1}*x) wrt x, check=False; steps: r.steps_text() "
          "(lines built and checked, then printed)")
    print(f"    {'n':>5} {'grad s':>8} {'steps s':>8}")
    rows = []
    for n in widths:
        loss = " + ".join(f"sin(a{i}*x)" for i in range(n))
        t0 = time.perf_counter()
        r = matcalc.grad(loss, "x", "x: scalar", check=False)
        t1 = time.perf_counter()
        r.steps_text()
        t2 = time.perf_counter()
        rows.append((n, t1 - t0, t2 - t1))
        print(f"    {n:>5} {t1 - t0:>8.3f} {t2 - t1:>8.3f}")
    (n1, g1, s1), (n2, g2, s2) = rows[-2], rows[-1]
    k = math.log(n2 / n1)
    print(f"    growth exponent n={n1}->{n2}: grad {math.log(g2 / g1) / k:.2f}, steps {math.log(s2 / s1) / k:.2f}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer repeats, MLP and program up to L=16")
    p.add_argument("--shapes", choices=("square", "alternate"), default="square",
                   help="MLP and program weights all n x n, or alternating n x m / m x n")
    p.add_argument("--activation", choices=("tanh", "sigmoid"), default="tanh",
                   help="hidden activation of the program family")
    p.add_argument("--show", action="store_true", help="print the L=4 program's result in full")
    p.add_argument("--no-catalogue", action="store_true", help="skip the catalogue")
    p.add_argument("--no-mlp", action="store_true", help="skip the MLP family")
    p.add_argument("--no-program", action="store_true", help="skip the program family")
    p.add_argument("--no-checks", action="store_true", help="skip the check times")
    p.add_argument("--peak-memory", type=int, metavar="L", help=argparse.SUPPRESS)  # the child of peak_mb
    args = p.parse_args(argv)
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 20000))
    if args.peak_memory:
        _peak_memory_child(args.peak_memory, args.activation, args.shapes)
        return 0
    print(f"matcalc {matcalc.__version__} from {Path(matcalc.__file__).parent}, Python {sys.version.split()[0]}"
          f"{', quick' if args.quick else ''}")
    matcalc.grad("tr(A*X*B)", wrt="X", check=False)  # warm up: grammar, rule tables
    print()
    if not args.no_catalogue:
        bench_catalogue(repeats=5 if args.quick else 20, check_repeats=1 if args.quick else 3)
        print()
    if not args.no_mlp:
        depths = [1, 2, 4, 8, 16] if args.quick else [1, 2, 4, 8, 16, 32, 64]
        bench_mlp(depths, repeats=3 if args.quick else 5, shapes=args.shapes)
        print()
    if not args.no_program:
        depths = [1, 2, 4, 8, 16] if args.quick else [1, 2, 4, 8, 16, 32, 64]
        bench_program(depths, repeats=3 if args.quick else 5, shapes=args.shapes,
                      activation=args.activation, show=args.show, quick=args.quick)
        print()
    if not args.no_checks:
        bench_checks(args.quick)
        print()
    bench_wide([65, 130] if args.quick else [65, 130, 260])
    return 0


if __name__ == "__main__":
    sys.exit(main())
