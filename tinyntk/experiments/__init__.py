"""The paper's claims as experiments: one short module per experiment.

Every experiment takes ``quick`` (sizes that finish in seconds, run by the tests) and
returns a :class:`Result`: the raw numbers, and rows that put each measured value next to
what the kernel regime predicts for the same run and what the paper states, with the
regime the statement is proven in (:func:`tinyntk.theory.regime`).  :func:`reproduce`
runs a list of them, prints each table and writes JSON, PNG and a Markdown report.

``common`` holds what they share (setup, step size, kernel baseline, fits over seeds with
confidence intervals, one training run of a sweep); ``exp1_convergence`` …
``exp9_eigen`` one experiment each; ``demo_run`` the demo.
"""
from __future__ import annotations

import os
import time

from .. import backend as B
from ..theory import paper_constant  # c = η L² m / k (also experiments.paper_constant)
from .common import (BASELINES, CI_NOTE, Estimate, KernelBaseline, Result, SeedFit,
                     cell, estimate, fit_seeds, fit_slope, kernel_baseline, kernel_matrix,
                     kernel_spectrum, kernel_step_size, setup, train_task, write_json,
                     write_text)
from .demo_run import demo
from .exp1_convergence import convergence_task, linear_convergence
from .exp2_width import lazy_width
from .exp3_trajectory_n import trajectory_n
from .exp4_iterations_n import iterations_n
from .exp5_lambda0 import lambda0_phi, lambda0_task
from .exp6_sgd import gd_vs_sgd
from .exp7_ntk import finite_width, ntk_task
from .exp8_small_width import classification_task, small_width
from .exp9_eigen import eigen_task, eigendirections

EXPERIMENTS = {
    "convergence": linear_convergence,
    "width": lazy_width,
    "trajectory_n": trajectory_n,
    "iterations_n": iterations_n,
    "lambda0": lambda0_phi,
    "sgd": gd_vs_sgd,
    "ntk": finite_width,
    "small_width": small_width,
    "eigen": eigendirections,
}


def reproduce(names=None, quick=False, out="runs/reproduce", executor=None, jobs=None,
              log=print) -> list:
    """Run experiments by name (all by default); ``log`` each one's table (regime,
    intervals, kernel column); write JSON, PNG and ``report.md`` to ``out``."""
    names = list(EXPERIMENTS) if not names else list(names)
    unknown = [n for n in names if n not in EXPERIMENTS]
    if unknown:
        raise ValueError(f"unknown experiment(s) {', '.join(unknown)}: expected any of "
                         f"{', '.join(EXPERIMENTS)}")
    os.makedirs(out, exist_ok=True)
    results = []
    for name in names:
        log(f"running {name} ({'quick' if quick else 'full'} sizes) ...")
        r = EXPERIMENTS[name](quick=quick, out=out, executor=executor, jobs=jobs)
        write_json(os.path.join(out, f"{name}.json"),
                   {"name": r.name, "title": r.title, "params": r.params, "rows": r.rows,
                    "regime": r.regime, "proven_for": r.proven_for, "raw": r.raw,
                    "seconds": r.seconds})
        results.append(r)
        log(r.markdown())
    report = ["# tinyntk: the paper's claims, measured", "",
              f"Sizes: {'quick' if quick else 'full'}; backend: {B.get_backend().name}; "
              f"written {time.strftime('%Y-%m-%d %H:%M')}.", "",
              "Every table puts a measurement next to what the kernel regime (GD with the NTK "
              "frozen at W(0)) predicts for the same run, and next to what the paper states, "
              "with the width it is proven for. Our widths are far below those: each section "
              "says by how much.", ""]
    report += [r.markdown() for r in results]
    report += measured_table1(results)
    path = os.path.join(out, "report.md")
    write_text(path, "\n".join(report))
    log(f"report: {path}")
    return results


def measured_table1(results) -> list:
    """The exponents measured by experiments 2–4, with their intervals and the kernel
    regime's, next to the theorems' (Markdown lines)."""
    rows = []
    for r in results:
        if r.name in ("width", "trajectory_n", "iterations_n"):
            rows += [(r.name,) + tuple(row) for row in r.rows if row[0].startswith("slope")]
    if not rows:
        return []
    out = ["## Measured Table 1", "", CI_NOTE, "",
           "| experiment | exponent | measured | kernel regime predicts | what the paper states |",
           "|---|---|---|---|---|"]
    out += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return out + [""]
