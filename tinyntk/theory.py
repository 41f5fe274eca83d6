r"""The paper's bounds as numbers: Table 1, Theorems 3.3/3.8/3.10, Corollary 3.5.

Every bound in the paper is an :math:`O(\cdot)`, :math:`\Omega(\cdot)` or
:math:`\tilde\Omega(\cdot)`.  Here **every hidden constant is set to 1** (and
:math:`2^{O(L)}` is read as :math:`2^L`); :math:`\tilde\Omega` rows of other papers are
evaluated without their hidden logarithms.  The numbers are therefore the *shape* of
each bound — how it scales with :math:`n, L, \phi, k, B, \epsilon` — and their ratios
between rows, not widths anyone must use.

The width conditions of Zou & Gu contain :math:`\log^3(m)`: ``m = Omega(C log^3 m)`` is
read as *every* :math:`m \ge m^*`, with :math:`m^*` the largest solution of
:math:`m = C\log^3 m` (found by fixed-point iteration, :func:`solve_m_log3`).

Symbols: ``n`` examples, ``L`` hidden layers, ``phi`` the separation (Assumption 3.2),
``k`` outputs, ``B`` minibatch size, ``eps`` the target training loss, ``lambda0`` =
:math:`\lambda_{\min}(H)` (Proposition 3.6), ``X_norm`` = :math:`\|X\|_2`, ``lambda_K`` =
:math:`\lambda_{\min}(K^{(L)})` of Du et al. [9].
"""
from __future__ import annotations

import math
from dataclasses import dataclass

CONSTANTS_NOTE = ("all O/Omega constants set to 1; 2^O(L) read as 2^L; logs hidden by "
                  "Omega-tilde dropped; log^3(m) solved as the largest m = C log^3 m")


def solve_m_log3(C: float) -> float:
    r"""The smallest width :math:`m^*` such that :math:`m \ge C\log^3 m` for every
    :math:`m \ge m^*`.

    :math:`m/\log^3 m` is smallest at :math:`m = e^3` (value :math:`e^3/27 \approx 0.744`),
    so for :math:`C \le e^3/27` every :math:`m \ge 1` works and 1 is returned.  Otherwise
    :math:`m^*` is the largest fixed point of :math:`g(m) = C\log^3 m`; starting above it,
    :math:`m \leftarrow g(m)` decreases monotonically to it (:math:`g'(m^*) = 3/\log m^* < 1`).
    """
    C = float(C)
    if not C > 0:
        raise ValueError(f"C must be positive, got {C!r}")
    if C <= math.exp(3) / 27:
        return 1.0
    if not math.isfinite(C):
        return math.inf
    m = max(C, math.exp(3)) * 2.0
    while C * math.log(m) ** 3 >= m:         # climb above the largest fixed point
        m *= 16.0
        if not math.isfinite(m):             # beyond floating point: say so, no loop
            return math.inf
    for _ in range(1000):
        new = C * math.log(m) ** 3
        if abs(new - m) <= 1e-12 * m:
            return new
        m = new
    return m


def _log_inv_eps(eps):
    eps = float(eps)
    if not 0 < eps < 1:
        raise ValueError(f"eps must lie in (0, 1), got {eps!r}")
    return math.log(1.0 / eps)


def _positive(**kw):
    for name, value in kw.items():
        if value is None or not float(value) > 0:
            raise ValueError(f"{name} must be positive, got {value!r}")


def _width(m, width):
    if m is None:
        return width
    _positive(m=m)
    return float(m)


# ----- Zou & Gu's theorems -------------------------------------------------------------
def paper_constant(lr, k, L, m) -> float:
    r"""The constant :math:`c` of Theorem 3.3's step size :math:`\eta = c\,k/(L^2 m)`,
    :math:`c = \eta L^2 m / k`: how far a step size is from the theorem's scale."""
    return float(lr) * L * L * m / k


def tau(n, L, phi, m) -> float:
    r"""The perturbation radius of Lemmas 4.1, 4.2 and 4.5, constants 1, natural log:

    .. math::  \tau = \phi^{3/2}\, n^{-3} L^{-6} \log^{-3/2}(m).

    Inside :math:`\mathcal B(W^{(0)}, \tau)` (section 4.1; :class:`tinyntk.diagnostics.InBall`)
    the gradient lower bound (Lemma 4.1) and the linear rate (Lemma 4.5) hold; the proof of
    Theorem 3.3 (step iii) shows the width (3.1) keeps GD inside.  At the widths one can
    train, :math:`\tau` is tiny (``tau(32, 2, 0.6, 2048)`` is about 1e-8) while
    ``‖W_l(t) − W_l(0)‖₂`` is about 0.09 (``tinyntk demo``, the same sizes): the ball is the proof's device, not a region
    practical runs stay in.  Needs ``m > 1`` (so that :math:`\log m > 0`).
    """
    _positive(n=n, L=L, phi=phi, m=m)
    if not m > 1:
        raise ValueError(f"m must be > 1 (tau has log(m) in the denominator), got {m!r}")
    return phi ** 1.5 / (n ** 3 * L ** 6 * math.log(m) ** 1.5)


@dataclass(frozen=True)
class Regime:
    r"""Where a run sits against the theorem it illustrates (constants 1).

    ``width`` is the theorem's width condition for the run's ``n, L, phi, k`` (Theorem 3.3,
    or Theorem 3.8 for SGD with minibatch ``B``), ``tau`` Lemmas 4.1/4.2/4.5's radius at
    the run's width ``m``, ``moved`` the measured :math:`\max_l\|W_l(T) - W_l(0)\|_2`
    (``None`` if not measured).  :meth:`text` says it in one paragraph."""

    n: int
    L: int
    phi: float
    m: float
    k: int
    theorem: str
    width: float
    tau: float
    moved: float | None = None

    @property
    def proven(self) -> bool:
        """Whether the run's width meets the theorem's condition."""
        return self.m >= self.width

    def text(self) -> str:
        moved = ("" if self.moved is None else
                 f"; here the weights moved {self.moved:.2g} ({self.moved / self.tau:.1e} τ)")
        verdict = ("inside the proven regime" if self.proven else
                   "so the measurements below show how nets of practical width behave (the "
                   "lazy-training scaling), not a check of the lemmas inside their proven regime")
        return (f"Regime: the largest width here is m = {self.m:.0f}; {self.theorem} (constants 1) "
                f"is proven for "
                f"m ≥ {self.width:.2g} at n = {self.n}, L = {self.L}, φ = {self.phi:.3g}, "
                f"k = {self.k}, with every iterate within τ = φ^(3/2) n^(−3) L^(−6) log^(−3/2)(m) "
                f"= {self.tau:.2g} of W(0) (Lemmas 4.1, 4.2, 4.5){moved}; "
                f"{verdict}.")


def regime(n, L, phi, m, k=1, B=None, moved=None) -> Regime:
    r"""The :class:`Regime` of a run of width ``m`` on ``n`` points of separation ``phi``
    with ``L`` hidden layers: Theorem 3.3's width (eq. 3.1) for GD, Theorem 3.8's (eq. 3.2)
    for SGD with minibatch ``B``, and :func:`tau` at ``m``.  ``moved``: the run's measured
    :math:`\max_l\|W_l(T) - W_l(0)\|_2`, to set beside :math:`\tau`."""
    if B is None:
        theorem, width = "Theorem 3.3", theorem_3_3(n, L, phi, k)["width"]
    else:
        theorem, width = f"Theorem 3.8 with B = {B}", theorem_3_8(n, L, phi, B, k)["width"]
    return Regime(n=int(n), L=int(L), phi=float(phi), m=float(m), k=int(k), theorem=theorem,
                  width=float(width), tau=tau(n, L, phi, m),
                  moved=None if moved is None else float(moved))


def theorem_3_3(n, L, phi, k=1, eps=1e-3, m=None) -> dict:
    r"""Theorem 3.3 (GD, L hidden layers), constants 1:

    * width :math:`m \ge k n^8 L^{12} \log^3(m)/\phi^4` (eq. 3.1),
    * step size :math:`\eta = k/(L^2 m)`,
    * iterations :math:`T = n^2 L^2 \log(1/\epsilon)/\phi`.

    Returns ``{"width", "lr", "iterations", "m", "width_ok"}``: the step size is for the
    given width ``m`` (default: the width condition itself), ``width_ok`` says whether
    ``m`` meets the condition.  The same holds for the other theorem functions.
    """
    _positive(n=n, L=L, phi=phi, k=k)
    width = solve_m_log3(k * n ** 8 * L ** 12 / phi ** 4)
    m = _width(m, width)
    return {"width": width, "lr": k / (L ** 2 * m),
            "iterations": n ** 2 * L ** 2 * _log_inv_eps(eps) / phi, "m": m, "width_ok": m >= width}


def corollary_3_5(n, phi, k=1, eps=1e-3, m=None) -> dict:
    r"""Corollary 3.5 (GD, two-layer, i.e. ``L = 1``), constants 1:
    :math:`m \ge k n^8\log^3(m)/\phi^4`, :math:`\eta = k/m`,
    :math:`T = n^2\log(1/\epsilon)/\phi`."""
    _positive(n=n, phi=phi, k=k)
    width = solve_m_log3(k * n ** 8 / phi ** 4)
    m = _width(m, width)
    return {"width": width, "lr": k / m, "iterations": n ** 2 * _log_inv_eps(eps) / phi,
            "m": m, "width_ok": m >= width}


def theorem_3_8(n, L, phi, B, k=1, eps=1e-3, m=None) -> dict:
    r"""Theorem 3.8 (SGD, L hidden layers, minibatch B), constants 1:

    * width :math:`m \ge k n^{17} L^{12}\log^3(m)/(B^4\phi^8)` (eq. 3.2),
    * step size :math:`\eta = kB\phi/(n^3 m\log m)`,
    * iterations :math:`T = n^5 L^2 \log(m)\log^2(1/\epsilon)/(B\phi^2)`.

    ``log(m)`` is taken at the given ``m`` (default: the width condition).
    """
    _positive(n=n, L=L, phi=phi, B=B, k=k)
    width = solve_m_log3(k * n ** 17 * L ** 12 / (B ** 4 * phi ** 8))
    m = _width(m, width)
    lm = math.log(max(m, math.e))
    return {"width": width, "lr": k * B * phi / (n ** 3 * m * lm),
            "iterations": n ** 5 * L ** 2 * lm * _log_inv_eps(eps) ** 2 / (B * phi ** 2),
            "m": m, "width_ok": m >= width}


def theorem_3_10(n, phi, B, k=1, eps=1e-3, m=None) -> dict:
    r"""Theorem 3.10 (SGD, two-layer), constants 1:
    :math:`m \ge k^{5/2} n^{11}\log^3(m)/(\phi^5 B)`,
    :math:`\eta = kB\phi/(n^3 m\log m)`,
    :math:`T = n^5\log(m)\log(1/\epsilon)/(B\phi^2)`."""
    _positive(n=n, phi=phi, B=B, k=k)
    width = solve_m_log3(k ** 2.5 * n ** 11 / (phi ** 5 * B))
    m = _width(m, width)
    lm = math.log(max(m, math.e))
    return {"width": width, "lr": k * B * phi / (n ** 3 * m * lm),
            "iterations": n ** 5 * lm * _log_inv_eps(eps) / (B * phi ** 2),
            "m": m, "width_ok": m >= width}


def remark_3_7(n, phi, eps=1e-3, X_norm=None) -> dict:
    r"""Remark 3.7: Du et al. [11] and Oymak & Soltanolkotabi [17] in terms of
    :math:`\phi`, from :math:`\lambda_0 = \Omega(\phi/n^2)` (Proposition 3.6, constant 1):

    * Du et al.: width :math:`n^{14}/\phi^4`, iterations :math:`n^6\log(1/\epsilon)/\phi^2`;
    * Oymak & Soltanolkotabi: width :math:`n^9\|X\|_2^6/\phi^4`, iterations
      :math:`n^2\|X\|_2^2\log(1/\epsilon)/\phi`.

    ``X_norm=None`` takes footnote 2's worst case :math:`\|X\|_2^2 = n`.
    """
    _positive(n=n, phi=phi)
    X_norm = math.sqrt(n) if X_norm is None else float(X_norm)
    le = _log_inv_eps(eps)
    return {"du": {"width": n ** 14 / phi ** 4, "iterations": n ** 6 * le / phi ** 2},
            "oymak": {"width": n ** 9 * X_norm ** 6 / phi ** 4,
                      "iterations": n ** 2 * X_norm ** 2 * le / phi}}


# ----- Table 1 ---------------------------------------------------------------------------
def _row(author, width_formula, width, iter_formula, iterations, deep, relu, note=""):
    return {"author": author, "width_formula": width_formula, "width_condition": width,
            "iterations_formula": iter_formula, "iterations": iterations,
            "deep": deep, "relu": relu, "note": note}


def table1(n, L=1, phi=None, k=1, B=None, eps=1e-3, lambda0=None, X_norm=None,
           lambda_K=None) -> list:
    r"""Table 1 of the paper (GD), evaluated with every constant set to 1.

    Returns a list of dicts with keys ``author``, ``width_condition`` (a number),
    ``width_formula``, ``iterations`` (a number), ``iterations_formula``, ``deep``,
    ``relu``, ``note``.  Rows: Du et al. [11], Wu et al. [19], Oymak & Soltanolkotabi
    [17], Du et al. [9], Allen-Zhu et al. [2], this paper (Theorem 3.3).

    * ``lambda0=None``: the three :math:`\lambda_0` rows use :math:`\lambda_0 = \phi/n^2`
      (Remark 3.7's translation, constant 1); otherwise the given :math:`\lambda_0`.
    * ``X_norm=None``: footnote 2's worst case :math:`\|X\|_2 = \sqrt n`.
    * ``lambda_K=None``: Du et al. [9]'s :math:`\lambda_{\min}(K^{(L)})` is unknown and that
      row's numbers are ``nan`` (its :math:`K^{(L)}` is for smooth activations).
    * ``B`` given: three SGD rows follow — Allen-Zhu et al. (Remark 3.9), Theorem 3.8,
      and Theorem 3.10 (two-layer; it ignores ``L``).

    The rows of [11], [19], [17] and [9] are stated for ``k = 1`` in those papers.
    """
    _positive(n=n, L=L, phi=phi, k=k)
    le = _log_inv_eps(eps)
    translated = lambda0 is None
    lam = phi / n ** 2 if translated else float(lambda0)
    xn = math.sqrt(n) if X_norm is None else float(X_norm)
    lam_note = "lambda0 = phi/n^2 (Remark 3.7)" if translated else "lambda0 given"
    xn_note = "; ||X||_2 = sqrt(n) (worst case, footnote 2)" if X_norm is None else ""
    nan = float("nan")
    lk = nan if lambda_K is None else float(lambda_K)
    zg = theorem_3_3(n, L, phi, k, eps)
    rows = [
        _row("Du et al. [11]", "n^6/lambda0^4", n ** 6 / lam ** 4,
             "n^2 log(1/eps)/lambda0^2", n ** 2 * le / lam ** 2, False, True, lam_note),
        _row("Wu et al. [19]", "n^6/lambda0^4", n ** 6 / lam ** 4,
             "n log(1/eps)/lambda0", n * le / lam, False, True, lam_note),
        _row("Oymak and Soltanolkotabi [17]", "n ||X||_2^6/lambda0^4", n * xn ** 6 / lam ** 4,
             "||X||_2^2 log(1/eps)/lambda0", xn ** 2 * le / lam, False, True, lam_note + xn_note),
        _row("Du et al. [9]", "2^L n^4/lambda_min(K^(L))^4", 2.0 ** L * n ** 4 / lk ** 4,
             "2^L n^2 log(1/eps)/lambda_min(K^(L))^2", 2.0 ** L * n ** 2 * le / lk ** 2,
             True, False, "needs lambda_K" if lambda_K is None else "lambda_K given"),
        _row("Allen-Zhu et al. [2]", "k n^24 L^12/phi^8", k * n ** 24 * L ** 12 / phi ** 8,
             "n^6 L^2 log(1/eps)/phi^2", n ** 6 * L ** 2 * le / phi ** 2, True, True,
             "Omega-tilde: logs dropped"),
        _row("This paper (Thm 3.3)", "k n^8 L^12 log^3(m)/phi^4", zg["width"],
             "n^2 L^2 log(1/eps)/phi", zg["iterations"], True, True,
             f"step size k/(L^2 m) = {zg['lr']:.3g}"),
    ]
    if B is not None:
        _positive(B=B)
        s8, s10 = theorem_3_8(n, L, phi, B, k, eps), theorem_3_10(n, phi, B, k, eps)
        rows += [
            _row("Allen-Zhu et al. [2], SGD (Rem. 3.9)", "k n^24 L^12 B/phi^8",
                 k * n ** 24 * L ** 12 * B / phi ** 8, "n^7 L^2 log(1/eps)/(B phi^2)",
                 n ** 7 * L ** 2 * le / (B * phi ** 2), True, True, "SGD; Omega-tilde: logs dropped"),
            _row("This paper, SGD (Thm 3.8)", "k n^17 L^12 log^3(m)/(B^4 phi^8)", s8["width"],
                 "n^5 L^2 log(m) log^2(1/eps)/(B phi^2)", s8["iterations"], True, True,
                 f"SGD; step size kB phi/(n^3 m log m) = {s8['lr']:.3g}"),
            _row("This paper, 2-layer SGD (Thm 3.10)", "k^2.5 n^11 log^3(m)/(phi^5 B)", s10["width"],
                 "n^5 log(m) log(1/eps)/(B phi^2)", s10["iterations"], False, True,
                 f"SGD; L = 1; step size kB phi/(n^3 m log m) = {s10['lr']:.3g}"),
        ]
    return rows


def format_table(rows) -> str:
    """Rows of :func:`table1` as plain text, numbers in scientific notation, with the
    note that every constant is 1."""
    def num(x):
        return "n/a" if x != x else f"{x:.3g}"

    head = ["author", "width condition", "m >=", "iterations", "T =", "deep?", "ReLU?", "note"]
    body = [[r["author"], r["width_formula"], num(r["width_condition"]), r["iterations_formula"],
             num(r["iterations"]), "yes" if r["deep"] else "no", "yes" if r["relu"] else "no",
             r["note"]] for r in rows]
    widths = [max(len(str(line[i])) for line in [head] + body) for i in range(len(head))]
    fmt = "  ".join("{:<%d}" % w for w in widths)
    lines = [fmt.format(*head), fmt.format(*["-" * w for w in widths])]
    lines += [fmt.format(*line) for line in body]
    lines.append(f"({CONSTANTS_NOTE})")
    return "\n".join(line.rstrip() for line in lines)


def from_data(X, L: int = 1, k: int = 1, eps: float = 1e-3, B=None) -> list:
    r""":func:`table1` with ``n``, :math:`\phi` (:func:`tinyntk.data.separation`),
    :math:`\lambda_0` (:func:`tinyntk.kernels.lambda_0`) and :math:`\|X\|_2` measured on
    ``X``.  ``lambda_K`` for Du et al. [9] is taken as :math:`\lambda_{\min}` of the ReLU
    NNGP Gram at depth L (:func:`tinyntk.kernels.nngp`), a ReLU stand-in for their
    smooth-activation :math:`K^{(L)}` (said in that row's note)."""
    import numpy

    from . import backend as Bk
    from .data import separation
    from .kernels import lambda_min, lambda_0, nngp

    n = int(Bk.asarray(X).shape[0])
    phi = separation(X)
    lam = lambda_0(X)
    x_norm = float(numpy.linalg.norm(Bk.to_numpy(X), 2))
    lam_K = lambda_min(nngp(X, L=L))
    rows = table1(n, L=L, phi=phi, k=k, B=B, eps=eps, lambda0=lam, X_norm=x_norm,
                  lambda_K=lam_K)
    for r in rows:
        if r["author"] == "Du et al. [9]":
            r["note"] = "lambda_K = lambda_min(ReLU NNGP Gram), a stand-in"
    return rows
