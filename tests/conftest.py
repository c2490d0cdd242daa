"""Shared pytest configuration: hypothesis profiles and the real-data fixture.

Profiles (STYLE 12): ``dev`` (random, the default) and ``ci`` (derandomized, no example database).
Choose one with the environment variable ``HYPOTHESIS_PROFILE``; ``.ci/run`` uses ``ci``.
Slow tests (marker ``slow``) are skipped unless ``-m slow`` (or any ``-m`` naming them) is given.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "dev",
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "ci",
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


def pytest_collection_modifyitems(config, items):
    if config.getoption("-m"):
        return
    skip = pytest.mark.skip(reason="slow test: run with -m slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


def shared_data_dir() -> Path | None:
    """The real MNIST/CIFAR-10 copies: $OTFLOW_TEST_DATA, else ../shared/data beside the repo."""
    env = os.environ.get("OTFLOW_TEST_DATA")
    candidates = [Path(env)] if env else []
    candidates.append(Path(__file__).resolve().parents[2] / "shared" / "data")
    for c in candidates:
        if c.is_dir():
            return c
    return None


@pytest.fixture(scope="session")
def real_data_dir() -> Path:
    d = shared_data_dir()
    if d is None:
        pytest.skip("real data not found: set OTFLOW_TEST_DATA to a folder holding mnist/ and cifar10/")
    return d
