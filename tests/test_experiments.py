"""Every experiment runs at its quick size and puts a measured value next to the theory."""
import json

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
    # GD converges geometrically at every depth: the fitted contraction is below 1.
    for L in (1, 2, 3, 4):
        assert by_name["convergence"].raw[L]["rate"] < 1.0
    # Lazy training: the trajectory shrinks with width (slope clearly negative).
    slope = float(by_name["width"].rows[0][1])
    assert slope < -0.2, slope
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
