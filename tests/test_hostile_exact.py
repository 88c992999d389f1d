"""The exact discrete functions under hostile but valid input, beyond the fuzz tests."""
import numpy as np
import pytest

import rpmref


@pytest.mark.parametrize("p", [[1.0], [1.0, 0.0], [[0.0, 1.0], [0.0, 0.0]], 1.0, np.array(1.0)])
def test_the_entropy_of_a_point_mass_is_plus_zero(p):
    """H = −Σ p log p = −(1·log 1) was −0.0: equal to 0, but printed as '-0.0' and with
    the sign bit of a negative number (copysign, 1/H = −inf). The mutual information and
    the KL divergence already give +0.0 at their zeros."""
    h = rpmref.entropy(p)
    assert h == 0.0 and not np.signbit(h)


def test_empirical_rpm_pmf_refuses_an_n_by_n_table_beyond_the_budget(monkeypatch):
    """N = 100000 rows asked for a 74.5 GiB (N, N) table: a MemoryError from inside numpy.
    Like rpm_posterior's tensor, the table is refused beyond MAX_TENSOR_ELEMENTS, naming the
    arguments; at the budget it is built (shown with a budget of 16: N = 4 is accepted and
    sums to 1, N = 5 is refused)."""
    import rpmref.exact.discrete as discrete
    with pytest.raises(ValueError, match=r"enc_rows.*MAX_TENSOR_ELEMENTS"):
        rpmref.empirical_rpm_pmf(np.ones((100_000, 1)), np.ones((100_000, 1)), [[1.0]])
    monkeypatch.setattr(discrete, "MAX_TENSOR_ELEMENTS", 16)
    assert rpmref.empirical_rpm_pmf(np.ones((4, 1)), np.ones((4, 1)), [[1.0]]).sum() == 1.0
    with pytest.raises(ValueError, match=r"enc_rows.*MAX_TENSOR_ELEMENTS"):
        rpmref.empirical_rpm_pmf(np.ones((5, 1)), np.ones((5, 1)), [[1.0]])
