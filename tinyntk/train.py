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
import os
from dataclasses import dataclass, field

import numpy

from . import backend as B
from . import checkpoint as checkpoint_io
from . import checks, diagnostics, stability, theory
from . import optim as optimizers
from .linearized import jacobian_net
from .network import check_model, nonfinite_weights


class Diverged(FloatingPointError):
    """Training produced a non-finite loss; the net holds the last finite weights.

    Attributes (set by :func:`train`): ``step`` (where the loss became non-finite), ``lr``,
    ``last_step``/``last_loss`` (the last finite loss seen, or None), ``suggested_lr``
    and ``stability_bound`` (``2n/λ_max`` of the empirical NTK at ``W(0)``, or None where
    it was too costly, n > 2048).
    """

    step = last_step = last_loss = lr = suggested_lr = stability_bound = None


# Non-finite values are train's business (it raises Diverged and keeps W^(t-1)), so NumPy's
# overflow/invalid warnings, fatal under `-W error` or seterr(all="raise"), must not escape
# mid-step and leave the net between two steps.
@numpy.errstate(all="ignore")
def train(net, X, Y, steps: int = 500, lr="auto", loss="square", batch_size=None,
          seed=0, train_output: bool = False, record_every: int = 1, probes=None,
          optimizer=None, callback=None, checkpoint=None, checkpoint_every=None,
          resume=None, stop_below=None) -> dict:
    """Train ``net`` in place with GD (``batch_size=None``) or minibatch SGD.

    Parameters
    ----------
    net : ReLUNet, or any model with the network's protocol
        Updated in place: the hidden layers, and ``V`` too if ``train_output``.  A
        linearized net (:func:`tinyntk.linearize`) trains the same way; the protocol is
        :data:`tinyntk.network.MODEL_PROTOCOL`.
    X, Y : arrays ``(n, d)`` and ``(n, k)``
        Training data (NumPy arrays are moved to the active backend once).  Rows off the
        unit sphere train, with one :class:`~tinyntk.checks.AssumptionWarning`.
    steps : int
        Number of updates :math:`T \\ge 0`; the weights go from :math:`W^{(0)}` to
        :math:`W^{(T)}` (``steps=0`` records the initial loss and changes nothing).
    lr : float or "auto"
        The step size :math:`\\eta`.  ``"auto"`` (the default) is half the largest step
        that is stable near :math:`W^{(0)}`, from the empirical NTK of this net on ``X``
        (:func:`tinyntk.stability.auto_lr`): :math:`n/\\lambda_{\\max}(\\Theta_0)` for the
        square loss, :math:`4n/\\lambda_{\\max}(\\Theta_0)` for the logistic loss, with
        ``n`` replaced by ``batch_size`` for SGD (half-stable for every minibatch).  That keeps
        training in the kernel regime and is Theorem 3.3's scale
        :math:`\\eta = c\\,k/(L^2 m)` with ``c`` about 10–30; it costs about one GD step
        before training.  On resume, ``"auto"`` continues with the interrupted run's
        step size.  A number is used as given.
    loss, batch_size, seed, train_output
        Passed to :func:`tinyntk.optim.make`; ``seed`` drives SGD's minibatches.
    record_every : int
        Record at steps ``0, r, 2r, ...`` and always at step ``T``.
    probes : list of probes, optional
        Default ``[diagnostics.Distance()]``; each adds ``history[probe.name]``.
    optimizer : optional
        An optimizer object to use instead of building one from the arguments above
        (the names ``"gd"`` and ``"sgd"`` are accepted too: ``"sgd"`` needs ``batch_size``).
    callback : callable, optional
        Called as ``callback(step, loss)`` at every recorded step (e.g. a progress bar).
    stop_below : float, optional
        Stop early at the first recorded step whose training loss is ≤ ``stop_below``
        (e.g. ``eps * L(W(0))`` to count the iterations to ε of Theorem 3.3).  The
        history then ends at that step, which describes the final weights.
    checkpoint : path, optional
        Write a training checkpoint (``.npz``, atomically; :mod:`tinyntk.checkpoint`)
        there every ``checkpoint_every`` steps and when training ends.
    checkpoint_every : int, optional
        Steps between checkpoints (needs ``checkpoint``); default: only at the end.
    resume : path or True, optional
        Continue the run saved in this checkpoint (``True``: in ``checkpoint`` if that file
        exists, else start afresh).  The net's weights, ``W(0)``, the optimizer (SGD's
        random state), the probes and the history are restored; the other arguments
        and the data must be those of the interrupted run.  On NumPy the result is
        bit-identical to an uninterrupted run.

    Returns
    -------
    dict
        ``"step"``: the recorded steps; ``"loss"``: the full training loss at each of them
        (starting with the initial loss at step 0); one entry per probe, e.g.
        ``"distance"``: per recorded step, the list of ``‖W_l(t) − W_l(0)‖₂``; and two
        numbers: ``"lr"``, the step size used, and ``"c"``, its constant in
        :math:`\\eta = c\\,k/(L^2 m)` (:func:`tinyntk.theory.paper_constant`).

    Raises
    ------
    ValueError, TypeError
        For a bad argument, before anything changes (see :mod:`tinyntk.checks`).
    Diverged
        When the loss becomes non-finite; ``net`` keeps the last finite weights and the
        error carries ``step``, ``last_loss`` and a ``suggested_lr``.
    """
    run = prepare(net, X, Y, steps=steps, lr=lr, loss=loss, batch_size=batch_size, seed=seed,
                  train_output=train_output, record_every=record_every, probes=probes,
                  optimizer=optimizer, callback=callback, checkpoint=checkpoint,
                  checkpoint_every=checkpoint_every, resume=resume, stop_below=stop_below,
                  stacklevel=5)                 # (unit_rows, prepare, train, errstate, caller)
    return loop(run)


def loop(run: "Run") -> dict:
    """Algorithm 1's loop over a prepared :class:`Run`: for t = 0..T, the loss of
    :math:`W^{(t)}`, a record, and the step to :math:`W^{(t+1)}`; returns the history."""
    net, opt, X, Y, T = run.net, run.opt, run.X, run.Y, run.steps
    last = run.last                     # (step, loss) of the last finite loss seen
    random_state = None
    for t in range(run.first, T + 1):
        keeping = t < T and run.rewind.due(t)          # (W^(T) is never gone back to)
        if keeping:
            random_state = _random_state(opt)          # before step t draws its minibatch
        # L(W^(t)) on the examples of step t (all of them for GD); at t = T, on all.
        value = float(opt.forward(net, X, Y)) if t < T else run.full_loss()
        recording = t % run.record_every == 0 or t == T
        if recording and math.isfinite(value) and not run.full_batch and t < T:
            value = run.full_loss()                    # SGD: record the full training loss
        if not math.isfinite(value):
            if t > run.first:
                run.rewind.back_to(t - 1, opt, X, Y)   # W^(t-1), exactly
            raise _diverged(t, value, opt, last, run, t - 1 if t > run.first else t)
        if keeping:
            run.rewind.keep(t, random_state)           # W^(t), whose loss is finite
        last = (t, value)
        if recording:
            run.record(t, value)
            if run.stop_below is not None and value <= run.stop_below:
                break                                  # reached the target loss
        if t < T:
            opt.update(net)                            # W^(t+1) = W^(t) - lr * grad
            every = run.ckpt.every
            if every and (t + 1) % every == 0 and t + 1 < T:
                run.save(t + 1)                        # weights W^(t+1), records up to t
    if run.ckpt.path:
        run.save(T + 1)                                # a finished run
    return run.history


@dataclass
class Run:
    """A training run ready for :func:`loop`: checked data, the model, its optimizer and
    probes, ``W(0)``, the history so far, and where the loop starts (``first``)."""

    net: object
    X: object
    Y: object
    opt: object
    probes: list
    steps: int
    record_every: int
    callback: object
    stop_below: object
    ckpt: "_CheckpointArgs"
    args: dict
    data_id: object
    full_batch: bool
    W0: list = None                 # set by _start: the weights at step 0 of the run
    V0: object = None
    history: dict = field(default_factory=dict)
    first: int = 0
    last: tuple = (None, None)
    state: object = None
    rewind: object = None

    def record(self, step, value) -> None:
        """Append step ``step``'s loss and every probe's measurement to the history."""
        self.state.step, self.state.loss_value = step, value
        if self.full_batch and step < self.steps:      # GD: this step's forward saw all of X
            self.state.outputs = getattr(self.opt, "outputs", None)
        self.history["step"].append(step)
        self.history["loss"].append(value)
        for probe in self.probes:
            self.history[probe.name].append(probe(self.state))
        if self.callback is not None:
            self.callback(step, value)

    def full_loss(self) -> float:
        """The training loss on all examples at the current weights (whose outputs the
        probes then see as ``state.outputs``)."""
        self.state.outputs = self.net.forward(self.X, check=False)
        return float(self.opt.loss.value(self.state.outputs, self.Y))

    def save(self, next_step) -> None:
        checkpoint_io.save_state(self.ckpt.path, net=self.net, W0=self.W0, V0=self.V0,
                                 optimizer=self.opt, history=self.history, step=next_step,
                                 args=self.args, probes=self.probes, data=self.data_id)


def prepare(net, X, Y, steps=500, lr="auto", loss="square", batch_size=None, seed=0,
            train_output=False, record_every=1, probes=None, optimizer=None, callback=None,
            checkpoint=None, checkpoint_every=None, resume=None, stop_below=None,
            stacklevel=3) -> Run:
    """Check every argument of :func:`train` (nothing changes before they pass), build the
    optimizer and probes, restore a checkpoint to resume from, and start the probes.
    ``stacklevel`` is where the Assumption 3.1 warning points (3: the caller of this)."""
    check_model(net, "net")
    steps = checks.positive_int("steps", steps, minimum=0)   # 0: just record W(0)
    record_every = checks.positive_int("record_every", record_every)
    auto = _wants_auto_lr(lr, optimizer)
    # lr="auto" needs the checked data: the optimizer gets its step size once they pass.
    opt = _optimizer(optimizer, 1.0 if auto else lr, loss, batch_size, train_output, seed)
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable as callback(step, loss), got {callback!r}")
    probes = [diagnostics.Distance()] if probes is None else list(probes)
    for probe in probes:
        if not (callable(probe) and isinstance(getattr(probe, "name", None), str)):
            raise TypeError(f"every probe must be callable with a str .name, got {probe!r}")
        if probe.name in HISTORY_KEYS:
            raise ValueError(f"a probe is named {probe.name!r}, which the history uses for "
                             f"itself ({', '.join(HISTORY_KEYS)}): give the probe another name")
    ckpt = _checkpoint_args(checkpoint, checkpoint_every, resume)
    if stop_below is not None:
        stop_below = checks.positive_float("stop_below", stop_below)
    X = net.check_input(X)
    Y = net.check_targets(Y, X.shape[0])
    bad = nonfinite_weights(net)
    if bad is not None:
        raise ValueError(f"net.{bad} contains NaN or inf: re-initialize the net")
    opt.loss.check_targets(Y)
    B_size = getattr(opt, "batch_size", None)
    if B_size is not None and B_size > X.shape[0]:
        raise ValueError(f"batch_size = {B_size} is larger than the n = {X.shape[0]} examples")
    args = {"steps": steps, "lr": opt.lr, "loss": opt.loss.name, "batch_size": B_size,
            "seed": seed if seed is None or checks.is_int(seed) else repr(seed),
            "train_output": bool(opt.train_output), "record_every": record_every}
    data_id = checkpoint_io.fingerprint(X, Y) if ckpt.path or ckpt.resume else None
    saved = (_load_resume(ckpt.resume, net, args, data_id, probes, skip=("lr",) if auto else ())
             if ckpt.resume else None)
    if auto:                                  # every check has passed: now the work
        opt.lr = (saved["meta"]["args"]["lr"] if saved is not None else
                  stability.auto_lr(net, X, opt.loss.name, opt.train_output, B_size)[0])
        args["lr"] = opt.lr
    checks.unit_rows(X, "X", stacklevel=stacklevel)   # Assumption 3.1: warn once, train anyway
    run = Run(net=net, X=X, Y=Y, opt=opt, probes=probes, steps=steps,
              record_every=record_every, callback=callback, stop_below=stop_below, ckpt=ckpt,
              args=args, data_id=data_id, full_batch=type(opt).batch is optimizers.GD.batch)
    _start(run, saved)
    return run


# What the history holds besides one entry per probe.
HISTORY_KEYS = ("step", "loss", "lr", "c")


def _wants_auto_lr(lr, optimizer) -> bool:
    """Whether ``lr`` asks for :func:`tinyntk.stability.auto_lr` (an optimizer object
    brings its own step size); any other non-number is refused here, saying so."""
    if isinstance(lr, str) and lr == "auto":
        return optimizer is None or isinstance(optimizer, str)
    if lr is None or isinstance(lr, (str, bytes)):
        raise checks.ArgumentTypeError(f"lr must be a positive number or 'auto', got {lr!r}")
    return False


def _optimizer(optimizer, lr, loss, batch_size, train_output, seed):
    """The optimizer object: ``optimizer`` itself, or one built from the other arguments."""
    if isinstance(optimizer, str):              # "gd" / "sgd": built from the arguments
        if checks.one_of("optimizer", optimizer, optimizers.OPTIMIZERS) == "sgd" and batch_size is None:
            raise ValueError("optimizer='sgd' needs batch_size (the minibatch size B)")
        optimizer = None
    if optimizer is None:                       # make() checks lr, loss and batch_size
        checks.seed("seed", seed)               # (GD itself does not use the seed)
        return optimizers.make(lr, loss=loss, batch_size=batch_size, train_output=train_output,
                               seed=seed)
    if not (all(callable(getattr(optimizer, a, None)) for a in ("forward", "update"))
            and all(hasattr(optimizer, a) for a in ("lr", "loss", "train_output"))):
        raise TypeError(f"optimizer must be a tinyntk.optim optimizer (forward/update, lr, loss, "
                        f"train_output), got {type(optimizer).__name__}")
    return optimizer


def _start(run: Run, saved) -> None:
    """Put a resumed run's weights, ``W(0)``, random state, probes and history back (or
    start afresh when ``saved`` is None), then start the probes."""
    xp = B.get_backend().xp
    net, opt = run.net, run.opt
    if saved is not None:                          # nothing has changed before this point
        for w, a in zip(net.W, saved["W"]):
            xp.copyto(w, B.asarray(a))
        xp.copyto(net.V, B.asarray(saved["V"]))
        run.W0 = [B.asarray(a).copy() for a in saved["W0"]]
        run.V0 = B.asarray(saved["V0"]).copy()
        if hasattr(opt, "rng") and "rng" in saved["meta"]["optimizer"]:
            opt.rng.bit_generator.state = saved["meta"]["optimizer"]["rng"]
    else:
        run.W0, run.V0 = [w.copy() for w in net.W], net.V.copy()
    run.state = diagnostics.TrainState(net=net, X=run.X, Y=run.Y, W0=run.W0, V0=run.V0,
                                       loss=opt.loss)
    for probe in run.probes:
        if hasattr(probe, "start"):
            probe.start(run.state)
    run.history = {"step": [], "loss": []}
    run.history.update({probe.name: [] for probe in run.probes})
    if saved is not None:
        for i, probe in enumerate(run.probes):
            if i in saved["probes"]:
                checkpoint_io.load_probe_state(probe, saved["probes"][i])
        run.history = {key: list(v) if isinstance(v, list) else v
                       for key, v in saved["meta"]["history"].items()}
        run.first = int(saved["meta"]["step"])
        if run.history["loss"]:
            run.last = (run.history["step"][-1], run.history["loss"][-1])
    run.history["lr"] = opt.lr
    run.history["c"] = theory.paper_constant(opt.lr, net.k, net.L, net.m)
    run.rewind = _Rewind(net, opt)             # brings W^(t-1) back after a divergence


class _CheckpointArgs:
    def __init__(self, path, every, resume):
        self.path, self.every, self.resume = path, every, resume


def _checkpoint_args(checkpoint, checkpoint_every, resume) -> _CheckpointArgs:
    path = None if checkpoint is None else checkpoint_io.check_path(checkpoint, "checkpoint")
    every = None
    if checkpoint_every is not None:
        every = checks.positive_int("checkpoint_every", checkpoint_every)
        if path is None:
            raise ValueError("checkpoint_every needs checkpoint=<path> to write to")
    if path is not None:
        folder = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(folder):
            raise ValueError(f"checkpoint: the folder {folder!r} does not exist")
    if resume is None or resume is False:
        resume = None
    elif resume is True:
        if path is None:
            raise ValueError("resume=True needs checkpoint=<path> to resume from")
        resume = path if os.path.exists(path) else None
    else:
        resume = checkpoint_io.check_path(resume, "resume")
        if not os.path.exists(resume):
            raise checkpoint_io.CheckpointError(f"resume: no checkpoint at {resume!r}")
    return _CheckpointArgs(path, every, resume)


def _load_resume(path, net, args, data_id, probes, skip=()) -> dict:
    """The checkpoint at ``path``, checked against this net, these arguments (but those
    named in ``skip``) and data."""
    saved = checkpoint_io.load_state(path)
    meta = saved["meta"]
    here = checkpoint_io.sizes(net)
    for key, value in here.items():
        if meta.get(key) != value:
            raise checkpoint_io.CheckpointError(
                f"resume: {path!r} holds a net with {key} = {meta.get(key)!r}, this net has {value!r}")
    for key, value in args.items():
        if key not in skip and meta["args"].get(key) != value:
            raise checkpoint_io.CheckpointError(
                f"resume: {path!r} was written with {key} = {meta['args'].get(key)!r}, this "
                f"call has {key} = {value!r}; resume with the interrupted run's arguments")
    _check_model_kind(path, saved, net)
    names = [probe.name for probe in probes]
    if meta.get("probes") != names:
        raise checkpoint_io.CheckpointError(
            f"resume: {path!r} was written with probes {meta.get('probes')}, this call has "
            f"{names}; pass the same probes to continue the history")
    if meta.get("data") != data_id:
        raise checkpoint_io.CheckpointError(
            f"resume: {path!r} was written for other training data (X, Y differ)")
    return saved


def _check_model_kind(path, saved, net) -> None:
    """A net's run resumes into a net, a linearized run into a model linearized at the
    same point (bit for bit)."""
    kind, here = saved["meta"].get("model", "net"), checkpoint_io.model_kind(net)
    if kind != here:
        raise checkpoint_io.CheckpointError(
            f"resume: {path!r} holds the run of a {kind} model; this one is a {here} model")
    if saved["center"] is not None:
        W, V = saved["center"]
        same = all(numpy.array_equal(a, B.to_numpy(b))
                   for a, b in zip(W + [V], net.net0.W + [net.net0.V]))
        if not same:
            raise checkpoint_io.CheckpointError(
                f"resume: {path!r} holds a model linearized at other weights W(0) than this "
                f"one's; linearize the same net to continue the run")


def _diverged(t, value, opt, last, run, kept) -> "Diverged":
    """The :class:`Diverged` error, with a step size suggested from the NTK at W(0)."""
    lr = opt.lr
    bound = None
    try:
        net0 = jacobian_net(run.net, run.W0, run.V0)     # the model's NTK at W(0)
        bound, _ = stability.stability_bound(net0, run.X, opt.loss.name, bool(opt.train_output))
    except Exception:           # the suggestion is a courtesy: never mask the divergence
        bound = None
    if bound is not None and bound < lr:
        suggested = 0.5 * bound
        hint = (f"Try a smaller lr, e.g. lr = {suggested:.3g}: GD on the {opt.loss.name} loss is "
                f"stable near W(0) for lr < 2n/lambda_max(NTK) = {bound:.3g}")
    else:
        suggested = lr / 10
        hint = f"Try a smaller lr, e.g. lr = {suggested:g}"
    err = Diverged(_divergence_message(t, value, lr, last, kept) + " " + hint + ".")
    err.step, err.lr, err.suggested_lr, err.stability_bound = t, lr, suggested, bound
    err.last_step, err.last_loss = last
    return err


def _divergence_message(t, value, lr, last, kept=None) -> str:
    step, loss = last
    kept = t - 1 if kept is None else kept
    kept = "its initial weights" if kept <= 0 else f"the weights of step {kept}"
    before = "" if step is None else f" (last finite loss {loss:.6g} at step {step})"
    return (f"training diverged: the loss became {value} at step {t} with lr = {lr:g}{before}; "
            f"the net keeps {kept}.")

class _Rewind:
    """How :func:`train` gets ``W^(t-1)`` back when the loss of ``W^(t)`` is not finite.

    The optimizer updates the weights in place and keeps no copy of the old ones.  Every
    ``EVERY`` steps this keeps a copy of the weights (and of SGD's random state); going
    back copies them into the net and replays the steps since.  :class:`~tinyntk.optim.GD`
    and :class:`~tinyntk.optim.SGD` steps are deterministic (same products, same order,
    same minibatches), so the weights come back bit for bit.  Cost: one copy of the
    weights every ``EVERY`` steps, and after a divergence at most ``EVERY - 1`` replayed
    steps.  Any other optimizer (a subclass may keep state of its own, e.g. momentum)
    cannot be replayed: its weights are copied every step instead.  After a rewind SGD's
    random state is the one before step ``t - 1`` drew its minibatch.
    """

    EVERY = 32

    def __init__(self, net, opt):
        xp = B.get_backend().xp
        self.net = net
        self.every = self.EVERY if type(opt) in (optimizers.GD, optimizers.SGD) else 1
        self.W = [xp.empty_like(w) for w in net.W]
        self.V = xp.empty_like(net.V)
        self.step = None            # the step whose weights are kept, None before the first
        self.random_state = None

    def due(self, t: int) -> bool:
        return self.step is None or t - self.step >= self.every

    def keep(self, t: int, random_state) -> None:
        xp = B.get_backend().xp
        for kept, w in zip(self.W, self.net.W):
            xp.copyto(kept, w)
        xp.copyto(self.V, self.net.V)
        self.step, self.random_state = t, random_state

    def back_to(self, t: int, opt, X, Y) -> None:
        """Put ``W^(t)`` into the net: the kept weights, then the steps from there to ``t``."""
        xp = B.get_backend().xp
        for w, kept in zip(self.net.W, self.W):
            xp.copyto(w, kept)
        xp.copyto(self.net.V, self.V)
        if self.random_state is not None:
            opt.rng.bit_generator.state = self.random_state
        for _ in range(self.step, t):
            opt.forward(self.net, X, Y)
            opt.update(self.net)


def _random_state(opt):
    """SGD's random state (a dict) before a step draws its minibatch; None for GD."""
    rng = getattr(opt, "rng", None)
    return rng.bit_generator.state if isinstance(rng, numpy.random.Generator) else None
