"""The test suite's hypothesis strategies: a re-export of the public ``rpmref.strategies``."""
from rpmref.strategies import (  # noqa: F401
    ENCODER_KINDS, MAX_STATES, GaussianProblem, conditionals, critic_tables, critics,
    embedding_batches, encoders, gaussian_problems, joint_and_critic, joint_tables, pmfs,
    rpm_problems, score_matrices)
