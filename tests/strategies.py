"""The test suite's hypothesis strategies: a re-export of the public ``rpmref.strategies``."""
from rpmref.strategies import (
    ENCODER_KINDS, MAX_STATES, GaussianProblem, conditionals, critic_tables, critics,
    embedding_batches, encoders, gaussian_problems, joint_and_critic, joint_tables, pmfs,
    rpm_problems, score_matrices)

__all__ = ["ENCODER_KINDS", "MAX_STATES", "GaussianProblem", "conditionals", "critic_tables",
           "critics", "embedding_batches", "encoders", "gaussian_problems", "joint_and_critic",
           "joint_tables", "pmfs", "rpm_problems", "score_matrices"]
