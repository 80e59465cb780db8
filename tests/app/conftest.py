"""Fixtures of the app's tests."""
from __future__ import annotations

import gc

import pytest


@pytest.fixture(autouse=True)
def _collect_garbage_between_tests():
    """Collect each test's garbage (closed windows, finished workers and their Qt wrappers) when the
    test ends and no worker thread runs. Left to the cyclic collector, that garbage was collected in
    the middle of a later test while its worker thread built a model, and the process crashed once
    in a full run (a segmentation fault inside garbage collection, not reproduced alone)."""
    yield
    gc.collect()
