"""Issue 3: softmax and cross-entropy, batches and biases, programs with named steps and deltas."""
import pytest

import matcalc
from matcalc.cli import main
from matcalc.present.share import dag_size
from matcalc.verify.check import _np, assign_sizes, find_point
from matcalc.verify.evaluate import numeric


@pytest.mark.parametrize("loss,wrt,let,expected", [
    ("-y'*log(softmax(z))", "z", "", "sum(y)*softmax(z) - y"),
    ("-y'*log(softmax(z))", "z", "y: probability", "softmax(z) - y"),
    ("-sum(Y .* log(softmax(A)))", "A", "", "softmax(A).*(ones(n,n)*Y) - Y"),
    ("-sum(Y .* log(softmax(A)))", "A", "Y: probability", "softmax(A) - Y"),
    ("-y'*log_softmax(z)", "z", "y: probability", "softmax(z) - y"),
    ("logsumexp(z)", "z", "", "softmax(z)"),
    ("sum(logsumexp(A))", "A", "", "softmax(A)"),
    ("sum(softplus(x))", "x", "", "sigmoid(x)"),
    ("sum(relu(x))", "x", "", "step(x)"),
])
def test_softmax_family_forms(loss: str, wrt: str, let: str, expected: str) -> None:
    r = matcalc.grad(loss, wrt, let)
    assert r[wrt].text == expected
    assert r.check.sympy_entries > 0 and r.check.numeric_max_rel_err < 1e-6


def test_softmax_minus_y_needs_the_probability_declaration() -> None:
    """Without `y: probability`, softmax(a) - y would be wrong; the engine must not say it."""
    general = matcalc.grad("-y'*log(softmax(z))", "z")["z"].text
    assert general != "softmax(z) - y" and "sum(y)" in general


def test_relu_states_its_subgradient_convention() -> None:
    r = matcalc.grad("sum(relu(W*x))", "W")
    assert any("subgradient" in n for n in r.notes)


TWO_LAYER = "a1 = W1*x; h1 = sigmoid(a1); a2 = W2*h1; L = -y'*log(softmax(a2))"


def test_two_layer_program_uses_the_notes_names() -> None:
    r = matcalc.grad(TWO_LAYER, ["W1", "W2"], "y: probability")
    where = dict(r.where_text)
    assert [n for n, _ in r.where_text] == ["a1", "h1", "a2", "delta2", "delta1"]
    assert where["delta2"] == "softmax(a2) - y"
    assert where["delta1"] == "h1.*(W2'*delta2).*(1 - h1)"
    assert r["W2"].text == "delta2*h1'" and r["W1"].text == "delta1*x'"


def test_two_layer_without_probability_keeps_sum_y() -> None:
    r = matcalc.grad(TWO_LAYER, ["W1", "W2"])
    assert dict(r.where_text)["delta2"] == "sum(y)*softmax(a2) - y"


BATCH = ("Z1 = W1*X + b1*ones(m)'; A1 = tanh(Z1); Z2 = W2*A1 + b2*ones(m)'; A2 = sigmoid(Z2); "
         "E = -sum(Y.*log(A2) + (1 - Y).*log(1 - A2))/m")
BATCH_LET = "X: 3 x m; W1: 5 x 3; b1: 5; W2: 2 x 5; b2: 2; Y: 2 x m"


def test_batched_network_with_biases() -> None:
    r = matcalc.grad(BATCH, ["W1", "b1", "W2", "b2", "X"], BATCH_LET)
    where = dict(r.where_text)
    assert where["delta2"] == "A2 - Y" and where["delta1"] == "(W2'*delta2).*(1 - A1.^2)"
    assert r["W2"].text == "delta2*A1'/m" and r["b2"].text == "delta2*ones(m)/m"
    assert r["X"].text == "W1'*delta1/m"


def test_where_definitions_make_every_gradient_evaluable() -> None:
    """to_dict()'s `where`, in order, then the gradient text: a program that evaluates to G."""
    r = matcalc.grad(BATCH, ["W1", "b1"], BATCH_LET)
    d = r.to_dict()
    dims = assign_sizes([r.loss])
    point = _np(find_point(r.loss, {}, dims, 0))
    point["m"] = [[float(dims["m"])]]
    for name, g in d["gradients"].items():
        text = "; ".join(f"{n} = {t}" for n, t in d["where"]) + f"; G = {g['text']}"
        rebuilt = matcalc.api.load(text, matcalc.parse_decls(BATCH_LET)).loss
        env = {k: v if not isinstance(v, list) else __import__("numpy").array(v) for k, v in point.items()}
        got, want = numeric([rebuilt, r[name].expr], env, dims)
        assert abs(got - want).max() < 1e-12


def test_row_vector_convention() -> None:
    r = matcalc.grad("y = x*W; L = y*c", ["x", "W", "y"], "x: 1 x D; W: D x K; c: K")
    assert r["y"].text == "c'"
    assert r["W"].text == "x'*delta_y" and r["x"].text == "delta_y*W'"
    assert dict(r.where_text) == {"delta_y": "c'"}


def test_column_vector_convention() -> None:
    r = matcalc.grad("y = W*x; L = c'*y", ["x", "W", "y"], "c: K")
    assert r["y"].text == "c" and r["W"].text == "c*x'" and r["x"].text == "W'*c"  # a plain symbol is not renamed


def test_dimension_names_are_scalars() -> None:
    r = matcalc.grad("sum((W*X).^2)/m", "W", "X: n x m")
    assert r["W"].text == "2*W*X*X'/m"
    assert r.check.sympy_entries > 0


@pytest.mark.parametrize("program,fragment", [
    ("a = x; a = y; L = sum(a)", "'a' is defined twice"),
    ("h = sigmoid(z); z = W*x; L = sum(h)", "'z' is used before its definition"),
    ("a = W*x; L = a", "the loss is"),
])
def test_program_errors(program: str, fragment: str) -> None:
    with pytest.raises(matcalc.MatcalcError, match=fragment):
        matcalc.grad(program, "W" if "W" in program else "x")


def _mlp_program(layers: int) -> tuple[str, str]:
    steps, let, h = [], ["x: n", "y: n"], "x"
    for k in range(1, layers + 1):
        steps += [f"z{k} = W{k}*{h} + b{k}", f"h{k} = tanh(z{k})"]
        let += [f"W{k}: n x n", f"b{k}: n"]
        h = f"h{k}"
    steps[-1] = f"L = -y'*log(softmax(z{layers}))"
    return "; ".join(steps), "; ".join(let)


def test_program_results_grow_linearly_with_depth() -> None:
    sizes = {}
    for layers in (4, 8, 16):
        program, let = _mlp_program(layers)
        wrt = [f"{p}{k}" for k in range(1, layers + 1) for p in "Wb"]
        r = matcalc.grad(program, wrt, let, check=False)
        sizes[layers] = dag_size([g.expr for g in r.gradients.values()] + [e for _, e in r.where])
        assert f"delta{layers}" in dict(r.where_text) and "delta1" in dict(r.where_text)
    assert sizes[16] - sizes[8] == pytest.approx(2 * (sizes[8] - sizes[4]), rel=0.1)


def test_cli_program_from_file_and_stdin(tmp_path, capsys, monkeypatch) -> None:
    prog = tmp_path / "net.prog"
    prog.write_text("# two layers\na1 = W1*x\nh1 = sigmoid(a1)\na2 = W2*h1\nL = -y'*log(softmax(a2))\n")
    assert main(["grad", "--program", str(prog), "--wrt", "W2", "--let", "y: probability"]) == 0
    out = capsys.readouterr().out
    assert "delta2 = softmax(a2) - y" in out and "d/dW2 = delta2*h1'" in out
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO("a = W*x; L = sum(a)"))
    assert main(["grad", "--program", "-", "--wrt", "W"]) == 0
    assert "d/dW = ones(n)*x'" in capsys.readouterr().out
    assert main(["grad", "--wrt", "W"]) == 2
