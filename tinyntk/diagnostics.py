r"""Diagnostics: the quantities the proofs reason about, measured on a real net.

A *probe* is a small object with a ``name``, an optional ``start(state)`` called once
before training, and ``__call__(state)`` returning a host value (a float or a list of
floats) that :func:`tinyntk.train` appends to ``history[name]`` at every recorded step.
``state`` is a :class:`TrainState`.  Every probe can also be used on its own.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy

from . import backend as B


@dataclass
class TrainState:
    """What a probe may look at: the net now, its initial weights, the data, the step."""

    net: object
    X: object
    Y: object
    W0: list
    V0: object
    loss: object          # the loss object in use
    step: int = 0
    loss_value: float = float("nan")   # L(W^{(t)}) on the whole training set


def spectral_norm_diff(A, A0, v=None, tol: float = 1e-6, max_iter: int = 100):
    r""":math:`\|A - A_0\|_2` by power iteration on :math:`(A-A_0)^\top (A-A_0)`.

    Each iteration applies :math:`(A-A_0)^\top (A-A_0)` to ``v`` with
    :func:`_apply_gram_of_difference`, which never forms the whole difference.  ``v``
    warm-starts the iteration (pass the vector returned by the previous call: along a
    training run the top singular vector moves slowly and two to four iterations suffice).
    Stops when the estimate changes by less than ``tol`` relative.  Returns ``(norm, v)``;
    ``norm`` is a Python float and a lower bound that converges to the spectral norm.
    """
    xp = B.get_backend().xp
    if v is None:
        v = xp.asarray(numpy.random.default_rng(0).standard_normal(A.shape[1]), dtype=A.dtype)
    v = v / xp.linalg.norm(v)
    estimate = 0.0
    for _ in range(max_iter):
        w = _apply_gram_of_difference(A, A0, v)   # (A - A0)^T (A - A0) v
        norm_w = float(xp.linalg.norm(w))
        new = float(numpy.sqrt(norm_w))     # ||(A-A0)^T(A-A0) v|| -> sigma_max^2
        if norm_w == 0.0:
            return 0.0, v
        v = w / norm_w
        if abs(new - estimate) <= tol * new:
            estimate = new
            break
        estimate = new
    return estimate, v


def _apply_gram_of_difference(A, A0, v):
    """``(A - A0)^T (A - A0) v``, reading ``A`` and ``A0`` once each.

    On the CPU the difference is formed a block of rows at a time, in a scratch block
    small enough (512 KiB) to stay in cache:
    :math:`\sum_b D_b^\top (D_b v)` with :math:`D_b = A_b - A_{0,b}`.  Reading the
    weights twice instead of four times (``A @ v``, ``A0 @ v``, ``A.T @ u``, ``A0.T @ u``)
    halves the cost of an iteration, which is bound by memory traffic.  On a GPU, where
    one big kernel beats many small ones, the block is the whole matrix.
    """
    xp = B.get_backend().xp
    rows = max(1, (1 << 19) // (A.shape[1] * A.itemsize)) if xp is numpy else A.shape[0]
    D = xp.empty((min(rows, A.shape[0]), A.shape[1]), dtype=A.dtype)
    w = xp.zeros_like(v)
    for i in range(0, A.shape[0], rows):
        D_b = D[: min(rows, A.shape[0] - i)]
        xp.subtract(A[i:i + rows], A0[i:i + rows], out=D_b)     # rows i.. of A - A0
        w += D_b.T @ (D_b @ v)
    return w


class Distance:
    r"""Trajectory length :math:`\|W_l^{(t)} - W_l^{(0)}\|_2` for every hidden layer
    (Lemma 4.2), by warm-started power iteration (:func:`spectral_norm_diff`)."""

    name = "distance"

    def __init__(self, tol: float = 1e-6, max_iter: int = 100):
        self.tol, self.max_iter = tol, max_iter
        self._v = None

    def start(self, state: TrainState) -> None:
        self._v = [None] * state.net.L

    def __call__(self, state: TrainState) -> list:
        if self._v is None:
            self.start(state)
        out = []
        for l, (W, W0) in enumerate(zip(state.net.W, state.W0)):
            norm, self._v[l] = spectral_norm_diff(W, W0, self._v[l], self.tol, self.max_iter)
            out.append(norm)
        return out
