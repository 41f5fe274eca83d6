"""What every experiment shares: the report's :class:`Result`, the sphere data and net of
:func:`setup`, the kernel step size, the kernel-regime baseline, slope fits over seeds with
confidence intervals, and :func:`train_task`, one training run of a sweep.

Step sizes.  Theorem 3.3 takes :math:`\\eta = c\\,k/(L^2 m)` with an unspecified
constant ``c``.  We pick :math:`\\eta` as a fraction of the largest stable step of the
linearized dynamics, :math:`2n/\\lambda_{\\max}(\\Theta_0)`, and report the constant
``c = η L² m / k`` it corresponds to.  The empirical NTK grows like ``m/k``, so ``c`` stays
roughly constant across widths (the paper's scaling); it grows with ``L``, because
:math:`\\lambda_{\\max}(\\Theta_0)\\,k/m` does.

Confidence intervals.  A number measured over ``s`` seeds is reported as
``mean [low, high]``: the mean of the per-seed values and the 95% Student-t interval
``mean ± t_{0.975, s−1} · sd/√s`` (:func:`estimate`).  A slope is fitted per seed (least
squares of ``log y`` on ``log x``) and those slopes are averaged the same way
(:func:`fit_seeds`).  Positive quantities spread over orders of magnitude (losses, their
ratios, step counts, ratios to a bound) get the same interval on their logs, mapped back:
a geometric mean and an interval above 0 (``estimate(values, log=True)``).  Each seed
draws both the data and the net (:func:`setup`).
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field

import numpy

from .. import backend as B
from .. import data, diagnostics, kernels, losses, spectrum, stability
from ..fileio import atomic_open
from ..network import ReLUNet
from ..theory import paper_constant
from ..train import train

CI_NOTE = ("[a, b] after a number: its 95% confidence interval over the seeds (the mean of "
           "the per-seed values ± t₀.₉₇₅(s − 1)·sd/√s, Student t); losses and their ratios, "
           "step counts, yᵀH⁻¹y and ratios to a bound are positive and spread over orders of "
           "magnitude, so for them the same is done on their logs (a geometric mean and an "
           "interval that stays above 0); a slope is fitted per seed (least squares in "
           "log-log) and the slopes are averaged.")


# ----- the report ------------------------------------------------------------------------
@dataclass
class Result:
    """What an experiment measured: raw numbers, rows for the report, figures.

    A row is ``(quantity, measured, kernel regime predicts, what the paper states)``.
    ``regime`` is the paragraph that says how far the run is from the theorem's proven
    regime (:meth:`tinyntk.theory.Regime.text`), ``proven_for`` the width the paper's
    column is proven for (in its heading)."""

    name: str
    title: str
    params: dict
    raw: dict
    rows: list
    figures: list = field(default_factory=list)
    notes: str = ""
    seconds: float = 0.0
    regime: str = ""
    proven_for: str = ""

    @property
    def paper_heading(self) -> str:
        """The paper's column heading, with the width it is proven for where known."""
        return "what the paper states" + (f" (proven for {self.proven_for})"
                                          if self.proven_for else "")

    def markdown(self) -> str:
        paper = self.paper_heading
        lines = [f"## {self.title}", "", self.notes, ""]
        if self.regime:
            lines += [f"**{self.regime}**", ""]
        lines += [f"| quantity | measured | kernel regime predicts | {paper} |", "|---|---|---|---|"]
        for row in self.rows:
            q, m, k, p = row if len(row) == 4 else (row[0], row[1], "–", row[2])
            lines.append(f"| {cell(q)} | {cell(m)} | {cell(k)} | {cell(p)} |")
        lines += [""] + [f"![{os.path.basename(f)}]({os.path.basename(f)})" for f in self.figures]
        lines += ["", f"_parameters: {json.dumps(self.params)}; {self.seconds:.1f} s_", ""]
        return "\n".join(lines)


def cell(text) -> str:
    """Text for a Markdown table cell (a '|' would end the cell)."""
    return str(text).replace("|", "\\|")


def fmt(x, digits=3) -> str:
    """A number (or a list of them) in ``digits`` significant digits; None as '–'."""
    if isinstance(x, (list, tuple)):
        return "[" + ", ".join(fmt(v, digits) for v in x) + "]"
    if x is None:
        return "–"
    if isinstance(x, (int, numpy.integer)):
        return str(int(x))
    return f"{x:.{digits}g}"


def figure(result: Result, out, filename, make) -> None:
    """Draw a figure with ``make()`` into ``out/filename`` when plotting is possible."""
    from .. import plots
    if out is None or not plots.available():
        return
    result.figures.append(plots.save(make(), os.path.join(out, filename)))


def jsonable(obj):
    """``obj`` with numpy scalars as Python numbers and non-finite floats as None."""
    if isinstance(obj, dict):
        return {k: jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, (numpy.floating, numpy.integer, numpy.bool_)):
        return obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def write_json(path, obj) -> str:
    """Write ``obj`` as JSON, atomically (see :func:`tinyntk.fileio.atomic_open`)."""
    with atomic_open(path, "w") as f:
        json.dump(jsonable(obj), f, indent=1)
    return path


def write_text(path, text) -> None:
    with atomic_open(path, "w") as f:
        f.write(text)


# ----- estimates over seeds --------------------------------------------------------------
@dataclass
class Estimate:
    """A quantity measured once per seed: the mean and its 95% Student-t interval
    (``geometric``: the geometric mean, the interval taken on the logs)."""

    mean: float
    low: float
    high: float
    values: list
    geometric: bool = False

    def text(self, spec="{:+.3f}") -> str:
        """``mean [low, high]``; one seed gives the value alone."""
        if len(self.values) < 2:
            return spec.format(self.mean)
        return f"{spec.format(self.mean)} [{spec.format(self.low)}, {spec.format(self.high)}]"

    def spread(self, spec="{:+.2f}") -> str:
        """The per-seed range, ``min … max``."""
        return f"{spec.format(min(self.values))} … {spec.format(max(self.values))}"


def estimate(values, level=0.95, log=False) -> Estimate:
    """:class:`Estimate` of per-seed ``values``: mean ± t₀.₉₇₅(s − 1)·sd/√s.  With ``log``
    (for positive values spread over orders of magnitude: losses, step counts, ratios) the
    same on ``log(values)``, mapped back: the geometric mean and an interval above 0."""
    from scipy.stats import t as student_t

    v = numpy.asarray(values, dtype=float)
    if log:
        if not (v > 0).all():
            raise ValueError(f"estimate(log=True) needs positive values, got {v.tolist()}")
        e = estimate(numpy.log(v), level)
        return Estimate(math.exp(e.mean), math.exp(e.low), math.exp(e.high), v.tolist(), True)
    mean = float(v.mean())
    if len(v) < 2:
        return Estimate(mean, math.nan, math.nan, v.tolist())
    half = float(student_t.ppf(0.5 + level / 2, len(v) - 1) * v.std(ddof=1) / math.sqrt(len(v)))
    return Estimate(mean, mean - half, mean + half, v.tolist())


def fit_slope(x, y):
    """Least-squares slope and intercept of ``log y`` against ``log x``."""
    lx, ly = numpy.log(numpy.asarray(x, float)), numpy.log(numpy.asarray(y, float))
    slope, intercept = numpy.polyfit(lx, ly, 1)
    return float(slope), float(intercept)


@dataclass
class SeedFit:
    """A power law :math:`y \\approx e^b x^s` fitted on each seed's curve.

    ``slope``: the :class:`Estimate` of the per-seed slopes; ``intercept``: their mean
    intercept; ``points`` the geometric mean over the seeds at each ``x`` and ``band`` its
    95% interval (what the figures draw); ``dropped`` the seeds left out because a value
    was not positive (a log needs y > 0)."""

    x: list
    slope: Estimate
    intercept: float
    points: list
    band: tuple
    dropped: int = 0

    @property
    def line(self) -> tuple:
        """``(slope, intercept)`` as :func:`tinyntk.plots.loglog_fit` draws it."""
        return self.slope.mean, self.intercept

    def text(self) -> str:
        dropped = f"; {self.dropped} seed(s) with a zero left out" if self.dropped else ""
        return f"{self.slope.text()} ({len(self.slope.values)} seeds{dropped})"


def fit_seeds(x, curves) -> SeedFit:
    """Fit ``log y = s log x + b`` on every seed's curve (``curves``: one list over ``x``
    per seed) and estimate ``s`` over the seeds."""
    curves = numpy.asarray(curves, dtype=float)
    ok = (curves > 0).all(axis=1)
    if not ok.any():
        raise ValueError("every seed's curve has a value <= 0: no power law to fit")
    kept = curves[ok]
    fits = [fit_slope(x, c) for c in kept]
    per_x = [estimate(kept[:, j], log=True) for j in range(len(x))]
    if len(kept) > 1:
        band = ([e.low for e in per_x], [e.high for e in per_x])
    else:
        band = ([e.mean for e in per_x],) * 2
    return SeedFit(x=list(x), slope=estimate([s for s, _ in fits]),
                   intercept=float(numpy.mean([b for _, b in fits])),
                   points=[e.mean for e in per_x], band=band,
                   dropped=int((~ok).sum()))


def by_seed(results, x_key, value, seeds):
    """``(xs, curves)``: ``curves[s][j]`` is ``value(r)`` of the run with seed ``seeds[s]``
    and ``r[x_key] == xs[j]``."""
    xs = sorted({r[x_key] for r in results})
    table = {(r["seed"], r[x_key]): value(r) for r in results}
    return xs, [[table[(s, x)] for x in xs] for s in seeds]


def mean_by(results, key, value):
    """``(keys, means)``: the mean of ``value(r)`` over the runs with each ``r[key]``."""
    groups = {}
    for r in results:
        groups.setdefault(r[key], []).append(value(r))
    keys = sorted(groups)
    return keys, [float(numpy.mean(groups[x])) for x in keys]


def steps_to(losses, steps, target):
    """The first recorded step whose loss is ≤ target (None if never)."""
    for s, v in zip(steps, losses):
        if v <= target:
            return s
    return None


# ----- data, net, step size, kernel baseline ----------------------------------------------
def setup(n=32, d=16, k=1, L=2, m=1024, mu=0.5, seed=0, dtype="float64", target="gaussian",
          min_separation=None):
    """Sphere data (Assumption 3.1) and an Algorithm 1 net: ``(X, Y, net)``; the data are
    drawn with ``seed``, the net with ``seed + 1``."""
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


def _stable_lr(n, lam_max, fraction):
    """``fraction · 2n/λ_max``, with a message for a dead net (λ_max = 0)."""
    if not lam_max > 0:
        raise ValueError("the empirical NTK is zero: every ReLU is inactive on this data at "
                         "initialization (a dead net; try another seed or a larger width m)")
    return fraction * stability.largest_stable_lr(n, lam_max)


def kernel_step_size(net, X, fraction=0.5, theta=None):
    """``(lr, eigenvalues of Θ_0)``: ``lr = fraction · 2n/λ_max(Θ_0)``; ``theta`` is Θ_0 as
    :func:`kernel_matrix` returns it, where the caller has it already."""
    theta = kernel_matrix(net, X) if theta is None else theta
    eig = numpy.linalg.eigvalsh(theta)
    return _stable_lr(X.shape[0], float(eig[-1]), fraction), eig


def kernel_spectrum(net, X, fraction=0.5):
    """``(spectrum of Θ_0, lr)``, one eigendecomposition for both: the
    :func:`tinyntk.spectrum.empirical` spectrum the kernel-regime predictions need, and
    the step size ``fraction · 2n/λ_max(Θ_0)`` of :func:`kernel_step_size`."""
    spec = spectrum.empirical(net, X)
    return spec, _stable_lr(X.shape[0], float(spec.values[0]), fraction)


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


# ----- one training run of a sweep --------------------------------------------------------
PROBES = {"distance": diagnostics.Distance, "distance_fro": diagnostics.DistanceFro,
          "flips": diagnostics.ActivationFlips, "ntk_drift": diagnostics.NTKDrift}


def train_task(n, d, k, L, m, seed, c=None, steps=300, eps=None, lr_fraction=0.5, mu=0.5,
               record_every=5, probes=("distance",), batch_size=None, loss="square",
               target="gaussian", kernel=False):
    """One training run of a sweep; a plain-dict result (picklable, JSON-able).

    ``c`` fixes ``η = c·k/(L²m)``; without it η is ``lr_fraction · 2n/λ_max(Θ_0)``.
    With ``eps`` the run stops at the first recorded step with loss ≤ eps · L(W(0)),
    reported as ``steps_to_eps`` (None if ``steps`` did not suffice).  ``probes`` name
    entries of :data:`PROBES`; their last values are returned under the same names.

    With ``kernel`` (full-batch GD on the square loss) also the kernel regime's prediction
    of the same run from the spectrum of Θ₀ at W(0): ``kernel_loss`` at the last step T,
    ``kernel_distance`` = ‖W(T) − W(0)‖_F (:meth:`~tinyntk.spectrum.Spectrum.predicted_distance`,
    to compare with the measured ``distance_total``), ``kernel_steps_to_eps``, and
    ``lambda_min``/``lambda_max`` of Θ₀.
    """
    X, Y, net = setup(n=n, d=d, k=k, L=L, m=m, mu=mu, seed=seed, target=target)
    spec = None
    if kernel or c is None:
        spec, lr = kernel_spectrum(net, X, lr_fraction)
    if c is not None:
        lr = c * k / (L * L * m)
    out0 = net(X)
    R0 = out0 - Y
    loss0 = float(losses.get(loss).value(out0, Y))
    probes = tuple(probes) + (("distance_fro",) if kernel and "distance_fro" not in probes else ())
    hist = train(net, X, Y, steps=steps, lr=lr, record_every=record_every, loss=loss,
                 batch_size=batch_size, seed=seed, probes=[PROBES[p]() for p in probes],
                 stop_below=None if eps is None else eps * loss0)
    result = {"n": n, "m": m, "L": L, "seed": seed, "lr": lr, "c": paper_constant(lr, k, L, m),
              "phi": data.separation(X), "loss": hist["loss"], "step": hist["step"],
              "loss0": loss0}
    result.update({p: hist[p][-1] for p in probes})
    if eps is not None:
        result["steps_to_eps"] = steps_to(hist["loss"], hist["step"], eps * hist["loss"][0])
    if kernel:
        T = hist["step"][-1]
        result["distance_total"] = float(numpy.sqrt(numpy.sum(numpy.square(hist["distance_fro"][-1]))))
        result["kernel_distance"] = spec.predicted_distance(R0, lr, T)
        curve = spec.predicted_loss(R0, lr, numpy.arange(steps + 1))
        result["kernel_loss"] = float(curve[T])
        result["lambda_min"], result["lambda_max"] = float(spec.values[-1]), float(spec.values[0])
        if eps is not None:
            result["kernel_steps_to_eps"] = steps_to(curve, range(steps + 1), eps * loss0)
    return result
