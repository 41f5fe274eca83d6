"""Experiment 2: lazy training, how far the weights move versus the width m (Lemma 4.2),
next to how far the kernel regime moves them."""
from __future__ import annotations

import math
import time

from .. import plots, sweep, theory
from .common import (CI_NOTE, Result, by_seed, figure, fit_seeds, kernel_step_size, setup,
                     train_task)


def lazy_width(quick=False, out=None, executor=None, jobs=None) -> Result:
    """Experiment 2: slopes in m of the trajectory length (normalized by √L(W(0)), the
    factor in Lemma 4.2's telescoped bound), the activation flips and the NTK drift, each
    fitted per seed; the kernel column is the slope of the kernel regime's own movement
    ‖W(T) − W(0)‖_F (:meth:`tinyntk.spectrum.Spectrum.predicted_distance`)."""
    widths = [128, 256, 512, 1024] if quick else [256, 512, 1024, 2048, 4096]
    seeds = [0, 1] if quick else list(range(8))
    n, L, steps = 16, 2, (150 if quick else 300)
    t0 = time.perf_counter()
    X, _, net = setup(n=n, L=L, m=widths[0])
    c = theory.paper_constant(kernel_step_size(net, X)[0], 1, L, widths[0])
    tasks = [dict(n=n, d=16, k=1, L=L, m=m, seed=s, c=c, steps=steps, eps=1e-3, kernel=True,
                  probes=("distance", "flips", "ntk_drift")) for m in widths for s in seeds]
    res = sweep.run(train_task, tasks, executor=executor, jobs=jobs)

    def fit(value):
        return fit_seeds(*by_seed(res, "m", value, seeds))

    spectral = fit(lambda r: max(r["distance"]) / math.sqrt(r["loss0"]))
    total, kernel = fit(lambda r: r["distance_total"]), fit(lambda r: r["kernel_distance"])
    flips = fit(lambda r: sum(r["flips"]) / len(r["flips"]))
    drift = fit(lambda r: r["ntk_drift"])
    ratio = [r["distance_total"] / r["kernel_distance"] for r in res if r["m"] == widths[-1]]
    heuristic = "−1/2 (lazy-training heuristic, not a theorem of the paper)"
    rows = [
        ("slope of max_l ‖W_l(T) − W_l(0)‖₂/√L(W(0)) in m", spectral.text(),
         f"{kernel.slope.text()} for ‖W(T) − W(0)‖_F",
         "−1/2: Lemma 4.2, ‖W_l − W_l(0)‖₂ ≤ O(√(k n² L(W(0))/(mφ))) (its telescoped form)"),
        ("slope of ‖W(T) − W(0)‖_F (all layers) in m", total.text(), kernel.text(),
         "−1/2 (the kernel regime: Θ₀ grows like m)"),
        (f"‖W(T) − W(0)‖_F measured / kernel regime at m = {widths[-1]}",
         f"{min(ratio):.3f} … {max(ratio):.3f} over the seeds", "1", "→ 1 as m → ∞"),
        ("slope of activation flips in m", flips.text(), "no flips (the patterns are frozen)",
         heuristic),
        ("slope of NTK drift in m", drift.text(), "no drift (Θ frozen at Θ₀)", heuristic),
    ]
    phi = min(r["phi"] for r in res)
    regime = theory.regime(n=n, L=L, phi=phi, m=widths[-1],
                           moved=max(max(r["distance"]) for r in res))
    result = Result("width", "2. Lazy training: how far the weights move versus width m",
                    dict(n=n, L=L, widths=widths, seeds=seeds, c=c, steps=steps), {"runs": res},
                    rows, regime=regime.text(), proven_for=f"m ≥ {regime.width:.2g}",
                    notes=f"η = c·k/(L²m) with c = {c:.3g} fixed across widths; each run stops "
                          f"when the loss reaches 1e-3 of its start (at most {steps} steps; the "
                          "largest final ratio was "
                          f"{max(r['loss'][-1] / r['loss'][0] for r in res):.1e}). The spectral "
                          "norms are divided by √L(W(0)), the factor by which Lemma 4.2's bound "
                          "depends on the run. " + CI_NOTE)
    ys = {"max_l ‖ΔW_l‖₂/√L(W(0))": spectral, "‖ΔW‖_F": total,
          "‖ΔW‖_F, kernel regime": kernel, "activation flips": flips, "NTK drift": drift}
    figure(result, out, "width.png", lambda: plots.loglog_fit(
        widths, {k: f.points for k, f in ys.items()}, {k: f.line for k, f in ys.items()},
        {k: -0.5 for k in ys}, f"Lazy training: movement shrinks with width ({len(seeds)} seeds)",
        "width m", "value at the end of training", computed=("‖ΔW‖_F, kernel regime",),
        bands={k: f.band for k, f in ys.items()},
        slope_ci={k: (f.slope.low, f.slope.high) for k, f in ys.items()}))
    result.seconds = time.perf_counter() - t0
    return result
