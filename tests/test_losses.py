"""Losses: the square loss of eq. (2.1) and the logistic loss, values and gradients."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import reference as ref
import strategies as S
import tinyntk as tn
from tinyntk import losses


def test_square_loss_by_hand():
    """Eq. (2.1): L = (1/n) Σ_i ½‖y_i − f(x_i)‖², computed by hand for n = 2, k = 2.

    residuals (1, 2) and (2, 3): ½(1 + 4) = 2.5 and ½(4 + 9) = 6.5, mean 4.5, all exact in
    binary floating point, so the comparison is exact.
    """
    out = np.array([[1.0, 2.0], [3.0, 4.0]])
    Y = np.array([[0.0, 0.0], [1.0, 1.0]])
    sq = losses.SquareLoss()
    assert float(sq.value(out, Y)) == 4.5
    np.testing.assert_array_equal(sq.grad(out, Y), [[0.5, 1.0], [1.0, 1.5]])   # (f - y)/n


def test_loss_and_grad_square_by_hand():
    """A one-layer net small enough to do on paper: f(x) = v σ(w·x)."""
    net = tn.ReLUNet(W=[np.array([[1.0, 2.0]])], V=np.array([[3.0]]))
    X = np.array([[1.0, 1.0], [-1.0, -1.0]])        # z = 3 (active), z = -3 (dead)
    Y = np.array([[1.0], [2.0]])
    value, grads = tn.loss_and_grad(net, X, Y)
    assert isinstance(value, float)
    # f = (9, 0); L = (½·64 + ½·4) / 2 = 17
    assert value == 17.0
    # dL/df = (8, -2)/2 = (4, -1); dL/dV = 4·3 = 12; dL/dw = 4·v·x_1 = (12, 12)
    np.testing.assert_array_equal(tn.to_numpy(grads.V), [[12.0]])
    np.testing.assert_array_equal(tn.to_numpy(grads.W[0]), [[12.0, 12.0]])


@given(out=hnp.arrays(np.float64, st.tuples(S.dims, S.dims), elements=S.bounded_floats(1e3)),
       data=st.data())
def test_square_loss_matches_eq_2_1(out, data):
    """Against a per-example loop; the sums differ only in order: a few ulp, so 1e-12."""
    Y = data.draw(hnp.arrays(np.float64, out.shape, elements=S.bounded_floats(1e3)))
    sq = losses.SquareLoss()
    assert float(sq.value(out, Y)) == pytest.approx(ref.loss_value(out, Y, "square"),
                                                    rel=1e-12, abs=1e-300)
    np.testing.assert_allclose(sq.grad(out, Y), (out - Y) / out.shape[0], rtol=1e-15, atol=0)


MARGINS = [-1e4, -800.0, -40.0, -1.0, 0.0, 1.0, 40.0, 800.0, 1e4]


def test_logistic_is_stable_for_huge_margins():
    """No overflow, invalid or divide-by-zero, no warning, and the right limits.

    Underflow is *allowed*: exp(-1e4) rounds to 0 (the correct float64 answer), and NumPy
    flags that as underflow inside logaddexp; NumPy ignores underflow by default.
    """
    Y = np.ones((len(MARGINS), 1))
    out = np.array(MARGINS)[:, None]              # margins y·f = out
    lg = losses.LogisticLoss()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            per = np.array([float(lg.value(out[i:i + 1], Y[i:i + 1])) for i in range(len(out))])
            E = lg.grad(out, Y)
            total = float(lg.value(out, Y))
            # also with -1 labels: the margins flip sign
            E_neg = lg.grad(-out, -Y)
    assert np.all(np.isfinite(per)) and np.all(np.isfinite(E)) and np.isfinite(total)
    assert per[0] == 1e4                           # log(1 + e^{1e4}) = 1e4 + log1p(e^{-1e4})
    assert per[-1] == 0.0                          # log(1 + e^{-1e4}) underflows to 0
    assert per[4] == pytest.approx(np.log(2.0), rel=1e-15)
    n = len(MARGINS)
    assert E[0, 0] == pytest.approx(-1.0 / n, rel=1e-15)   # -y sigmoid(-z)/n -> -1/n
    assert E[-1, 0] == 0.0
    np.testing.assert_array_equal(E_neg, -E)
    assert np.all(np.diff(per) <= 0)              # decreasing in the margin


@given(z=hnp.arrays(np.float64, st.tuples(S.dims, st.just(1)),
                    elements=st.floats(-1e4, 1e4, allow_nan=False)),
       data=st.data())
def test_logistic_matches_reference(z, data):
    """Value and gradient against :mod:`reference` (log1p/exp split by sign, no logaddexp).

    Tolerance 1e-13 relative (~450 ulp): both are accurate to a few ulp per term for every
    margin, and the sum over n ≤ 4 terms adds a few more.  ``abs=1e-300`` only lets
    underflowed terms (|z| > 745, true value < 1e-323) compare as 0.
    """
    Y = data.draw(S.pm1_labels(z.shape[0]))
    out = z * Y                                   # so that the margins y·f are z
    lg = losses.LogisticLoss()
    n = z.shape[0]
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        value = float(lg.value(out, Y))
        E = lg.grad(out, Y)
    assert value == pytest.approx(ref.loss_value(out, Y, "logistic"), rel=1e-13, abs=1e-300)
    expected = -Y * ref.sigmoid_neg(z) / n
    np.testing.assert_allclose(E, expected, rtol=1e-13, atol=1e-300)


def test_logistic_checks_targets():
    net = tn.ReLUNet.init(d=2, m=3, k=1, seed=0)
    X = np.ones((2, 2))
    with pytest.raises(ValueError, match=r"-1, \+1"):
        tn.loss_and_grad(net, X, np.array([[1.0], [0.0]]), loss="logistic")
    net2 = tn.ReLUNet.init(d=2, m=3, k=2, seed=0)
    with pytest.raises(ValueError, match="k = 1"):
        tn.loss_and_grad(net2, X, np.ones((2, 2)), loss="logistic")


def test_unknown_loss_lists_known_ones():
    with pytest.raises(ValueError) as info:
        losses.get("hinge")
    assert "square" in str(info.value) and "logistic" in str(info.value)


def test_loss_objects_pass_through_and_names_are_case_insensitive():
    sq = losses.SquareLoss()
    assert losses.get(sq) is sq
    assert isinstance(losses.get("Logistic"), losses.LogisticLoss)


@pytest.mark.parametrize("name", ["square", "logistic"])
def test_losses_keep_float32(name):
    out = np.array([[0.5], [-2.0]], dtype=np.float32)
    Y = np.array([[1.0], [-1.0]], dtype=np.float32)
    lf = losses.get(name)
    assert lf.value(out, Y).dtype == np.float32
    assert lf.grad(out, Y).dtype == np.float32
    assert lf.grad(out, Y, scale=0.1).dtype == np.float32
