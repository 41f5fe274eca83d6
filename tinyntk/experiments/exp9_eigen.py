"""Experiment 9 (Arora, Du, Hu, Li & Wang 2019): GD fits the residual along each
eigenvector of the NTK at its own rate, so structured labels train fast, random ones slowly."""
from __future__ import annotations

import math
import time

import numpy

from .. import backend as B
from .. import data, diagnostics, plots, spectrum, sweep, theory
from ..train import train
from .common import CI_NOTE, Result, estimate, figure, kernel_spectrum, setup, steps_to


def eigen_task(n, d, L, m, seed, steps, target, lr_fraction=0.25, level=1e-2):
    r"""One run of experiment 9: GD on ``target`` labels (``"teacher"`` or ``"gaussian"``),
    the residual's projections on the top, middle and bottom eigenvectors of Θ₀ measured
    by :class:`tinyntk.diagnostics.EigenProjections` and predicted by
    :math:`(1 - \eta\lambda_i/n)^t u_i^\top r(0)`; the labels' energy on the top tenth
    of the eigendirections, :math:`y^\top H^{-1} y` and Arora et al.'s generalization
    measure; and the steps until the loss is ``level``·L(0), measured and predicted."""
    X, Y, net = setup(n=n, d=d, L=L, m=m, seed=seed, target=target)
    spec, lr = kernel_spectrum(net, X, lr_fraction)         # Θ₀ at W(0), once
    which = [0, n // 2, n - 1]
    R0 = net(X) - Y
    probe = diagnostics.EigenProjections(which=which, spectrum=spec)
    W0 = [W.copy() for W in net.W]
    hist = train(net, X, Y, steps=steps, lr=lr, record_every=max(1, steps // 40), probes=[probe])
    every_step = numpy.arange(steps + 1)
    predicted_loss = spec.predicted_loss(R0, lr, every_step)
    H = spectrum.gram(X)
    y_H_y = spectrum.quadratic_form(H, Y)
    top = max(1, n // 10)
    level = level * hist["loss"][0]
    measured = numpy.asarray(hist["eigen_projections"])
    predicted = B.to_numpy(spec.predicted_projections(R0, lr, hist["step"], which)[..., 0])
    return {
        "target": target, "seed": seed, "m": m, "lr": lr, "which": which,
        "phi": data.separation(X), "moved": max(diagnostics.distance(net, W0)),
        "eigenvalues": B.to_numpy(spec.values[which]).tolist(),
        "step": hist["step"], "loss": hist["loss"],
        "predicted_loss": predicted_loss[hist["step"]].tolist(),
        "measured": measured.tolist(), "predicted": predicted.tolist(),
        "label_energy_top": float(spec.energy(Y)[:top].sum()),
        "y_H_y": y_H_y, "generalization_measure": math.sqrt(2.0 * y_H_y / n),
        "steps_to_level": steps_to(hist["loss"], hist["step"], level),
        "predicted_steps_to_level": steps_to(predicted_loss, range(steps + 1), level),
        "max_deviation": float(numpy.abs(measured - predicted).max()
                               / numpy.linalg.norm(B.to_numpy(R0))),
    }



def _text(values, spec="{:.3g}", log=True) -> str:
    """The :class:`~tinyntk.experiments.common.Estimate` of the seeds' values (on their logs
    unless ``log=False``), or how many of them are None (a level not reached)."""
    if any(v is None for v in values):
        return f"not reached in {sum(v is None for v in values)} of {len(values)} seeds"
    return estimate(values, log=log).text(spec)


def eigendirections(quick=False, out=None, executor=None, jobs=None) -> Result:
    """Experiment 9 (Arora, Du, Hu, Li & Wang 2019, Theorem 4.1 and Figure 1): GD fits the
    residual along each eigenvector of the NTK at its own rate (1 − ηλ_i/n)^t, so labels
    that lie along the top eigenvectors (a smooth teacher) are fitted fast and random
    labels slowly."""
    n, d, L = (64, 8, 2) if quick else (128, 8, 2)
    m, steps = (512, 200) if quick else (1024, 400)
    seeds = [0, 1] if quick else list(range(8))
    targets = ("teacher", "gaussian")
    t0 = time.perf_counter()
    tasks = [dict(n=n, d=d, L=L, m=m, seed=s, steps=steps, target=t) for t in targets for s in seeds]
    res = sweep.run(eigen_task, tasks, executor=executor, jobs=jobs)
    by = {t: [r for r in res if r["target"] == t] for t in targets}
    label = {"teacher": "teacher labels", "gaussian": "random labels"}
    rows = []
    for t in targets:
        rs = by[t]
        rows += [
            (f"{label[t]}: energy on the top {max(1, n // 10)} of {n} eigendirections of Θ₀",
             _text([r["label_energy_top"] for r in rs], log=False), "–",
             "large for structured labels (Arora et al. 2019, Figure 1)"),
            (f"{label[t]}: yᵀH⁻¹y / generalization measure √(2yᵀH⁻¹y/n)",
             _text([r["y_H_y"] for r in rs]) + " / " + _text([r["generalization_measure"] for r in rs]),
             "–", "bounds the test error of a 2-layer net (Thm 5.1; not proven at this depth, width)"),
            (f"{label[t]}: L(T)/L(0) at T = {steps}",
             _text([r["loss"][-1] / r["loss"][0] for r in rs]),
             _text([r["predicted_loss"][-1] / r["loss"][0] for r in rs]),
             "∑_i (1 − ηλ_i/n)^{2T}(u_iᵀr(0))²/(2n L(0)) (Arora et al. Theorem 4.1)"),
            (f"{label[t]}: steps to L ≤ 0.01·L(0)", _text([r["steps_to_level"] for r in rs], "{:.0f}"),
             _text([r["predicted_steps_to_level"] for r in rs], "{:.0f}"),
             "fewer for labels along the top eigenvectors"),
            (f"{label[t]}: max_t |u_iᵀr(t) − (1 − ηλ_i/n)^t u_iᵀr(0)| / ‖r(0)‖, i = top, middle, bottom",
             _text([r["max_deviation"] for r in rs]), "0", "→ 0 as m → ∞ (kernel regime)"),
        ]
    regime = theory.regime(n=n, L=L, phi=min(r["phi"] for r in res), m=m,
                           moved=max(r["moved"] for r in res))
    result = Result("eigen", "9. Convergence along the NTK's eigendirections",
                    dict(n=n, d=d, L=L, m=m, steps=steps, seeds=seeds, targets=list(targets),
                         lr="0.25·2n/λ_max(Θ₀)"),
                    {"runs": res}, rows, regime=regime.text(),
                    proven_for="a 2-layer net of width poly(n/λ₀) (Arora et al.)",
                    notes="Θ₀ is the empirical NTK at W(0), H the Gram matrix of Proposition 3.6 "
                          "(Arora et al.'s H∞). Teacher labels: a fixed random one-hidden-layer "
                          "ReLU net, unit variance; random labels: N(0, 1). The residual r(0) = "
                          "f_{W(0)}(X) − y includes the net's initial outputs (Arora et al. start "
                          "near 0). The regime line is Zou & Gu's Theorem 3.3 for these sizes. "
                          + CI_NOTE)
    shown = {label[t]: by[t][0] for t in targets}
    figure(result, out, "eigen.png", lambda: plots.eigendirections(
        shown, f"Residual along Θ₀'s eigenvectors (L = {L}, m = {m}, n = {n}, seed 0): measured vs "
               "(1 − ηλ_i/n)^t"))
    result.seconds = time.perf_counter() - t0
    return result
