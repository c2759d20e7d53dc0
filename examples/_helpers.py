"""Small helpers shared by the examples: printing a result, a random point, numeric values.

The examples run as scripts (`python examples/NAME.py`), so this module is imported by its bare
name; tests put `examples/` on `sys.path` first.
"""
from __future__ import annotations

import numpy as np

from matcalc import Result
from matcalc.verify.evaluate import numeric


def banner(title: str) -> None:
    print("\n" + "=" * 78 + f"\n{title}\n" + "=" * 78)


def show(title: str, r: Result) -> None:
    """Print one derivation: the full matcalc report under a heading."""
    print(f"\n--- {title}")
    print(r)


def summary(r: Result) -> dict:
    """The key results of a derivation as plain data (what the tests compare)."""
    return {"grads": {n: g.text for n, g in r.gradients.items()},
            "where": dict(r.where_text),
            "check": r.check.summary() if r.check else None}


def shape(sym_shape: tuple, dims: dict[str, int]) -> tuple[int, int]:
    """A symbol's shape with its named dimensions replaced by sizes."""
    return tuple(d if isinstance(d, int) else dims[d] for d in sym_shape)  # type: ignore[return-value]


def random_point(r: Result, dims: dict[str, int], seed: int = 0,
                 given: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """A random value (2-D array) for every symbol of `r`, honouring its declaration:
    a dimension used as a number (`m` in `/m`) gets its size, a `probability` vector sums to 1,
    a `positive` symbol is positive. `given` values are taken as they are."""
    rng = np.random.default_rng(seed)
    env: dict[str, np.ndarray] = {}
    for name, sym in r.symbols.items():
        if given and name in given:
            env[name] = np.asarray(given[name], dtype=float).reshape(shape(sym.shape, dims))
        elif "dimension" in sym.props:
            env[name] = np.array([[float(dims[name])]])
        else:
            env[name] = _draw(rng, shape(sym.shape, dims), sym.props)
    return env


def _draw(rng: np.random.Generator, size: tuple[int, int], props: frozenset) -> np.ndarray:
    v = rng.standard_normal(size)
    if "probability" in props:
        e = np.exp(v)
        return e / e.sum(axis=0, keepdims=True)
    return np.abs(v) + 0.1 if "positive" in props else v


def values(r: Result, env: dict[str, np.ndarray], dims: dict[str, int]) -> dict[str, np.ndarray]:
    """Numeric values of every `where` definition (by its name), every gradient (as `d/dNAME`)
    and the loss (as `loss`), all from the derived expressions."""
    names = [n for n, _ in r.where] + [f"d/d{n}" for n in r.gradients] + ["loss"]
    exprs = [e for _, e in r.where] + [g.expr for g in r.gradients.values()] + [r.loss]
    return dict(zip(names, numeric(exprs, env, dims)))


def close(a: np.ndarray, b: np.ndarray, tol: float = 1e-9) -> float:
    """Relative difference of two arrays; asserts that it is below `tol`."""
    err = float(np.max(np.abs(a - b)) / max(1.0, float(np.max(np.abs(b)))))
    assert err < tol, f"relative difference {err:.2e}"
    return err
