"""Shared test setup: the Hypothesis profiles and the ``backend`` fixture.

Hypothesis profiles (select with ``HYPOTHESIS_PROFILE=<name>``; ``ci`` is the default):

* ``ci``  -- reproducible: ``derandomize=True`` (examples come from a fixed seed derived
  from each test) and no example database, so every run of the suite, on any machine,
  tries exactly the same examples; ``deadline=None`` (first calls pay for imports and
  BLAS warm-up, and a slow shared CI core must not turn into a flaky failure);
  ``print_blob=True`` so a failure prints the ``@reproduce_failure`` blob.
* ``dev`` -- random exploration with the local example database, for hunting bugs:
  ``HYPOTHESIS_PROFILE=dev python -m pytest tests/``.

The ``backend`` fixture runs a test body under ``tn.use_backend(name)`` for ``"numpy"``
and ``"cupy"``; the CuPy case carries the ``gpu`` marker and is skipped, with the
message of :class:`tinyntk.BackendUnavailable` as the reason, where CuPy or a GPU is
missing.
"""
from __future__ import annotations

import os

import pytest
from hypothesis import settings

import tinyntk as tn

settings.register_profile("ci", deadline=None, derandomize=True, database=None,
                          print_blob=True)
settings.register_profile("dev", deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def _cupy_unavailable_reason():
    """None if the CuPy backend works here, else BackendUnavailable's message."""
    try:
        with tn.use_backend("cupy"):
            pass
    except tn.BackendUnavailable as exc:
        return str(exc)
    return None


CUPY_UNAVAILABLE = _cupy_unavailable_reason()
HAVE_GPU = CUPY_UNAVAILABLE is None

#: Marks for a test that needs the CuPy backend: ``@pytest.mark.gpu`` plus a skip (with
#: BackendUnavailable's message) where CuPy or a GPU is missing.  Use as ``@requires_gpu``.
GPU_MARKS = [
    pytest.mark.gpu,
    pytest.mark.skipif(not HAVE_GPU, reason=f"CuPy backend unavailable: {CUPY_UNAVAILABLE}"),
]


def requires_gpu(test):
    for mark in GPU_MARKS:
        test = mark(test)
    return test


BACKENDS = [
    pytest.param("numpy", id="numpy"),
    pytest.param("cupy", id="cupy", marks=GPU_MARKS),
]


@pytest.fixture(params=BACKENDS)
def backend(request):
    """Run the test body with ``request.param`` as the active backend; yields the Backend."""
    with tn.use_backend(request.param) as b:
        yield b


@pytest.fixture(autouse=True)
def _restore_backend():
    """Every test starts on NumPy (also under ``TINYNTK_BACKEND=cupy``: tests that are meant
    for both backends ask for the ``backend`` fixture) and cannot leak a switch into the next."""
    before = tn.get_backend().name
    tn.set_backend("numpy")
    yield
    tn.set_backend(before)
