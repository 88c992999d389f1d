"""The test suite's hypothesis strategies: a re-export of the public ``rpmref.strategies``,
and ``scaled_examples`` for tests that draw fewer examples than the profile."""
from hypothesis import settings

from rpmref.strategies import (
    ENCODER_KINDS, MAX_STATES, GaussianProblem, conditionals, critic_tables, critics,
    embedding_batches, encoders, gaussian_problems, joint_and_critic, joint_tables, pmfs,
    rpm_problems, score_matrices)

__all__ = ["ENCODER_KINDS", "MAX_STATES", "GaussianProblem", "conditionals", "critic_tables",
           "critics", "embedding_batches", "encoders", "gaussian_problems", "joint_and_critic",
           "joint_tables", "pmfs", "rpm_problems", "scaled_examples", "score_matrices"]


def scaled_examples(n):
    """max_examples for a test that runs fewer than the profile's 100: n in the ci and
    dev profiles, 10·n in the hunt profile (read when the test module is imported)."""
    return max(1, n * settings.default.max_examples // 100)
