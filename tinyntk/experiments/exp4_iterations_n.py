"""Experiment 4: iterations to reach ε versus n at η = c·k/(L²m), an empirical column of
Table 1, next to the kernel regime's count (Theorem 3.3 against Allen-Zhu et al.)."""
from __future__ import annotations

import time

from .. import plots, sweep, theory
from .common import (CI_NOTE, Result, by_seed, estimate, figure, fit_seeds, kernel_step_size,
                     setup, train_task)


def iterations_n(quick=False, out=None, executor=None, jobs=None) -> Result:
    """Experiment 4: per seed, the slope in n of T(ε), of the kernel regime's T(ε) and of
    n/λ_min(Θ₀) (the rate that sets it), against the slopes of Theorem 3.3's n²/φ and
    Allen-Zhu et al.'s n⁶/φ² over the same data."""
    ns = [8, 16, 32] if quick else [8, 16, 32, 64, 128]
    seeds = [0, 1] if quick else list(range(8))
    m, L, eps = (1024 if quick else 2048), 2, 1e-2
    steps = 400 if quick else 4000
    t0 = time.perf_counter()
    X, _, net = setup(n=ns[-1], L=L, m=m)
    c = theory.paper_constant(kernel_step_size(net, X)[0], 1, L, m)
    tasks = [dict(n=n, d=16, k=1, L=L, m=m, seed=s, c=c, steps=steps, eps=eps, probes=(),
                  record_every=1, kernel=True) for n in ns for s in seeds]
    res = sweep.run(train_task, tasks, executor=executor, jobs=jobs)
    missed = [r for r in res if r["steps_to_eps"] is None or r["kernel_steps_to_eps"] is None]
    if missed:
        raise RuntimeError(f"{len(missed)} run(s) did not reach ε = {eps} within {steps} steps "
                           f"(n = {sorted({r['n'] for r in missed})}): raise steps")

    def fit(value):
        return fit_seeds(*by_seed(res, "n", value, seeds))

    T, T_kernel = fit(lambda r: r["steps_to_eps"]), fit(lambda r: r["kernel_steps_to_eps"])
    rate = fit(lambda r: r["n"] / r["lambda_min"])
    ours = fit(lambda r: r["n"] ** 2 / r["phi"])
    allen = fit(lambda r: r["n"] ** 6 / r["phi"] ** 2)

    def per_n(key):
        return "[" + ", ".join(estimate([r[key] for r in res if r["n"] == n], log=True).text("{:.0f}")
                               for n in ns) + "]"

    rows = [("slope of T(ε) in n", T.text(),
             f"{T_kernel.slope.text()}; slope of n/λ_min(Θ₀): {rate.slope.text()}",
             f"≤ {ours.slope.text()} from O(n²L² log(1/ε)/φ) (Thm 3.3, this paper)"),
            ("", "", "", f"≤ {allen.slope.text()} from O(n⁶L² log(1/ε)/φ²) (Allen-Zhu et al.)"),
            (f"T(ε) per n = {ns}", per_n("steps_to_eps"), per_n("kernel_steps_to_eps"),
             f"ε = {eps} of the initial loss, c = {c:.3g}")]
    phi = min(r["phi"] for r in res if r["n"] == ns[-1])
    regime = theory.regime(n=ns[-1], L=L, phi=phi, m=m)
    result = Result("iterations_n", "4. Iterations to ε versus n (an empirical Table 1 column)",
                    dict(ns=ns, m=m, L=L, eps=eps, c=c, seeds=seeds), {"runs": res}, rows,
                    regime=regime.text(), proven_for=f"m ≥ {regime.width:.2g} at n = {ns[-1]}",
                    notes="The bounds' slopes are fitted over the same n and measured φ, so they "
                          "compare directly with the measured slope. The kernel regime's T(ε) "
                          "is the first step at which GD with Θ₀ frozen reaches ε·L(W(0)); it "
                          "follows n/λ_min(Θ₀), not n²/φ. " + CI_NOTE)
    ys = {"T(ε)": T, "T(ε), kernel regime": T_kernel}
    figure(result, out, "iterations_n.png", lambda: plots.loglog_fit(
        ns, {k: f.points for k, f in ys.items()}, {k: f.line for k, f in ys.items()},
        {"T(ε)": ours.slope.mean}, f"Iterations to reach ε versus n ({len(seeds)} seeds)",
        "number of examples n", "GD iterations", computed=("T(ε), kernel regime",),
        bands={k: f.band for k, f in ys.items()},
        slope_ci={k: (f.slope.low, f.slope.high) for k, f in ys.items()}))
    result.seconds = time.perf_counter() - t0
    return result
