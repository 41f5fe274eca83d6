"""The backend switch of CONTRACT.md: set_backend / use_backend / get_backend / to_numpy,
TINYNTK_BACKEND, and BackendUnavailable (never a silent fallback to the CPU).

"No CuPy" and "no GPU" are simulated (``sys.modules['cupy'] = None`` makes ``import cupy``
raise ImportError; a fake module reports 0 devices), so these tests run, and can fail, on
every machine, with or without a GPU.
"""
from __future__ import annotations

import os
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

import tinyntk as tn
from conftest import requires_gpu

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def no_cupy(monkeypatch):
    """Make ``import cupy`` fail, as on a machine without CuPy."""
    monkeypatch.setitem(sys.modules, "cupy", None)


@pytest.fixture
def cupy_without_gpu(monkeypatch):
    """A stand-in ``cupy`` whose CUDA runtime sees no device."""
    fake = types.ModuleType("cupy")
    fake.cuda = types.SimpleNamespace(runtime=types.SimpleNamespace(getDeviceCount=lambda: 0))
    monkeypatch.setitem(sys.modules, "cupy", fake)


def test_numpy_backend_object():
    b = tn.set_backend("numpy")
    assert b is tn.get_backend()
    assert b.name == "numpy"
    assert b.xp is np


def test_set_backend_is_case_insensitive_and_canonical():
    assert tn.set_backend("NumPy").name == "numpy"


def test_use_backend_restores_previous(monkeypatch):
    before = tn.get_backend()
    with tn.use_backend("numpy") as b:
        assert tn.get_backend() is b and b.name == "numpy"
        with tn.use_backend("numpy") as inner:
            assert tn.get_backend() is inner
        assert tn.get_backend() is b          # nested scopes restore one level at a time
    assert tn.get_backend() is before


def test_use_backend_restores_on_exception():
    before = tn.get_backend()
    with pytest.raises(KeyError):
        with tn.use_backend("numpy"):
            raise KeyError("boom")
    assert tn.get_backend() is before


def test_use_backend_restores_after_set_backend_inside():
    before = tn.get_backend()
    with tn.use_backend("numpy"):
        tn.set_backend("numpy")
    assert tn.get_backend() is before


@pytest.mark.parametrize("name", ["torch", "", "gpu", None, 3])
def test_unknown_backend_is_a_value_error_listing_known_names(name):
    before = tn.get_backend()
    with pytest.raises(ValueError) as info:
        tn.set_backend(name)
    assert "numpy" in str(info.value) and "cupy" in str(info.value)
    assert tn.get_backend() is before
    with pytest.raises(ValueError):
        with tn.use_backend(name):
            pytest.fail("the body must not run")
    assert tn.get_backend() is before


def test_cupy_without_cupy_raises_backend_unavailable(no_cupy):
    before = tn.get_backend()
    with pytest.raises(tn.BackendUnavailable) as info:
        tn.set_backend("cupy")
    assert isinstance(info.value, RuntimeError)
    message = str(info.value)
    assert "CuPy" in message and "not installed" in message     # what is missing
    assert "pip install" in message                             # how to install it
    assert tn.get_backend() is before                           # no silent change
    with pytest.raises(tn.BackendUnavailable):
        with tn.use_backend("cupy"):
            pytest.fail("the body must not run")
    assert tn.get_backend() is before


def test_cupy_without_gpu_raises_backend_unavailable(cupy_without_gpu):
    before = tn.get_backend()
    with pytest.raises(tn.BackendUnavailable) as info:
        tn.set_backend("cupy")
    assert "GPU" in str(info.value)
    assert tn.get_backend() is before


def test_to_numpy_returns_host_arrays():
    a = np.arange(6.0).reshape(2, 3)
    out = tn.to_numpy(a)
    assert isinstance(out, np.ndarray) and np.array_equal(out, a)
    listed = tn.to_numpy([[1.0, 2.0]])
    assert isinstance(listed, np.ndarray) and listed.shape == (1, 2)


def test_results_are_arrays_of_the_active_backend(backend):
    """NumPy inputs are accepted on any backend; results live on the active backend."""
    X, Y = tn.data.sphere(n=5, d=3, k=2, seed=0)
    assert isinstance(X, backend.xp.ndarray) and isinstance(Y, backend.xp.ndarray)
    net = tn.ReLUNet.init(d=3, m=4, k=2, L=2, seed=0)
    assert all(isinstance(w, backend.xp.ndarray) for w in net.W + [net.V])
    out = net(tn.to_numpy(X))                      # a host array in, a backend array out
    assert isinstance(out, backend.xp.ndarray)
    _, grads = tn.loss_and_grad(net, tn.to_numpy(X), tn.to_numpy(Y))
    assert all(isinstance(g, backend.xp.ndarray) for g in grads)
    host = tn.to_numpy(out)
    assert type(host) is np.ndarray and host.shape == (5, 2)


@requires_gpu
def test_cupy_backend_object():
    import cupy

    with tn.use_backend("cupy") as b:
        assert b.name == "cupy" and b.xp is cupy and tn.get_backend() is b
        a = cupy.arange(3.0)
        assert type(tn.to_numpy(a)) is np.ndarray
    assert tn.get_backend().name == "numpy"


# ----- TINYNTK_BACKEND at import (fresh interpreters) -----------------------------------

def _python(code: str, backend: str):
    env = dict(os.environ, TINYNTK_BACKEND=backend, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-c", code], env=env, cwd=str(REPO),
                          capture_output=True, text=True, timeout=60)


def test_env_var_numpy_is_honoured():
    r = _python("import tinyntk as tn; print(tn.get_backend().name)", "numpy")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "numpy"


def test_env_var_cupy_without_cupy_fails_at_import_with_clear_message():
    # sys.modules['cupy'] = None simulates a machine without CuPy even where it is installed.
    code = "import sys; sys.modules['cupy'] = None; import tinyntk"
    r = _python(code, "cupy")
    assert r.returncode != 0
    assert "BackendUnavailable" in r.stderr
    assert "CuPy" in r.stderr and "pip install" in r.stderr


def test_env_var_unknown_name_fails_at_import():
    r = _python("import tinyntk", "tensorflow")
    assert r.returncode != 0
    assert "ValueError" in r.stderr and "numpy" in r.stderr
