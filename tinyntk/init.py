"""Initializers: functions ``(rng, d, m, k, L) -> (W, V)`` returning host NumPy arrays.

All draws come from the caller's ``numpy.random.Generator``; :meth:`ReLUNet.init` casts
the result to the net's dtype and moves it to the active backend once, so a seed gives the
same starting point on the CPU and the GPU.  Any function with this signature can be
passed as ``init=`` to :meth:`tinyntk.ReLUNet.init`.
"""
from __future__ import annotations

import numpy


def paper(rng: numpy.random.Generator, d: int, m: int, k: int, L: int):
    r"""Algorithm 1, line 2: every row of :math:`W_l` is :math:`N(0, \tfrac{2}{m} I)` and
    every row of :math:`V` is :math:`N(0, \tfrac{1}{k} I)`.

    Note the first layer also uses variance :math:`2/m` (not :math:`2/d`): with
    :math:`\|x\| = 1` its pre-activations have variance :math:`2/m`.  Drawn in the order
    ``W_1, ..., W_L, V``.
    """
    W = [rng.standard_normal((m, d)) * numpy.sqrt(2.0 / m)]
    W += [rng.standard_normal((m, m)) * numpy.sqrt(2.0 / m) for _ in range(L - 1)]
    V = rng.standard_normal((k, m)) * numpy.sqrt(1.0 / k)
    return W, V


def he(rng: numpy.random.Generator, d: int, m: int, k: int, L: int):
    r"""He/Kaiming normal (He et al. 2015): entries of a layer with fan-in ``f`` are
    :math:`N(0, 2/f)` for the ReLU layers and :math:`N(0, 1/m)` for the linear output ``V``.
    """
    W = [rng.standard_normal((m, d)) * numpy.sqrt(2.0 / d)]
    W += [rng.standard_normal((m, m)) * numpy.sqrt(2.0 / m) for _ in range(L - 1)]
    V = rng.standard_normal((k, m)) * numpy.sqrt(1.0 / m)
    return W, V


INITIALIZERS = {"paper": paper, "algorithm1": paper, "he": he, "kaiming": he}


def get(init):
    """An initializer from its name in :data:`INITIALIZERS`, or a callable as it is."""
    if callable(init):
        return init
    if isinstance(init, str) and init.lower() in INITIALIZERS:
        return INITIALIZERS[init.lower()]
    raise ValueError(
        f"unknown initializer {init!r}: expected one of {', '.join(sorted(INITIALIZERS))} "
        "or a function (rng, d, m, k, L) -> (W, V)"
    )
