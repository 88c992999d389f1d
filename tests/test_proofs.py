"""Tests of proofs/: every identity is proved, wrong identities are reported FAILED,
and the pieces of the provers cannot prove a false statement.

The whole proof set (correct and deliberately wrong) runs once per test session
(module-scoped fixture, about 10-15 s on this machine).
"""
import itertools
import re
import sys

import pytest
import sympy as sp

from rpmref.proofs.catalogue import PROOFS
from rpmref.proofs.core import Entry, Proof, run_entry
from rpmref.proofs.finite import encoder_maps, recognition_tables, sizes
from rpmref.proofs.logsums import check_log_identity, log_coefficients, vanishes
from rpmref.proofs.notation import P_X, P_X2, P_XX, x, x2
from rpmref.proofs.report import render
from rpmref.proofs.run import run_proofs, select
from rpmref.proofs.sums import rewrite, rule, same, sum_in_order
from rpmref.cli import main as rpmref_main

REQUIRED = ["E1", "E2", "E3", "E4", "E5", "E6", "E7", "E8", "E9", "N1", "A1", "G1", "L1"]


@pytest.fixture(scope="module")
def results():
    """Every registered proof, run once at the default size bound."""
    return {r.id: r for r in run_proofs(select(None, include_wrong=True), max_size=3)}


def test_every_spec_identity_is_registered_and_proved(results):
    for pid in REQUIRED:
        assert pid in results, pid
        result = results[pid]
        assert result.status == "proved", (pid, [s.text for s in result.steps if s.ok is False], result.error)
        assert result.checks and all(step.ok for step in result.checks)


@pytest.mark.parametrize("pid", ["WRONG-E2", "WRONG-N1"])
def test_wrong_identity_is_reported_failed(results, pid):
    result = results[pid]
    assert result.wrong and result.status == "FAILED"
    assert all(step.ok is False for step in result.checks)   # each method catches it on its own


def test_wrong_e2_residual_is_exactly_the_dropped_constant():
    """Dropping C = -H(X) - H(X') leaves the coefficient of log P(x) equal to P(x)
    (= the row sum of P(x,x')): the residual the prover reports is the missing term."""
    t = recognition_tables(2, 2, 2, 2)
    from rpmref.proofs.elbo import elbo15, log_ratio
    lhs = sum(t.p[i, j] * elbo15(t, i, j) for i in range(2) for j in range(2))
    rhs = sum(t.pzz[a, b] * log_ratio(a + 1, b + 1) for a in range(2) for b in range(2))
    ok, residuals, _ = check_log_identity(lhs, rhs, t.rules)
    assert not ok
    expected = {sp.log(P_X[1]): t.p[0, 0] + t.p[0, 1], sp.log(P_X[2]): t.p[1, 0] + t.p[1, 1],
                sp.log(P_X2[1]): t.p[0, 0] + t.p[1, 0], sp.log(P_X2[2]): t.p[0, 1] + t.p[1, 1]}
    assert set(residuals) == set(expected)
    for atom, value in expected.items():
        assert vanishes(residuals[atom] - value.xreplace(t.rules))


def test_log_identity_accepts_true_and_rejects_false_statements():
    a, b, c = sp.symbols("a b c", positive=True)
    assert check_log_identity(sp.log(a * b / c), sp.log(a) + sp.log(b) - sp.log(c))[0]
    assert not check_log_identity(sp.log(a * b), sp.log(a) + 2 * sp.log(b))[0]
    assert not check_log_identity(sp.log(a + b), sp.log(a) + sp.log(b))[0]
    # a constraint is needed and used: a + b = 1 makes a log c + b log c = log c
    assert check_log_identity(a * sp.log(c) + b * sp.log(c), sp.log(c), {b: 1 - a})[0]
    assert not check_log_identity(a * sp.log(c) + b * sp.log(c), sp.log(c))[0]


def test_log_identity_does_not_split_logs_of_unsigned_symbols():
    """Without positivity, log(u v) != log u + log v in general; the prover must not prove it."""
    u, v = sp.symbols("u v", real=True)
    assert not check_log_identity(sp.log(u * v), sp.log(u) + sp.log(v))[0]


def test_log_coefficients_rejects_products_of_logs():
    a, b = sp.symbols("a b", positive=True)
    with pytest.raises(ValueError, match="not linear in logs"):
        log_coefficients(sp.log(a) * sp.log(b))


def test_vanishes_decides_rational_identities():
    a, b = sp.symbols("a b", positive=True)
    assert vanishes(a / (a + b) + b / (a + b) - 1)
    assert not vanishes(a / (a + b) - 1)


def test_sum_rewriter_proves_marginal_and_refuses_wrong_order():
    rules = rule(P_XX[x, x2], [x2], P_X[x])
    summed = rewrite(sum_in_order(P_XX[x, x2] * sp.log(P_X[x]), x2, x), rules)
    assert same(summed, sum_in_order(P_X[x] * sp.log(P_X[x]), x))
    # summing over x first gives sum_x P(x,x') log P(x), which is not a marginal: no rule applies
    wrong_order = rewrite(sum_in_order(P_XX[x, x2] * sp.log(P_X[x]), x, x2), rules)
    assert not same(wrong_order, sum_in_order(P_X[x] * sp.log(P_X[x]), x))


def stirling2(n, k):
    """Stirling numbers of the second kind by their recurrence (independent of encoder_maps)."""
    if n == k:
        return 1
    if n == 0 or k == 0:
        return 0
    return k * stirling2(n - 1, k) + stirling2(n - 1, k - 1)


@pytest.mark.parametrize("n,k", list(itertools.product(range(1, 5), range(1, 4))))
def test_encoder_maps_are_set_partitions_into_at_most_k_blocks(n, k):
    maps = encoder_maps(n, k)
    assert len(maps) == sum(stirling2(n, j) for j in range(1, k + 1))
    assert len(set(maps)) == len(maps)
    # every map x -> z is a relabelling of exactly one listed map
    canonical = set()
    for labels in itertools.product(range(k), repeat=n):
        order = list(dict.fromkeys(labels))
        canonical.add(tuple(order.index(label) for label in labels))
    assert canonical == set(maps)


def test_sizes_bound():
    assert len(sizes(3)) == 17 and sizes(3)[-1] == (3, 3, 3, 3)
    assert sizes(3, dims=2) == [(1, 1), (1, 2), (2, 1), (2, 2), (3, 3)]
    with pytest.raises(ValueError, match="max_size"):
        sizes(0)


def test_a_check_needs_a_real_verdict():
    with pytest.raises(TypeError, match="verdict"):
        Proof().check("sympy could not decide", None)


def test_a_proof_that_raises_or_checks_nothing_is_failed():
    def boom(proof, max_size):
        raise RuntimeError("broken step")

    raised = run_entry(Entry("T1", "raises", lambda: "x", boom), 1)
    assert raised.status == "FAILED" and "broken step" in raised.error
    empty = run_entry(Entry("T2", "checks nothing", lambda: "x", lambda proof, m: proof.show("no verdict")), 1)
    assert empty.status == "FAILED"


def test_select_by_id():
    assert [e.id for e in select(["e2,N1"])] == ["N1", "E2"]
    assert all(not e.wrong for e in select(None))
    assert {e.id for e in select(None, include_wrong=True) if e.wrong} == {"WRONG-E2", "WRONG-N1"}
    with pytest.raises(ValueError, match="unknown proof ID 'E99'"):
        select(["E99"])


def test_report_lists_every_identity_with_latex_statement(results):
    text = render(list(results.values()), 3)
    for pid in results:
        assert re.search(rf"^## {re.escape(pid)}: ", text, re.M), pid
        assert f"| {pid} |" in text
    assert text.count("$$ ") >= len(results)
    assert "**FAILED**" in text and "**proved**" in text
    # the summary table has 5 cells per row: a | inside a title (KL(q||p), P(z|x)) is escaped
    lines = text.splitlines()
    start = lines.index("|---|---|---|---|---|") + 1
    rows = lines[start:start + len(results)]
    assert all(row.startswith("| ") for row in rows) and not lines[start + len(results)].strip()
    assert all(len(re.split(r"(?<!\\)\|", row)) == 7 for row in rows), rows


def test_report_records_the_versions_it_was_made_with(results):
    import platform

    import rpmref
    text = render(list(results.values()), 3)
    assert (f"(rpmref {rpmref.__version__}, sympy {sp.__version__}, Python "
            f"{platform.python_version()})") in text.splitlines()[2]


def test_cli_exit_codes(capsys, tmp_path):
    report = tmp_path / "proofs.md"
    assert rpmref_main(["proofs", "--only", "E3", "E5", "--report", str(report)]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^E3 +proved", out, re.M) and re.search(r"^E5 +proved", out, re.M)
    assert "## E5:" in report.read_text(encoding="utf-8")
    assert rpmref_main(["proofs", "--only", "E3", "--check-wrong"]) == 1
    out = capsys.readouterr().out
    assert re.search(r"^WRONG-E2 +FAILED", out, re.M)
    assert rpmref_main(["proofs", "--only", "E99"]) == 2
    assert "unknown proof ID" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        rpmref_main(["proofs", "--max-size", "0"])
    assert exc.value.code == 2
    assert "--max-size" in capsys.readouterr().err


def test_repeated_only_options_add_up(capsys):
    """Bug: argparse kept only the last --only, so --only E3 --only L1 ran L1 alone."""
    assert rpmref_main(["proofs", "--only", "E3", "--only", "L1", "--list"]) == 0
    assert [line.split()[0] for line in capsys.readouterr().out.splitlines()] == ["L1", "E3"]


def test_a_missing_rpmref_proofs_is_one_line_not_a_traceback(capsys, monkeypatch):
    """Bug: 'python -m rpmref proofs' in a checkout over a non-editable install (the source
    tree shadows it, and proofs/ is rpmref.proofs only once installed) was a traceback
    ending in ModuleNotFoundError."""
    monkeypatch.setitem(sys.modules, "rpmref.proofs", None)
    monkeypatch.delitem(sys.modules, "rpmref.proofs.run", raising=False)
    assert rpmref_main(["proofs", "--only", "L1"]) == 1
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith("rpmref proofs: error: rpmref.proofs")
    assert "pip install -e ." in err and "Traceback" not in err


def test_python_m_proofs_entry_point(capsys):
    from rpmref.cli.proofs import main
    assert main(["--only", "L1"]) == 0
    assert re.search(r"^L1 +proved", capsys.readouterr().out, re.M)


def test_python_m_proofs_exits_1_on_a_wrong_identity():
    """The real entry point (a fresh interpreter): a wrong identity is FAILED, exit code 1."""
    import os
    import subprocess
    import sys
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    done = subprocess.run([sys.executable, "-m", "proofs", "--only", "WRONG-N1"], cwd=repo,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr
    assert re.search(r"^WRONG-N1 +FAILED", done.stdout, re.M)


def test_select_and_run_proofs_take_ids_and_entries_as_documented():
    """Bug: select("E3") iterated the string ('unknown proof ID 'E', '3''), select([3]) and
    run_proofs(["E3"]) were AttributeErrors, max_size=True ran as 1."""
    from rpmref.proofs.run import run_proofs, select
    assert [e.id for e in select("E3")] == ["E3"]
    assert sorted(e.id for e in select("E3,N1")) == ["E3", "N1"]
    with pytest.raises(TypeError, match="ids must be proof IDs"):
        select([3])
    with pytest.raises(TypeError, match=r"entries must come from select\(\)"):
        run_proofs(["E3"])
    with pytest.raises(TypeError, match="max_size must be an integer, got True"):
        run_proofs(select("L1"), max_size=True)
