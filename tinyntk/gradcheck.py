r"""A central-difference gradient checker for any net, loss and data.

For every weight entry :math:`\theta`, the hand-written gradient is compared with

.. math::  \frac{L(\theta + \varepsilon) - L(\theta - \varepsilon)}{2\varepsilon},

and the error of an entry is :math:`|g_{fd} - g_{bp}| / \max(|g_{fd}|, |g_{bp}|, s)`
where the floor :math:`s = 10^{-3}\max_j |g_{bp,j}|` keeps entries that are (nearly) zero
in both from dividing by zero.  Why this floor: in float64 the central difference carries
a rounding error of about :math:`10^{-16} L/\varepsilon` (:math:`10^{-12}L` at the default
:math:`\varepsilon = 10^{-4}`), so relative errors of entries smaller than
:math:`10^{-3}` of the largest would measure rounding, not the backward pass.

Away from the ReLU kink the net is a polynomial in any single weight, so the central
difference is exact up to :math:`O(\varepsilon^2)`; a perturbation that flips an
activation breaks that, which is why the result reports the smallest
:math:`|\text{pre-activation}|` (keep it well above :math:`\varepsilon`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy

from . import backend as B
from . import checks
from . import losses
from .linearized import jacobian_net
from .losses import loss_and_grad


@dataclass
class GradCheckResult:
    max_error: float          # worst relative error over all checked entries
    where: tuple              # (parameter name, index) of the worst entry, e.g. ("W[1]", (2, 0))
    numeric: float            # the central difference there
    analytic: float           # the hand-written gradient there
    checked: int              # number of entries compared
    min_abs_preactivation: float   # distance of the nearest pre-activation to the kink

    def __str__(self):
        return (f"max relative error {self.max_error:.3e} at {self.where[0]}{list(self.where[1])} "
                f"(numeric {self.numeric:.6e}, analytic {self.analytic:.6e}; {self.checked} entries; "
                f"min |pre-activation| {self.min_abs_preactivation:.3e})")


def _min_abs_preactivation(net, X) -> float:
    """How far the nearest pre-activation is from the kink; ``inf`` for a model whose
    masks do not move with its weights (a linearized model: frozen at W(0))."""
    if jacobian_net(net) is not net:
        return math.inf
    _, cache = net.forward(X, cache=True)
    pre = [B.to_numpy(cache.h[l - 1] @ W.T) for l, W in enumerate(net.W, start=1)]
    return float(min(numpy.abs(z).min() for z in pre))


def check_gradients(net, X, Y, loss="square", eps: float = 1e-4, max_entries: int | None = None,
                    seed=0) -> GradCheckResult:
    """Compare the backward pass of ``net`` with central differences, entry by entry.

    ``max_entries`` checks a random subset of that many entries per parameter (drawn from
    ``seed``) instead of all of them.  The net is left unchanged.
    """
    loss = losses.get(loss)
    X = net.check_input(X)
    Y = net.check_targets(Y, X.shape[0])
    loss.check_targets(Y)
    eps = checks.positive_float("eps", eps)
    if max_entries is not None:
        max_entries = checks.positive_int("max_entries", max_entries)
    seed = checks.seed("seed", seed)
    _, grads = loss_and_grad(net, X, Y, loss)
    min_pre = _min_abs_preactivation(net, X)
    rng = numpy.random.default_rng(seed)

    params = [(f"W[{l}]", net.W, l) for l in range(net.L)] + [("V", None, None)]
    analytic = {f"W[{l}]": B.to_numpy(g) for l, g in enumerate(grads.W)}
    analytic["V"] = B.to_numpy(grads.V)
    scale = max(float(numpy.abs(a).max()) for a in analytic.values())
    floor = max(1e-3 * scale, numpy.finfo(float).tiny)

    def value():
        return float(loss.value(net.forward(X, check=False), Y))

    worst = GradCheckResult(0.0, ("W[0]", (0, 0)), 0.0, 0.0, 0, min_pre)
    checked = 0
    for name, _, l in params:
        A = net.V if name == "V" else net.W[l]
        host = B.to_numpy(A).copy()
        indices = list(numpy.ndindex(host.shape))
        if max_entries is not None and len(indices) > max_entries:
            pick = rng.choice(len(indices), size=max_entries, replace=False)
            indices = [indices[i] for i in pick]
        for idx in indices:
            original = host[idx]
            A[idx] = original + eps
            plus = value()
            A[idx] = original - eps
            minus = value()
            A[idx] = original
            numeric = (plus - minus) / (2 * eps)
            exact = float(analytic[name][idx])
            err = abs(numeric - exact) / max(abs(numeric), abs(exact), floor)
            checked += 1
            if err > worst.max_error or checked == 1:
                worst = GradCheckResult(err, (name, idx), numeric, exact, 0, min_pre)
    worst.checked = checked
    return worst
