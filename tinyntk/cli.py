"""The command line: ``tinyntk demo | train | theory | reproduce | bench``.

Also ``python -m tinyntk ...``.  Errors in arguments are one clear line, not a traceback.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import textwrap

from . import backend as B


def _progress(total, desc):
    """A ``callback(step, loss)`` drawing a tqdm bar (optional extra), or None."""
    try:
        from tqdm import tqdm
    except ImportError:
        return None, lambda: None
    bar = tqdm(total=total, desc=desc, unit="step", leave=False, file=sys.stderr)

    def callback(step, loss):
        bar.n = step
        bar.set_postfix_str(f"loss {loss:.3e}", refresh=False)
        bar.refresh()
    return callback, bar.close


def _table(rows, headers) -> str:
    rows = [tuple(str(c) for c in r) for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    line = "  ".join("-" * w for w in widths)
    out = ["  ".join(h.ljust(w) for h, w in zip(headers, widths)), line]
    out += ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows]
    return "\n".join(o.rstrip() for o in out)     # no trailing blanks to copy into a file


# --------------------------------------------------------------------------- commands
def cmd_demo(args) -> int:
    from . import experiments, plots
    callback, close = _progress(args.steps, "training")
    try:
        r = experiments.demo(n=args.n, m=args.m, L=args.L, steps=args.steps, seed=args.seed,
                             progress=callback)
    finally:
        close()
    print(f"tinyntk demo ({B.get_backend().name} backend, {r.seconds:.1f} s)")
    print(textwrap.fill(r.regime, width=100))
    print(_table(r.rows, headers=("quantity", "measured", r.paper_heading)))
    if plots.available():
        path = os.path.join(args.out, "demo.png")
        predicted = {experiments.BASELINES[name]: v for name, v in r.raw["kernel_loss"].items()}
        plots.save(plots.demo_figure(r.raw["history"], r.raw["bound"],
                                     f"GD on a {args.L}-hidden-layer ReLU net, m = {args.m}, "
                                     f"n = {args.n}", r.raw["predicted_rate"], predicted), path)
        print(f"figure: {path}")
    else:
        print("(no figure: install matplotlib, `pip install tinyntk[plot]`)")
    experiments.write_json(os.path.join(args.out, "demo.json"),
                           {"rows": r.rows, "regime": r.regime, **r.raw})
    return 0


def cmd_train(args) -> int:
    import numpy

    import tinyntk as tn
    from . import experiments, plots
    X, Y = tn.data.sphere(n=args.n, d=args.d, k=args.k, mu=args.mu, seed=args.seed,
                          target="sign" if args.loss == "logistic" else "gaussian", dtype=args.dtype)
    net = tn.ReLUNet.init(d=args.d, m=args.m, k=args.k, L=args.L, seed=args.seed + 1,
                          dtype=args.dtype, init=args.init)
    lr = args.lr
    if lr is None:                      # train's own default, lr="auto", computed here to print it
        lr = tn.stability.auto_lr(net, X, args.loss, args.train_output, args.batch_size)[0]
        per = "n" if args.batch_size is None else "B"          # examples in one step
        stable = f"2{per}/λ_max(Θ₀)" if args.loss == "square" else f"8{per}/λ_max(Θ₀), logistic"
        print(f"lr = {lr:.4g} (half the largest stable step {stable}; "
              f"c = η L² m / k = {tn.theory.paper_constant(lr, args.k, args.L, args.m):.3g})")
    baseline = experiments.kernel_baseline(net, X, Y, loss=args.loss, batch_size=args.batch_size,
                                           train_output=args.train_output)   # at W(0)
    callback, close = _progress(args.steps, "training")
    try:
        hist = tn.train(net, X, Y, steps=args.steps, lr=lr, loss=args.loss, batch_size=args.batch_size,
                        seed=args.seed, train_output=args.train_output, record_every=args.record_every,
                        callback=callback)
    finally:
        close()
    predicted = baseline.loss(hist["lr"], hist["step"])
    print(f"loss {hist['loss'][0]:.4e} -> {hist['loss'][-1]:.4e} after {args.steps} steps; "
          f"||W_l(T) - W_l(0)||_2 = {', '.join(f'{v:.4g}' for v in hist['distance'][-1])}")
    for name, values in predicted.items():
        print(f"{experiments.BASELINES[name]} predicts loss {values[-1]:.4e} at step {hist['step'][-1]}")
    for name, why in baseline.skipped.items():
        print(f"no {experiments.BASELINES[name]} prediction: {why}")
    os.makedirs(args.out, exist_ok=True)
    experiments.write_json(os.path.join(args.out, "history.json"),
                           {"args": {k: v for k, v in vars(args).items() if k != "fn"}, **hist,
                            "predicted_loss": predicted, "predicted_skipped": baseline.skipped})
    from .fileio import atomic_open
    with atomic_open(os.path.join(args.out, "history.npz"), "wb") as f:
        numpy.savez(f, step=numpy.asarray(hist["step"]), loss=numpy.asarray(hist["loss"]),
                    distance=numpy.asarray(hist["distance"]), lr=hist["lr"], c=hist["c"],
                    **{f"predicted_loss_{name}": numpy.asarray(v) for name, v in predicted.items()})
    if plots.available():
        bound = tn.diagnostics.lemma_4_2_bound(n=args.n, m=args.m, phi=tn.data.separation(X), k=args.k)
        curves = {experiments.BASELINES[name]: v for name, v in predicted.items()}
        plots.save(plots.demo_figure(hist, bound, f"tinyntk train: L = {args.L}, m = {args.m}, n = {args.n}",
                                     predicted=curves), os.path.join(args.out, "train.png"))
    print(f"saved {args.out}/history.json, history.npz" + (", train.png" if plots.available() else ""))
    return 0


def cmd_theory(args) -> int:
    from . import theory
    if args.data:
        X = _load_data(args.data)
        rows = theory.from_data(X, L=args.L, k=args.k, eps=args.eps, B=args.B)
    else:
        if args.n is None or args.phi is None:
            raise ValueError("theory needs --n and --phi (or --data FILE|sphere)")
        rows = theory.table1(n=args.n, L=args.L, phi=args.phi, k=args.k, B=args.B, eps=args.eps,
                             lambda0=args.lambda0, X_norm=args.X_norm)
    print(theory.format_table(rows))
    return 0


def _load_data(spec):
    """``sphere[:n=64,d=16,mu=0.5,seed=0]``, ``digits`` or a ``.npy``/``.npz`` file holding X."""
    import numpy

    from . import data
    name, _, opts = spec.partition(":")
    kw = dict(kv.split("=", 1) for kv in opts.split(",") if kv)
    if name == "sphere":
        conv = {"n": int, "d": int, "seed": int, "mu": float}
        return data.sphere(**{k: conv[k](v) for k, v in kw.items() if k in conv})[0]
    if name == "digits":
        return data.digits()[0]
    if not os.path.exists(spec):
        raise ValueError(f"--data {spec!r}: no such file (or use 'sphere:n=64,d=16' or 'digits')")
    with numpy.load(spec, allow_pickle=False) as f:
        if isinstance(f, numpy.ndarray):
            return f
        if "X" not in f:
            raise ValueError(f"--data {spec!r}: an .npz file needs an array named 'X'")
        return f["X"]


def cmd_reproduce(args) -> int:
    from . import experiments
    experiments.reproduce(args.names, quick=args.quick, out=args.out, jobs=args.jobs)
    return 0


def cmd_bench(args) -> int:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    script = os.path.join(root, "bench", f"{args.which}.py")
    if not os.path.exists(script):
        raise ValueError(f"bench/{args.which}.py not found: the benchmarks live in a source "
                         "checkout of tinyntk (git clone), not in the installed package")
    return subprocess.call([sys.executable, script] + (["--quick"] if args.quick else []))


# --------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tinyntk", description="Train and study over-parameterized "
                                "deep ReLU networks as Zou & Gu (2019) describe them.")
    p.add_argument("--backend", default=None, help="numpy (default) or cupy")
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("demo", help="train a wide deep net and print theory next to measurement")
    d.add_argument("--n", type=int, default=32)
    d.add_argument("--m", type=int, default=2048)
    d.add_argument("--L", type=int, default=2)
    d.add_argument("--steps", type=int, default=150)
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--out", default="runs/demo")
    d.add_argument("--backend", default=argparse.SUPPRESS, help="numpy (default) or cupy")
    d.set_defaults(fn=cmd_demo)

    t = sub.add_parser("train", help="train with every knob exposed; saves history and plots")
    for name, typ, default in [("n", int, 64), ("d", int, 16), ("k", int, 1), ("L", int, 2),
                               ("m", int, 1024), ("steps", int, 500), ("seed", int, 0),
                               ("record-every", int, 1), ("mu", float, 0.5)]:
        t.add_argument(f"--{name}", type=typ, default=default)
    t.add_argument("--lr", type=float, default=None,
                   help="step size (default: half the largest stable step near W(0), as tinyntk.train's lr='auto')")
    t.add_argument("--loss", default="square", choices=["square", "logistic"])
    t.add_argument("--batch-size", type=int, default=None, help="SGD minibatch size (default: GD)")
    t.add_argument("--train-output", action="store_true", help="also train V (section 4.3)")
    t.add_argument("--dtype", default="float64", choices=["float32", "float64"])
    t.add_argument("--init", default="paper", help="initializer name (paper, he)")
    t.add_argument("--out", default="runs/train")
    t.add_argument("--backend", default=argparse.SUPPRESS, help="numpy (default) or cupy")
    t.set_defaults(fn=cmd_train)

    th = sub.add_parser("theory", help="Table 1 of the paper for given n, L, phi, ... or data")
    th.add_argument("--n", type=int)
    th.add_argument("--L", type=int, default=1)
    th.add_argument("--phi", type=float)
    th.add_argument("--k", type=int, default=1)
    th.add_argument("--B", type=int, default=None, help="SGD minibatch size")
    th.add_argument("--eps", type=float, default=1e-3)
    th.add_argument("--lambda0", type=float, default=None)
    th.add_argument("--X-norm", dest="X_norm", type=float, default=None, help="||X||_2")
    th.add_argument("--data", default=None, help="FILE.npy|FILE.npz (array X), 'sphere:n=64,d=16' or 'digits'")
    th.set_defaults(fn=cmd_theory)

    r = sub.add_parser("reproduce", help="run the paper's claims as experiments, write a report")
    r.add_argument("names", nargs="*", help="experiments to run (default: all)")
    r.add_argument("--quick", action="store_true", help="small sizes: seconds per experiment")
    r.add_argument("--out", default="runs/reproduce")
    r.add_argument("--jobs", type=int, default=None, help="parallel workers (default: one per core)")
    r.set_defaults(fn=cmd_reproduce)

    b = sub.add_parser("bench", help="run a benchmark from bench/ (source checkout)")
    b.add_argument("which", nargs="?", default="step", choices=["step", "ntk", "predict", "gpu", "parity"])
    b.add_argument("--quick", action="store_true")
    b.set_defaults(fn=cmd_bench)
    return p


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if getattr(args, "backend", None):
            B.set_backend(args.backend)
        return args.fn(args)
    except (ValueError, TypeError, ImportError, RuntimeError, FloatingPointError, OSError) as exc:
        print(f"tinyntk {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"tinyntk {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
