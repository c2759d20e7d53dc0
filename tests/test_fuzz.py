"""The fuzzing harness in CI: a few hundred generated cases of each family, fixed seeds.

Every case must come out ok (or unsupported / nopoint / inconclusive, which are counted and
shown): no wrong gradient, no exception other than a MatcalcError, no hang. A failure prints
the grouped findings with one-line reproducers (`python benchmarks/fuzz.py` runs longer campaigns).
"""
from __future__ import annotations

import pytest

from matcalc import fuzz

FAST = fuzz.Options(timeout=5.0, full_every=10, verdict_every=60, seed=0)


def campaign(kinds: tuple[str, ...], n: int, seed: int, opt: fuzz.Options = FAST) -> list[fuzz.Outcome]:
    opt = fuzz.Options(opt.timeout, opt.full_every, opt.verdict_every, seed)
    return fuzz.campaign(n, seed, kinds, opt, subprocess=False)


def assert_clean(outcomes: list[fuzz.Outcome], classes: tuple[str, ...] = fuzz.FAILING) -> None:
    """Fail with the grouped findings and their reproducers if any outcome is in `classes`."""
    if any(o.cls in classes for o in outcomes):
        pytest.fail("\n".join(fuzz.report(outcomes, 0.0, examples=3, show=classes)), pytrace=False)


@pytest.fixture(scope="module")
def losses() -> list[fuzz.Outcome]:
    return campaign(("loss",), 300, seed=11)


@pytest.fixture(scope="module")
def programs() -> list[fuzz.Outcome]:
    return campaign(("program",), 300, seed=12)


def test_generated_losses_are_right(losses):
    assert_clean(losses)


def test_generated_programs_are_right(programs):
    """Gradients with respect to symbols and to the program's steps."""
    assert_clean(programs)


def test_most_generated_cases_are_decided(losses, programs):
    """The oracles must bite: at most a fifth of the cases is undecided (unsupported, nopoint,
    or inconclusive for our own oracle)."""
    for outcomes in (losses, programs):
        undecided = [o for o in outcomes if o.cls in ("unsupported", "nopoint", "inconclusive")]
        assert len(undecided) <= 0.2 * len(outcomes), "\n".join(fuzz.report(outcomes, 0.0))


@pytest.mark.parametrize("i", range(len(fuzz.CORPUS)), ids=[c[0][:40] for c in fuzz.CORPUS])
def test_issue_and_readme_examples_pass_every_oracle(i):
    """The examples of the issue (steps, singular Gram matrices, large values) and the README,
    with every oracle: check, derivation, LaTeX, formats and the verdicts on G, 2G, -G, G'."""
    opt = fuzz.Options(timeout=3.0, full_every=1, verdict_every=1, seed=0)
    assert_clean([fuzz.run_case(fuzz.corpus_entry(i), 0, opt)], fuzz.FAILING + ("nopoint",))


def test_special_inputs_get_a_result_or_a_matcalc_error():
    outcomes = []
    for i, (text, wrt, let, label) in enumerate(fuzz.special_inputs()):
        case = fuzz.Case("input", text, wrt, let, label=label)
        outcomes.append(fuzz.run_case(case, i + 1, FAST))  # every 10th with the check on
    assert_clean(outcomes)


def test_mutated_inputs_get_a_result_or_a_matcalc_error():
    outcomes = campaign(("input",), 300, seed=13)
    assert_clean(outcomes)


def test_command_lines_keep_the_exit_code_contract():
    outcomes = campaign(("cli",), 150, seed=14)
    assert_clean(outcomes)


def test_structural_contracts_hold(losses, programs):
    """Simplification is idempotent, printed text parses back to the same tree, the CLI reports
    errors on one line, no global state changes."""
    outcomes = losses + programs + campaign(("cli",), 150, seed=14)
    assert_clean(outcomes, ("contract",))


def _tampered(oracle: str):
    """A real result with its gradient for x replaced by a wrong one in the field the oracle reads."""
    import dataclasses

    import numpy as np

    import matcalc
    case = fuzz.Case("loss", "x'*A*x + sum(exp(x))", ["x"], "A: n x n", [(None, "x'*A*x + sum(exp(x))")])
    r = matcalc.grad(case.text, case.wrt, case.let, check=False)
    g = r.gradients["x"]
    other = matcalc.grad("x'*A'*A*x", ["x"], "A: n x n", check=False).gradients["x"]
    unsimplified = matcalc.parse("(x'*A)' + ones(n,n)*x", "A: n x n")  # simplifies to A'*x + sum(x)*ones(n)
    changes = {"fd": {"expr": other.expr}, "derivation": {"expr": other.expr}, "roundtrip": {"text": other.text},
               "latex": {"latex": other.latex}, "simplify": {"expr": unsimplified}}
    r = dataclasses.replace(r, gradients={**r.gradients, "x": dataclasses.replace(g, **changes[oracle])})
    return case, r, fuzz.Model(case, r.symbols, np.random.default_rng(0))


@pytest.mark.parametrize("oracle", ["fd", "derivation", "roundtrip", "latex", "simplify"])
def test_each_oracle_can_fail(oracle):
    """No oracle is vacuous: each reports a result tampered with where it looks."""
    case, r, model = _tampered(oracle)
    run = {"fd": lambda: fuzz.oracle_fd(case, r, model)[0],
           "derivation": lambda: fuzz.oracle_derivation(case, r, model),
           "roundtrip": lambda: fuzz.oracle_roundtrip(case, r, model),
           "latex": lambda: fuzz.oracle_latex(case, r, model),
           "simplify": lambda: fuzz.oracle_simplify(case, r, model)}
    assert any(f.cls in ("wrong", "contract") for f in run[oracle]())


def test_verified_and_verdict_oracles_can_fail(monkeypatch):
    """A gradient known wrong (by fd) that the check verifies is reported; so is a `check` that
    calls every claim correct."""
    import types

    import matcalc.verdicts.verdict
    case, r, model = _tampered("fd")
    assert [f.oracle for f in fuzz.oracle_verified(case, {"x": "wrong"}, 0)] == ["VERIFIED-WRONG"]
    always = types.SimpleNamespace(correct=True, verdict="correct")
    monkeypatch.setattr(matcalc.verdicts.verdict, "check", lambda *a, **k: always)
    case, r, model = _tampered("roundtrip")  # the true gradient in expr
    assert any(f.oracle == "verdict" for f in fuzz.oracle_verdict(case, r, model, {"x": "ok"}))


@pytest.mark.slow
@pytest.mark.parametrize("seed", [101, 102, 103])
def test_longer_campaign(seed):
    outcomes = fuzz.campaign(1500, seed, fuzz.KINDS, fuzz.Options(seed=seed), jobs=2)
    assert_clean(outcomes)
