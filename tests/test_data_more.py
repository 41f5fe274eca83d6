"""sphere(min_separation), the packing bound, the digits loader and check_assumptions."""
import math

import numpy as np
import pytest

import tinyntk as tn
from tinyntk import data as D


@pytest.mark.parametrize("n,d,phi", [(50, 4, 0.25), (300, 8, 0.5), (20, 3, 0.15)])
def test_sphere_min_separation_holds(n, d, phi):
    X, Y = D.sphere(n=n, d=d, k=2, mu=0.3, seed=1, min_separation=phi)
    Xh = tn.to_numpy(X)
    assert Xh.shape == (n, d) and tn.to_numpy(Y).shape == (n, 2)
    # brute force over all pairs
    dist = np.linalg.norm(Xh[:, None] - Xh[None], axis=2) + np.diag(np.full(n, np.inf))
    assert dist.min() >= phi
    assert np.allclose(np.linalg.norm(Xh, axis=1), 1.0, atol=1e-12)
    assert np.all(Xh[:, -1] == 0.3)


def test_sphere_without_min_separation_is_unchanged():
    a, b = D.sphere(n=30, d=6, seed=4)
    c, e = D.sphere(n=30, d=6, seed=4, min_separation=None)
    assert np.array_equal(tn.to_numpy(a), tn.to_numpy(c)) and np.array_equal(tn.to_numpy(b), tn.to_numpy(e))


def test_max_separation_on_a_circle_is_exact():
    # d = 3: the points lie on a circle of radius r = sqrt(1 - mu^2); the best n points
    # are a regular n-gon, 2 r sin(pi/n) apart, and the cap bound is tight there.
    for n in (3, 10, 100):
        r = math.sqrt(1 - 0.5 ** 2)
        assert D.max_separation(n, 3, 0.5) == pytest.approx(2 * r * math.sin(math.pi / n), rel=1e-9)
    # two points can always be antipodal
    assert D.max_separation(2, 7, 0.5) == pytest.approx(2 * math.sqrt(0.75), rel=1e-9)


def test_impossible_and_hopeless_requests_raise():
    with pytest.raises(ValueError, match="impossible.*packing bound"):
        D.sphere(n=10, d=3, mu=0.5, min_separation=0.6)
    with pytest.raises(ValueError, match="impossible"):
        D.sphere(n=3, d=2, mu=0.5, min_separation=0.1)          # only two points on S^0
    # possible in principle (regular 10-gon: 0.535) but random addition jams first
    with pytest.raises(ValueError, match="could not place .* only"):
        D.sphere(n=10, d=3, mu=0.5, min_separation=0.53, max_tries=2000)


def test_digits_satisfy_assumption_3_1():
    pytest.importorskip("sklearn")
    X, Y = D.digits(mu=0.4)
    Xh, Yh = tn.to_numpy(X), tn.to_numpy(Y)
    assert Xh.shape == (1797, 65) and Yh.shape == (1797, 10)
    assert np.all(Xh[:, -1] == 0.4)                                   # exactly mu
    assert np.abs(np.linalg.norm(Xh, axis=1) - 1).max() < 1e-14      # up to rounding
    assert np.all(Yh.sum(axis=1) == 1) and set(np.unique(Yh)) == {0.0, 1.0}
    rep = D.check_assumptions(X, mu=0.4)
    assert rep.holds_3_1 and rep.holds_3_2 and rep.phi > 0


def test_digits_pair_and_split():
    pytest.importorskip("sklearn")
    X, Y, Xt, Yt = D.digits(classes=(3, 8), test_fraction=0.25, seed=2)
    n, nt = X.shape[0], Xt.shape[0]
    assert n + nt == 357 and nt == round(0.25 * 357)                  # 183 threes + 174 eights
    assert set(np.unique(tn.to_numpy(Y))) == {-1.0, 1.0} and Y.shape == (n, 1)
    assert (tn.to_numpy(Y) == 1).sum() + (tn.to_numpy(Yt) == 1).sum() == 183
    assert D.check_assumptions(Xt, mu=0.5).holds_3_1
    X32, _ = D.digits(classes=(0, 1), dtype="float32")
    assert X32.dtype == np.float32
    with pytest.raises(ValueError):
        D.digits(classes=(3, 3))


def test_digits_missing_sklearn_message(monkeypatch):
    import builtins

    real = builtins.__import__

    def fake(name, *a, **kw):
        if name.startswith("sklearn"):
            raise ImportError("no sklearn")
        return real(name, *a, **kw)

    monkeypatch.setattr(builtins, "__import__", fake)
    with pytest.raises(ImportError, match=r"pip install tinyntk\[data\]"):
        D.digits()


def test_check_assumptions_reports_the_size_of_failures():
    X, _ = D.sphere(n=5, d=4, mu=0.5, seed=0)
    Xh = tn.to_numpy(X).copy()
    rep = D.check_assumptions(Xh, mu=0.5)
    assert rep.holds_3_1 and rep.holds_3_2
    Xh[2] *= 1.1                                  # norm 1.1, last coordinate 0.55
    Xh[4] = Xh[3]                                 # a duplicate
    rep = D.check_assumptions(Xh, mu=0.5)
    assert not rep.holds_3_1 and not rep.holds_3_2
    assert rep.norm_error == pytest.approx(0.1, rel=1e-12)
    assert rep.mu_error == pytest.approx(0.05, rel=1e-12)
    assert rep.phi == 0.0
    assert "FAILS" in str(rep)
