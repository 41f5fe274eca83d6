"""Every experiment runs at its quick size and puts a measured value next to the theory."""
import json
import math

import pytest

from tinyntk import experiments


@pytest.mark.slow
def test_reproduce_quick_runs_every_experiment(tmp_path):
    results = experiments.reproduce(quick=True, out=str(tmp_path), jobs=2, log=lambda *_: None)
    assert [r.name for r in results] == list(experiments.EXPERIMENTS)
    report = (tmp_path / "report.md").read_text()
    assert "## Measured Table 1" in report
    for r in results:
        assert r.rows, r.name
        saved = json.loads((tmp_path / f"{r.name}.json").read_text())
        assert saved["name"] == r.name
    by_name = {r.name: r for r in results}
    for r in results:
        # every table has the kernel column and says how far the run is from the theorem
        assert all(len(row) == 4 for row in r.rows), r.name
        assert r.regime.startswith("Regime:") and r.proven_for, r.name
        assert "| kernel regime predicts |" in r.markdown() and "proven for" in r.markdown()
    assert report.count("**Regime:") == len(results)
    # the regime line gives Theorem 3.3's width and τ for the run's sizes
    width = by_name["width"]
    assert "Theorem 3.3" in width.regime and "τ =" in width.regime
    # GD converges geometrically at every depth: the fitted contraction is below 1.
    assert all(r["rate"] < 1.0 for r in by_name["convergence"].raw["runs"])
    assert {r["L"] for r in by_name["convergence"].raw["runs"]} == {1, 2, 3, 4}
    # Lazy training: the trajectory shrinks with width (slope clearly negative), and so
    # does the kernel regime's; a fitted slope carries its interval over the seeds.
    slope = float(width.rows[0][1].split()[0])
    assert slope < -0.2, slope
    assert "[" in width.rows[0][1] and "seeds" in width.rows[0][1]
    assert float(width.rows[0][2].split()[0]) < -0.2
    # The kernel regime moves the weights about as far as the net does (n = 16, m ≤ 1024).
    for run in width.raw["runs"]:
        assert 0.5 < run["distance_total"] / run["kernel_distance"] < 2.0
    # Experiment 4: the kernel regime's T(ε) is within a factor 2 of the measured one.
    for run in by_name["iterations_n"].raw["runs"]:
        assert 0.5 <= run["kernel_steps_to_eps"] / run["steps_to_eps"] <= 2.0
    # Experiment 7: the linearized net trained by tn.train is tn.predict.gd_mse on Θ₀ (the
    # same dynamics; rounding only, ~steps·eps), and the net approaches it as m grows.
    curves = [r for r in by_name["ntk"].raw["runs"] if "loss" in r]
    assert len(curves) == 2 and all(r["linearized_vs_predict"] < 1e-10 for r in curves)
    small, large = sorted(curves, key=lambda r: r["m"])
    assert large["test_gap"]["linearized"] < small["test_gap"]["linearized"]
    # Experiment 9: teacher labels sit on the top eigendirections and are fitted faster
    # than random labels, in the measurement and in the kernel-regime prediction.
    runs = by_name["eigen"].raw["runs"]
    for seed in {r["seed"] for r in runs}:
        t, g = (next(r for r in runs if r["seed"] == seed and r["target"] == name)
                for name in ("teacher", "gaussian"))
        assert t["label_energy_top"] > 0.5 > g["label_energy_top"]
        assert t["generalization_measure"] < g["generalization_measure"]
        assert t["loss"][-1] / t["loss"][0] < g["loss"][-1] / g["loss"][0]
        assert t["predicted_loss"][-1] / t["loss"][0] < g["predicted_loss"][-1] / g["loss"][0]
        assert t["max_deviation"] < 0.1 and g["max_deviation"] < 0.1
    pytest.importorskip("matplotlib")
    assert all(f.endswith(".png") for r in results for f in r.figures)
    assert all(r.figures for r in results)          # every experiment draws its figure


def test_fit_slope_recovers_a_power_law():
    xs = [1.0, 2.0, 4.0, 8.0]
    slope, _ = experiments.fit_slope(xs, [3 * x ** -0.5 for x in xs])
    assert slope == pytest.approx(-0.5, abs=1e-12)


def test_estimate_is_the_student_t_interval_by_hand():
    # values 1, 2, 3: mean 2, sd 1, t_{0.975, 2} = 4.30265272975 (tables: 4.303), to 1e-10
    e = experiments.estimate([1.0, 2.0, 3.0])
    half = 4.30265272975 / 3 ** 0.5
    assert (e.mean, e.low, e.high) == pytest.approx((2.0, 2.0 - half, 2.0 + half), rel=1e-10)
    assert e.text("{:.2f}") == "2.00 [-0.48, 4.48]"
    assert experiments.estimate([5.0]).text("{:.1f}") == "5.0"


def test_estimate_on_logs_is_geometric_and_stays_positive():
    # values 1, 10, 100: logs 0, ln 10, 2 ln 10 (mean ln 10, sd ln 10), so the geometric
    # mean is 10 and the interval 10·exp(±t_{0.975,2}·ln 10/√3), to 1e-10; the arithmetic
    # interval of the same values goes below 0
    e = experiments.estimate([1.0, 10.0, 100.0], log=True)
    half = 4.30265272975 * math.log(10.0) / 3 ** 0.5
    assert (e.mean, e.low, e.high) == pytest.approx((10.0, 10 * math.exp(-half),
                                                     10 * math.exp(half)), rel=1e-10)
    assert e.geometric and e.low > 0 > experiments.estimate([1.0, 10.0, 100.0]).low
    with pytest.raises(ValueError, match="positive"):
        experiments.estimate([1.0, 0.0], log=True)


def test_fit_seeds_averages_the_per_seed_slopes():
    xs = [1.0, 2.0, 4.0, 8.0]
    curves = [[2 * x ** -0.4 for x in xs], [3 * x ** -0.6 for x in xs], [0.0, 1.0, 1.0, 1.0]]
    fit = experiments.fit_seeds(xs, curves)
    assert fit.slope.mean == pytest.approx(-0.5, abs=1e-12)
    assert fit.slope.values == pytest.approx([-0.4, -0.6], abs=1e-12)
    assert fit.dropped == 1 and "1 seed(s) with a zero left out" in fit.text()
    # the points are the geometric mean over the kept seeds; the band contains them
    assert fit.points[0] == pytest.approx((2 * 3) ** 0.5)
    assert all(lo <= p <= hi for lo, p, hi in zip(*fit.band[:1], fit.points, fit.band[1]))
    with pytest.raises(ValueError, match="<= 0"):
        experiments.fit_seeds(xs, [[0.0, 1.0, 1.0, 1.0]])
