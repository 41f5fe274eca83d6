r"""Losses: the empirical loss of eq. (2.1), :math:`L(W) = \frac1n\sum_i \ell(\hat y_i, y_i)`.

A loss is a small object with two methods, ``value(out, Y)`` (a 0-d array of the
backend) and ``grad(out, Y, scale=1.0, out_array=None)`` (``scale · dL/d out``, ``(n, k)``,
written into ``out_array`` when one is given, a new array otherwise).
Adding a loss means writing one such class and registering it in :data:`LOSSES`.
Both methods keep the dtype of ``out``: every constant is a Python float.
"""
from __future__ import annotations

import math

from . import backend as B


class SquareLoss:
    r"""Square loss, eq. (2.1): :math:`L = \frac1n \sum_i \tfrac12 \|y_i - f_W(x_i)\|_2^2`,
    :math:`\partial L/\partial f_W(x_i) = (f_W(x_i) - y_i)/n`."""

    name = "square"

    def value(self, out, Y):
        xp = B.get_backend().xp
        r = out - Y
        return 0.5 * xp.vdot(r, r) / out.shape[0]

    def grad(self, out, Y, scale=1.0, out_array=None):
        xp = B.get_backend().xp
        E = xp.subtract(out, Y, out=out_array)
        E *= scale / out.shape[0]
        return E

    def check_targets(self, Y):
        """Square loss accepts any real targets."""


class LogisticLoss:
    r"""Logistic loss for ``k = 1`` and labels :math:`y_i \in \{-1, +1\}`:
    :math:`L = \frac1n \sum_i \log(1 + e^{-y_i f_W(x_i)})`.

    Computed as ``logaddexp(0, -y f)`` so that large margins of either sign neither
    overflow nor warn; the derivative is :math:`-y_i\,\mathrm{sigmoid}(-y_i f_W(x_i))/n`
    with the sigmoid written as ``exp(-logaddexp(0, -z))``, which is stable too.
    """

    name = "logistic"

    def value(self, out, Y):
        xp = B.get_backend().xp
        return xp.logaddexp(0.0, -Y * out).sum() / out.shape[0]

    def grad(self, out, Y, scale=1.0, out_array=None):
        xp = B.get_backend().xp
        margin = Y * out                                    # y_i f(x_i)
        s = xp.exp(-xp.logaddexp(0.0, margin))              # sigmoid(-y_i f(x_i))
        E = xp.multiply(s, Y, out=out_array)
        E *= -scale / out.shape[0]
        return E

    def check_targets(self, Y):
        xp = B.get_backend().xp
        if Y.shape[1] != 1:
            raise ValueError(f"the logistic loss needs k = 1 output, got Y with k = {Y.shape[1]}")
        if not bool(xp.all(xp.abs(Y) == 1.0)):
            raise ValueError("the logistic loss needs labels Y in {-1, +1}")


LOSSES = {"square": SquareLoss, "logistic": LogisticLoss}


def loss_and_grad(net, X, Y, loss="square", need_V: bool = True):
    """``(L(W), grads)``: the loss (a Python float) and the hand-written gradients.

    ``grads.W[l]`` is :math:`\\nabla_{W_{l+1}} L` and ``grads.V`` is :math:`\\nabla_V L`.
    """
    loss = get(loss)
    X = net.check_input(X)                      # every check before any work
    Y = net.check_targets(Y, X.shape[0])
    loss.check_targets(Y)
    out, cache = net.forward(X, cache=True, check=False)
    net.check_output(out, X)
    E = loss.grad(out, Y)
    grads = net.backward(cache, E, need_V=need_V)
    if not need_V:
        grads.V = None          # not computed: None, not a misleading zero gradient
    value = float(loss.value(out, Y))
    if not (math.isfinite(value) and all(_finite(g) for g in grads)):
        raise ValueError(f"the {loss.name} loss or its gradient overflowed to inf/NaN "
                         f"(loss = {value}); rescale X or Y (the paper takes ||x_i|| = 1)")
    return value, grads


def _finite(a) -> bool:
    return a is None or bool(B.array_module(a).isfinite(a).all())



def get(loss):
    """A loss object from its name in :data:`LOSSES`, or a loss object as it is."""
    if isinstance(loss, str):
        if loss.lower() in LOSSES:
            return LOSSES[loss.lower()]()
        raise ValueError(f"unknown loss {loss!r}: expected one of {', '.join(LOSSES)} or a loss object")
    if isinstance(loss, type) and callable(getattr(loss, "value", None)) \
            and callable(getattr(loss, "grad", None)):
        loss = loss()                                   # a loss class: use an instance
    if callable(getattr(loss, "value", None)) and callable(getattr(loss, "grad", None)):
        if not isinstance(getattr(loss, "name", None), str):
            try:
                loss.name = type(loss).__name__
            except AttributeError:
                pass
        if not callable(getattr(loss, "check_targets", None)):
            try:
                loss.check_targets = _accept_targets
            except AttributeError:
                pass
        return loss
    raise TypeError(f"loss must be one of {', '.join(repr(k) for k in LOSSES)} or an object with "
                    f"value(out, Y) and grad(out, Y, scale, out_array) methods, got {loss!r}")


def _accept_targets(Y) -> None:
    """Loss objects without their own ``check_targets`` accept any real targets."""
