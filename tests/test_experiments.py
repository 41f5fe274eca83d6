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
    pytest.importorskip("matplotlib")
    assert all(f.endswith(".png") for r in results for f in r.figures)
    assert all(r.figures for r in results)          # every experiment draws its figure


def test_fit_slope_recovers_a_power_law():
    xs = [1.0, 2.0, 4.0, 8.0]
    slope, _ = experiments.fit_slope(xs, [3 * x ** -0.5 for x in xs])
    assert slope == pytest.approx(-0.5, abs=1e-12)
