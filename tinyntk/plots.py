"""Figures for the experiments (optional: needs matplotlib, ``pip install tinyntk[plot]``).

Headless by default (the Agg backend); every figure has a title, labelled axes and a
legend, and is written atomically as PNG.
"""
from __future__ import annotations

import os

import numpy

from .fileio import atomic_open


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise ImportError("plots need matplotlib: install it with `pip install tinyntk[plot]`") from None
    if "MPLBACKEND" not in os.environ:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def available() -> bool:
    try:
        _pyplot()
        return True
    except ImportError:
        return False


def save(fig, path) -> str:
    """Write ``fig`` to ``path`` as PNG, atomically, and close it."""
    plt = _pyplot()
    try:
        with atomic_open(path, "wb") as f:
            fig.savefig(f, format="png", dpi=110, bbox_inches="tight")
    finally:
        plt.close(fig)
    return os.fspath(path)


def loss_curves(curves: dict, title: str, xlabel: str = "step t", ylabel: str = "training loss L(W(t))",
                predicted: dict | None = None,
                predicted_label: str = "kernel bound L(0)(1 - ηλ_min/n)^(2t)"):
    """Log-scale loss curves, one per label; ``predicted`` adds dashed lines (same labels),
    named ``label: predicted_label``."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for i, (label, (x, y)) in enumerate(curves.items()):
        line, = ax.semilogy(x, y, label=label)
        if predicted and label in predicted:
            px, py = predicted[label]
            ax.semilogy(px, py, "--", color=line.get_color(), alpha=0.8,
                        label=f"{label}: {predicted_label}")
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def loglog_fit(x, ys: dict, slopes: dict, theory_slopes: dict, title: str, xlabel: str, ylabel: str,
               computed=(), bands: dict | None = None, slope_ci: dict | None = None):
    """Log-log points with their fitted line and a line of the theoretical slope.

    ``ys`` maps a label to y values over ``x``; ``slopes`` the fitted ``(slope, intercept)``
    in log-log; ``theory_slopes`` the slope the theorem gives (drawn through the data's
    geometric centre).  Labels in ``computed`` are values of a formula, not measurements.
    ``bands`` maps a label to ``(low, high)`` over ``x`` (a confidence band, shaded);
    ``slope_ci`` a label to the ``(low, high)`` interval of its slope (in the legend).
    """
    plt = _pyplot()
    x = numpy.asarray(x, dtype=float)
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, y in ys.items():
        y = numpy.asarray(y, dtype=float)
        kind = "computed" if label in computed else "measured"
        pts = ax.loglog(x, y, "o", label=f"{label} ({kind})")[0]
        if bands and label in bands:
            low, high = bands[label]
            ax.fill_between(x, low, high, color=pts.get_color(), alpha=0.2, linewidth=0)
        s, b = slopes[label][:2]
        ci = f" [{slope_ci[label][0]:+.2f}, {slope_ci[label][1]:+.2f}]" if slope_ci and label in slope_ci else ""
        ax.loglog(x, numpy.exp(b) * x ** s, "-", color=pts.get_color(),
                  label=f"{label}: fitted slope {s:+.2f}{ci}")
        if label in theory_slopes and theory_slopes[label] is not None:
            t = theory_slopes[label]
            cx, cy = numpy.exp(numpy.log(x).mean()), numpy.exp(numpy.log(y).mean())
            ax.loglog(x, cy * (x / cx) ** t, ":", color=pts.get_color(),
                      label=f"{label}: theory slope {t:+.2f}")
    _data_ticks(ax, x)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    return fig


def _data_ticks(ax, x) -> None:
    """Label a log x-axis at the data's own values (no crowded minor labels)."""
    from matplotlib.ticker import FixedLocator, NullFormatter, NullLocator
    ax.xaxis.set_major_locator(FixedLocator(list(x)))
    ax.xaxis.set_major_formatter(lambda v, _: f"{v:g}")
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_minor_formatter(NullFormatter())


def lines(x, ys: dict, title: str, xlabel: str, ylabel: str, logx=False, logy=False):
    """Plain lines (optionally log axes), one per label."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, y in ys.items():
        ax.plot(x, y, "o-", label=label)
    if logx:
        ax.set_xscale("log")
        _data_ticks(ax, x)
    if logy:
        ax.set_yscale("log")
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def heatmap(K, title: str, label: str = "kernel value"):
    """A kernel matrix as an image with a colour bar."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 4))
    im = ax.imshow(numpy.asarray(K), cmap="viridis")
    fig.colorbar(im, ax=ax, label=label)
    ax.set(title=title, xlabel="example j", ylabel="example i")
    return fig


def demo_figure(history: dict, bound: float, title: str, predicted_rate: float | None = None,
                predicted: dict | None = None):
    """Two panels: the loss (log scale) with, dashed, the kernel-regime predictions
    ``predicted`` (``{label: loss at each of history["step"]}``) and, dotted, the bound
    ``L(0)·q^t`` when ``predicted_rate`` q is given; and the trajectory length of every
    layer."""
    plt = _pyplot()
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    a.semilogy(history["step"], history["loss"], "o", ms=3, label="measured L(W(t))")
    steps = numpy.asarray(history["step"], dtype=float)
    for (label, values), style in zip((predicted or {}).items(), ("--", "-.", ":")):
        a.semilogy(steps, values, style, label=f"{label} (predicted)")
    if predicted_rate is not None:
        a.semilogy(steps, history["loss"][0] * predicted_rate ** steps, ":", color="0.5",
                   label=f"kernel bound L(0)·{predicted_rate:.4f}^t")
    a.set(title="Loss (log scale)", xlabel="step t", ylabel="L(W(t))")
    a.grid(True, which="both", alpha=0.3)
    a.legend(fontsize=7, loc="upper right")   # the curves fall from the top left: this corner stays clear
    dist = numpy.asarray(history["distance"])
    for l in range(dist.shape[1]):
        b.plot(history["step"], dist[:, l], label=f"layer {l + 1}: ||W_l(t) - W_l(0)||_2")
    b.axhline(bound, color="k", ls=":", label="Lemma 4.2 bound sqrt(k n^2 log n/(m phi)), C = 1")
    b.set(title="Trajectory length (Lemma 4.2)", xlabel="step t", ylabel="spectral distance")
    b.grid(True, alpha=0.3)
    b.legend(fontsize=8)
    fig.suptitle(title)
    return fig


def kernel_regime_curves(curves: dict, title: str):
    """Two panels, training and test loss (log scale) over GD steps: for each width ``m``
    (a colour) the real net (points), its linearization (solid) and the infinite-width
    prediction (dashed).  ``curves`` maps ``m`` to a result of
    :func:`tinyntk.experiments.ntk_task` with ``curves=True``."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=False)
    for (m, c), colour in zip(sorted(curves.items()), ("C0", "C3", "C2", "C1")):
        for ax, key in zip(axes, ("loss", "test_loss")):
            ax.semilogy(c["step"], c[key]["net"], "o", ms=3, color=colour, label=f"m = {m}: net")
            ax.semilogy(c["step"], c[key]["linearized"], "-", color=colour,
                        label=f"m = {m}: linearized (Θ₀ frozen)")
            ax.semilogy(c["step"], c[key]["infinite"], "--", color=colour,
                        label=f"m = {m}: infinite width (Θ∞·m)")
    for ax, name in zip(axes, ("training", "test")):
        ax.set(title=f"{name.capitalize()} loss", xlabel="step t", ylabel=f"{name} loss")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle(title)
    return fig


def eigendirections(runs: dict, title: str):
    """One panel per label kind: ``|u_iᵀ r(t)|`` on the top, middle and bottom
    eigenvectors of Θ₀, measured (points) against ``(1 − ηλ_i/n)^t |u_iᵀ r(0)|`` (lines);
    and a last panel with the training losses over L(W(0)), measured (points) and predicted
    (lines).
    ``runs`` maps a label kind to a result of :func:`tinyntk.experiments.eigen_task`."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(runs) + 1, figsize=(5 * (len(runs) + 1), 4))
    names = ("top", "middle", "bottom")
    for ax, (target, r) in zip(axes, runs.items()):
        measured, predicted = numpy.abs(r["measured"]), numpy.abs(r["predicted"])
        for j, i in enumerate(r["which"]):
            colour = f"C{j}"
            ax.semilogy(r["step"], measured[:, j], "o", ms=3, color=colour,
                        label=f"{names[j]}: u_{i + 1}, measured")
            ax.semilogy(r["step"], predicted[:, j], "-", color=colour,
                        label=f"{names[j]}: (1 − ηλ_{i + 1}/n)^t·|u_{i + 1}ᵀr(0)|")
        # the fast directions' predictions fall far below what float64 and a finite width
        # resolve; show four decades under the largest projection
        ax.set_ylim(1e-4 * measured.max(), 2 * measured.max())
        ax.set(title=target, xlabel="step t", ylabel="|u_iᵀ r(t)|")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    last = axes[-1]
    for j, (target, r) in enumerate(runs.items()):
        L0 = r["loss"][0]
        last.semilogy(r["step"], numpy.divide(r["loss"], L0), "o", ms=3, color=f"C{j}",
                      label=f"{target}: measured")
        last.semilogy(r["step"], numpy.divide(r["predicted_loss"], L0), "-", color=f"C{j}",
                      label=f"{target}: kernel regime")
    last.set(title="Training loss", xlabel="step t", ylabel="L(W(t)) / L(W(0))")
    last.grid(True, which="both", alpha=0.3)
    last.legend(fontsize=7)
    fig.suptitle(title)
    return fig
