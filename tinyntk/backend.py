"""The backend switch: NumPy on the CPU, CuPy on a GPU.

One explicit object (:class:`Backend`, a name and an array module ``xp``) is the only
global state in tinyntk.  Every array operation in the package goes through
``get_backend().xp``; data enters once through :func:`asarray` and leaves once through
:func:`to_numpy`.

    >>> import tinyntk as tn
    >>> tn.set_backend("numpy")
    >>> with tn.use_backend("numpy"):
    ...     tn.get_backend().name
    'numpy'

``TINYNTK_BACKEND=cupy`` in the environment selects the default at import.  Asking for
CuPy where CuPy or a GPU is missing raises :class:`BackendUnavailable`; there is never a
silent fallback to the CPU.
"""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from types import ModuleType

import numpy

KNOWN_BACKENDS = ("numpy", "cupy")


class BackendUnavailable(RuntimeError):
    """The requested backend cannot run here; the message says what is missing."""


@dataclass(frozen=True)
class Backend:
    """A backend is a name and the array module that implements it."""

    name: str
    xp: ModuleType

    def __repr__(self) -> str:
        return f"Backend({self.name!r})"


def _load_cupy() -> ModuleType:
    try:
        import cupy
    except ImportError as exc:
        raise BackendUnavailable(
            "the 'cupy' backend needs CuPy, which is not installed: "
            "install it with `pip install tinyntk[gpu]` (CUDA 12) or the cupy-cudaXXx "
            f"wheel matching your CUDA driver ({exc})"
        ) from None
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # CUDA driver missing or broken
        raise BackendUnavailable(
            "the 'cupy' backend needs an NVIDIA GPU, but CuPy found no usable CUDA device "
            f"({type(exc).__name__}: {exc}); run on a machine with a GPU and driver, or "
            "use set_backend('numpy')"
        ) from None
    if count < 1:
        raise BackendUnavailable(
            "the 'cupy' backend needs an NVIDIA GPU, but CuPy sees 0 CUDA devices; "
            "run on a machine with a GPU, or use set_backend('numpy')"
        )
    return cupy


def _make_backend(name: str) -> Backend:
    if not isinstance(name, str) or name.lower() not in KNOWN_BACKENDS:
        raise ValueError(
            f"unknown backend {name!r}: expected one of {', '.join(KNOWN_BACKENDS)}"
        )
    name = name.lower()
    if name == "numpy":
        return Backend("numpy", numpy)
    return Backend("cupy", _load_cupy())


_active: Backend = Backend("numpy", numpy)


def get_backend() -> Backend:
    """The active backend (``.name`` is ``"numpy"`` or ``"cupy"``, ``.xp`` its module)."""
    return _active


def set_backend(name: str) -> Backend:
    """Make ``name`` the active backend and return it.

    Raises :class:`BackendUnavailable` (and keeps the previous backend) when CuPy or a GPU
    is missing, and ``ValueError`` for a name that is not a backend.
    """
    global _active
    _active = _make_backend(name)
    return _active


@contextlib.contextmanager
def use_backend(name: str):
    """Scoped switch: ``with use_backend("cupy"): ...`` restores the previous backend."""
    global _active
    previous = _active
    backend = set_backend(name)
    try:
        yield backend
    finally:
        _active = previous


def to_numpy(a) -> numpy.ndarray:
    """A host ``numpy.ndarray`` from an array of any backend (the one exit to the host)."""
    if isinstance(a, numpy.ndarray):
        return a
    get = getattr(a, "get", None)
    if callable(get):  # cupy.ndarray
        return get()
    return numpy.asarray(a)


def asarray(a, dtype=None):
    """``a`` as an array of the active backend (moved to the device once, if needed)."""
    xp = _active.xp
    if xp is numpy:
        a = to_numpy(a) if not isinstance(a, (list, tuple, float, int)) else a
    return xp.asarray(a, dtype=dtype)


def array_module(a) -> ModuleType:
    """The array module that owns ``a`` (NumPy or CuPy), whatever backend is active."""
    if isinstance(a, numpy.ndarray):
        return numpy
    module = type(a).__module__.split(".")[0]
    if module == "cupy":
        import cupy

        return cupy
    return numpy


def _from_environment() -> None:
    name = os.environ.get("TINYNTK_BACKEND", "").strip()
    if name:
        set_backend(name)


_from_environment()
