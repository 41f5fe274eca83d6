"""Bench of the neural tangent kernels: empirical (finite width) and analytic (infinite width).

    PYTHONPATH=. python bench/ntk.py --quick        # < 1 minute
    PYTHONPATH=. python bench/ntk.py                # the issue's shapes

1. *empirical*: ``tinyntk.kernels.empirical_ntk(net, X, train_output=True)`` for a net with
   two hidden layers (L = 2, k = 1, d = 32, float32), all layers, at (n, m) = (256, 1024) and
   (512, 2048), against
   - its **GEMM floor**: the matrix products of the layer-structured formula alone,
     ``Theta = sum_l (D_l D_l^T) * (H_{l-1} H_{l-1}^T) + H_L H_L^T`` (forward products,
     ``D_{l-1} = (D_l W_l) * mask``, and the Gram matrices ``A A^T``, which BLAS does as SYRK);
   - neural-tangents (JAX, jit, ``vmap_axes=0``, structured derivatives), run in its own
     virtual environment ``.venv-nt`` when present (else the issue's figures: 0.022 s and 0.41 s);
   - ``torch.func`` (vmap of jacrev, then contraction of the per-layer Jacobians), when
     PyTorch is installed and the Jacobians fit in memory.
   Targets: >= 3x faster than neural-tangents, <= 1.2x the GEMM floor, memory O(n m + n^2).
2. *analytic*: ``tinyntk.kernels.ntk(X, L=4)`` at n = 4096 (n = 1024 with --quick).
   Target: < 1 s.

``reference_empirical_ntk`` below is the layer-structured implementation the targets assume;
it is timed next to tinyntk's, and used alone (clearly labelled) when ``tinyntk.kernels``
does not have ``empirical_ntk`` yet.
"""
from __future__ import annotations

import math
import os
import statistics
import sys
import time
import tracemalloc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import (NT_PYTHON, THREADS, PipePeer, base_parser, fmt_time,  # noqa: E402
                     interleaved, limit_loaded_pools, nt_available, print_header, table,
                     verdict)

import numpy as np  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
import tinyntk as tn  # noqa: E402

try:
    from tinyntk import kernels as tn_kernels
except ImportError:
    tn_kernels = None

try:
    import torch
    torch.set_num_threads(THREADS)
except ImportError:
    torch = None

NT_FIGURES = {(256, 1024): 0.022, (512, 2048): 0.41}     # the neural-tangents times (s)


# --------------------------------------------------------------------------------------
# The layer-structured empirical NTK and its GEMM floor
# --------------------------------------------------------------------------------------
def reference_empirical_ntk(net, X, train_output=True):
    r"""Empirical NTK of a k = 1 net, :math:`\Theta_{ij} = \langle\nabla f(x_i), \nabla f(x_j)\rangle`.

    The gradient of :math:`f(x_i)` with respect to :math:`W_l` is the outer product
    :math:`\delta_{l,i}\, x_{l-1,i}^\top`, and
    :math:`\langle a b^\top, c d^\top\rangle = \langle a, c\rangle\langle b, d\rangle`, so

    .. math::  \Theta = \sum_{l=1}^{L} (D_l D_l^\top) \odot (H_{l-1} H_{l-1}^\top)
               \;+\; H_L H_L^\top \quad (\text{the last term for } V)

    with ``H_l`` the hidden outputs ``(n, m)`` and ``D_l`` the back-propagated signals of
    an output error of 1 per example: ``D_L = V * mask_L``, ``D_{l-1} = (D_l W_l) * mask_{l-1}``.
    Cost: one forward and one backward pass over n examples plus 2L + 1 SYRKs; memory:
    the ``(n, m)`` activations and signals and the ``(n, n)`` result, never a Jacobian.
    """
    xp = tn.get_backend().xp
    _, c = net.forward(X, cache=True)
    h, masks, L = c.h, c.masks, net.L
    n = X.shape[0]
    theta = xp.matmul(h[L], h[L].T) if train_output else xp.zeros((n, n), dtype=net.dtype)
    D = xp.multiply(net.V, masks[L - 1])                 # D_L = v^T * sigma'(layer L), (n, m)
    gram_D, gram_H = xp.empty_like(theta), xp.empty_like(theta)
    for l in range(L, 0, -1):
        xp.matmul(D, D.T, out=gram_D)                   # D_l D_l^T
        xp.matmul(h[l - 1], h[l - 1].T, out=gram_H)     # H_{l-1} H_{l-1}^T
        gram_D *= gram_H
        theta += gram_D
        if l > 1:
            D = xp.matmul(D, net.W[l - 1])              # D_{l-1} = (D_l W_l) * mask_{l-1}
            xp.multiply(D, masks[l - 2], out=D)
    return theta


def ntk_floor(net, X):
    """The matrix products of :func:`reference_empirical_ntk` alone, outputs preallocated."""
    n, m, L, dt = X.shape[0], net.m, net.L, net.dtype
    W = [np.array(w) for w in net.W]
    V = np.array(net.V)
    h = [np.ascontiguousarray(X)] + [np.ones((n, m), dt) for _ in range(L)]
    out = np.empty((n, 1), dt)
    Ds = [np.ones((n, m), dt), np.ones((n, m), dt)]
    grams = [np.empty((n, n), dt) for _ in range(2)]

    def floor():
        for l in range(1, L + 1):
            np.matmul(h[l - 1], W[l - 1].T, out=h[l])
        np.matmul(h[L], V.T, out=out)
        np.matmul(h[L], h[L].T, out=grams[0])
        a, b = Ds
        for l in range(L, 0, -1):
            np.matmul(a, a.T, out=grams[0])
            np.matmul(h[l - 1], h[l - 1].T, out=grams[1])
            if l > 1:
                np.matmul(a, W[l - 1], out=b)
                a, b = b, a
    return floor


def ntk_flops(n, d, m, L):
    fwd = 2 * n * (d * m + (L - 1) * m * m + m)
    bwd = 2 * n * (L - 1) * m * m
    syrk = n * n * (m + L * m + (L - 1) * m + d)       # A A^T costs n^2 K with SYRK
    return fwd + bwd + syrk


def tinyntk_empirical(net, X):
    """tinyntk's own function, or None when tinyntk.kernels has no empirical_ntk yet."""
    fn = getattr(tn_kernels, "empirical_ntk", None) if tn_kernels is not None else None
    if fn is None:
        return None
    try:
        fn(net, X[:4], train_output=True)
        return lambda: fn(net, X, train_output=True)
    except TypeError:            # an older signature without train_output: hidden layers only
        return lambda: fn(net, X)


def traced_peak(fn) -> int:
    """Peak bytes allocated by NumPy during ``fn()`` (tracemalloc sees NumPy's buffers)."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


# --------------------------------------------------------------------------------------
# References outside tinyntk: neural-tangents (subprocess, own venv) and torch.func
# --------------------------------------------------------------------------------------
NT_SCRIPT = r"""
import json, os, sys, time, statistics
import numpy as np
import jax, jax.numpy as jnp
import neural_tangents as nt
from neural_tangents import stax
n, d, m, rounds = (int(a) for a in sys.argv[1:5])
wfile = sys.argv[5]
z = np.load(wfile)
W1, W2, V, X = z["W1"], z["W2"], z["V"], z["X"]
# parameterization='standard' computes x @ W (+ no bias): the same function as tinyntk's net.
init_fn, apply_fn, _ = stax.serial(stax.Dense(m, parameterization="standard", b_std=None),
                                   stax.Relu(),
                                   stax.Dense(m, parameterization="standard", b_std=None),
                                   stax.Relu(),
                                   stax.Dense(1, parameterization="standard", b_std=None))
_, params = init_fn(jax.random.PRNGKey(0), (-1, d))
def put(p, w):
    return (jnp.asarray(w.T),) + tuple(p[1:]) if isinstance(p, tuple) and len(p) else p
params = [put(params[0], W1), params[1], put(params[2], W2), params[3], put(params[4], V)]
kfn = jax.jit(nt.empirical_ntk_fn(apply_fn, vmap_axes=0,
              implementation=nt.NtkImplementation.STRUCTURED_DERIVATIVES))
Xj = jnp.asarray(X)
K = kfn(Xj, None, params).block_until_ready()       # compile + first run
np.save(wfile + ".K.npy", np.asarray(K))
print("READY " + json.dumps({"jax": jax.__version__, "nt": nt.__version__}), flush=True)
for line in sys.stdin:                               # one line "run" = one kernel evaluation
    if line.strip() != "run":
        break
    kfn(Xj, None, params).block_until_ready()
    print("done", flush=True)
"""


class NeuralTangents:
    """neural-tangents in its own process (its own venv, a :class:`PipePeer`), so that its
    runs can be interleaved with tinyntk's: ``__call__`` is one kernel evaluation (the pipe
    round trip, ~0.1 ms, is inside the timing)."""

    def __init__(self, net, X, tmpdir):
        self.wfile = os.path.join(tmpdir, f"nt_{X.shape[0]}_{net.m}.npz")
        np.savez(self.wfile, W1=tn.to_numpy(net.W[0]), W2=tn.to_numpy(net.W[1]),
                 V=tn.to_numpy(net.V), X=X)
        self.peer = PipePeer(NT_PYTHON, NT_SCRIPT, [X.shape[0], X.shape[1], net.m, 0, self.wfile])
        self.info = self.peer.info
        self.K = np.load(self.wfile + ".K.npy")

    def __call__(self):
        self.peer.run()

    def close(self):
        self.peer.close()


def torch_func_ntk(net, X):
    """The torch.func recipe (per-example Jacobians by vmap(jacrev), then contraction)."""
    from torch.func import jacrev, vmap
    params = {f"W{l + 1}": torch.tensor(np.array(w)) for l, w in enumerate(net.W)}
    params["V"] = torch.tensor(np.array(net.V))
    Xt = torch.from_numpy(X)
    L = net.L

    def f(p, x):
        h = x
        for l in range(L):
            h = torch.relu(p[f"W{l + 1}"] @ h)
        return (p["V"] @ h).squeeze(0)

    def ntk():
        jac = vmap(jacrev(f), (None, 0))(params, Xt)
        J = [j.flatten(1) for j in jac.values()]
        return sum(j @ j.T for j in J)
    return ntk


def torch_jacobian_bytes(net, n):
    return n * (net.d * net.m + (net.L - 1) * net.m ** 2 + net.m) * net.dtype.itemsize


# --------------------------------------------------------------------------------------
def bench_empirical(shapes, rounds, tmpdir):
    rows, checks = [], []
    d, L, dt = 32, 2, "float32"
    for (n, m) in shapes:
        net = tn.ReLUNet.init(d=d, m=m, k=1, L=L, seed=0, dtype=dt)
        X, _ = tn.data.sphere(n=n, d=d, k=1, seed=0)
        X = np.asarray(X, dtype=dt)
        mine = tinyntk_empirical(net, X)
        variants = {"floor": ntk_floor(net, X),
                    "reference": lambda: reference_empirical_ntk(net, X)}
        if mine is not None:
            variants["tinyntk"] = mine
        use_torch = torch is not None and torch_jacobian_bytes(net, n) < 3 * 2**30
        if use_torch:
            variants["torch.func"] = torch_func_ntk(net, X)
        nt_proc, nt_note = None, "issue figure"
        if nt_available():
            try:
                nt_proc = NeuralTangents(net, X, tmpdir)
                variants["neural-tangents"] = nt_proc
            except Exception as exc:
                nt_note = f"issue figure (neural-tangents failed: {str(exc)[:80]})"
        try:
            r = interleaved(variants, rounds=rounds, warmup=1, min_time=0.2)
        finally:
            if nt_proc is not None:
                nt_proc.close()
        med = {k: v["median"] for k, v in r.items()}
        main = "tinyntk" if mine is not None else "reference"
        K_ref = reference_empirical_ntk(net, X)
        err = ""
        if mine is not None:
            K_tn = tn.to_numpy(mine())
            err = f"{np.abs(K_tn - K_ref).max() / np.abs(K_ref).max():.1e}"
        peak = traced_peak(variants[main])
        nm, nn_ = n * m * 4, n * n * 4
        nt_time = NT_FIGURES.get((n, m))
        if nt_proc is not None:
            nt_time = med["neural-tangents"]
            nt_note = (f"measured, interleaved (jax {nt_proc.info['jax']}, nt "
                       f"{nt_proc.info['nt']}), kernel vs reference "
                       f"{np.abs(nt_proc.K - K_ref).max() / np.abs(K_ref).max():.1e}")
        gflops = ntk_flops(n, d, m, L) / 1e9
        rows.append([f"({n},{m})", fmt_time(med["floor"]), f"{gflops / med['floor']:.0f}",
                     fmt_time(med["reference"]),
                     fmt_time(med["tinyntk"]) if mine is not None else "missing",
                     med[main] / med["floor"], r[main]["cpu_median"] / r["floor"]["cpu_median"],
                     fmt_time(nt_time) if nt_time else "n/a",
                     (nt_time / med[main]) if nt_time else "n/a",
                     (NT_FIGURES[(n, m)] / med[main]) if (n, m) in NT_FIGURES else "n/a",
                     fmt_time(med["torch.func"]) if use_torch else "skipped",
                     (med["torch.func"] / med[main]) if use_torch else "n/a",
                     f"{peak / 2**20:.1f} MB", f"{peak / (nm + nn_):.1f}"])
        checks.append((n, m, main, med[main] / med["floor"],
                       (nt_time / med[main]) if nt_time else None, nt_note, err,
                       (NT_FIGURES[(n, m)] / med[main]) if (n, m) in NT_FIGURES else None))
        print(".", end="", flush=True)
    print()
    print(table(rows, ["(n,m)", "floor", "GF/s", "reference", "tinyntk", "/floor", "(cpu)",
                       "neural-tangents", "nt/x", "issue/x", "torch.func", "tf/x", "peak alloc",
                       "peak/(nm+n^2)"]))
    print("x = tinyntk.kernels.empirical_ntk (or, when missing, the reference); floor = its "
          "matrix products alone;\npeak alloc = tracemalloc peak during one call (bytes of "
          "NumPy buffers), in units of n*m + n^2 float32 entries")
    print("nt/x = neural-tangents time (measured here, .venv-nt, its own process driven over "
          "a pipe, interleaved) / x;\nissue/x = the issue's "
          "neural-tangents figure (0.022 s, 0.41 s; another machine) / x")
    for n, m, main, rf, rnt, note, err, rissue in checks:
        print(f"({n},{m}) [{main}] neural-tangents: {note}" + (f"; tinyntk vs reference max "
              f"rel. diff {err}" if err else ""))
        print(f"  target 4a, >= 3x faster than neural-tangents measured here: "
              + (verdict(rnt, 3.0, smaller_is_better=False) if rnt else "not measured"))
        if rissue:
            print(f"            >= 3x faster than the issue's neural-tangents figure: "
                  + verdict(rissue, 3.0, smaller_is_better=False))
        print(f"  floor vs neural-tangents: the GEMM floor alone is "
              + (f"{rnt * rf:.2f}x faster" if rnt else "n/a") + " (no implementation of this "
              "formula with this BLAS can beat that)")
        print(f"  target 4b, <= 1.2x its GEMM floor: {verdict(rf, 1.2)}")
    if torch is None:
        print("torch.func: PyTorch not installed")


# --------------------------------------------------------------------------------------
def reference_ntk(X, L=1, block=128):
    r"""Infinite-width NTK of the net (hidden layers, times k/m), by row blocks in cache.

    With :math:`\rho_0 = \cos\theta_0` the input cosines and
    :math:`N_{ij} = \|x_i\|\|x_j\|`, the paper's init preserves norms layer to layer and

    .. math::  \rho_l = (\sqrt{1-\rho_{l-1}^2} + (\pi - \theta_{l-1})\rho_{l-1})/\pi,\quad
               \dot s_l = (\pi - \theta_{l-1})/\pi,\quad
               \tau_l = (\tau_{l-1} + \rho_{l-1})\,\dot s_l\,c_l,

    :math:`c_L = 1/2` (the output layer's variance 1/k times k), :math:`c_l = 1` below;
    :math:`\Theta = N\tau_L`.  For L = 1 this is ``gram_H``:
    :math:`x_i^\top x_j (\pi - \theta_{ij})/(2\pi)`.  Each block of rows runs through all L
    layers while it is in cache, and only the blocks on and above the diagonal are computed.
    """
    X = np.asarray(X, dtype=np.float64)
    n = X.shape[0]
    norms = np.linalg.norm(X, axis=1)
    U = X / np.where(norms > 0, norms, 1.0)[:, None]
    out = np.empty((n, n))
    for i in range(0, n, block):
        rows = slice(i, min(i + block, n))
        rho = U[rows] @ U[i:].T                       # cosines, upper part of the block row
        np.clip(rho, -1.0, 1.0, out=rho)
        tau = np.zeros_like(rho)
        theta, tmp = np.empty_like(rho), np.empty_like(rho)
        for l in range(1, L + 1):
            np.arccos(rho, out=theta)
            np.subtract(np.pi, theta, out=theta)      # pi - theta
            tau += rho
            tau *= theta
            tau *= (0.5 if l == L else 1.0) / np.pi   # tau_l = (tau + rho) * s_dot * c_l
            if l < L:
                np.multiply(rho, rho, out=tmp)        # rho_l = (sqrt(1 - rho^2) + (pi - theta) rho) / pi
                np.subtract(1.0, tmp, out=tmp)
                np.maximum(tmp, 0.0, out=tmp)
                np.sqrt(tmp, out=tmp)
                rho *= theta
                rho += tmp
                rho *= 1.0 / np.pi
                np.clip(rho, -1.0, 1.0, out=rho)
        tau *= norms[rows, None] * norms[None, i:]
        out[rows, i:] = tau
        out[i:, rows] = tau.T
    return out


def bench_analytic(n, L, rounds):
    d = 64
    X, _ = tn.data.sphere(n=n, d=d, k=1, seed=0)
    X = np.asarray(X)
    fn = getattr(tn_kernels, "ntk", None) if tn_kernels is not None else None
    variants = {"reference": lambda: reference_ntk(X, L=L)}
    if fn is not None:
        variants["tinyntk"] = lambda: fn(X, L=L)
    r = interleaved(variants, rounds=rounds, warmup=1)
    rows = [[name, fmt_time(v["median"]), fmt_time(v["min"])] for name, v in r.items()]
    print(f"n = {n}, d = {d}, L = {L}, float64")
    print(table(rows, ["ntk", "median", "min"]))
    if fn is not None:
        K_tn = tn.to_numpy(fn(X, L=L))
        K_ref = reference_ntk(X, L=L)
        print(f"tinyntk.kernels.ntk vs reference: max rel. diff "
              f"{np.abs(K_tn - K_ref).max() / np.abs(K_ref).max():.1e}")
        print(f"target 5, tinyntk.kernels.ntk(X, L={L}) at n = {n} < 1 s: "
              f"{verdict(r['tinyntk']['median'], 1.0)}")
    else:
        print("tinyntk.kernels.ntk is missing (kernels branch not merged): reference only, "
              f"{verdict(r['reference']['median'], 1.0)}")


def main():
    p = base_parser(__doc__.splitlines()[0])
    p.add_argument("--sections", default="empirical,analytic")
    args = p.parse_args()
    limit_loaded_pools(args.threads)
    found = [f for f in ("empirical_ntk", "ntk") if hasattr(tn_kernels, f)] if tn_kernels else []
    have = [f"tinyntk.kernels: {', '.join(found) or 'no NTK functions'}" if tn_kernels is not None
            else "tinyntk.kernels: missing (the references are timed alone)"]
    have.append(f"torch    : {torch.__version__}" if torch is not None else "torch    : not installed")
    have.append(f"neural-tangents: {NT_PYTHON}" if nt_available()
                else "neural-tangents: no .venv-nt (the issue's figures are used)")
    print_header("bench/ntk.py: neural tangent kernels on the CPU", args.threads, have)
    import tempfile
    sections = args.sections.split(",")
    with tempfile.TemporaryDirectory() as tmpdir:
        if "empirical" in sections:
            shapes = [(256, 1024)] if args.quick else [(256, 1024), (512, 2048)]
            rounds = args.rounds or (5 if args.quick else 9)
            print(f"\n-- 1. empirical NTK, L = 2, d = 32, k = 1, float32, all layers "
                  f"(rounds: {rounds}) --")
            bench_empirical(shapes, rounds, tmpdir)
        if "analytic" in sections:
            print("\n-- 2. analytic NTK --")
            bench_analytic(1024 if args.quick else 4096, 4, args.rounds or 3)


if __name__ == "__main__":
    main()
