"""Issue 5 (first part): verdicts on hand-derived gradients, with diagnoses and counterexamples."""
import json

import pytest

import matcalc
from matcalc.cli import main


@pytest.mark.parametrize("loss,wrt,claim,let", [
    ("x'*A*x", "x", "A'*x + A*x", ""),
    ("x'*A*x", "x", "A*x + A'*x", ""),
    ("tr(A*X*B)", "X", "(B*A)'", ""),
    ("log(det(X))", "X", "inv(X')", ""),
    ("-y'*log(softmax(z))", "z", "softmax(z) - y", "y: probability"),
    ("norm2(X*w - y)^2", "w", "2*X'*X*w - 2*X'*y", ""),
])
def test_correct_claims_written_differently_pass(loss, wrt, claim, let) -> None:
    v = matcalc.check(loss, wrt, claim, let)
    assert v.correct, v.diagnoses
    assert v.to_dict()["verdict"] == "correct"


def _kinds(loss, wrt, claim, let=""):
    v = matcalc.check(loss, wrt, claim, let)
    assert not v.correct
    return {d["kind"]: d["detail"] for d in v.diagnoses}, v


@pytest.mark.parametrize("loss,wrt,claim,let,kind,fragment", [
    ("tr(A*X*B)", "X", "A*B", "", "shape", "shape mismatch in 'A*B'"),
    ("tr(A*X*B)", "X", "B*A", "", "shape", "the claim is p x m"),
    ("tr(A*X*B)", "X", "B*A", "", "transpose", "transpose"),
    ("tr(A*X)", "X", "A", "A: n x n", "transpose", "transpose"),
    ("a'*X*b", "X", "b*a'", "a: n; b: n", "transpose", "transpose"),
    ("tr(A*X*B)", "X", "2*A'*B'", "", "factor", "2 times"),
    ("x'*A*x", "x", "(A + A')*x/2", "", "factor", "1/2 times"),
    ("sum(W*X)/m", "W", "ones(n)*ones(m)'*X'", "X: k x m; W: n x k", "factor", "m times"),
    ("tr(A*X*B)", "X", "-A'*B'", "", "sign", "wrong sign"),
    ("norm2(X*w - y)^2", "w", "2*X'*(y - X*w)", "", "sign", "wrong sign"),
    ("x'*A*x + b'*x", "x", "(A + A')*x", "b: n", "missing-term", "misses the term b"),
    ("norm2(X*w - y)^2 + lam*norm2(w)^2", "w", "2*X'*(X*w - y)", "lam: scalar", "missing-term", "2*lam*w"),
    ("x'*A*x", "x", "(A + A')*x + x", "", "extra-term", "extra term x"),
    ("tr(A*X*B)", "X", "A'*B' + X", "", "extra-term", "extra term X"),
    ("x'*A*x", "x", "2*A*x", "", "needs-property", "A is symmetric"),
    ("-y'*log(softmax(z))", "z", "softmax(z) - y", "", "needs-property", "y is probability"),
    ("tr(X'*B*X)", "X", "2*B*X", "", "needs-property", "B is symmetric"),
])
def test_diagnoses(loss, wrt, claim, let, kind, fragment) -> None:
    kinds, v = _kinds(loss, wrt, claim, let)
    assert kind in kinds, kinds
    assert fragment in kinds[kind]
    assert v.gradient == matcalc.grad(loss, wrt, let, check=False)[wrt].text


def test_counterexample_names_entries_with_both_values() -> None:
    _, v = _kinds("tr(A*X*B)", "X", "2*A'*B'")
    ce = v.counterexample
    assert set(ce["sizes"]) == {"n", "m", "p"} and set(ce["point"]) == {"A", "B", "X"}
    e = ce["entries"][0]
    assert e["claim"] == pytest.approx(2 * e["gradient"])


def test_cli_exit_codes_and_json(capsys) -> None:
    assert main(["check", "x'*A*x", "--wrt", "x", "--claim", "A'*x + A*x"]) == 0
    assert "correct" in capsys.readouterr().out
    assert main(["check", "tr(A*X*B)", "--wrt", "X", "--claim", "-A'*B'", "--format", "json"]) == 1
    d = json.loads(capsys.readouterr().out)
    assert set(d) >= {"verdict", "diagnoses", "counterexample", "gradient"}
    assert d["verdict"] == "wrong" and d["diagnoses"][0]["kind"] == "sign" and d["gradient"] == "A'*B'"
    assert main(["check", "tr(A*X*B)", "--wrt", "X", "--claim", "A*+"]) == 2
    assert "ParseError" in capsys.readouterr().err


@pytest.mark.parametrize("loss,claim,let,verdict,kind", [
    ("tr(A*X*B)", "df = tr(A*dX*B)", "", "correct", None),
    ("x'*A*x", "df = x'*(A + A')*dx", "", "correct", None),
    ("log(det(X))", "tr(inv(X)*dX)", "", "correct", None),
    ("x'*A*x", "df = -x'*(A + A')*dx", "", "wrong", "sign"),
    ("x'*A*x", "df = 2*x'*(A + A')*dx", "", "wrong", "factor"),
    ("x'*A*x", "df = 2*x'*A*dx", "", "wrong", None),
])
def test_claimed_differentials(loss, claim, let, verdict, kind) -> None:
    v = matcalc.verdict.check_differential(loss, claim, let)
    assert v.verdict == verdict
    if kind:
        assert v.diagnoses[0]["kind"] == kind
    if verdict == "wrong":
        assert v.counterexample["claim"] != pytest.approx(v.counterexample["differential"])


def test_cli_claimed_differential(capsys) -> None:
    assert main(["check", "tr(A*X*B)", "--claim-differential", "df = tr(A*dX*B)"]) == 0
    assert main(["check", "x'*A*x", "--claim-differential", "df = -x'*(A + A')*dx"]) == 1
    assert "wrong sign" in capsys.readouterr().out


def test_seed_notes_claims() -> None:
    """examples/check_notes.py: the notes' formulas pass, their mistakes are caught usefully."""
    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).parent.parent / "examples"))
    import check_notes
    out = check_notes.main()
    wrong = {k for k, v in out.items() if not v.correct}
    assert wrong == {"001: softmax cross-entropy, y general", "003: three layers, dE/dX as the note has it",
                     "003: one layer, dE/dW entry by entry as the note has it"}
    entry = out["003: one layer, dE/dW entry by entry as the note has it"].diagnoses
    assert entry == [{"kind": "misplaced-entry",
                      "detail": "entry (1,2) of the claim, u(1)*x(3), is the gradient's entry (1,3)"}]
    layer = out["003: three layers, dE/dX as the note has it"]
    assert layer.diagnoses[0]["kind"] == "shape" and "W2'*delta1" in layer.diagnoses[0]["detail"]
    assert layer.gradient == "W1'*delta1/m"


@pytest.mark.parametrize("loss,wrt,claim,let", [
    ("a'*inv(X)*b", "X", r"-X^{-T} a b^{T} X^{-T}", "a, b: n"),
    ("x'*A*x", "x", r"\left(A + A^{T}\right) x", ""),
    ("tr(A*X*B)", "X", r"A^\top B^\top", ""),
    ("sum(W*X)/m", "W", r"\frac{1}{m} \mathbf{1} X^T", "X: k x m; W: n x k"),
    ("a1 = W1*x; h1 = sigmoid(a1); a2 = W2*h1; L = -y'*log(softmax(a2))", "W1",
     r"\left(W_2^T \delta_2 \odot h_1 \odot (1 - h_1)\right) x^T", "y: probability"),
])
def test_latex_claims(loss, wrt, claim, let) -> None:
    assert matcalc.check(loss, wrt, claim, let).correct


@pytest.mark.parametrize("claim,fragment", [
    (r"X^{1/2}", "superscript"), (r"W_{ij}", "subscript"), (r"\|x\|_2", "norms written with bars"),
    (r"\nabla f", "command \\nabla"),
])
def test_latex_claims_that_cannot_be_read_say_why(claim, fragment) -> None:
    with pytest.raises(matcalc.ParseError, match="cannot read this LaTeX") as info:
        matcalc.check("tr(A*X*B)", "X", claim)
    assert fragment in str(info.value)


def test_chain_reports_the_first_line_that_does_not_follow() -> None:
    v = matcalc.verdict.check_chain("x'*A*x", ["df = x'*A*dx + dx'*A*x", "= x'*A*dx + x'*A*dx", "= 2*x'*A*dx"])
    assert not v.correct and v.diagnoses[0]["kind"] == "chain"
    assert "line 2 (x'*A*dx + x'*A*dx) does not follow from line 1" in v.diagnoses[0]["detail"]
    assert v.counterexample["before"] != v.counterexample["after"]
    ok = matcalc.verdict.check_chain("x'*A*x", ["df = x'*A*dx + dx'*A*x", "= x'*A*dx + x'*A'*dx",
                                               "= x'*(A + A')*dx"])
    assert ok.correct
    first = matcalc.verdict.check_chain("x'*A*x", ["df = 2*x'*A*dx", "= x'*(A + A')*dx"])
    assert "first line is not the differential" in first.diagnoses[0]["detail"]


def test_chain_read_from_a_latex_align_block() -> None:
    block = r"""\begin{align*}
    \mathrm{d}f &= \operatorname{tr}\left(A \mathrm{d}X B\right) \\
     &= \operatorname{tr}\left(B A \mathrm{d}X\right) && \text{cyclic} \\
     &= \operatorname{tr}\left((A^T B^T)^T \mathrm{d}X\right)
    \end{align*}"""
    lines = matcalc.verdict.chain_lines(block)
    assert len(lines) == 3
    assert matcalc.verdict.check_chain("tr(A*X*B)", lines).correct
    wrong = block.replace(r"B A \mathrm{d}X", r"A B \mathrm{d}X")
    assert not matcalc.verdict.check_chain("tr(A*X*B)", matcalc.verdict.chain_lines(wrong)).correct


def test_batch_file(tmp_path, capsys) -> None:
    claims = tmp_path / "claims.toml"
    claims.write_text("""
[[claim]]
name = "right"
loss = "x'*A*x"
wrt = "x"
claim = "A'*x + A*x"

[[claim]]
name = "symmetric only"
loss = "x'*A*x"
wrt = "x"
claim = "2*A*x"

[[claim]]
name = "differential"
loss = "tr(A*X*B)"
differential = "df = tr(A*dX*B)"

[[claim]]
name = "unreadable"
loss = "tr(A*X*B"
wrt = "X"
claim = "A"
""")
    assert main(["check", "--file", str(claims)]) == 1
    out = capsys.readouterr().out
    assert "right" in out and "needs-property" in out and "error" in out
    assert "2 correct, 2 wrong or unreadable" in out
    good = tmp_path / "good.json"
    good.write_text(json.dumps([{"loss": "tr(A*X*B)", "wrt": "X", "claim": "A'*B'"}]))
    assert main(["check", "--file", str(good)]) == 0
    assert main(["check", "--file", str(tmp_path / "missing.toml")]) == 2


def test_gradient_is_given_in_the_claims_notation() -> None:
    assert matcalc.check("tr(A*X*B)", "X", r"2 A^T B^T").gradient == "A^{T} B^{T}"
    assert matcalc.check("tr(A*X*B)", "X", "2*A'*B'").gradient == "A'*B'"
