"""Command line: ``tinyntk demo`` (more commands come with the experiments)."""
from __future__ import annotations

import argparse
import sys


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="tinyntk")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("demo", help="train a wide deep ReLU net on sphere data and print the loss falling")
    args = parser.parse_args(argv)
    if args.command == "demo":
        import tinyntk as tn
        X, Y = tn.data.sphere(n=32, d=8, k=1, seed=0)
        net = tn.ReLUNet.init(d=8, m=1024, k=1, L=2, seed=0)
        hist = tn.train(net, X, Y, steps=200, lr=0.05, record_every=20)
        for step, loss in zip(hist["step"], hist["loss"]):
            print(f"step {step:4d}  loss {loss:.3e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
