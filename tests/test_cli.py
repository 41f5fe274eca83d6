"""The command line: each command runs, writes what it says, and fails in one line."""
import json
import os
import subprocess
import sys

import pytest

from tinyntk import cli


def test_demo_prints_table_and_writes_outputs(tmp_path, capsys):
    assert cli.main(["demo", "--n", "8", "--m", "256", "--steps", "20", "--out", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    for needle in ("loss contraction per step", "Lemma 4.2", "λ₀", "NTK drift", "activation patterns"):
        assert needle in text
    # the paper's column names the width it is proven for, and the regime says how far we are
    assert "what the paper states (proven for m ≥" in text and "Regime:" in text
    assert "not a check of the lemmas inside their proven regime" in " ".join(text.split())
    saved = json.loads((tmp_path / "demo.json").read_text())
    assert saved["history"]["loss"][-1] < saved["history"]["loss"][0]
    # the loss row carries the kernel-regime prediction at T, from Θ₀ and from Θ∞·m/k
    row = next(line for line in text.splitlines() if "L(W(0))" in line)
    assert "kernel regime" in row and "Θ₀" in row and "Θ∞" in row
    predicted = saved["kernel_loss"]
    assert set(predicted) == {"empirical", "infinite"}
    assert all(len(v) == len(saved["history"]["step"]) for v in predicted.values())
    assert predicted["empirical"][0] == pytest.approx(saved["history"]["loss"][0], rel=1e-12)
    pytest.importorskip("matplotlib")
    assert (tmp_path / "demo.png").stat().st_size > 10_000


def test_train_saves_history(tmp_path, capsys):
    args = ["train", "--n", "8", "--d", "4", "--m", "64", "--steps", "10", "--record-every", "5",
            "--out", str(tmp_path), "--batch-size", "4", "--train-output"]
    assert cli.main(args) == 0
    hist = json.loads((tmp_path / "history.json").read_text())
    assert hist["step"] == [0, 5, 10]
    import numpy
    with numpy.load(tmp_path / "history.npz", allow_pickle=False) as f:
        assert f["loss"].tolist() == hist["loss"]
    # SGD has no closed-form kernel prediction: said, not silently dropped
    assert hist["predicted_loss"] == {} and "batch" in hist["predicted_skipped"]["empirical"]
    assert "no kernel regime" in capsys.readouterr().out


def test_train_prints_and_stores_the_kernel_prediction(tmp_path, capsys):
    args = ["train", "--n", "8", "--d", "4", "--m", "64", "--steps", "10", "--record-every", "5",
            "--out", str(tmp_path)]
    assert cli.main(args) == 0
    text = capsys.readouterr().out
    assert "(empirical NTK at W(0)) predicts loss" in text
    assert "(infinite width) predicts loss" in text
    hist = json.loads((tmp_path / "history.json").read_text())
    pred = hist["predicted_loss"]
    assert set(pred) == {"empirical", "infinite"} and hist["predicted_skipped"] == {}
    # at step 0 the prediction is the measured loss: both start from f_{W(0)}
    assert pred["empirical"][0] == pytest.approx(hist["loss"][0], rel=1e-12)
    assert pred["empirical"][-1] < pred["empirical"][0]
    import numpy
    with numpy.load(tmp_path / "history.npz", allow_pickle=False) as f:
        assert f["predicted_loss_empirical"].tolist() == pred["empirical"]


def test_theory_table(capsys):
    assert cli.main(["theory", "--n", "100", "--L", "2", "--phi", "0.1"]) == 0
    text = capsys.readouterr().out
    assert "Allen-Zhu" in text and "This paper" in text


@pytest.mark.parametrize("argv, needle", [
    (["train", "--m", "0", "--steps", "1"], "m must be a positive integer"),
    (["train", "--n", "4", "--batch-size", "9", "--steps", "1"], "batch_size"),
    (["--backend", "tpu", "demo"], "unknown backend"),
    (["theory", "--L", "2"], "--n and --phi"),
    (["reproduce", "nonsense"], "unknown experiment"),
])
def test_errors_are_one_line(argv, needle, capsys):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and "\n" not in err and "Traceback" not in err


def test_module_entry_point():
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    out = subprocess.run([sys.executable, "-m", "tinyntk", "theory", "--n", "10", "--phi", "0.5"],
                         capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "This paper" in out.stdout
