"""The conformance kit: check anyone's InfoNCE loss or MI estimator against rpmref's exact values.

``reference`` (the exact in-batch InfoNCE loss and its gradient, Eq. 6 and A1) →
``cases`` (seeded inputs that tell the mistakes apart) → ``diagnoses`` (the known
mistakes as transformations of the exact loss) → ``adapters`` (calling NumPy, torch
or jax functions; torch and jax are imported only here, only when used) →
``conformance`` (``check_infonce``) and ``estimators`` (``check_mi_estimator`` on
discrete problems with exact I, I_∞, I_N and on the Gaussian staircase).

>>> import numpy as np
>>> from rpmref.testing import check_infonce
>>> report = check_infonce(lambda s: -np.mean(np.diag(s) - np.log(np.exp(s).sum(axis=1))))
>>> report.passed, report.diagnosis
(False, 'unstable')
"""
from rpmref.testing.conformance import CaseResult, ConformanceReport, check_infonce
from rpmref.testing.diagnoses import DIAGNOSES
from rpmref.testing.estimators import EstimatorReport, ProblemResult, check_mi_estimator
from rpmref.testing.reference import (
    critic_scores, embedding_loss, infonce_loss, infonce_loss_gradient)

__all__ = ["check_infonce", "ConformanceReport", "CaseResult", "DIAGNOSES",
           "check_mi_estimator", "EstimatorReport", "ProblemResult",
           "infonce_loss", "infonce_loss_gradient", "embedding_loss", "critic_scores"]
