"""The paper's bounds, evaluated with constants 1, against values worked out by hand."""
import math

import numpy as np
import pytest

import tinyntk as tn
from tinyntk import theory as T

E = math.exp(-1.0)          # eps with log(1/eps) = 1


def test_solve_m_log3():
    assert T.solve_m_log3(0.5) == 1.0                 # C <= e^3/27: every m works
    for C in (1.0, 10.0, 1e6, 1e20):
        m = T.solve_m_log3(C)
        assert m == pytest.approx(C * math.log(m) ** 3, rel=1e-10)
        # largest root: slightly wider satisfies the condition, slightly narrower does not
        assert 1.001 * m >= C * math.log(1.001 * m) ** 3
        assert 0.999 * m < C * math.log(0.999 * m) ** 3
    with pytest.raises(ValueError):
        T.solve_m_log3(0.0)


def test_theorem_3_3_and_corollary_3_5():
    n, L, phi, k = 10, 2, 0.5, 3
    r = T.theorem_3_3(n, L, phi, k, eps=E)
    C = 3 * 1e8 * 2 ** 12 / 0.5 ** 4                   # k n^8 L^12 / phi^4
    assert r["width"] == pytest.approx(T.solve_m_log3(C))
    assert r["iterations"] == pytest.approx(100 * 4 / 0.5)          # n^2 L^2 log(1/eps)/phi
    assert r["lr"] == pytest.approx(3 / (4 * r["width"]))            # k/(L^2 m)
    c = T.corollary_3_5(n, phi, k, eps=E)
    assert c["width"] == pytest.approx(T.solve_m_log3(3 * 1e8 / 0.5 ** 4))
    assert c["iterations"] == pytest.approx(200.0) and c["lr"] == pytest.approx(3 / c["width"])
    # Corollary 3.5 is Theorem 3.3 at L = 1
    t1 = T.theorem_3_3(n, 1, phi, k, eps=E)
    assert t1 == pytest.approx(c)


def test_theorem_3_8_and_3_10():
    n, L, phi, B, k = 10, 2, 0.5, 2, 1
    r = T.theorem_3_8(n, L, phi, B, k, eps=E)
    C = 1e17 * 2 ** 12 / (2 ** 4 * 0.5 ** 8)           # k n^17 L^12 / (B^4 phi^8)
    m = T.solve_m_log3(C)
    assert r["width"] == pytest.approx(m)
    assert r["lr"] == pytest.approx(1 * 2 * 0.5 / (1e3 * m * math.log(m)))
    assert r["iterations"] == pytest.approx(1e5 * 4 * math.log(m) / (2 * 0.25))
    s = T.theorem_3_10(n, phi, B, k=4, eps=E)
    C = 4 ** 2.5 * 1e11 / (0.5 ** 5 * 2)               # k^{5/2} n^11 / (phi^5 B)
    m = T.solve_m_log3(C)
    assert s["width"] == pytest.approx(m)
    assert s["lr"] == pytest.approx(4 * 2 * 0.5 / (1e3 * m * math.log(m)))
    assert s["iterations"] == pytest.approx(1e5 * math.log(m) / (2 * 0.25))


def _by_author(rows):
    return {r["author"]: r for r in rows}


def test_table1_rows_by_hand():
    n, L, phi, k = 20, 3, 0.25, 2
    lam, xn, lk = 0.01, 2.0, 0.3
    rows = _by_author(T.table1(n, L, phi, k, eps=E, lambda0=lam, X_norm=xn, lambda_K=lk))
    assert rows["Du et al. [11]"]["width_condition"] == pytest.approx(20 ** 6 / 0.01 ** 4)
    assert rows["Du et al. [11]"]["iterations"] == pytest.approx(400 / 0.01 ** 2)
    assert rows["Wu et al. [19]"]["width_condition"] == pytest.approx(20 ** 6 / 0.01 ** 4)
    assert rows["Wu et al. [19]"]["iterations"] == pytest.approx(20 / 0.01)
    assert rows["Oymak and Soltanolkotabi [17]"]["width_condition"] == pytest.approx(20 * 64 / 0.01 ** 4)
    assert rows["Oymak and Soltanolkotabi [17]"]["iterations"] == pytest.approx(4 / 0.01)
    assert rows["Du et al. [9]"]["width_condition"] == pytest.approx(8 * 20 ** 4 / 0.3 ** 4)
    assert rows["Du et al. [9]"]["iterations"] == pytest.approx(8 * 400 / 0.3 ** 2)
    az = rows["Allen-Zhu et al. [2]"]
    assert az["width_condition"] == pytest.approx(2 * 20 ** 24 * 3 ** 12 / 0.25 ** 8)
    assert az["iterations"] == pytest.approx(20 ** 6 * 9 / 0.25 ** 2)
    ours = rows["This paper (Thm 3.3)"]
    assert ours["iterations"] == pytest.approx(400 * 9 / 0.25)
    # Remark 3.4: faster than Allen-Zhu et al. by n^4/phi; width milder by n^16/phi^4
    # (up to our log^3(m), which their Omega-tilde hides)
    assert az["iterations"] / ours["iterations"] == pytest.approx(20 ** 4 / 0.25)
    m = ours["width_condition"]
    assert az["width_condition"] / (m / math.log(m) ** 3) == pytest.approx(20 ** 16 / 0.25 ** 4)
    assert [r["deep"] for r in rows.values()] == [False, False, False, True, True, True]
    assert [r["relu"] for r in rows.values()] == [True, True, True, False, True, True]


def test_remark_3_7_translation():
    n, phi, xn = 15, 0.2, 1.5
    rows = _by_author(T.table1(n, 1, phi, eps=E, X_norm=xn))       # lambda0 = phi/n^2
    rem = T.remark_3_7(n, phi, eps=E, X_norm=xn)
    assert rem["du"]["width"] == pytest.approx(15 ** 14 / 0.2 ** 4)
    assert rem["du"]["iterations"] == pytest.approx(15 ** 6 / 0.2 ** 2)
    assert rem["oymak"]["width"] == pytest.approx(15 ** 9 * 1.5 ** 6 / 0.2 ** 4)
    assert rem["oymak"]["iterations"] == pytest.approx(15 ** 2 * 1.5 ** 2 / 0.2)
    assert rows["Du et al. [11]"]["width_condition"] == pytest.approx(rem["du"]["width"])
    assert rows["Du et al. [11]"]["iterations"] == pytest.approx(rem["du"]["iterations"])
    o = rows["Oymak and Soltanolkotabi [17]"]
    assert o["width_condition"] == pytest.approx(rem["oymak"]["width"])
    assert o["iterations"] == pytest.approx(rem["oymak"]["iterations"])
    assert math.isnan(rows["Du et al. [9]"]["width_condition"])     # lambda_K unknown


def test_sgd_rows_and_format():
    rows = T.table1(30, 2, 0.3, B=5, eps=1e-3)
    assert len(rows) == 9
    by = _by_author(rows)
    assert by["This paper, SGD (Thm 3.8)"]["width_condition"] == pytest.approx(
        T.theorem_3_8(30, 2, 0.3, 5, eps=1e-3)["width"])
    az = by["Allen-Zhu et al. [2], SGD (Rem. 3.9)"]
    assert az["iterations"] == pytest.approx(30 ** 7 * 4 * math.log(1e3) / (5 * 0.09))
    text = T.format_table(rows)
    assert "constants set to 1" in text
    for r in rows:
        assert r["author"] in text
    assert "n/a" in text                                              # Du et al. [9]


def test_from_data_fills_in_measurements():
    X, _ = tn.data.sphere(n=12, d=6, seed=1)
    rows = _by_author(T.from_data(X, L=2, k=1, eps=E))
    lam, phi = tn.kernels.lambda_0(X), tn.data.separation(X)
    xn = np.linalg.norm(tn.to_numpy(X), 2)
    assert rows["Wu et al. [19]"]["iterations"] == pytest.approx(12 / lam)
    assert rows["Oymak and Soltanolkotabi [17]"]["iterations"] == pytest.approx(xn ** 2 / lam)
    assert rows["This paper (Thm 3.3)"]["iterations"] == pytest.approx(144 * 4 / phi)
    assert np.isfinite(rows["Du et al. [9]"]["width_condition"])


def test_theorems_at_a_given_width():
    r = T.theorem_3_3(10, 2, 0.5, k=1, eps=E, m=1e6)
    assert r["lr"] == pytest.approx(1 / (4 * 1e6)) and r["width_ok"] is False
    s = T.theorem_3_8(10, 1, 0.5, B=4, eps=E, m=1e60)
    assert s["width_ok"] is True
    assert s["lr"] == pytest.approx(4 * 0.5 / (1e3 * 1e60 * math.log(1e60)))
    assert s["iterations"] == pytest.approx(1e5 * math.log(1e60) / (4 * 0.25))
    c = T.corollary_3_5(10, 0.5, eps=E, m=1e40)
    assert c["width_ok"] is True and c["lr"] == pytest.approx(1e-40)


def test_tau_of_lemmas_4_1_and_4_2():
    """τ = φ^{3/2} n^{-3} L^{-6} log^{-3/2}(m), natural log, constants 1: by hand for the
    demo's sizes (n = 32, L = 2, m = 2048, φ = 0.5993), and its scaling in each symbol."""
    by_hand = 0.5993 ** 1.5 / (32 ** 3 * 2 ** 6 * math.log(2048) ** 1.5)
    assert T.tau(32, 2, 0.5993, 2048) == pytest.approx(by_hand, rel=1e-15)
    assert T.tau(32, 2, 0.5993, 2048) == pytest.approx(1.05e-8, rel=1e-3)
    assert T.tau(64, 2, 0.5, 2048) == pytest.approx(T.tau(32, 2, 0.5, 2048) / 8, rel=1e-14)
    assert T.tau(32, 4, 0.5, 2048) == pytest.approx(T.tau(32, 2, 0.5, 2048) / 64, rel=1e-14)
    assert T.tau(32, 2, 0.2, 2048) == pytest.approx(T.tau(32, 2, 0.8, 2048) / 8, rel=1e-14)
    for bad in (dict(n=0), dict(phi=-1.0), dict(m=1), dict(L=0)):
        with pytest.raises(ValueError):
            T.tau(**{**dict(n=32, L=2, phi=0.5, m=2048), **bad})


def test_paper_constant_inverts_theorem_3_3s_step_size():
    assert T.paper_constant(T.theorem_3_3(32, 2, 0.5, k=3, m=2048)["lr"], 3, 2, 2048) == pytest.approx(1.0)


def test_regime_gives_tau_and_the_theorem_width_by_hand():
    # Theorem 3.3's condition m = k n^8 L^12 log^3(m)/phi^4 with n = L = k = 1 and
    # phi^4 = 216/e^6 reads m = (e^6/216) log^3(m), whose largest solution is m = e^6
    # (e^6/216 · 6^3 = e^6); its fixed-point slope there is 3/log(m) = 1/2 < 1.
    phi = (216.0 / math.e ** 6) ** 0.25
    r = T.regime(n=1, L=1, phi=phi, m=math.e ** 2)
    assert r.theorem == "Theorem 3.3"
    assert r.width == pytest.approx(math.e ** 6, rel=1e-10)
    # tau = phi^(3/2) n^-3 L^-6 log^(-3/2)(m) at m = e^2: phi^(3/2) / 2^(3/2).
    assert r.tau == pytest.approx(phi ** 1.5 / 2 ** 1.5, rel=1e-14)
    assert not r.proven and T.regime(n=1, L=1, phi=phi, m=1e3).proven
    # The text names both numbers and the measured movement beside tau.
    r = T.regime(n=32, L=2, phi=0.5993, m=2048, moved=0.09)
    assert r.width == T.theorem_3_3(32, 2, 0.5993)["width"] and r.width > 1e21
    text = r.text()
    assert f"{r.width:.2g}" in text and f"{r.tau:.2g}" in text and "0.09" in text
    assert "not a check of the lemmas" in text


def test_regime_for_sgd_uses_theorem_3_8():
    r = T.regime(n=16, L=2, phi=0.5, m=100, B=4)
    assert r.theorem == "Theorem 3.8 with B = 4"
    assert r.width == T.theorem_3_8(16, 2, 0.5, 4)["width"]
    with pytest.raises(ValueError, match="phi"):
        T.regime(n=16, L=2, phi=0.0, m=100)
