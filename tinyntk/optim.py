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
  pass (linear in the error) directly yields :math:`\eta\nabla_{W_l}L`;
* all arrays (activations, masks, gradients) are allocated once and reused;
* the new weights are written into a scratch set and the two sets are swapped, so the
  previous weights stay available: :meth:`GD.undo` restores them exactly, which is how
  ``train`` keeps the last finite weights when a step diverges.
"""
from __future__ import annotations

import numpy

from . import backend as B
from . import checks
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
        self._cache = None      # activations and masks of the last forward pass
        self._grads = None      # receives eta * gradient, then the new weights
        self._E = None          # eta * dL/d out
        self._Y = None
        self._can_undo = False

    # Which examples a step uses: all of them.  SGD overrides this.
    def batch(self, X, Y):
        return X, Y

    def forward(self, net, X, Y):
        """:math:`L(W^{(t)})` on this step's examples (a 0-d array), caching activations."""
        Xb, Yb = self.batch(X, Y)
        out, self._cache = net.forward(Xb, cache=self._cache if self._cache is not None else True,
                                       check=False)
        self._Y = Yb
        return self.loss.value(out, Yb)

    def update(self, net):
        """Backward pass on the cached forward pass, then the step on every trained layer."""
        if self._grads is None or self._grads.W[0].dtype != net.dtype:
            self._grads = net.zeros_like_weights()
        c, g = self._cache, self._grads
        self._E = self.loss.grad(c.out, self._Y, scale=self.lr, out_array=self._E)
        net.backward(c, self._E, grads=g, need_V=self.train_output)   # g = eta * grad
        xp = B.get_backend().xp
        for l in range(net.L):
            xp.subtract(net.W[l], g.W[l], out=g.W[l])          # W_l - eta grad_{W_l} L
            net.W[l], g.W[l] = g.W[l], net.W[l]                # g.W[l] keeps W_l^{(t)}
        if self.train_output:
            xp.subtract(net.V, g.V, out=g.V)
            net.V, g.V = g.V, net.V
        self._can_undo = True

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

    def undo(self, net) -> None:
        """Restore the weights from before the last :meth:`update`, exactly."""
        if not self._can_undo:
            raise RuntimeError("undo() needs a preceding update()")
        g = self._grads
        for l in range(net.L):
            net.W[l], g.W[l] = g.W[l], net.W[l]
        if self.train_output:
            net.V, g.V = g.V, net.V
        self._can_undo = False

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
