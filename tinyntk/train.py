"""The training loop: Algorithm 1 plus bookkeeping.

:func:`train` runs an optimizer from :mod:`tinyntk.optim` for a number of steps and
records, every ``record_every`` steps and always at the last step, the training loss and
whatever the probes of :mod:`tinyntk.diagnostics` measure (by default the trajectory
length ``‖W_l(t) − W_l(0)‖₂`` of every layer).  The loss is checked after every step: a
non-finite loss stops training with :class:`Diverged`, and the net keeps the last weights
whose loss was finite.
"""
from __future__ import annotations

import math

import numpy

from . import backend as B
from . import diagnostics
from . import optim as optimizers


class Diverged(FloatingPointError):
    """Training produced a non-finite loss; the net holds the last finite weights."""


# Non-finite values are train's business (it raises Diverged and keeps W^(t-1)), so NumPy's
# overflow/invalid warnings, fatal under `-W error` or seterr(all="raise"), must not escape
# mid-step and leave the net between two steps.
@numpy.errstate(all="ignore")
def train(net, X, Y, steps: int = 500, lr: float = 0.1, loss="square", batch_size=None,
          seed=0, train_output: bool = False, record_every: int = 1, probes=None,
          optimizer=None, callback=None) -> dict:
    """Train ``net`` in place with GD (``batch_size=None``) or minibatch SGD.

    Parameters
    ----------
    net : ReLUNet
        Updated in place: the hidden layers, and ``V`` too if ``train_output``.
    X, Y : arrays ``(n, d)`` and ``(n, k)``
        Training data (NumPy arrays are moved to the active backend once).
    steps : int
        Number of updates :math:`T`; the weights go from :math:`W^{(0)}` to :math:`W^{(T)}`.
    lr, loss, batch_size, seed, train_output
        Passed to :func:`tinyntk.optim.make`; ``seed`` drives SGD's minibatches.
    record_every : int
        Record at steps ``0, r, 2r, ...`` and always at step ``T``.
    probes : list of probes, optional
        Default ``[diagnostics.Distance()]``; each adds ``history[probe.name]``.
    optimizer : optional
        An optimizer object to use instead of building one from the arguments above.
    callback : callable, optional
        Called as ``callback(step, loss)`` at every recorded step (e.g. a progress bar).

    Returns
    -------
    dict
        ``"step"``: the recorded steps; ``"loss"``: the full training loss at each of them
        (starting with the initial loss at step 0); one entry per probe, e.g.
        ``"distance"``: per recorded step, the list of ``‖W_l(t) − W_l(0)‖₂``.
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be a non-negative integer, got {steps!r}")
    if isinstance(record_every, bool) or not isinstance(record_every, int) or record_every < 1:
        raise ValueError(f"record_every must be a positive integer, got {record_every!r}")
    X = net.check_input(X)
    Y = net.check_targets(Y, X.shape[0])
    opt = optimizer if optimizer is not None else optimizers.make(
        lr, loss=loss, batch_size=batch_size, train_output=train_output, seed=seed)
    opt.loss.check_targets(Y)
    if batch_size is not None and batch_size > X.shape[0]:
        raise ValueError(f"batch_size = {batch_size} is larger than the n = {X.shape[0]} examples")
    probes = [diagnostics.Distance()] if probes is None else list(probes)
    full_batch = type(opt).batch is optimizers.GD.batch

    xp = B.get_backend().xp
    state = diagnostics.TrainState(net=net, X=X, Y=Y, W0=[w.copy() for w in net.W],
                                   V0=net.V.copy(), loss=opt.loss)
    for probe in probes:
        if hasattr(probe, "start"):
            probe.start(state)
    history = {"step": [], "loss": []}
    history.update({probe.name: [] for probe in probes})
    arrays = (list(net.W), net.V)          # the caller's arrays, refilled at the end

    def record(step, value):
        state.step, state.loss_value = step, value
        history["step"].append(step)
        history["loss"].append(value)
        for probe in probes:
            history[probe.name].append(probe(state))
        if callback is not None:
            callback(step, value)

    def full_loss():
        return float(opt.loss.value(net.forward(X, check=False), Y))

    last = (None, None)     # (step, loss) of the last finite loss seen
    try:
        for t in range(steps + 1):
            # L(W^(t)) on the examples of step t (all of them for GD); at t = T, on all.
            value = float(opt.forward(net, X, Y)) if t < steps else full_loss()
            recording = t % record_every == 0 or t == steps
            if recording and math.isfinite(value) and not full_batch and t < steps:
                value = full_loss()                     # SGD: record the full training loss
            if not math.isfinite(value):
                if t > 0:
                    opt.undo(net)                       # back to W^(t-1), exactly
                raise Diverged(_divergence_message(t, value, opt.lr, last))
            last = (t, value)
            if recording:
                record(t, value)
            if t < steps:
                opt.update(net)                         # W^(t+1) = W^(t) - lr * grad
    finally:
        _restore_arrays(net, arrays, xp)
    return history


def _divergence_message(t, value, lr, last) -> str:
    step, loss = last
    kept = "its initial weights" if t == 0 else f"the weights of step {t - 1}"
    before = "" if step is None else f" (last finite loss {loss:.6g} at step {step})"
    return (f"training diverged: the loss became {value} at step {t} with lr = {lr:g}{before}; "
            f"the net keeps {kept}. Try a smaller lr, e.g. lr = {lr / 10:g}.")

def _restore_arrays(net, arrays, xp) -> None:
    """Copy the final weights back into the arrays the net had before training.

    The optimizer swaps weight arrays with its scratch arrays; this keeps ``net.W[l]``
    the same array objects the caller saw before ``train`` (one copy per layer at most).
    """
    W_before, V_before = arrays
    for l, w in enumerate(W_before):
        if net.W[l] is not w:
            xp.copyto(w, net.W[l])
            net.W[l] = w
    if net.V is not V_before:
        xp.copyto(V_before, net.V)
        net.V = V_before
