"""The paper's claims as experiments: each one small function that a reader can follow.

Every experiment takes ``quick`` (sizes that finish in seconds, run by the tests) and
returns a :class:`Result`: the raw numbers, the measured values next to what the paper
proves, and the figures it drew.  :func:`reproduce` runs a list of them and writes JSON,
PNG and a Markdown report.  The plumbing they share (data + net + kernel step size,
slope fits, sweeps over an executor) sits at the top of this file.

Step sizes.  Theorem 3.3 takes :math:`\\eta = c\\,k/(L^2 m)` with an unspecified
constant ``c``.  We pick :math:`\\eta` as a fraction of the largest stable step of the
linearized dynamics, :math:`2n/\\lambda_{\\max}(\\Theta_0)`, and report the constant
``c = η L² m / k`` it corresponds to; the widths' empirical NTKs grow like ``m/k``, so
``c`` stays roughly constant across widths, which is exactly the paper's scaling.
"""
from __future__ import annotations

import importlib.util
import json
import math
import os
import time
from dataclasses import dataclass, field

import numpy

from . import backend as B
from . import data, diagnostics, kernels, losses, plots, predict, spectrum, stability, sweep
from .linearized import linearize
from .fileio import atomic_open
from .network import ReLUNet
from .theory import paper_constant  # c = η L² m / k (also experiments.paper_constant)
from .train import train


# --------------------------------------------------------------------------- plumbing
@dataclass
class Result:
    """What an experiment measured: raw numbers, measured-vs-theory rows, figures."""

    name: str
    title: str
    params: dict
    raw: dict
    rows: list                      # [(quantity, measured, paper)] for the report
    figures: list = field(default_factory=list)
    notes: str = ""
    seconds: float = 0.0

    def markdown(self) -> str:
        lines = [f"## {self.title}", "", self.notes, "",
                 "| quantity | measured | what the paper proves |", "|---|---|---|"]
        lines += [f"| {_cell(q)} | {_cell(m)} | {_cell(p)} |" for q, m, p in self.rows]
        lines += [""] + [f"![{os.path.basename(f)}]({os.path.basename(f)})" for f in self.figures]
        lines += ["", f"_parameters: {json.dumps(self.params)}; {self.seconds:.1f} s_", ""]
        return "\n".join(lines)


def setup(n=32, d=16, k=1, L=2, m=1024, mu=0.5, seed=0, dtype="float64", target="gaussian",
          min_separation=None):
    """Sphere data (Assumption 3.1) and an Algorithm 1 net: ``(X, Y, net)``."""
    kw = {} if min_separation is None else {"min_separation": min_separation}
    X, Y = data.sphere(n=n, d=d, k=k, mu=mu, seed=seed, target=target, dtype=dtype, **kw)
    net = ReLUNet.init(d=d, m=m, k=k, L=L, seed=seed + 1, dtype=dtype)
    return X, Y, net


def kernel_matrix(net, X):
    """The empirical NTK at the current weights as an ``(n·k, n·k)`` host matrix."""
    if net.k == 1:
        return B.to_numpy(kernels.empirical_ntk(net, X))
    full = B.to_numpy(kernels.empirical_ntk(net, X, output="full"))
    n, k = full.shape[0], full.shape[1]
    return full.reshape(n * k, n * k)


def kernel_step_size(net, X, fraction=0.5, theta=None):
    """``(lr, eigenvalues of Θ_0)``: ``lr = fraction · 2n/λ_max(Θ_0)``; ``theta`` is Θ_0 as
    :func:`kernel_matrix` returns it, where the caller has it already."""
    theta = kernel_matrix(net, X) if theta is None else theta
    eig = numpy.linalg.eigvalsh(theta)
    if not eig[-1] > 0:
        raise ValueError("the empirical NTK is zero: every ReLU is inactive on this data at "
                         "initialization (a dead net; try another seed or a larger width m)")
    return fraction * stability.largest_stable_lr(X.shape[0], eig[-1]), eig


BASELINES = {"empirical": "kernel regime, Θ₀ (empirical NTK at W(0))",
             "infinite": "kernel regime, Θ∞·m/k (infinite width)"}


@dataclass
class KernelBaseline:
    r"""The kernel-regime prediction of a run's loss curve: GD with the NTK frozen, from
    the spectra of :math:`\Theta_0` (``"empirical"``) and of :math:`\Theta_\infty\,m/k`
    (``"infinite"``) and the residual ``R0 = f(X) - Y`` of the net at W(0) (both
    predictions start at the measured initial loss).  ``skipped`` says, per label, why a
    prediction was not made."""

    R0: object
    spectra: dict
    skipped: dict

    def loss(self, lr, steps) -> dict:
        """``{label: [L(t) for t in steps]}``, eq. (2.1) under the frozen-kernel dynamics
        (:meth:`tinyntk.spectrum.Spectrum.predicted_loss`)."""
        return {name: spec.predicted_loss(self.R0, lr, list(steps)).tolist()
                for name, spec in self.spectra.items()}


def kernel_baseline(net, X, Y, loss="square", batch_size=None, train_output=False,
                    max_empirical=4096, max_infinite=2048) -> KernelBaseline:
    """The :class:`KernelBaseline` of training ``net`` (at W(0), before training) on
    ``(X, Y)``: what every run is compared with.

    Made for full-batch GD on the square loss (the dynamics :mod:`tinyntk.predict` solves);
    for the logistic loss or SGD ``skipped`` says so.  The empirical prediction needs the
    eigendecomposition of the ``(n·k)²`` kernel (made where ``n·k <= max_empirical``), the
    infinite-width one that of the ``n²`` kernel (``n <= max_infinite``); beyond, use
    :func:`tinyntk.predict.gd_mse` with ``method="recursion"``.
    """
    n, k = int(X.shape[0]), net.k
    R0 = net(X) - B.asarray(Y, dtype=net.V.dtype)
    spectra, skipped = {}, {}
    why = None
    if getattr(loss, "name", loss) != "square":
        why = "the closed form is for the square loss of eq. (2.1)"
    elif batch_size is not None and int(batch_size) < n:
        why = "the closed form is for full-batch GD, not SGD"
    if why is not None:
        return KernelBaseline(R0, {}, {name: why for name in BASELINES})
    if n * k <= max_empirical:
        spectra["empirical"] = spectrum.empirical(net, X, train_output=train_output)
    else:
        skipped["empirical"] = (f"n·k = {n * k} > {max_empirical}: an eigendecomposition that "
                                "size costs more than the run; see tinyntk.predict.gd_mse")
    if n <= max_infinite:
        spectra["infinite"] = spectrum.ntk(X, L=net.L, m=net.m, k=k, train_output=train_output)
    else:
        skipped["infinite"] = f"n = {n} > {max_infinite}: see tinyntk.predict.gd_mse"
    return KernelBaseline(R0, spectra, skipped)


def fit_slope(x, y):
    """Least-squares slope and intercept of ``log y`` against ``log x``."""
    lx, ly = numpy.log(numpy.asarray(x, float)), numpy.log(numpy.asarray(y, float))
    slope, intercept = numpy.polyfit(lx, ly, 1)
    return float(slope), float(intercept)


def _cell(text) -> str:
    """Text for a Markdown table cell (a '|' would end the cell)."""
    return str(text).replace("|", "\\|")


def _fmt(x, digits=3) -> str:
    if isinstance(x, (list, tuple)):
        return "[" + ", ".join(_fmt(v, digits) for v in x) + "]"
    if x is None:
        return "–"
    if isinstance(x, (int, numpy.integer)):
        return str(int(x))
    return f"{x:.{digits}g}"


# --------------------------------------------------------------------------- the demo
def demo(n=32, d=16, k=1, L=2, m=2048, steps=150, mu=0.5, seed=0, dtype="float64",
         record_every=10, progress=None) -> Result:
    """Train a wide deep net with GD at the paper's step size and measure the theory.

    Prints nothing; :func:`tinyntk.cli.main` formats the rows.  ``progress`` is an
    optional ``callback(step, loss)``.
    """
    t0 = time.perf_counter()
    X, Y, net = setup(n=n, d=d, k=k, L=L, m=m, mu=mu, seed=seed, dtype=dtype)
    phi = data.separation(X)
    lam0 = kernels.lambda_0(X)
    lr, eig = kernel_step_size(net, X)
    baseline = kernel_baseline(net, X, Y)             # at W(0), before training moves it
    probes = [diagnostics.Distance(), diagnostics.Lemma41Ratio(phi), diagnostics.ActivationFlips(),
              diagnostics.NTKDrift()]
    hist = train(net, X, Y, steps=steps, lr=lr, record_every=record_every, probes=probes,
                 callback=progress)
    kernel_loss = baseline.loss(lr, hist["step"])
    rate = diagnostics.linear_rate(hist["loss"], hist["step"])
    predicted = diagnostics.kernel_predicted_rate(lr, eig[0], n)
    bound = diagnostics.lemma_4_2_bound(n=n, m=m, phi=phi, k=k)
    dist = hist["distance"][-1]
    ratio41 = [r for r in hist["lemma41_ratio"] if r is not None and math.isfinite(r)]
    rows = [
        ("data", f"n = {n} points on the unit sphere in R^{d}, x_d = {mu}", "Assumption 3.1"),
        ("network", f"L = {L} hidden layers of width m = {m}, k = {k}", "Algorithm 1 init"),
        ("step size η", f"{lr:.3g} = c·k/(L²m) with c = {paper_constant(lr, k, L, m):.3g}",
         "η = O(k/(L²m)) (Thm 3.3)"),
        ("loss L(W(0)) → L(W(T))", f"{hist['loss'][0]:.3e} → {hist['loss'][-1]:.3e} in {steps} steps",
         f"→ 0 (global min.); kernel regime: {kernel_loss['empirical'][-1]:.3e} (Θ₀), "
         f"{kernel_loss['infinite'][-1]:.3e} (Θ∞·m/k)"),
        ("loss contraction per step", f"{rate:.4f} (fitted)",
         f"≤ {predicted:.4f} = (1 − η λ_min(Θ₀)/n)² (kernel regime)"),
        ("separation φ", f"{phi:.4f}", "φ > 0 (Assumption 3.2)"),
        ("λ₀ = λ_min(H)", f"{lam0:.3e}; λ₀·n²/φ = {lam0 * n * n / phi:.3g}",
         "λ₀ ≥ C·φ/n² (Prop. 3.6)"),
        ("‖W_l(T) − W_l(0)‖₂", _fmt(dist), f"≤ {bound:.3g} = √(k n² log n/(mφ)), C = 1 (Lemma 4.2)"),
        ("Lemma 4.1 ratio ‖∇L‖²_F/(mφL/(kn²))", f"min {min(ratio41):.3g} over the run",
         "≥ C > 0 (Lemma 4.1)"),
        ("activation patterns flipped", _fmt(hist["flips"][-1]), "→ 0 as m grows (lazy training)"),
        ("NTK drift ‖Θ_T − Θ_0‖_F/‖Θ_0‖_F", f"{hist['ntk_drift'][-1]:.3g}", "→ 0 as m grows"),
    ]
    raw = {"history": _jsonable(hist), "kernel_loss": kernel_loss, "lr": lr, "phi": phi, "lambda_0": lam0, "rate": rate,
           "predicted_rate": predicted, "bound": bound, "theta0_eigs": eig.tolist()}
    params = dict(n=n, d=d, k=k, L=L, m=m, steps=steps, mu=mu, seed=seed, dtype=dtype,
                  backend=B.get_backend().name)
    return Result("demo", "Demo: a wide deep ReLU net trained by GD", params, raw, rows,
                  seconds=time.perf_counter() - t0)


def _jsonable(obj):
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (numpy.floating, numpy.integer, numpy.bool_)):
        return obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def write_json(path, obj) -> str:
    """Write ``obj`` as JSON, atomically (see :func:`tinyntk.fileio.atomic_open`)."""
    with atomic_open(path, "w") as f:
        json.dump(_jsonable(obj), f, indent=1)
    return path


def _figure(result: Result, out, filename, make):
    """Draw a figure with ``make()`` into ``out/filename`` when plotting is possible."""
    from . import plots
    if out is None or not plots.available():
        return
    result.figures.append(plots.save(make(), os.path.join(out, filename)))


def _steps_to(losses, steps, target):
    """The first recorded step whose loss is ≤ target (None if never)."""
    for s, v in zip(steps, losses):
        if v <= target:
            return s
    return None


def train_task(n, d, k, L, m, seed, c=None, steps=300, eps=None, lr_fraction=0.5, mu=0.5,
               record_every=5, probes=("distance",), batch_size=None, loss="square",
               target="gaussian"):
    """One training run of a sweep; a plain-dict result (picklable, JSON-able).

    ``c`` fixes ``η = c·k/(L²m)``; without it η is ``lr_fraction · 2n/λ_max(Θ_0)``.
    With ``eps`` the run stops at the first recorded step with loss ≤ eps · L(W(0)),
    reported as ``steps_to_eps`` (None if ``steps`` did not suffice).
    """
    X, Y, net = setup(n=n, d=d, k=k, L=L, m=m, mu=mu, seed=seed, target=target)
    lr = c * k / (L * L * m) if c is not None else kernel_step_size(net, X, lr_fraction)[0]
    make = {"distance": diagnostics.Distance, "flips": diagnostics.ActivationFlips,
            "ntk_drift": diagnostics.NTKDrift}
    stop = None
    if eps is not None:
        stop = eps * float(losses.get(loss).value(net(X), Y))   # eps · L(W(0))
    hist = train(net, X, Y, steps=steps, lr=lr, record_every=record_every, loss=loss,
                 batch_size=batch_size, seed=seed, probes=[make[p]() for p in probes],
                 stop_below=stop)
    result = {"n": n, "m": m, "L": L, "seed": seed, "lr": lr, "c": paper_constant(lr, k, L, m),
              "phi": data.separation(X), "loss": hist["loss"], "step": hist["step"]}
    result.update({p: hist[p][-1] for p in probes})
    if eps is not None:
        result["steps_to_eps"] = _steps_to(hist["loss"], hist["step"], eps * hist["loss"][0])
    return result


def _mean_by(results, key, value):
    groups = {}
    for r in results:
        groups.setdefault(r[key], []).append(value(r))
    keys = sorted(groups)
    return keys, [float(numpy.mean(groups[x])) for x in keys]


# --------------------------------------------------------------------------- 1
def linear_convergence(quick=False, out=None, executor=None, jobs=None) -> Result:
    """Experiment 1: GD's loss falls geometrically for L = 1..4 (Lemma 4.5, Theorem 3.3)."""
    n, m, steps = (16, 512, 100) if quick else (32, 2048, 300)
    t0 = time.perf_counter()
    curves, predicted, rows, raw = {}, {}, [], {}
    for L in (1, 2, 3, 4):
        X, Y, net = setup(n=n, d=16, L=L, m=m)
        lr, eig = kernel_step_size(net, X)
        hist = train(net, X, Y, steps=steps, lr=lr, record_every=5, probes=[])
        rate = diagnostics.linear_rate(hist["loss"], hist["step"])
        bound = diagnostics.kernel_predicted_rate(lr, eig[0], n)
        curves[f"L = {L}"] = (hist["step"], hist["loss"])
        predicted[f"L = {L}"] = (hist["step"], [hist["loss"][0] * bound ** s for s in hist["step"]])
        raw[L] = {"lr": lr, "c": paper_constant(lr, 1, L, m), "rate": rate, "kernel_rate": bound,
                  "loss": hist["loss"], "step": hist["step"]}
        rows.append((f"L = {L}: loss contraction per step",
                     f"{rate:.4f} (η = {lr:.3g}, c = {paper_constant(lr, 1, L, m):.3g})",
                     f"≤ 1 − O(mφη/(kn²)) (Lemma 4.5); kernel bound {bound:.4f}"))
    result = Result("convergence", "1. Linear convergence of GD, L = 1..4",
                    dict(n=n, m=m, steps=steps, d=16), raw, rows,
                    notes="GD at half the largest stable step of the linearized dynamics; the "
                          "fitted per-step contraction of the loss next to the kernel prediction "
                          "(1 − ηλ_min(Θ₀)/n)².")
    _figure(result, out, "convergence.png", lambda: plots.loss_curves(
        curves, f"GD on sphere data (n = {n}, m = {m}): loss falls geometrically", predicted=predicted))
    result.seconds = time.perf_counter() - t0
    return result


# --------------------------------------------------------------------------- 2
def lazy_width(quick=False, out=None, executor=None, jobs=None) -> Result:
    """Experiment 2: trajectory length, flips and NTK drift shrink like m^(-1/2) (Lemma 4.2)."""
    widths = [128, 256, 512, 1024] if quick else [256, 512, 1024, 2048, 4096]
    seeds = [0] if quick else [0, 1]
    n, L, steps = 16, 2, (150 if quick else 300)
    t0 = time.perf_counter()
    X, _, net = setup(n=n, L=L, m=widths[0])
    c = paper_constant(kernel_step_size(net, X)[0], 1, L, widths[0])
    tasks = [dict(n=n, d=16, k=1, L=L, m=m, seed=s, c=c, steps=steps, eps=1e-3,
                  probes=("distance", "flips", "ntk_drift")) for m in widths for s in seeds]
    res = sweep.run(train_task, tasks, executor=executor, jobs=jobs)
    ms, dist = _mean_by(res, "m", lambda r: max(r["distance"]))
    _, flips = _mean_by(res, "m", lambda r: float(numpy.mean(r["flips"])))
    _, drift = _mean_by(res, "m", lambda r: r["ntk_drift"])
    ys = {"max_l ‖W_l(T) − W_l(0)‖₂": dist, "activation flips": flips, "NTK drift": drift}
    slopes = {name: fit_slope(ms, y) for name, y in ys.items() if min(y) > 0}
    theory_slopes = {name: -0.5 for name in ys}
    rows = [(f"slope of {name} in m", f"{slopes[name][0]:+.3f}" if name in slopes else "–",
             "−1/2 (Lemma 4.2)" if i == 0 else "−1/2 (lazy-training heuristic, not a theorem here)")
            for i, name in enumerate(ys)]
    result = Result("width", "2. Lazy training: how far the weights move versus width m",
                    dict(n=n, L=L, widths=widths, seeds=seeds, c=c, steps=steps), {"runs": res}, rows,
                    notes=f"η = c·k/(L²m) with c = {c:.3g} fixed across widths; each run stops when the "
                          f"loss reaches 1e-3 of its start (at most {steps} steps; the largest final "
                          f"ratio was {max(r['loss'][-1] / r['loss'][0] for r in res):.1e}).")
    _figure(result, out, "width.png", lambda: plots.loglog_fit(
        ms, {k: v for k, v in ys.items() if k in slopes}, slopes, theory_slopes,
        "Lazy training: movement shrinks with width", "width m", "value at the end of training"))
    result.seconds = time.perf_counter() - t0
    return result


# --------------------------------------------------------------------------- 3
def trajectory_n(quick=False, out=None, executor=None, jobs=None) -> Result:
    """Experiment 3: trajectory length versus n at fixed m (Lemma 4.2: √(n² log n/φ))."""
    ns = [8, 16, 32] if quick else [8, 16, 32, 64, 128]
    m, L, steps = (1024 if quick else 2048), 2, (150 if quick else 1000)
    t0 = time.perf_counter()
    X, _, net = setup(n=ns[0], L=L, m=m)
    c = paper_constant(kernel_step_size(net, X)[0], 1, L, m)
    tasks = [dict(n=n, d=16, k=1, L=L, m=m, seed=0, c=c, steps=steps, eps=1e-3) for n in ns]
    res = sweep.run(train_task, tasks, executor=executor, jobs=jobs)
    dist = [max(r["distance"]) for r in res]
    bound = [diagnostics.lemma_4_2_bound(n=r["n"], m=m, phi=r["phi"], k=1) for r in res]
    s_meas, s_bound = fit_slope(ns, dist), fit_slope(ns, bound)
    rows = [("slope of max_l ‖W_l(T) − W_l(0)‖₂ in n", f"{s_meas[0]:+.3f}",
             f"{s_bound[0]:+.3f}: slope of √(k n² log n/(mφ)) over the same data (Lemma 4.2)"),
            ("measured / bound", _fmt([d / b for d, b in zip(dist, bound)]), "≤ C (Lemma 4.2)")]
    result = Result("trajectory_n", "3. Trajectory length versus n at fixed width",
                    dict(ns=ns, m=m, L=L, c=c, steps=steps), {"runs": res, "bound": bound}, rows,
                    notes="The bound's φ is measured on each data set, so its slope includes how "
                          "the separation shrinks with n.")
    _figure(result, out, "trajectory_n.png", lambda: plots.loglog_fit(
        ns, {"distance": dist, "Lemma 4.2 bound (C = 1)": bound},
        {"distance": s_meas, "Lemma 4.2 bound (C = 1)": s_bound}, {"distance": s_bound[0]},
        f"Trajectory length vs n (m = {m})", "number of examples n", "max_l ‖W_l(T) − W_l(0)‖₂",
        computed=("Lemma 4.2 bound (C = 1)",)))
    result.seconds = time.perf_counter() - t0
    return result


# --------------------------------------------------------------------------- 4
def iterations_n(quick=False, out=None, executor=None, jobs=None) -> Result:
    """Experiment 4: iterations to ε versus n with η = c·k/(L²m) (Theorem 3.3 vs Allen-Zhu)."""
    ns = [8, 16, 32] if quick else [8, 16, 32, 64, 128]
    m, L, eps = (1024 if quick else 2048), 2, 1e-2
    steps = 400 if quick else 4000
    t0 = time.perf_counter()
    X, _, net = setup(n=ns[-1], L=L, m=m)
    c = paper_constant(kernel_step_size(net, X)[0], 1, L, m)
    tasks = [dict(n=n, d=16, k=1, L=L, m=m, seed=0, c=c, steps=steps, eps=eps, probes=(),
                  record_every=1) for n in ns]
    res = sweep.run(train_task, tasks, executor=executor, jobs=jobs)
    done = [(r["n"], r["steps_to_eps"], r["phi"]) for r in res if r["steps_to_eps"]]
    xs = [d[0] for d in done]
    T = [d[1] for d in done]
    ours = [n * n / phi for n, _, phi in done]
    allen = [n ** 6 / phi ** 2 for n, _, phi in done]
    s_T = fit_slope(xs, T) if len(xs) > 1 else (float("nan"), 0.0)
    s_ours = fit_slope(xs, ours) if len(xs) > 1 else (float("nan"), 0.0)
    s_allen = fit_slope(xs, allen) if len(xs) > 1 else (float("nan"), 0.0)
    rows = [("slope of T(ε) in n", f"{s_T[0]:+.3f}",
             f"≤ {s_ours[0]:+.3f} from O(n²L² log(1/ε)/φ) (Thm 3.3, this paper)"),
            ("", "", f"≤ {s_allen[0]:+.3f} from O(n⁶L² log(1/ε)/φ²) (Allen-Zhu et al.)"),
            ("T(ε) per n", _fmt(T), f"ε = {eps} of the initial loss, c = {c:.3g}")]
    result = Result("iterations_n", "4. Iterations to ε versus n (an empirical Table 1 column)",
                    dict(ns=ns, m=m, L=L, eps=eps, c=c), {"runs": res}, rows,
                    notes="Slopes of the bounds are fitted over the same n and measured φ, so they "
                          "are directly comparable with the measured slope.")
    _figure(result, out, "iterations_n.png", lambda: plots.loglog_fit(
        xs, {"T(eps)": T}, {"T(eps)": s_T}, {"T(eps)": s_ours[0]},
        "Iterations to reach eps versus n", "number of examples n", "GD iterations"))
    result.seconds = time.perf_counter() - t0
    return result


# --------------------------------------------------------------------------- 5
def lambda0_phi(quick=False, out=None, executor=None, jobs=None) -> Result:
    """Experiment 5: λ₀ of H versus φ and n (Proposition 3.6: λ₀ ≥ C φ/n²)."""
    ns = [16, 32, 64] if quick else [16, 32, 64, 128, 256, 512]
    t0 = time.perf_counter()
    rows_raw = []
    for d in (8, 32):
        for n in ns:
            X, _ = data.sphere(n=n, d=d, seed=n + d)
            phi, lam = data.separation(X), kernels.lambda_0(X)
            rows_raw.append({"d": d, "n": n, "phi": phi, "lambda_0": lam, "ratio": lam * n * n / phi})
    rows = []
    ys, slopes = {}, {}
    for d in (8, 32):
        sel = [r for r in rows_raw if r["d"] == d]
        lam = [r["lambda_0"] for r in sel]
        trans = [r["phi"] / r["n"] ** 2 for r in sel]
        ys[f"lambda_0, d = {d}"], ys[f"phi/n^2, d = {d}"] = lam, trans
        slopes[f"lambda_0, d = {d}"], slopes[f"phi/n^2, d = {d}"] = fit_slope(ns, lam), fit_slope(ns, trans)
        rows.append((f"d = {d}: min λ₀·n²/φ", f"{min(r['ratio'] for r in sel):.3g}", "≥ C > 0 (Prop. 3.6)"))
        rows.append((f"d = {d}: slope of λ₀ in n", f"{slopes[f'lambda_0, d = {d}'][0]:+.3f}",
                     f"{slopes[f'phi/n^2, d = {d}'][0]:+.3f} for the translation φ/n² (Remark 3.7)"))
    result = Result("lambda0", "5. λ₀ versus φ and n", dict(ns=ns, d=[8, 32]), {"points": rows_raw}, rows,
                    notes="If λ₀ falls more slowly than φ/n², the translation λ₀ = Ω(φ/n²) used to "
                          "compare Table 1's rows is pessimistic for this data.")
    _figure(result, out, "lambda0.png", lambda: plots.loglog_fit(
        ns, ys, slopes, {}, "Smallest eigenvalue of H versus the separation bound",
        "number of examples n", "lambda_0 = lambda_min(H), or phi/n^2",
        computed=tuple(k for k in ys if k.startswith("phi"))))
    result.seconds = time.perf_counter() - t0
    return result


# --------------------------------------------------------------------------- 6
def gd_vs_sgd(quick=False, out=None, executor=None, jobs=None) -> Result:
    """Experiment 6: minibatch SGD with batch B, η ∝ B, loss per epoch (Theorems 3.8, 3.10)."""
    n, m, L = (16, 512, 2) if quick else (32, 2048, 2)
    epochs = 60 if quick else 200
    batches = [1, 4, n] if quick else [1, 4, 16, n]
    t0 = time.perf_counter()
    X, _, net = setup(n=n, L=L, m=m)
    lr_gd = kernel_step_size(net, X)[0]
    tasks = [dict(n=n, d=16, k=1, L=L, m=m, seed=0, c=paper_constant(lr_gd * b / n, 1, L, m),
                  steps=epochs * n // b, record_every=max(1, n // b), probes=(),
                  batch_size=None if b == n else b) for b in batches]
    res = sweep.run(train_task, tasks, executor=executor, jobs=jobs)
    curves, rows = {}, []
    for b, r in zip(batches, res):
        ep = [s * b / n for s in r["step"]]
        curves[f"B = {b}" + (" (GD)" if b == n else "")] = (ep, r["loss"])
        rows.append((f"B = {b}{' (GD)' if b == n else ''}: loss after {epochs} epochs", f"{r['loss'][-1]:.3e}",
                     "T = O(n⁵ log(1/ε)/(Bφ²)) iterations (Thm 3.8): equal epochs for all B"))
    result = Result("sgd", "6. GD versus SGD: loss per epoch for batch sizes B",
                    dict(n=n, m=m, L=L, epochs=epochs, batches=batches), {"runs": res}, rows,
                    notes="η_B = η_GD · B/n, the linear-in-B step size of Theorems 3.8/3.10.")
    _figure(result, out, "sgd.png", lambda: plots.loss_curves(
        curves, "SGD with batch B and step η·B/n", xlabel="epoch (t·B/n)"))
    result.seconds = time.perf_counter() - t0
    return result


# --------------------------------------------------------------------------- 7
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
           "test_linearization_error": _max_relative(F_test, lin_test, F_test[0] - y_test)}
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
    """Experiment 7: the empirical NTK and the trained net converge to their m → ∞ limits.

    Rows: the slopes in m of the kernel's error and of the net-vs-kernel-regime error
    (on training and on test points), and, for the smallest and largest width, the final
    training and test losses of the net, of its linearization and of the infinite-width
    prediction.  Figure: those three over training, for the two widths."""
    widths = [64, 256, 1024] if quick else [64, 128, 256, 512, 1024, 2048, 4096]
    seeds = [0, 1] if quick else [0, 1, 2]
    shown = (widths[0], widths[-1])
    n, d, L, steps = 64, 8, 2, (100 if quick else 300)
    t0 = time.perf_counter()
    tasks = [dict(n=n, d=d, L=L, m=m, seed=s, steps=steps, curves=(s == seeds[0] and m in shown))
             for m in widths for s in seeds]
    res = sweep.run(ntk_task, tasks, executor=executor, jobs=jobs)
    ms, kerr = _mean_by(res, "m", lambda r: r["kernel_error"])
    ys = {"NTK error ‖Θ_m/m − Θ_∞‖/‖Θ_∞‖": kerr,
          "max_t ‖f_t − f_t^lin‖/‖f_0 − y‖ (training points)":
              _mean_by(res, "m", lambda r: r["linearization_error"])[1],
          "max_t ‖f_t − f_t^lin‖/‖f_0 − y‖ (test points)":
              _mean_by(res, "m", lambda r: r["test_linearization_error"])[1]}
    slopes = {k: fit_slope(ms, v) for k, v in ys.items()}
    names = list(ys)
    rows = [("slope of the empirical-NTK error in m", f"{slopes[names[0]][0]:+.3f}",
             "−1/2 (concentration of the finite-width kernel)"),
            ("slope of net-vs-kernel-regime error in m, training points",
             f"{slopes[names[1]][0]:+.3f}", "−1/2 (lazy training: the net follows Θ₀'s dynamics)"),
            ("slope of net-vs-kernel-regime error in m, test points",
             f"{slopes[names[2]][0]:+.3f}", "−1/2 (the same, off the training set)")]
    curves = {r["m"]: r for r in res if "loss" in r}
    for m in shown:
        c = curves[m]
        rows.append((f"m = {m}: training loss at T = {steps}, net / linearized / Θ∞·m",
                     " / ".join(f"{c['loss'][key][-1]:.3g}" for key in ("net", "linearized", "infinite")),
                     "kernel regime (Jacot et al. 2018): the three agree as m → ∞"))
        rows.append((f"m = {m}: test loss at T, net / linearized / Θ∞·m",
                     " / ".join(f"{c['test_loss'][key][-1]:.3g}" for key in ("net", "linearized", "infinite")),
                     f"gap of test outputs to the net: {c['test_gap']['linearized']:.2g} (lin.), "
                     f"{c['test_gap']['infinite']:.2g} (Θ∞), relative to ‖f_0 − y‖"))
    result = Result("ntk", "7. Finite versus infinite width", dict(n=n, d=d, L=L, widths=widths,
                                                                   seeds=seeds, n_test=64,
                                                                   target="teacher"),
                    {"runs": res}, rows,
                    notes="Θ_m is the empirical NTK at initialization (hidden layers), Θ_∞ = "
                          "tinyntk.kernels.ntk; f^lin is tinyntk.predict.gd_mse on Θ₀ (GD with "
                          "the kernel frozen), 'linearized' the net tn.linearize(net) trained by "
                          "tinyntk.train (the same dynamics: they differ by at most "
                          f"{max(c['linearized_vs_predict'] for c in curves.values()):.1e}), "
                          "'Θ∞·m' gd_mse on the infinite-width kernel from the same f_0. Labels: a "
                          "fixed teacher net; 64 test points from the same distribution; "
                          "η = 0.5·2n/λ_max(Θ₀).")
    _figure(result, out, "ntk.png", lambda: plots.loglog_fit(
        ms, ys, slopes, {k: -0.5 for k in ys}, "Finite width approaches the NTK limit",
        "width m", "relative error"))
    _figure(result, out, "ntk_curves.png", lambda: plots.kernel_regime_curves(
        curves, f"Real net, its linearization and the infinite-width NTK (L = {L}, n = {n})"))
    result.seconds = time.perf_counter() - t0
    return result


# --------------------------------------------------------------------------- 8
def classification_task(dataset, m, L, steps, seed):
    """Logistic-loss GD on a binary problem (fixed data; ``seed`` draws the net)."""
    if dataset == "digits":
        X, Y, Xt, Yt = data.digits(classes=(3, 5), test_fraction=0.5, seed=0)
    else:  # sphere points labelled by a teacher's side of its median, with a margin
        Xa, Ya = data.sphere(n=400, d=16, k=1, seed=0, target="teacher")
        Xa, Ya = B.to_numpy(Xa), B.to_numpy(Ya).ravel()
        Ya = Ya - numpy.median(Ya)                     # balanced classes
        keep = numpy.abs(Ya) > 0.1 * Ya.std()
        Xa, Ya = Xa[keep], numpy.sign(Ya[keep]).reshape(-1, 1)
        half = len(Xa) // 2
        X, Y, Xt, Yt = Xa[:half], Ya[:half], Xa[half:], Ya[half:]
    net = ReLUNet.init(d=X.shape[1], m=m, k=1, L=L, seed=seed + 1)
    try:
        lr = kernel_step_size(net, X, fraction=1.0)[0]  # a quarter of the logistic loss's stable step
        train_loss = train(net, X, Y, steps=steps, lr=lr, loss="logistic", record_every=steps,
                           probes=[])["loss"][-1]
    except ValueError:          # dead at initialization: no gradient, f = 0 everywhere
        train_loss = math.log(2.0)
    pred = numpy.where(B.to_numpy(net(Xt)) >= 0, 1.0, -1.0)
    return {"dataset": dataset, "m": m, "seed": seed, "n": int(X.shape[0]),
            "train_loss": train_loss,
            "test_error": float(numpy.mean(pred != B.to_numpy(Yt)))}


def small_width(quick=False, out=None, executor=None, jobs=None) -> Result:
    """Experiment 8 (Chen, Cao, Zou & Gu): how small can the width be for classification?"""
    widths = [1, 4, 16, 128] if quick else [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048]
    seeds = [0, 1] if quick else [0, 1, 2, 3]
    steps, L = (100 if quick else 300), 2
    sets = (["digits"] if importlib.util.find_spec("sklearn") else []) + ["sphere"]
    t0 = time.perf_counter()
    tasks = [dict(dataset=s, m=m, L=L, steps=steps, seed=seed)
             for s in sets for m in widths for seed in seeds]
    res = sweep.run(classification_task, tasks, executor=executor, jobs=jobs)
    curves, rows = {}, []
    for s in sets:
        sel = [r for r in res if r["dataset"] == s]
        errors = [[r["test_error"] for r in sel if r["m"] == m] for m in widths]
        ms, mean_err, worst = widths, [float(numpy.mean(e)) for e in errors], [max(e) for e in errors]
        _, loss = _mean_by(sel, "m", lambda r: r["train_loss"])
        curves[f"{s}: mean test error"], curves[f"{s}: worst test error"] = mean_err, worst
        curves[f"{s}: mean training loss"] = loss
        best = min(mean_err)
        enough = next((m for i, m in enumerate(ms) if all(e <= best + 0.03 for e in mean_err[i:])),
                      "not reached")
        n, log2n = sel[0]["n"], math.log(sel[0]["n"]) ** 2
        rows.append((f"{s} (n = {n}): mean / worst test error per width m = {ms}",
                     f"{_fmt(mean_err, 2)} / {_fmt(worst, 2)}", "width polylog(n, 1/ε) suffices (Chen et al.)"))
        rows.append((f"{s}: smallest width from which the mean test error stays within 3% of the best",
                     f"m = {enough}", f"polylog(n): e.g. log²(n) = {log2n:.0f}"))
    result = Result("small_width", "8. How small can the width be? (logistic loss, Chen et al.)",
                    dict(widths=widths, seeds=seeds, steps=steps, L=L, datasets=sets), {"runs": res}, rows,
                    notes=f"Binary classification by GD on the logistic loss, {len(seeds)} initializations "
                          "per width on fixed data; below some width, some initializations fail "
                          "(dead or stuck ReLUs) — that is where over-parameterization stops being "
                          "optional." + ("" if "digits" in sets else
                                         " (scikit-learn not installed: digits skipped)"))
    _figure(result, out, "small_width.png", lambda: plots.lines(
        widths, curves, "Classification with the logistic loss versus width",
        "width m", "test error / training loss", logx=True, logy=False))
    result.seconds = time.perf_counter() - t0
    return result


# --------------------------------------------------------------------------- 9
def eigen_task(n, d, L, m, seed, steps, target, lr_fraction=0.25, level=1e-2):
    r"""One run of experiment 9: GD on ``target`` labels (``"teacher"`` or ``"gaussian"``),
    the residual's projections on the top, middle and bottom eigenvectors of Θ₀ measured
    by :class:`tinyntk.diagnostics.EigenProjections` and predicted by
    :math:`(1 - \eta\lambda_i/n)^t u_i^\top r(0)`; the labels' energy on the top tenth
    of the eigendirections, :math:`y^\top H^{-1} y` and Arora et al.'s generalization
    measure; and the steps until the loss is ``level``·L(0), measured and predicted."""
    X, Y, net = setup(n=n, d=d, L=L, m=m, seed=seed, target=target)
    spec = spectrum.empirical(net, X)                       # Θ₀ at W(0), once
    lr = lr_fraction * stability.largest_stable_lr(n, float(spec.values[0]))
    which = [0, n // 2, n - 1]
    R0 = net(X) - Y
    probe = diagnostics.EigenProjections(which=which, spectrum=spec)
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
        "eigenvalues": B.to_numpy(spec.values[which]).tolist(),
        "step": hist["step"], "loss": hist["loss"],
        "predicted_loss": predicted_loss[hist["step"]].tolist(),
        "measured": measured.tolist(), "predicted": predicted.tolist(),
        "label_energy_top": float(spec.energy(Y)[:top].sum()),
        "y_H_y": y_H_y, "generalization_measure": math.sqrt(2.0 * y_H_y / n),
        "steps_to_level": _steps_to(hist["loss"], hist["step"], level),
        "predicted_steps_to_level": _steps_to(predicted_loss, range(steps + 1), level),
        "max_deviation": float(numpy.abs(measured - predicted).max()
                               / numpy.linalg.norm(B.to_numpy(R0))),
    }


def _mean_range(values, fmt="{:.3g}") -> str:
    """``mean [min, max]`` of the seeds' values, or how many of them are None (a level
    not reached)."""
    if any(v is None for v in values):
        return f"not reached in {sum(v is None for v in values)} of {len(values)} seeds"
    v = numpy.asarray(values, dtype=float)
    return f"{fmt.format(v.mean())} [{fmt.format(v.min())}, {fmt.format(v.max())}]"


def eigendirections(quick=False, out=None, executor=None, jobs=None) -> Result:
    """Experiment 9 (Arora, Du, Hu, Li & Wang 2019, Theorem 4.1 and Figure 1): GD fits the
    residual along each eigenvector of the NTK at its own rate (1 − ηλ_i/n)^t, so labels
    that lie along the top eigenvectors (a smooth teacher) are fitted fast and random
    labels slowly."""
    n, d, L = (64, 8, 2) if quick else (128, 8, 2)
    m, steps = (512, 200) if quick else (1024, 400)
    seeds = [0, 1] if quick else [0, 1, 2]
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
             _mean_range([r["label_energy_top"] for r in rs]),
             "large for structured labels (Arora et al. 2019, Figure 1)"),
            (f"{label[t]}: yᵀH⁻¹y / generalization measure √(2yᵀH⁻¹y/n)",
             _mean_range([r["y_H_y"] for r in rs]) + " / "
             + _mean_range([r["generalization_measure"] for r in rs]),
             "bounds the test error of a 2-layer net (Thm 5.1; not proven at this depth, width)"),
            (f"{label[t]}: L(T)/L(0) at T = {steps}, measured / kernel regime",
             _mean_range([r["loss"][-1] / r["loss"][0] for r in rs]) + " / "
             + _mean_range([r["predicted_loss"][-1] / r["loss"][0] for r in rs]),
             "∑_i (1 − ηλ_i/n)^{2T}(u_iᵀr(0))²/(2n L(0)) (Arora et al. Theorem 4.1)"),
            (f"{label[t]}: steps to L ≤ 0.01·L(0), measured / kernel regime",
             _mean_range([r["steps_to_level"] for r in rs], "{:.0f}") + " / "
             + _mean_range([r["predicted_steps_to_level"] for r in rs], "{:.0f}"),
             "fewer for labels along the top eigenvectors"),
            (f"{label[t]}: max_t |u_iᵀr(t) − (1 − ηλ_i/n)^t u_iᵀr(0)| / ‖r(0)‖, i = top, middle, bottom",
             _mean_range([r["max_deviation"] for r in rs]),
             "→ 0 as m → ∞ (kernel regime)"),
        ]
    result = Result("eigen", "9. Convergence along the NTK's eigendirections",
                    dict(n=n, d=d, L=L, m=m, steps=steps, seeds=seeds, targets=list(targets),
                         lr="0.25·2n/λ_max(Θ₀)"),
                    {"runs": res}, rows,
                    notes="Θ₀ is the empirical NTK at W(0), H the Gram matrix of Proposition 3.6 "
                          "(Arora et al.'s H∞). Teacher labels: a fixed random one-hidden-layer "
                          "ReLU net, unit variance; random labels: N(0, 1). The residual r(0) = "
                          "f_{W(0)}(X) − y includes the net's initial outputs (Arora et al. start "
                          "near 0). Values are mean [min, max] over the seeds.")
    shown = {label[t]: by[t][0] for t in targets}
    _figure(result, out, "eigen.png", lambda: plots.eigendirections(
        shown, f"Residual along Θ₀'s eigenvectors (L = {L}, m = {m}, n = {n}): measured vs "
               "(1 − ηλ_i/n)^t"))
    result.seconds = time.perf_counter() - t0
    return result


# --------------------------------------------------------------------------- report
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
    """Run experiments by name (all by default); write JSON, PNG and ``report.md`` to ``out``."""
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
                    "raw": r.raw, "seconds": r.seconds})
        results.append(r)
        log(f"  done in {r.seconds:.1f} s")
    report = ["# tinyntk: the paper's claims, measured", "",
              f"Sizes: {'quick' if quick else 'full'}; backend: {B.get_backend().name}; "
              f"written {time.strftime('%Y-%m-%d %H:%M')}.", ""]
    report += [r.markdown() for r in results]
    report += measured_table1(results)
    path = os.path.join(out, "report.md")
    _write_text(path, "\n".join(report))
    log(f"report: {path}")
    return results


def measured_table1(results) -> list:
    """The exponents measured by experiments 2–4 next to the theorems' (Markdown lines)."""
    rows = []
    for r in results:
        if r.name in ("width", "trajectory_n", "iterations_n"):
            rows += [(r.name, q, m, p) for q, m, p in r.rows if q.startswith("slope")]
    if not rows:
        return []
    out = ["## Measured Table 1", "", "| experiment | exponent | measured | theory |", "|---|---|---|---|"]
    out += [f"| {e} | {_cell(q)} | {_cell(m)} | {_cell(p)} |" for e, q, m, p in rows]
    return out + [""]


def _write_text(path, text) -> None:
    with atomic_open(path, "w") as f:
        f.write(text)
