"""The examples in examples/ reproduce the seed notes: their key texts and numbers, so they can't rot.

Each example's main() runs once (module fixtures). Where PyTorch is installed, the two-layer and
the batched network gradients are also compared with torch autograd in float64.
"""
from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

import matcalc

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
sys.path.insert(0, str(EXAMPLES))
from _helpers import random_point, values  # noqa: E402


def example(name: str) -> ModuleType:
    return importlib.import_module(name)


@pytest.fixture(scope="module")
def product() -> dict:
    return example("matrix_product").main()


@pytest.fixture(scope="module")
def softmax() -> dict:
    return example("softmax_cross_entropy").main()


@pytest.fixture(scope="module")
def deep() -> dict:
    return example("deep_network").main()


@pytest.fixture(scope="module")
def batched() -> dict:
    return example("batched_network").main()


@pytest.fixture(scope="module")
def scalar() -> dict:
    return example("scalar_graph").main()


def verified(summary: dict, sympy: bool = True) -> bool:
    check = summary["check"]
    return check.startswith("verified:") and ("SymPy elementwise" in check) == sympy and "numeric" in check


# --- 000: y = x*W and y = W*x ---------------------------------------------------------------

@pytest.mark.parametrize("case,grads,where", [
    ("scalar_output", {"x": "-W'", "W": "-x'", "y": "-1"}, {}),
    ("rows", {"x": "delta_y*W'", "W": "x'*delta_y", "y": "c'"}, {"delta_y": "c'"}),
    ("rows_any_loss", {"x": "delta_y*W'", "W": "x'*delta_y"}, {"delta_y": "y - t"}),
    ("matrix_output", {"X": "delta_Y*W'", "W": "X'*delta_Y"}, {"delta_Y": "Y - T"}),
    ("columns", {"x": "W'*c", "W": "c*x'", "y": "c"}, {}),
    ("columns_any_loss", {"x": "W'*delta_y", "W": "delta_y*x'"}, {"delta_y": "y - t"}),
])
def test_matrix_product(product: dict, case: str, grads: dict, where: dict) -> None:
    got = product[case]
    assert got["grads"] == grads
    assert {k: v for k, v in got["where"].items() if k.startswith("delta")} == where
    assert verified(got)


def test_matrix_product_matches_the_notes_entry_sums(product: dict) -> None:
    assert product["rows_entrywise_err"] < 1e-12


# --- 001: softmax cross-entropy, two-layer network --------------------------------------------

def test_softmax_cross_entropy(softmax: dict) -> None:
    assert softmax["a_general"]["grads"] == {"a": "sum(y)*softmax(a) - y"}
    assert softmax["a_probability"]["grads"] == {"a": "softmax(a) - y"}
    assert verified(softmax["a_general"]) and verified(softmax["a_probability"])


def test_softmax_note_formula_needs_y_to_sum_to_one(softmax: dict) -> None:
    errs = softmax["note_check"]
    assert errs["derived_vs_fd"] < 1e-7 and errs["derived_minus_note"] < 1e-12
    assert errs["note_vs_fd"] > 0.05  # softmax(a) - y is wrong when sum(y) = 1.4


TWO_LAYER_WHERE = {"a1": "W1*x", "h1": "sigmoid(a1)", "a2": "W2*h1",
                   "delta1": "h1.*(W2'*delta2).*(1 - h1)"}


def test_two_layer_network(softmax: dict) -> None:
    net = softmax["network"]
    assert net["where"] == {**TWO_LAYER_WHERE, "delta2": "softmax(a2) - y"}
    assert list(net["where"]) == ["a1", "h1", "a2", "delta2", "delta1"]
    assert net["grads"] == {"W1": "delta1*x'", "W2": "delta2*h1'"}
    assert verified(net)
    general = softmax["network_general"]
    assert general["where"] == {**TWO_LAYER_WHERE, "delta2": "sum(y)*softmax(a2) - y"}
    assert general["grads"] == net["grads"]


def test_two_layer_network_dl_dh1(softmax: dict) -> None:
    got = softmax["network_h1"]
    assert got["grads"]["h1"] == "W2'*delta2"
    assert got["where"]["delta1"] == "h1.*delta_h1.*(1 - h1)" and got["where"]["delta_h1"] == "W2'*delta2"
    assert verified(got, sympy=False)


# --- 002: L-layer network, error recursion -----------------------------------------------------

def test_deep_network_recursion_texts(deep: dict) -> None:
    for name, text in deep["expected"].items():
        got = deep["where"][name] if name.startswith("delta") else deep["grads"][name[3:]]
        assert got == text, name
    assert list(deep["where"]) == ["z1", "a1", "z2", "a2", "z3", "a3", "delta3", "delta2", "delta1"]
    assert verified(deep, sympy=False)


def test_deep_network_recursion_numbers(deep: dict) -> None:
    assert set(deep["recursion_errors"]) == {f"{k}{l}" for l in (1, 2, 3) for k in ("delta", "dW", "db")}
    assert max(deep["recursion_errors"].values()) < 1e-12


def test_deep_network_other_depths() -> None:
    ex = example("deep_network")
    for L in (1, 2, 4):
        wrt = [f"{p}{l}" for l in range(1, L + 1) for p in "Wb"]
        r = matcalc.grad(ex.program(L), wrt, ex.declarations(L), check=False)
        where, grads = dict(r.where_text), {f"d/d{n}": g.text for n, g in r.gradients.items()}
        for name, text in ex.expected_texts(L).items():
            assert (where[name] if name.startswith("delta") else grads[name]) == text


# --- 003: one layer, batch, three-layer network ------------------------------------------------

def test_one_layer(batched: dict) -> None:
    assert batched["layer"]["grads"] == {"x": "W'*u", "W": "u*x'", "b": "u", "y": "u"}
    assert batched["batch_layer"]["grads"] == {"X": "W'*U/m", "W": "U*X'/m", "b": "U*ones(m)/m", "y": "U/m"}
    em = batched["element_matrix"]
    assert em["dW12"] == pytest.approx(em["dEdy1_x2"], rel=1e-12)
    assert em["dW12"] != pytest.approx(em["note_dEdy1_x3"], rel=1e-3)


def test_three_layer_network(batched: dict) -> None:
    net = batched["network"]
    assert {k: v for k, v in net["where"].items() if k.startswith("delta")} == {
        "delta3": "a3 - T", "delta2": "(W3'*delta3).*(1 - a2.^2)", "delta1": "(W2'*delta2).*(1 - a1.^2)"}
    assert net["grads"] == {
        "W1": "delta1*X'/m", "b1": "delta1*ones(m)/m", "W2": "delta2*a1'/m", "b2": "delta2*ones(m)/m",
        "W3": "delta3*a2'/m", "b3": "delta3*ones(m)/m", "X": "W1'*delta1/m"}
    assert verified(net, sympy=False)
    assert batched["note_dX"].startswith("ShapeError")


# --- 004: scalar graphs and the training loop ---------------------------------------------------

def test_scalar_graph_texts(scalar: dict) -> None:
    assert scalar["linear"]["grads"] == {"w": "2*x*r", "r": "2*r"}
    assert scalar["bias"]["grads"] == {"w": "2*x*t1", "b": "2*t1"}
    assert scalar["quadratic"]["where"] == {"t1": "w1*x^2 + w2*x + b - y"}
    assert scalar["quadratic"]["grads"] == {"w1": "2*x^2*t1", "w2": "2*x*t1", "b": "2*t1"}
    assert all(verified(scalar[k]) for k in ("linear", "bias", "quadratic", "fit"))


@pytest.mark.parametrize("case,expected", [
    ("linear", {"loss": 4, "d/dw": -8, "d/dr": -4}),
    ("bias", {"loss": 1, "d/dw": 2, "d/db": 2}),
    ("quadratic", {"loss": 16, "d/dw1": 32, "d/dw2": 16, "d/db": 8}),
])
def test_scalar_graph_numbers(scalar: dict, case: str, expected: dict) -> None:
    assert scalar[case]["values"] == pytest.approx(expected, abs=1e-12)


def test_gradient_descent_fits_w(scalar: dict) -> None:
    ws = scalar["fit"]["w"]
    assert ws[0] == 1.0 and ws[1] == pytest.approx(1.28)  # w - 0.01 * 2*x'*(x*w - y) = 1 + 0.28
    assert ws[-1] == pytest.approx(2.0, abs=1e-12)


# --- PyTorch autograd, where installed ------------------------------------------------------------

def _dims(r: matcalc.Result, first: int = 3) -> dict[str, int]:
    """Distinct sizes 3, 4, 5, ... for the named dimensions of a result."""
    names = sorted({d for s in r.symbols.values() for d in s.shape if isinstance(d, str)})
    return {n: first + i for i, n in enumerate(names)}


def _compare(r: matcalc.Result, env: dict, dims: dict, tensors: dict, loss) -> None:
    loss.backward()
    v = values(r, env, dims)
    assert float(loss) == pytest.approx(float(v["loss"][0, 0]), rel=1e-12)
    for name in r.gradients:
        np.testing.assert_allclose(v[f"d/d{name}"], tensors[name].grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("let", ["y: probability", ""])
def test_two_layer_network_matches_torch(let: str) -> None:
    torch = pytest.importorskip("torch")
    ex = example("softmax_cross_entropy")
    r = matcalc.grad(ex.NETWORK, ["W1", "W2"], let, check=False)
    dims = _dims(r)
    env = random_point(r, dims, seed=7)
    t = {k: torch.tensor(v, dtype=torch.float64, requires_grad=k in r.gradients) for k, v in env.items()}
    a2 = t["W2"] @ torch.sigmoid(t["W1"] @ t["x"])
    loss = -(t["y"].T @ torch.log(torch.softmax(a2, dim=0)))[0, 0]
    _compare(r, env, dims, t, loss)


def test_batched_network_matches_torch() -> None:
    torch = pytest.importorskip("torch")
    ex = example("batched_network")
    r = matcalc.grad(ex.NETWORK, ex.NETWORK_WRT, ex.NETWORK_LET, check=False)
    dims = {"m": 6}
    labels = np.random.default_rng(8).uniform(size=(2, 6))
    env = random_point(r, dims, seed=8, given={"T": labels})
    t = {k: torch.tensor(v, dtype=torch.float64, requires_grad=k in r.gradients) for k, v in env.items()}
    ones = torch.ones(1, dims["m"], dtype=torch.float64)
    a1 = torch.tanh(t["W1"] @ t["X"] + t["b1"] @ ones)
    a2 = torch.tanh(t["W2"] @ a1 + t["b2"] @ ones)
    a3 = torch.sigmoid(t["W3"] @ a2 + t["b3"] @ ones)
    loss = -(t["T"] * torch.log(a3) + (1 - t["T"]) * torch.log(1 - a3)).sum() / dims["m"]
    _compare(r, env, dims, t, loss)
