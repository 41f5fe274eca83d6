"""tinyntk: train and study over-parameterized deep ReLU networks as the theory describes them.

The setting is Zou & Gu (2019), *An Improved Analysis of Training Over-parameterized Deep
Neural Networks*: ``f(x) = V σ(W_L σ(… σ(W_1 x)))`` with Algorithm 1's Gaussian
initialization, trained by (stochastic) gradient descent on the square or logistic loss.
"""
from . import (backend, blas, data, diagnostics, gradcheck, init, kernels, linearized, losses, optim,
               predict, spectrum, stability, theory)
from .backend import BackendUnavailable, get_backend, set_backend, to_numpy, use_backend
from .losses import loss_and_grad
from .linearized import LinearizedNet, linearize
from .network import Cache, Grads, ReLUNet
from .train import Diverged, train
from . import checkpoint, checks
from .checkpoint import CheckpointError
from .checks import AssumptionWarning, MemoryBudgetError

from .version import __version__

__all__ = [
    "BackendUnavailable", "Cache", "Diverged", "Grads", "LinearizedNet", "ReLUNet", "backend", "data",
    "diagnostics", "get_backend", "gradcheck", "init", "kernels", "linearize", "linearized", "loss_and_grad", "losses", "optim",
    "predict", "set_backend", "spectrum", "stability", "theory", "to_numpy", "train", "use_backend",
]
__all__ += ["AssumptionWarning", "CheckpointError", "MemoryBudgetError", "checkpoint", "checks"]
