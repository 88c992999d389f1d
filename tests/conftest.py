"""Shared pytest configuration: hypothesis profiles.

``ci`` (selected when the environment variable CI=true) is derandomised and has
no deadline, so a CI run is repeatable and never flaky on a loaded machine.
``dev`` (the default) draws fresh examples each run.
"""
import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", derandomize=True, deadline=None, max_examples=100,
    suppress_health_check=[HealthCheck.too_slow])
settings.register_profile(
    "dev", deadline=None, max_examples=100,
    suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ci" if os.environ.get("CI", "").lower() == "true" else "dev")
