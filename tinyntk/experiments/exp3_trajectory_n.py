"""Experiment 3: the trajectory length versus the number of examples n at a fixed width
(Lemma 4.2: √(k n² L(W(0))/(mφ))), next to the kernel regime's movement."""
from __future__ import annotations

import math
import time

from .. import diagnostics, plots, sweep, theory
from .common import (CI_NOTE, Result, by_seed, estimate, figure, fit_seeds, kernel_step_size,
                     setup, train_task)


def trajectory_n(quick=False, out=None, executor=None, jobs=None) -> Result:
    """Experiment 3: per seed, the slope in n of max_l ‖W_l(T) − W_l(0)‖₂/√L(W(0)) against
    that of Lemma 4.2's bound over the same data (φ measured on each data set) and of the
    kernel regime's ‖W(T) − W(0)‖_F/√L(W(0))."""
    ns = [8, 16, 32] if quick else [8, 16, 32, 64, 128]
    seeds = [0, 1] if quick else list(range(8))
    m, L, steps = (1024 if quick else 2048), 2, (150 if quick else 1000)
    t0 = time.perf_counter()
    X, _, net = setup(n=ns[0], L=L, m=m)
    c = theory.paper_constant(kernel_step_size(net, X)[0], 1, L, m)
    tasks = [dict(n=n, d=16, k=1, L=L, m=m, seed=s, c=c, steps=steps, eps=1e-3, kernel=True)
             for n in ns for s in seeds]
    res = sweep.run(train_task, tasks, executor=executor, jobs=jobs)

    def fit(value):
        return fit_seeds(*by_seed(res, "n", value, seeds))

    def bound(r, loss0=None):
        return diagnostics.lemma_4_2_bound(n=r["n"], m=m, phi=r["phi"], k=1, loss0=loss0)

    measured = fit(lambda r: max(r["distance"]) / math.sqrt(r["loss0"]))
    telescoped = fit(lambda r: bound(r, loss0=1.0))            # √(k n²/(mφ)): per √L(W(0))
    kernel = fit(lambda r: r["kernel_distance"] / math.sqrt(r["loss0"]))
    ratio = [estimate([max(r["distance"]) / bound(r) for r in res if r["n"] == n], log=True)
             for n in ns]
    kratio = [estimate([r["distance_total"] / r["kernel_distance"] for r in res if r["n"] == n],
                       log=True)
              for n in ns]
    rows = [
        ("slope of max_l ‖W_l(T) − W_l(0)‖₂/√L(W(0)) in n", measured.text(),
         f"{kernel.slope.text()} for ‖W(T) − W(0)‖_F/√L(W(0))",
         f"{telescoped.slope.text()}: slope of √(k n²/(mφ)) over the same data (Lemma 4.2, "
         "telescoped form, per √L(W(0)))"),
        ("max_l ‖W_l(T) − W_l(0)‖₂ / √(k n² log n/(mφ)) per n = " + str(ns),
         "[" + ", ".join(e.text("{:.3g}") for e in ratio) + "]", "–",
         "≤ C (Lemma 4.2 as stated, log n for L(W(0)))"),
        ("‖W(T) − W(0)‖_F measured / kernel regime per n", "[" + ", ".join(
            e.text("{:.3g}") for e in kratio) + "]", "1", "→ 1 as m → ∞"),
    ]
    phi = min(r["phi"] for r in res if r["n"] == ns[-1])
    regime = theory.regime(n=ns[-1], L=L, phi=phi, m=m, moved=max(max(r["distance"]) for r in res))
    result = Result("trajectory_n", "3. Trajectory length versus n at fixed width",
                    dict(ns=ns, m=m, L=L, c=c, steps=steps, seeds=seeds),
                    {"runs": res}, rows, regime=regime.text(),
                    proven_for=f"m ≥ {regime.width:.2g} at n = {ns[-1]}",
                    notes="Each run stops when the loss reaches 1e-3 of its start. The bound's φ "
                          "is measured on each data set, so its slope includes how the "
                          "separation shrinks with n; trajectories are divided by √L(W(0)), the "
                          "factor by which the telescoped bound depends on the run. " + CI_NOTE)
    ys = {"max_l ‖ΔW_l‖₂/√L(W(0))": measured, "‖ΔW‖_F/√L(W(0)), kernel regime": kernel,
          "√(k n²/(mφ)) (Lemma 4.2, C = 1)": telescoped}
    computed = tuple(k for k in ys if k != "max_l ‖ΔW_l‖₂/√L(W(0))")
    figure(result, out, "trajectory_n.png", lambda: plots.loglog_fit(
        ns, {k: f.points for k, f in ys.items()}, {k: f.line for k, f in ys.items()}, {},
        f"Trajectory length vs n (m = {m}, {len(seeds)} seeds)", "number of examples n",
        "per √L(W(0))", computed=computed, bands={k: f.band for k, f in ys.items()},
        slope_ci={k: (f.slope.low, f.slope.high) for k, f in ys.items()}))
    result.seconds = time.perf_counter() - t0
    return result
