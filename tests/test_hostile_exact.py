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
