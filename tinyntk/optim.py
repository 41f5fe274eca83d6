r"""Optimizers of Algorithm 1: full-batch gradient descent and minibatch SGD.

An optimizer is a small object with one main method, ``step(net, X, Y)``, which performs

.. math::  W_l^{(t+1)} = W_l^{(t)} - \eta\, \nabla_{W_l} L(W^{(t)})  \qquad (l = 1..L)

(Algorithm 1, line 4; line 9 for SGD with the minibatch loss) and returns
:math:`L(W^{(t)})` on the examples it used, as a 0-d array of the backend (no host sync).
With ``train_output=True`` the output layer ``V`` is updated the same way (section 4.3);
by default it stays at its initial value, as in the paper's analysis.

``step`` is two halves that a training loop may call separately: ``forward`` (the loss at
the current weights, caching what the backward pass needs) and ``update`` (the backward
pass and the step).  Between them the loop can look at the loss, e.g. stop on a NaN.

How the step is made cheap, without changing the maths:

* the output error is scaled by :math:`\eta` before the backward pass, so the backward
  pass (linear in the error) directly yields :math:`\eta\nabla_{W_l}L = (\eta\delta_l)^\top h_{l-1}`;
* all arrays (activations, masks, signals) are allocated once and reused;
* each layer takes its step in place as soon as its signal :math:`\delta_l` is known
  (:meth:`tinyntk.ReLUNet.backward_signals`), as one ``gemm`` that computes
  :math:`W_l - \delta_l^\top h_{l-1}` without storing the gradient
  (:func:`tinyntk.blas.descend`).

The previous weights are not kept: :func:`tinyntk.train` recovers them, exactly, when a
step diverges (it keeps a copy every few steps and replays the steps since).
"""
from __future__ import annotations

import numpy

from . import backend as B
from . import blas, checks
from . import losses


class GD:
    """Full-batch gradient descent, Algorithm 1 lines 3–5.

    Parameters
    ----------
    lr : float
        The step size :math:`\\eta` (Theorem 3.3 takes :math:`\\eta = O(k/(L^2 m))`).
    loss : str or loss object
        ``"square"`` (eq. 2.1) or ``"logistic"``; see :mod:`tinyntk.losses`.
    train_output : bool
        Also update ``V`` (section 4.3).  Default ``False``: hidden layers only.
    """

    def __init__(self, lr: float, loss="square", train_output: bool = False):
        self.lr = checks.positive_float("lr", lr)      # a positive finite step size
        self.loss = losses.get(loss)
        self.train_output = bool(train_output)
        self._cache = None      # activations, masks and signals of the last forward pass
        self._model = None      # ... and the model it was of
        self._E = None          # eta * dL/d out
        self._Y = None
        self._scratch = {}      # weight-shaped arrays, only where blas.descend needs one

    # Which examples a step uses: all of them.  SGD overrides this.
    def batch(self, X, Y):
        return X, Y

    def forward(self, net, X, Y):
        """:math:`L(W^{(t)})` on this step's examples (a 0-d array), caching activations."""
        Xb, Yb = self.batch(X, Y)
        if self._model is not net:      # a cache belongs to the model that filled it
            self._cache, self._model = None, net
        out, self._cache = net.forward(Xb, cache=self._cache if self._cache is not None else True,
                                       check=False)
        self._Y = Yb
        return self.loss.value(out, Yb)

    @property
    def outputs(self):
        """The outputs ``f(X_b)`` of the last :meth:`forward` (this step's examples), or None.
        Read-only: the array is reused by the next forward pass."""
        return None if self._cache is None else self._cache.out

    def update(self, net):
        """Backward pass on the cached forward pass, each trained layer stepping in place."""
        c = self._cache
        self._E = self.loss.grad(c.out, self._Y, scale=self.lr, out_array=self._E)  # eta dL/d out
        for l, delta, h_prev in net.backward_signals(c, self._E):
            W = net.W[l - 1]
            blas.descend(W, delta, h_prev, self._scratch_for(W))   # W_l - eta grad_{W_l} L
        if self.train_output:       # V <- V - E^T x_L (E = eta dL/d out); delta_L used the old V
            blas.descend(net.V, self._E, c.h[net.L], self._scratch_for(net.V))

    def _scratch_for(self, W):
        """``None`` where ``W`` can take the fused update (:func:`blas.fused_available`), else a
        reused array like ``W`` for :func:`blas.descend`'s product."""
        if blas.fused_available(W):
            return None
        key = (tuple(W.shape), W.dtype.str)
        if key not in self._scratch:
            self._scratch[key] = B.get_backend().xp.empty_like(W)
        return self._scratch[key]

    def step(self, net, X, Y):
        """One step of Algorithm 1; returns :math:`L(W^{(t)})` before the step.

        ``X`` and ``Y`` are checked and moved to the net's backend and dtype (cheap when
        they already are); :func:`tinyntk.train` checks once and calls the two halves.
        """
        X = net.check_input(X)
        Y = net.check_targets(Y, X.shape[0])
        self.loss.check_targets(Y)
        value = self.forward(net, X, Y)
        self.update(net)
        return value

    def state(self) -> dict:
        """What a checkpoint needs to continue this optimizer exactly (no arrays)."""
        return {"kind": type(self).__name__, "lr": self.lr, "loss": self.loss.name,
                "train_output": self.train_output}


class SGD(GD):
    """Minibatch SGD, Algorithm 1 lines 7–10.

    Each step draws a minibatch of ``batch_size`` distinct examples, uniformly at random
    (without replacement inside a batch, independently across steps), from the optimizer's
    own ``numpy.random.default_rng(seed)``.  The indices of a batch are sorted, which does
    not change the update and makes ``batch_size = n`` the same computation as :class:`GD`.
    The indices are drawn on the host, so CPU and GPU runs see the same batches.
    """

    def __init__(self, lr: float, batch_size: int, loss="square", train_output: bool = False,
                 seed=0):
        super().__init__(lr, loss, train_output)
        self.batch_size = checks.positive_int("batch_size", batch_size)
        self.rng = numpy.random.default_rng(checks.seed("seed", seed))
        self._Xb = self._Yb = None

    def batch(self, X, Y):
        n = X.shape[0]
        if self.batch_size > n:
            raise ValueError(f"batch_size = {self.batch_size} is larger than the n = {n} examples")
        idx = numpy.sort(self.rng.choice(n, size=self.batch_size, replace=False))
        xp = B.get_backend().xp
        idx = xp.asarray(idx)
        if self._Xb is None or self._Xb.shape[1] != X.shape[1] or self._Xb.dtype != X.dtype:
            self._Xb = xp.empty((self.batch_size, X.shape[1]), dtype=X.dtype)
            self._Yb = xp.empty((self.batch_size, Y.shape[1]), dtype=Y.dtype)
        xp.take(X, idx, axis=0, out=self._Xb)
        xp.take(Y, idx, axis=0, out=self._Yb)
        return self._Xb, self._Yb

    def state(self) -> dict:
        s = super().state()
        s["batch_size"] = self.batch_size
        s["rng"] = self.rng.bit_generator.state
        return s


OPTIMIZERS = {"gd": GD, "sgd": SGD}


def make(lr, loss="square", batch_size=None, train_output=False, seed=0):
    """GD when ``batch_size`` is None, else SGD with minibatches of ``batch_size``."""
    if batch_size is None:
        return GD(lr, loss=loss, train_output=train_output)
    return SGD(lr, batch_size, loss=loss, train_output=train_output, seed=seed)
