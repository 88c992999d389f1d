"""Shared pytest configuration: hypothesis profiles, and what makes a run repeatable.

Profiles (HYPOTHESIS_PROFILE=name picks one; otherwise ``ci`` when CI=true, else ``dev``):

``ci``    derandomised, no database, no deadline: a CI run is repeatable and never
          flaky on a loaded machine.
``dev``   fresh random examples each run (``--hypothesis-seed N`` repeats one).
``hunt``  ``dev`` with 10× the examples, for benchmarks/hunt_flaky.py.

Hypothesis also draws constants found in the source of the *local* modules that are
imported when a test runs (rpmref and rpmref.proofs). Which of those are imported depends on
which test files are collected, so a derandomised test could draw different examples
when its file runs alone than in the full suite. Every local module is therefore
imported here, before any test: the pool of constants is the same however the tests
are collected or ordered.

RPMREF_TEST_ORDER=reverse runs the collected tests in reverse order (for the hunt).
"""
import importlib
import os
import pkgutil

import pytest
from hypothesis import HealthCheck, settings

import rpmref
import rpmref.proofs

for _package in (rpmref, rpmref.proofs):
    for _module in pkgutil.walk_packages(_package.__path__, _package.__name__ + "."):
        if not _module.name.endswith(".__main__"):
            importlib.import_module(_module.name)

settings.register_profile(
    "ci", derandomize=True, deadline=None, max_examples=100,
    suppress_health_check=[HealthCheck.too_slow])
settings.register_profile(
    "dev", deadline=None, max_examples=100,
    suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("hunt", settings.get_profile("dev"), max_examples=1000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE")
                      or ("ci" if os.environ.get("CI", "").lower() == "true" else "dev"))


def pytest_collection_modifyitems(items):
    order = os.environ.get("RPMREF_TEST_ORDER", "")
    if order == "reverse":
        items.reverse()
    elif order:
        raise pytest.UsageError(f"RPMREF_TEST_ORDER must be 'reverse' or unset; got {order!r}")
