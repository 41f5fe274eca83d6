"""Experiment 1: GD's loss falls geometrically at every depth L = 1..4 (Lemma 4.5,
Theorem 3.3), next to the kernel regime's rate and Lemma 4.5's own rate."""
from __future__ import annotations

import time

from .. import data, diagnostics, plots, sweep, theory
from ..train import train
from .common import CI_NOTE, Result, estimate, figure, kernel_spectrum, setup


def convergence_task(n, d, L, m, seed, steps):
    """One GD run at depth ``L``: the fitted per-step contraction of the loss, the kernel
    regime's bound (1 − ηλ_min(Θ₀)/n)², its predicted loss curve, and Lemma 4.5's rate
    1 − mφη/(kn²) with the constant set to 1."""
    X, Y, net = setup(n=n, d=d, L=L, m=m, seed=seed)
    spec, lr = kernel_spectrum(net, X)
    R0 = net(X) - Y
    hist = train(net, X, Y, steps=steps, lr=lr, record_every=5, probes=[diagnostics.Distance()])
    phi = data.separation(X)
    return {"L": L, "seed": seed, "lr": lr, "c": theory.paper_constant(lr, 1, L, m), "phi": phi,
            "rate": diagnostics.linear_rate(hist["loss"], hist["step"]),
            "kernel_rate": diagnostics.kernel_predicted_rate(lr, float(spec.values[-1]), n),
            "lemma_4_5_rate": 1.0 - m * phi * lr / n ** 2,
            "step": hist["step"], "loss": hist["loss"],
            "kernel_loss": spec.predicted_loss(R0, lr, hist["step"]).tolist(),
            "moved": max(hist["distance"][-1])}


def linear_convergence(quick=False, out=None, executor=None, jobs=None) -> Result:
    """Experiment 1: per depth, the measured contraction per step over the seeds, the
    kernel regime's (its bound, and the loss its frozen-kernel dynamics reach at T), and
    Lemma 4.5's rate."""
    n, m, steps = (16, 512, 100) if quick else (32, 2048, 300)
    seeds = [0, 1] if quick else list(range(8))
    depths = (1, 2, 3, 4)
    t0 = time.perf_counter()
    tasks = [dict(n=n, d=16, L=L, m=m, seed=s, steps=steps) for L in depths for s in seeds]
    res = sweep.run(convergence_task, tasks, executor=executor, jobs=jobs)
    rows, curves, predicted = [], {}, {}
    for L in depths:
        rs = [r for r in res if r["L"] == L]
        rate, bound = estimate([r["rate"] for r in rs]), estimate([r["kernel_rate"] for r in rs])
        lemma = estimate([r["lemma_4_5_rate"] for r in rs])
        c = estimate([r["c"] for r in rs])
        final = estimate([r["loss"][-1] / r["loss"][0] for r in rs], log=True)
        kfinal = estimate([r["kernel_loss"][-1] / r["loss"][0] for r in rs], log=True)
        above = sum(r["rate"] > r["kernel_rate"] for r in rs)
        rows.append((f"L = {L}: loss contraction per step (η = {rs[0]['lr']:.3g}, c = {c.text('{:.3g}')})",
                     rate.text("{:.4f}"),
                     f"≤ {bound.text('{:.4f}')} = (1 − ηλ_min(Θ₀)/n)²"
                     + (f"; the measurement exceeds it in {above} of {len(rs)} seeds (the kernel "
                        "moves during training)" if above else ""),
                     f"≤ 1 − O(mφη/(kn²)) (Lemma 4.5); with constant 1: {lemma.text('{:.4f}')}"))
        rows.append((f"L = {L}: L(T)/L(0) at T = {steps}", final.text("{:.3g}"),
                     f"{kfinal.text('{:.3g}')} (GD with Θ₀ frozen)", "→ 0 linearly (Theorem 3.3)"))
        first = rs[0]
        curves[f"L = {L}"] = (first["step"], first["loss"])
        predicted[f"L = {L}"] = (first["step"], first["kernel_loss"])
    phi = min(r["phi"] for r in res)
    regime = theory.regime(n=n, L=max(depths), phi=phi, m=m, moved=max(r["moved"] for r in res))
    result = Result("convergence", "1. Linear convergence of GD, L = 1..4",
                    dict(n=n, m=m, steps=steps, d=16, seeds=seeds), {"runs": res}, rows,
                    regime=regime.text(), proven_for=f"m ≥ {regime.width:.2g} at L = {max(depths)}",
                    notes="GD at half the largest stable step of the linearized dynamics, "
                          "η = 0.5·2n/λ_max(Θ₀); c = ηL²m/k is the constant of Theorem 3.3's "
                          "η = c·k/(L²m) this amounts to: it is about constant across widths, but "
                          "grows with L, because λ_max(Θ₀)k/m does. The contraction is fitted to "
                          "the measured loss; the kernel column gives the slowest direction's "
                          "rate and the loss GD with the NTK frozen at W(0) reaches. " + CI_NOTE)
    figure(result, out, "convergence.png", lambda: plots.loss_curves(
        curves, f"GD on sphere data (n = {n}, m = {m}, seed 0): loss falls geometrically",
        predicted=predicted, predicted_label="kernel regime (Θ₀ frozen)"))
    result.seconds = time.perf_counter() - t0
    return result
