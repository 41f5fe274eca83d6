"""Independent NumPy reference implementations the tests compare tinyntk with.

Written straight from the paper, on host float64 arrays, sharing no code with the
package: ``f_W(x) = V σ(W_L σ(… σ(W_1 x)))`` (section 2), the losses of eq. (2.1), and
a central-difference gradient.  A bug in tinyntk's backward pass *and* in its own
``gradcheck`` module cannot hide behind each other here.
"""
from __future__ import annotations

import numpy as np


def forward(W, V, X):
    """``(n, k)`` outputs, one example per row."""
    h = np.asarray(X, dtype=np.float64)
    for W_l in W:
        h = np.maximum(h @ np.asarray(W_l).T, 0.0)
    return h @ np.asarray(V).T


def preactivations(W, X):
    """``[W_1 x, W_2 x_1, ...]`` as ``(n, m)`` arrays (``z_l`` with one example per row)."""
    h, zs = np.asarray(X, dtype=np.float64), []
    for W_l in W:
        z = h @ np.asarray(W_l).T
        zs.append(z)
        h = np.maximum(z, 0.0)
    return zs


def logistic(z):
    """``log(1 + exp(-z))`` for a margin ``z``, without logaddexp: the textbook stable split
    ``log1p(exp(-z))`` for ``z >= 0`` and ``-z + log1p(exp(z))`` for ``z < 0``."""
    z = np.asarray(z, dtype=np.float64)
    out = np.empty_like(z)
    pos = z >= 0
    out[pos] = np.log1p(np.exp(-z[pos]))
    out[~pos] = -z[~pos] + np.log1p(np.exp(z[~pos]))
    return out


def sigmoid_neg(z):
    """``1 / (1 + exp(z))`` (the sigmoid of ``-z``), split by sign so nothing overflows."""
    z = np.asarray(z, dtype=np.float64)
    out = np.empty_like(z)
    pos = z >= 0
    e = np.exp(-z[pos])
    out[pos] = e / (1.0 + e)
    out[~pos] = 1.0 / (1.0 + np.exp(z[~pos]))
    return out


def loss_value(out, Y, loss="square"):
    """Eq. (2.1): ``(1/n) Σ_i ℓ(f(x_i), y_i)`` with the square or the logistic ``ℓ``."""
    out, Y = np.asarray(out, dtype=np.float64), np.asarray(Y, dtype=np.float64)
    n = out.shape[0]
    if loss == "square":
        return float(sum(0.5 * np.sum((Y[i] - out[i]) ** 2) for i in range(n)) / n)
    if loss == "logistic":
        return float(np.sum(logistic(Y * out)) / n)
    raise ValueError(loss)


def loss(W, V, X, Y, kind="square"):
    return loss_value(forward(W, V, X), Y, kind)


def linearized_forward(W0, V0, W, V, X):
    """The first-order Taylor model at ``(W0, V0)``, ``f(W0) + J(W0)·(W − W0, V − V0)``,
    one example at a time with column vectors and diagonal mask matrices:
    ``dh_l = D_l ((W_l − W0_l) h_{l−1} + W0_l dh_{l−1})``, ``f = V h_L + V0 dh_L``."""
    out = []
    for x in np.asarray(X, dtype=np.float64):
        h, dh = x, np.zeros_like(x)
        for W0_l, W_l in zip(W0, W):
            z = np.asarray(W0_l) @ h
            D = np.diag((z > 0).astype(np.float64))
            dh = D @ ((np.asarray(W_l) - W0_l) @ h + np.asarray(W0_l) @ dh)
            h = D @ z
        out.append(np.asarray(V) @ h + np.asarray(V0) @ dh)
    return np.array(out)


def finite_difference_grads(W, V, X, Y, kind="square", eps=1e-4, forward_fn=forward):
    """Central differences ``(L(θ+ε) − L(θ−ε)) / 2ε`` for every entry of every W_l and V,
    of the loss of ``forward_fn(W, V, X)`` (default: the net)."""
    W = [np.array(w, dtype=np.float64) for w in W]
    V = np.array(V, dtype=np.float64)
    grads = []
    for A in W + [V]:
        G = np.zeros_like(A)
        for idx in np.ndindex(A.shape):
            orig = A[idx]
            A[idx] = orig + eps
            plus = loss_value(forward_fn(W, V, X), Y, kind)
            A[idx] = orig - eps
            minus = loss_value(forward_fn(W, V, X), Y, kind)
            A[idx] = orig
            G[idx] = (plus - minus) / (2 * eps)
        grads.append(G)
    return grads[:-1], grads[-1]
