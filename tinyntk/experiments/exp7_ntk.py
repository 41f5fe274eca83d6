"""Experiment 7: the empirical NTK and the trained net approach their infinite-width
limits (the kernel regime of Jacot et al. 2018; not a result of Zou & Gu)."""
from __future__ import annotations

import time

import numpy

from .. import backend as B
from .. import data, diagnostics, kernels, plots, predict, sweep, theory
from ..linearized import linearize
from ..train import train
from .common import (CI_NOTE, Result, by_seed, figure, fit_seeds, kernel_matrix,
                     kernel_step_size, setup)


class _Outputs:
    """A probe that records a net's outputs (host copies): on the training set (the ones
    the loop has just computed), or on ``X`` when given (e.g. test points)."""

    def __init__(self, X=None, name="outputs"):
        self.X, self.name = X, name

    def __call__(self, state):
        out = state.outputs if self.X is None else None
        if out is None:
            out = state.net.forward(state.X if self.X is None else self.X, check=False)
        return B.to_numpy(out).ravel().tolist()


def _square_loss(F, y) -> list:
    """Eq. (2.1) on host arrays: ``F`` is ``(records, n)``, ``y`` is ``(n,)``."""
    return (0.5 * ((F - y) ** 2).mean(axis=1)).tolist()


def _max_relative(F, G, r0) -> float:
    """``max_t ‖F_t − G_t‖ / ‖r0‖`` over the records of two ``(records, n)`` curves."""
    return float(numpy.linalg.norm(F - G, axis=1).max() / numpy.linalg.norm(r0))


def ntk_task(n, d, L, m, seed, steps, lr_fraction=0.5, n_test=64, curves=False):
    """One width of experiment 7: the real net against the kernel regime.

    Draws ``n + n_test`` sphere points labelled by a fixed teacher net (so that a test
    loss means something) and an Algorithm 1 net of width ``m``; trains the net by GD
    (``lr = lr_fraction · 2n/λ_max(Θ₀)``) and records its training and test outputs.
    Measured against :func:`tinyntk.predict.gd_mse` on the empirical NTK Θ₀ at W(0):

    * ``kernel_error``: ‖Θ₀/m − Θ∞‖_F/‖Θ∞‖_F (Θ∞ = :func:`tinyntk.kernels.ntk`);
    * ``linearization_error`` (``test_linearization_error``): max over the records of
      ‖f_t − f_t^lin‖/‖f_0 − y‖ on the training (test) points, ``f^lin`` the outputs of
      GD with Θ₀ frozen.

    With ``curves`` also the loss curves of the net, of its linearization trained by
    :func:`tinyntk.train` (``tn.linearize``), and of the infinite-width prediction
    (``gd_mse`` on Θ∞·m/k from the same f_0), on the training and the test points; and
    ``linearized_vs_predict``, the largest gap between the trained linearization and
    ``gd_mse`` on Θ₀ (the same dynamics: rounding only).
    """
    X_all, Y_all, net = setup(n=n + n_test, d=d, L=L, m=m, seed=seed, target="teacher")
    X, Y, X_test, Y_test = X_all[:n], Y_all[:n], X_all[n:], Y_all[n:]
    theta_inf = B.to_numpy(kernels.ntk(X, L=L))
    theta0 = kernel_matrix(net, X)
    lr = kernel_step_size(net, X, lr_fraction, theta=theta0)[0]
    kernel_error = numpy.linalg.norm(theta0 / m - theta_inf) / numpy.linalg.norm(theta_inf)
    f0, f0_test = net(X), net(X_test)
    theta0_test = kernels.empirical_ntk(net, X_test, X)           # before training moves W
    lin_net = linearize(net) if curves else None                  # a copy of W(0)
    W0 = [W.copy() for W in net.W]

    every = max(1, steps // 20)
    probes = [_Outputs(), _Outputs(X_test, "test_outputs")]
    hist = train(net, X, Y, steps=steps, lr=lr, record_every=every, probes=probes)
    y, y_test = B.to_numpy(Y).ravel(), B.to_numpy(Y_test).ravel()
    F, F_test = numpy.asarray(hist["outputs"]), numpy.asarray(hist["test_outputs"])
    lin, lin_test = predict.gd_mse(theta0, Y, lr=lr, t=hist["step"], f0_train=f0,
                                   K_test_train=theta0_test, f0_test=f0_test)
    lin, lin_test = B.to_numpy(lin)[..., 0], B.to_numpy(lin_test)[..., 0]
    out = {"m": m, "seed": seed, "lr": lr, "kernel_error": float(kernel_error),
           "linearization_error": _max_relative(F, lin, F[0] - y),
           "test_linearization_error": _max_relative(F_test, lin_test, F_test[0] - y_test),
           "phi": data.separation(X), "moved": max(diagnostics.distance(net, W0))}
    if not curves:
        return out

    h_lin = train(lin_net, X, Y, steps=steps, lr=lr, record_every=every, probes=probes)
    G, G_test = numpy.asarray(h_lin["outputs"]), numpy.asarray(h_lin["test_outputs"])
    scale = float(m) / net.k                                      # Θ∞·m/k: a width-m net's scale
    inf, inf_test = predict.gd_mse(theta_inf * scale, Y, lr=lr, t=hist["step"],
                                   f0_train=f0, K_test_train=kernels.ntk(X_test, X, L=L) * scale,
                                   f0_test=f0_test)
    inf, inf_test = B.to_numpy(inf)[..., 0], B.to_numpy(inf_test)[..., 0]
    out.update(
        step=hist["step"],
        loss={"net": _square_loss(F, y), "linearized": _square_loss(G, y),
              "infinite": _square_loss(inf, y)},
        test_loss={"net": _square_loss(F_test, y_test), "linearized": _square_loss(G_test, y_test),
                   "infinite": _square_loss(inf_test, y_test)},
        test_gap={"linearized": _max_relative(F_test, G_test, F_test[0] - y_test),
                  "infinite": _max_relative(F_test, inf_test, F_test[0] - y_test)},
        linearized_vs_predict=max(_max_relative(G, lin, F[0] - y),
                                  _max_relative(G_test, lin_test, F_test[0] - y_test)))
    return out



def finite_width(quick=False, out=None, executor=None, jobs=None) -> Result:
    """Experiment 7: the slopes in m (per seed) of the kernel's error and of the
    net-vs-kernel-regime error on training and test points; for the smallest and largest
    width, the final training and test losses of the net next to its linearization's and
    the infinite-width prediction's.  Figure: those three over training."""
    widths = [64, 256, 1024] if quick else [64, 128, 256, 512, 1024, 2048, 4096]
    seeds = [0, 1] if quick else list(range(8))
    shown = (widths[0], widths[-1])
    n, d, L, steps = 64, 8, 2, (100 if quick else 300)
    t0 = time.perf_counter()
    tasks = [dict(n=n, d=d, L=L, m=m, seed=s, steps=steps, curves=(s == seeds[0] and m in shown))
             for m in widths for s in seeds]
    res = sweep.run(ntk_task, tasks, executor=executor, jobs=jobs)
    fits = {name: fit_seeds(*by_seed(res, "m", lambda r: r[key], seeds)) for name, key in (
        ("NTK error ‖Θ_m/m − Θ_∞‖/‖Θ_∞‖", "kernel_error"),
        ("max_t ‖f_t − f_t^lin‖/‖f_0 − y‖ (training points)", "linearization_error"),
        ("max_t ‖f_t − f_t^lin‖/‖f_0 − y‖ (test points)", "test_linearization_error"))}
    kernel_fit, train_fit, test_fit = fits.values()
    finite = "−1/2 (finite-width corrections, Jacot et al. 2018; Lee et al. 2019): not a Zou & Gu result"
    rows = [("slope of the empirical-NTK error in m", kernel_fit.text(), "0 error (Θ_m/m = Θ∞)",
             finite),
            ("slope of the net's distance to GD with Θ₀ frozen, training points",
             train_fit.text(), "0 distance (the net is its linearization)", finite),
            ("the same, test points", test_fit.text(), "0 distance", finite)]
    curves = {r["m"]: r for r in res if "loss" in r}
    for m in shown:
        c = curves[m]
        rows.append((f"m = {m}, seed {seeds[0]}: training loss at T = {steps}",
                     f"{c['loss']['net'][-1]:.3g}",
                     f"{c['loss']['linearized'][-1]:.3g} (Θ₀) / {c['loss']['infinite'][-1]:.3g} (Θ∞·m/k)",
                     "the three agree as m → ∞ (kernel regime)"))
        rows.append((f"m = {m}, seed {seeds[0]}: test loss at T", f"{c['test_loss']['net'][-1]:.3g}",
                     f"{c['test_loss']['linearized'][-1]:.3g} (Θ₀) / {c['test_loss']['infinite'][-1]:.3g} "
                     f"(Θ∞·m/k); test outputs off the net's by {c['test_gap']['linearized']:.2g} / "
                     f"{c['test_gap']['infinite']:.2g} of ‖f_0 − y‖", "the same, off the training set"))
    regime = theory.regime(n=n, L=L, phi=min(r["phi"] for r in res), m=widths[-1],
                           moved=max(r["moved"] for r in res if r["m"] == widths[-1]))
    result = Result("ntk", "7. Finite versus infinite width", dict(
        n=n, d=d, L=L, widths=widths, seeds=seeds, n_test=64, steps=steps, target="teacher"),
        {"runs": res}, rows, regime=regime.text(), proven_for="m → ∞ (Jacot et al. 2018)",
        notes="Not a result of Zou & Gu: the kernel regime their proof lives in. Θ_m is the "
              "empirical NTK at initialization (hidden layers), Θ_∞ = tinyntk.kernels.ntk; "
              "f^lin is tinyntk.predict.gd_mse on Θ₀ (GD with the kernel frozen), the same "
              "dynamics as tn.linearize(net) trained by tinyntk.train (they differ by at most "
              f"{max(c['linearized_vs_predict'] for c in curves.values()):.1e}); 'Θ∞·m/k' is "
              "gd_mse on the infinite-width kernel from the same f_0. Labels: a fixed teacher "
              "net; 64 test points from the same distribution; η = 0.5·2n/λ_max(Θ₀). " + CI_NOTE)
    figure(result, out, "ntk.png", lambda: plots.loglog_fit(
        widths, {k: f.points for k, f in fits.items()}, {k: f.line for k, f in fits.items()},
        {k: -0.5 for k in fits}, f"Finite width approaches the NTK limit ({len(seeds)} seeds)",
        "width m", "relative error", bands={k: f.band for k, f in fits.items()},
        slope_ci={k: (f.slope.low, f.slope.high) for k, f in fits.items()}))
    figure(result, out, "ntk_curves.png", lambda: plots.kernel_regime_curves(
        curves, f"Real net, its linearization and the infinite-width NTK (L = {L}, n = {n})"))
    result.seconds = time.perf_counter() - t0
    return result
