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
    v = matcalc.verdicts.verdict.check_differential(loss, claim, let)
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
    v = matcalc.verdicts.verdict.check_chain("x'*A*x", ["df = x'*A*dx + dx'*A*x", "= x'*A*dx + x'*A*dx", "= 2*x'*A*dx"])
    assert not v.correct and v.diagnoses[0]["kind"] == "chain"
    assert "line 2 (x'*A*dx + x'*A*dx) does not follow from line 1" in v.diagnoses[0]["detail"]
    assert v.counterexample["before"] != v.counterexample["after"]
    ok = matcalc.verdicts.verdict.check_chain("x'*A*x", ["df = x'*A*dx + dx'*A*x", "= x'*A*dx + x'*A'*dx",
                                               "= x'*(A + A')*dx"])
    assert ok.correct
    first = matcalc.verdicts.verdict.check_chain("x'*A*x", ["df = 2*x'*A*dx", "= x'*(A + A')*dx"])
    assert "line 1 (df = 2*x'*A*dx) is not the differential of the loss" in first.diagnoses[0]["detail"]
    assert first.diagnoses[0]["line"] == 1


def test_chain_read_from_a_latex_align_block() -> None:
    block = r"""\begin{align*}
    \mathrm{d}f &= \operatorname{tr}\left(A \mathrm{d}X B\right) \\
     &= \operatorname{tr}\left(B A \mathrm{d}X\right) && \text{cyclic} \\
     &= \operatorname{tr}\left((A^T B^T)^T \mathrm{d}X\right)
    \end{align*}"""
    lines = matcalc.verdicts.verdict.chain_lines(block)
    assert len(lines) == 3
    assert matcalc.verdicts.verdict.check_chain("tr(A*X*B)", lines).correct
    wrong = block.replace(r"B A \mathrm{d}X", r"A B \mathrm{d}X")
    assert not matcalc.verdicts.verdict.check_chain("tr(A*X*B)", matcalc.verdicts.verdict.chain_lines(wrong)).correct


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


# ---- issue 8, part 4: `check` never crashes ----------------------------------------------------

NETWORK = "a1 = W1*x; h1 = sigmoid(a1); a2 = W2*h1; L = -y'*log(softmax(a2))"
DERIVED = [("tr(A*X*B)", ["X"], ""), ("log(det(X))", ["X"], ""), ("x'*A*x", ["x"], ""),
           (NETWORK, ["W1", "W2"], "y: probability")]


def test_a_claim_naming_a_symbol_the_loss_lacks_is_an_input_error(capsys) -> None:
    with pytest.raises(matcalc.ParseError, match=r"the claim uses B, which is not in the loss \(symbols: A, x\)"):
        matcalc.check("x'*A*x", "x", "2*B*x")
    assert main(["check", "x'*A*x", "--wrt", "x", "--claim", "2*B*x"]) == 2
    err = capsys.readouterr().err
    assert err.strip().count("\n") == 0 and "the claim uses B" in err and "Traceback" not in err
    with pytest.raises(matcalc.ParseError, match="did you mean W1"):
        matcalc.check(NETWORK, "W1", "w1*x'", "y: probability")
    with pytest.raises(matcalc.ParseError, match="uses dX.*differential"):
        matcalc.check("tr(A*X*B)", "X", "dX")


def test_step_and_delta_names_stay_usable_in_claims() -> None:
    assert matcalc.check(NETWORK, "W1", "delta1*x'", "y: probability")
    assert matcalc.check(NETWORK, "W2", "(softmax(a2) - y)*h1'", "y: probability")
    assert matcalc.check(NETWORK, "h1", "W2'*delta2", "y: probability")


def test_verdict_is_true_only_when_correct() -> None:
    right, wrong = matcalc.check("x'*A*x", "x", "A*x + A'*x"), matcalc.check("x'*A*x", "x", "2*A*x")
    assert right and bool(right) is True
    assert not wrong and bool(wrong) is False
    with pytest.raises(AssertionError):
        assert matcalc.check("tr(A*X*B)", "X", "-A'*B'")


@pytest.mark.parametrize("claim,verdict", [
    ("df = tr(A*d(X)*B)", "correct"), ("tr(A*dX*B)", "correct"),
    (r"\mathrm{d}f = \operatorname{tr}\left(A \mathrm{d}\left(X\right) B\right)", "correct"),
    ("df = tr(A*d(X*B)) + tr(dA*X*B)", "correct"), ("d(tr(A*X*B))", "correct"), ("df = -tr(A*d(X)*B)", "wrong"),
])
def test_differentials_are_read_as_d_of_an_expression(claim, verdict) -> None:
    v = matcalc.verdicts.verdict.check_differential("tr(A*X*B)", claim)
    assert v.verdict == verdict
    if verdict == "wrong":
        assert v.diagnoses[0]["kind"] == "sign"


def test_a_gradient_claim_holds_no_differential() -> None:
    with pytest.raises(matcalc.ParseError, match="a gradient has none"):
        matcalc.check("tr(A*X*B)", "X", "d(X)")


def test_chains_read_d_of_an_expression() -> None:
    v = matcalc.verdicts.verdict.check_chain("tr(A*X*B)", ["df = d(tr(A*X*B))", "= tr(A*d(X)*B)", "= tr(B*A*dX)"])
    assert v.correct
    bad = matcalc.verdicts.verdict.check_chain("tr(A*X*B)", ["df = d(tr(A*X*B))", "= tr(A*d(X)*B)", "= tr(A*B*dX)"])
    assert not bad and bad.diagnoses[0]["line"] == 3


def _derivations(loss: str, wrt: list[str], let: str) -> dict[str, str]:
    r = matcalc.grad(loss, wrt, let)
    return {"text": f"{r.steps_text()}\n\n{r}", "latex": r.steps_latex(), "markdown": r.steps_markdown()}


@pytest.mark.parametrize("loss,wrt,let", DERIVED)
def test_chain_accepts_every_derivation_matcalc_prints(loss, wrt, let) -> None:
    for fmt, text in _derivations(loss, wrt, let).items():
        v = matcalc.verdicts.verdict.check_chain(loss, text, let)
        assert v.correct, (fmt, v.diagnoses)
        assert len(matcalc.verdicts.chain.read_rows(text)) >= 3


def _tampered(text: str, row: "matcalc.verdicts.chain.Row") -> str:
    """The derivation with one row's right side doubled (text) or negated (LaTeX)."""
    lines = text.split("\n")
    new = rf"-\left({row.rhs}\right)" if row.latex else f"2*({row.rhs})"
    assert row.rhs in lines[row.line - 1]
    lines[row.line - 1] = lines[row.line - 1].replace(row.rhs, new, 1)
    return "\n".join(lines)


@pytest.mark.parametrize("loss,wrt,let", DERIVED)
def test_a_tampered_derivation_is_rejected_at_the_tampered_line(loss, wrt, let) -> None:
    for fmt, text in _derivations(loss, wrt, let).items():
        rows = matcalc.verdicts.chain.read_rows(text)
        for row in rows[1::5] + rows[-1:]:
            v = matcalc.verdicts.verdict.check_chain(loss, _tampered(text, row), let)
            assert not v, (fmt, row)
            assert v.diagnoses[0]["line"] == row.line, (fmt, row, v.diagnoses)
            assert f"line {row.line} " in v.diagnoses[0]["detail"]


def test_cli_chain_of_matcalcs_own_output(tmp_path, capsys) -> None:
    for fmt in ("text", "latex", "markdown"):
        assert main(["grad", NETWORK, "--wrt", "W1", "--wrt", "W2", "--let", "y: probability", "--steps",
                     "--format", fmt]) == 0
        derivation = tmp_path / f"steps.{fmt}"
        derivation.write_text(capsys.readouterr().out)
        assert main(["check", NETWORK, "--let", "y: probability", "--chain", str(derivation)]) == 0, fmt
        assert "correct" in capsys.readouterr().out
    row = r"\frac{\partial L}{\partial W_{1}} &= \delta_{1} x^{T}"
    assert row in derivation.read_text()
    derivation.write_text(derivation.read_text().replace(row, row.replace("&=", "&= 2")))
    assert main(["check", NETWORK, "--let", "y: probability", "--chain", str(derivation)]) == 1
    assert "is not the gradient with respect to W1" in capsys.readouterr().out


def test_cli_chain_input_errors(tmp_path, capsys) -> None:
    raw = tmp_path / "latin1.txt"
    raw.write_bytes("df = tr(A*dX*B) é".encode("latin-1"))
    assert main(["check", "tr(A*X*B)", "--chain", str(raw)]) == 2
    assert "not UTF-8" in capsys.readouterr().err
    assert main(["check", "tr(A*X*B)", "--chain", str(tmp_path / "missing.txt")]) == 2
    unknown = tmp_path / "unknown.txt"
    unknown.write_text("df = tr(A*dX*B)\n= tr(C*dX*B)\n")
    assert main(["check", "tr(A*X*B)", "--chain", str(unknown)]) == 2
    assert "line 2 uses C, which is not in the loss" in capsys.readouterr().err


def test_batch_file_as_json(tmp_path, capsys) -> None:
    claims = tmp_path / "claims.toml"
    claims.write_text('[[claim]]\nname = "right"\nloss = "tr(A*X*B)"\nwrt = "X"\nclaim = "A\'*B\'"\n\n'
                      '[[claim]]\nname = "sign"\nloss = "tr(A*X*B)"\nwrt = "X"\nclaim = "-A\'*B\'"\n\n'
                      '[[claim]]\nname = "stray"\nloss = "tr(A*X*B)"\nwrt = "X"\nclaim = "C"\n')
    assert main(["check", "--file", str(claims), "--format", "json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert [o["name"] for o in out] == ["right", "sign", "stray"]
    assert out[0]["verdict"] == "correct" and out[1]["diagnoses"][0]["kind"] == "sign"
    assert out[2]["verdict"] == "error" and "uses C" in out[2]["error"]


def test_the_gradient_shown_comes_with_its_definitions() -> None:
    v = matcalc.check(NETWORK, "W1", "2*delta1*x'", "y: probability")
    assert not v and v.gradient == "delta1*x'"
    where = dict(v.where)
    assert {"a1", "h1", "a2", "delta1"} <= set(where) and where["a1"] == "W1*x"
    text = str(v)
    assert "the gradient is delta1*x'" in text and "where a1 = W1*x" in text and "delta1 = " in text
    assert v.to_dict()["where"] == [list(w) for w in v.where]
    ok = matcalc.check(NETWORK, "W1", r"\delta_{1} x^{T}", "y: probability")
    assert ok and ok.gradient == r"\delta_{1} x^{T}" and r"\delta_{1}" in dict(ok.where)  # LaTeX, as the claim


@pytest.mark.parametrize("claim", [
    "", "   ", r"\frac{}{}", r"W_{", r"A^{", r"\frac{1}", "foo(A)", "A*B*C", "x", "d(X)", "dX", "1e308*1e308*A'*B'",
    "A'*B'/0", "log(0*A'*B')", "x.^1e999999", "X^100000000000", "2^2^2^2^2^2*A'*B'", "(" * 2000 + "A" + ")" * 2000,
    "[1, 2; 3, 4]", "A(0,1)*ones(m)*ones(p)'", "x = 2", "#", "\x00", "é", r"\mathrm{d}", "ones(n)", "2", "X^2",
    "A'*B' +", "A'*B''", r"\left(A^T B^T\right", r"\begin{bmatrix}1\end{bmatrix}", "$$", "&", r"\\",
])
def test_odd_claims_give_a_verdict_or_an_input_error(claim, capsys) -> None:
    try:
        v = matcalc.check("tr(A*X*B)", "X", claim)
        assert v.verdict == "wrong"
    except matcalc.MatcalcError as err:
        assert str(err)
    assert main(["check", "tr(A*X*B)", "--wrt", "X", f"--claim={claim}"]) in (1, 2)
    assert "Traceback" not in capsys.readouterr().err


@pytest.mark.parametrize("lines", [
    [], "", "prose only", ["df = ", "= x"], ["df/dq = x", "= x"], ["dA/dx = x", "= x"], [3, 4],
    "\\begin{align*} a &= b \\\\ &= c", ["df = d(d(x))", "= x"], ["df = d()", "= x"],
    [r"\frac{\partial}{\partial} &= x", "&= x"],
])
def test_odd_chains_give_a_verdict_or_an_input_error(lines) -> None:
    try:
        matcalc.verdicts.verdict.check_chain("x'*A*x", lines)
    except matcalc.MatcalcError as err:
        assert str(err)


def test_random_claims_never_crash() -> None:
    """A small seeded fuzz: every claim, differential and chain gets a verdict or a MatcalcError."""
    import random
    rng = random.Random(8)
    atoms = ["A", "B", "X", "x", "W", "dX", "d(X)", "2", "0", "1e300", "m", "ones(n)", "eye(n)", "inv(X)", "X'",
             r"\frac{1}{m}", r"\mathrm{d}X", "tr(X)", "log(X)", "(", ")", r"\left(", "^{T}", "X^-1", "delta1", "[1, 2]"]
    ops = ["+", "-", "*", ".*", "./", "/", "^", "'", " ", ""]
    calls = (lambda c: matcalc.check("tr(A*X*B)", "X", c),
             lambda c: matcalc.verdicts.verdict.check_differential("tr(A*X*B)", c),
             lambda c: matcalc.verdicts.verdict.check_chain("tr(A*X*B)", ["df = tr(A*dX*B)", f"= {c}"]))
    for _ in range(60):
        claim = "".join(rng.choice(atoms) + rng.choice(ops) for _ in range(rng.randint(1, 4)))
        for call in calls:
            try:
                call(claim)
            except matcalc.MatcalcError:
                pass


@pytest.mark.parametrize("latex,text", [
    (r"\mathrm{d}\left(\operatorname{tr}\left(A X B\right)\right)", "d(tr(A*X*B))"),
    (r"\operatorname{tr}\left(A \mathrm{d}\left(X B\right)\right)", "tr(A*d(X*B))"),
    (r"{\left\|x\right\|_{2}}^{2}", "(norm2(x))^2"), (r"\left\|X\right\|_{F}", "norm2(X)"),
    (r"\left\|x\right\|_1", "norm1(x)"), (r"\left|x\right|", "abs(x)"), (r"\sqrt{x}", "sqrt(x)"),
    (r"\log\det\left(X\right)", "logdet(X)"), (r"\log\operatorname{softmax}\left(z\right)", "log_softmax(z)"),
    (r"\delta_{h1}", "delta_h1"), (r"2 \mathbf{0}", "2*zeros"), (r"\mathcal{L}", "L"), (r"x_{i}", "x_i"),
    (r"\delta_{y}", "delta_y"), (r"W_{1}", "W1"), (r"{\exp\left(a\right)}^{\frac{1}{2}}", "exp(a)^(1/2)"),
    (r"x^{\circ -1}", "x.^(-1)"), (r"a^{-\frac{3}{2}}", "a^(-3/2)"),
])
def test_latex_reader_reads_what_matcalc_prints(latex, text) -> None:
    from matcalc.syntax.latex_in import latex_to_text
    def bare(s: str) -> str:  # redundant parentheses aside
        return s.replace(" ", "").replace("(", "").replace(")", "")
    assert bare(latex_to_text(latex)) == bare(text) and latex_to_text(latex).count("(") >= text.count("(")


@pytest.mark.parametrize("latex,fragment", [
    (r"\left\|x\right\|", "a norm needs its kind"), (r"\left\|x", "is not closed"), (r"{A", "'{' is not closed"),
    (r"\frac{1}", "missing at the end"), (r"W_{", "'{' is not closed"),
])
def test_latex_reader_says_what_it_cannot_read(latex, fragment) -> None:
    from matcalc.syntax.latex_in import latex_to_text
    with pytest.raises(matcalc.ParseError, match=fragment):
        latex_to_text(latex)


def test_latex_names_are_spelt_as_the_loss_spells_them() -> None:
    assert matcalc.check("tr(W_1*X)", "X", r"W_{1}^{T}")
    assert matcalc.check("tr(W1*X)", "X", r"W_{1}^{T}")
    assert matcalc.check("tr(inv(X)*A)", "A", r"X^{-T} I")  # I is the identity


def test_claims_beyond_the_number_limits_say_so() -> None:
    with pytest.raises(matcalc.MatcalcError, match="larger than 1e"):
        matcalc.check("tr(A*X*B)", "X", "1e308*1e308*A'*B'")
    with pytest.raises(matcalc.ParseError, match="exponent .* larger than 10000"):
        matcalc.check("x'*A*x", "x", "A^100000000000*x")
    with pytest.raises(matcalc.ParseError, match="exponent"):
        matcalc.check("x'*A*x", "x", "2^2^2^2^2^2*x")
    with pytest.raises(matcalc.ParseError, match="divides by zero"):
        matcalc.check("x'*A*x", "x", "x/(1 - 1)")


def test_a_claim_undefined_at_the_point_is_wrong_and_says_why() -> None:
    v = matcalc.check("tr(A*X*B)", "X", "A'*B'/(0*A(1,1))")
    assert not v and v.diagnoses[0]["kind"] == "undefined"
    zero = matcalc.check("tr(A*X*B)", "X", "0*A'*B'")
    assert not zero and not any(d["kind"] == "factor" for d in zero.diagnoses)


def test_chain_rows_with_unreadable_left_sides_are_not_skipped() -> None:
    v = matcalc.verdicts.verdict.check_chain("tr(A*X*B)", ["d f = tr(A*dX*B)", "= tr(B*A*dX)"])
    assert not v and v.diagnoses[0]["line"] == 1


def test_chain_of_a_program_whose_step_is_used_twice() -> None:
    """A residual program: each step's chain-rule lines are the part of dL through that step."""
    loss = "h = W*x; L = sum(h) + norm2(h)^2 + norm2(x)^2"
    for text in _derivations(loss, ["W", "x"], "").values():
        assert matcalc.verdicts.verdict.check_chain(loss, text)
    r = matcalc.grad(loss, ["W", "x"])
    one = r.steps_text().replace("dL/dx = ", "dL/dx = 3*")
    assert not matcalc.verdicts.verdict.check_chain(loss, one)


def test_cli_chain_from_standard_input(monkeypatch, capsys) -> None:
    import io
    r = matcalc.grad("tr(A*X*B)", "X")
    stdin = io.TextIOWrapper(io.BytesIO(r.steps_latex().encode()), encoding="utf-8")
    monkeypatch.setattr("sys.stdin", stdin)
    assert main(["check", "tr(A*X*B)", "--chain", "-"]) == 0
    assert capsys.readouterr().out.startswith("correct")


def test_a_one_line_result_is_a_derivation_too(capsys) -> None:
    assert main(["grad", "tr(A*X*B)", "--wrt", "X", "--format", "latex"]) == 0
    summary = capsys.readouterr().out
    assert matcalc.verdicts.verdict.check_chain("tr(A*X*B)", summary)
    assert not matcalc.verdicts.verdict.check_chain("tr(A*X*B)", summary.replace("&= A^{T}", "&= -A^{T}"))
