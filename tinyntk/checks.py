r"""Argument checks at the boundary, and the memory budget.

Every public function of tinyntk checks its arguments **once**, where they enter, and then
works on checked arrays (the training loop calls the net with ``check=False``).  A bad
argument raises ``ValueError`` (wrong value: shape, size, NaN, unknown name) or
``TypeError`` (wrong kind of object or dtype) whose message names the argument and says
what was expected; nothing is modified before the checks pass.

Input dtypes
------------
* real floating arrays (float16/32/64) and **integer** arrays (or nested lists of numbers)
  are accepted and converted to the net's float dtype;
* ``bool``, complex, object, string and bytes arrays raise ``TypeError`` (a bool or
  complex matrix is almost always a bug: a mask or an FFT passed by mistake);
* ragged nested lists, ``None`` and other non-array objects raise ``TypeError``;
* NaN or inf raises ``ValueError``.

Scalar arguments of the wrong type (``steps=2.5``, ``lr="fast"``, ``batch_size=True``)
raise :class:`ArgumentTypeError`, which is both a ``TypeError`` and a ``ValueError``.

Memory budget
-------------
Operations whose memory grows like :math:`n^2` or :math:`n\cdot m` work in blocks of rows
sized by :func:`chunk_rows` under :func:`memory_budget_bytes` (default 1 GiB, set
``TINYNTK_MEMORY_BUDGET`` to e.g. ``"512M"``, ``"4G"`` or a number of bytes).  When not
even one row fits they raise :class:`MemoryBudgetError` with the size they would need::

    rows = chunk_rows(n_cols=n, itemsize=8, arrays=3)   # 3 blocks of (rows, n) float64 live
    for start in range(0, n, rows): ...
"""
from __future__ import annotations

import math
import os
import warnings

import numpy

DEFAULT_MEMORY_BUDGET = 1 << 30          # 1 GiB
_UNITS = {"": 1, "B": 1, "K": 1 << 10, "KB": 1 << 10, "KIB": 1 << 10, "M": 1 << 20,
          "MB": 1 << 20, "MIB": 1 << 20, "G": 1 << 30, "GB": 1 << 30, "GIB": 1 << 30,
          "T": 1 << 40, "TB": 1 << 40, "TIB": 1 << 40}


class AssumptionWarning(UserWarning):
    """The data break an assumption of the paper (e.g. Assumption 3.1, ``‖x_i‖ = 1``):
    training still runs, but the paper's guarantees do not apply."""


class ArgumentTypeError(TypeError, ValueError):
    """A scalar argument of the wrong type (``steps=2.5``, ``lr="fast"``, ``m=True``).

    Both a ``TypeError`` and a ``ValueError`` (as NumPy's ``AxisError`` is both a
    ``ValueError`` and an ``IndexError``): earlier versions raised ``ValueError`` for these,
    and code catching either keeps working."""


class MemoryBudgetError(ValueError):
    """An operation would need more memory than :func:`memory_budget_bytes` allows."""


# ----- scalars -------------------------------------------------------------------------
def is_int(value) -> bool:
    """An integer that is not a bool (``True`` is not a number of steps)."""
    return not isinstance(value, (bool, numpy.bool_)) and isinstance(value, (int, numpy.integer))


FLOAT_DTYPES = ("float32", "float64")


def float_dtype(dtype) -> numpy.dtype:
    """``dtype`` as a ``numpy.dtype`` if it is one of :data:`FLOAT_DTYPES`, else a TypeError."""
    try:
        dt = numpy.dtype(dtype)
    except TypeError:
        dt = None
    if dt is None or dt.name not in FLOAT_DTYPES:
        raise TypeError(f"dtype must be one of {FLOAT_DTYPES}, got {dtype!r}")
    return dt


def positive_int(name: str, value, minimum: int = 1) -> int:
    """``value`` as a Python int ``>= minimum``; ``ValueError``/``TypeError`` naming ``name``."""
    if not is_int(value):
        if isinstance(value, (float, numpy.floating)) and float(value).is_integer():
            raise ArgumentTypeError(f"{name} must be an integer, got the float {value!r}")
        raise ArgumentTypeError(f"{name} must be a positive integer, got {value!r} "
                        f"({type(value).__name__})")
    if value < minimum:
        what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise ValueError(f"{name} must be {what}, got {value!r}")
    return int(value)


def positive_float(name: str, value, allow_zero: bool = False) -> float:
    """``value`` as a finite Python float ``> 0`` (``>= 0`` with ``allow_zero``)."""
    if isinstance(value, (bool, numpy.bool_)) or not isinstance(
            value, (int, float, numpy.integer, numpy.floating)):
        if getattr(value, "ndim", None) == 0 and getattr(value, "dtype", numpy.dtype("O")).kind in "fiu":
            value = value.item()
        else:
            raise ArgumentTypeError(f"{name} must be a real number, got {value!r} ({type(value).__name__})")
    value = float(value)
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        expected = "a non-negative" if allow_zero else "a positive"
        raise ValueError(f"{name} must be {expected} finite number, got {value!r}")
    return value


def seed(name: str, value):
    """A seed for ``numpy.random.default_rng``: None, a non-negative int, a Generator or
    a SeedSequence."""
    if value is None or isinstance(value, (numpy.random.Generator, numpy.random.SeedSequence)):
        return value
    if not is_int(value):
        raise ArgumentTypeError(f"{name} must be a non-negative integer, None or a numpy Generator, "
                        f"got {value!r} ({type(value).__name__})")
    if value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    return int(value)


def one_of(name: str, value, known) -> str:
    """``value.lower()`` if it is one of ``known`` (strings), else a ValueError listing them."""
    if isinstance(value, str) and value.lower() in known:
        return value.lower()
    raise ValueError(f"unknown {name} {value!r}: expected one of {', '.join(known)}")


# ----- arrays --------------------------------------------------------------------------
def real_array(a, name: str):
    """``a`` as an array of a real (float or integer) dtype: a NumPy or CuPy array is
    returned as it is (no copy, no move); anything else goes through ``numpy.asarray``.
    ``TypeError`` for bool, complex, object, string, ragged lists or non-arrays."""
    if a is None or isinstance(a, (str, bytes, dict, set)):
        raise TypeError(f"{name} must be a real array, got {type(a).__name__}")
    if not (hasattr(a, "dtype") and hasattr(a, "shape") and hasattr(a, "ndim")):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                a = numpy.asarray(a)
        except (ValueError, TypeError, OverflowError) as exc:
            raise TypeError(f"{name} must be a real array (a nested list must be "
                            f"rectangular), got {type(a).__name__}: {exc}") from None
    kind = numpy.dtype(a.dtype).kind
    if kind not in "fiu":
        raise TypeError(f"{name} must be a real floating-point (or integer) array, got dtype "
                        f"{a.dtype} ({_KIND_NAMES.get(kind, kind)})")
    return a


_KIND_NAMES = {"b": "bool", "c": "complex", "O": "object", "U": "string", "S": "bytes",
               "V": "void/structured", "M": "datetime", "m": "timedelta"}


def all_finite(a) -> bool:
    """``True`` if every entry of ``a`` (any backend) is finite; one pass, one host sync."""
    from .backend import array_module
    xp = array_module(a)
    return bool(xp.isfinite(a).all())


def unit_rows(X, name: str = "X", tol: float | None = None, stacklevel: int = 3) -> bool:
    r"""Warn once (:class:`AssumptionWarning`) if the rows of ``X`` are not unit vectors.

    Assumption 3.1 of the paper asks :math:`\|x_i\|_2 = 1`; data off the sphere still
    train, but the convergence guarantees do not apply.  One pass over ``X``; ``tol``
    defaults to ``1e-6`` in float64 and ``1e-3`` in float32.  Returns ``True`` if all rows
    are unit vectors.
    """
    from .backend import array_module
    xp = array_module(X)
    if tol is None:
        tol = 1e-3 if X.dtype.itemsize <= 4 else 1e-6
    norms = xp.sqrt((X * X).sum(axis=1))
    worst = float(xp.abs(norms - 1.0).max())
    if worst > tol:
        lo, hi = float(norms.min()), float(norms.max())
        warnings.warn(
            f"the rows of {name} are not unit vectors (norms in [{lo:.4g}, {hi:.4g}]): the "
            "paper's guarantees assume Assumption 3.1, ||x_i|| = 1; training goes on. "
            "Normalize the rows (X / ||X||) or check with tinyntk.data.check_assumptions.",
            AssumptionWarning, stacklevel=stacklevel)
        return False
    return True


# ----- memory --------------------------------------------------------------------------
def memory_budget_bytes() -> int:
    """Bytes an n²- or n·m-sized operation may use at once: ``TINYNTK_MEMORY_BUDGET`` (a
    number of bytes or e.g. ``"512M"``, ``"2G"``, ``"1.5GiB"``), else 1 GiB."""
    raw = os.environ.get("TINYNTK_MEMORY_BUDGET", "").strip()
    if not raw:
        return DEFAULT_MEMORY_BUDGET
    text = raw.upper().replace(" ", "")
    number = text.rstrip("KMGTIB")
    unit = text[len(number):]
    try:
        value = float(number) * _UNITS[unit]
    except (ValueError, KeyError):
        raise ValueError(f"TINYNTK_MEMORY_BUDGET must be a number of bytes or e.g. '512M', "
                         f"'2G'; got {raw!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"TINYNTK_MEMORY_BUDGET must be positive, got {raw!r}")
    return int(value)


def format_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024.0
    return f"{n} B"  # pragma: no cover


def chunk_rows(n_cols: int, itemsize: int, budget: int | None = None, arrays: int = 1,
               n_rows: int | None = None, what: str = "this operation") -> int:
    """How many rows of ``arrays`` simultaneous ``(rows, n_cols)`` blocks of ``itemsize``
    bytes fit in ``budget`` (default :func:`memory_budget_bytes`); at least 1, at most
    ``n_rows`` if given.  Raises :class:`MemoryBudgetError` naming the size needed when
    not even one row fits."""
    budget = memory_budget_bytes() if budget is None else int(budget)
    per_row = max(1, int(n_cols) * int(itemsize) * int(arrays))
    rows = budget // per_row
    if rows < 1:
        raise MemoryBudgetError(
            f"{what} needs at least {format_bytes(per_row)} at once (one block row: "
            f"{arrays} x {n_cols} x {itemsize} bytes) but the memory budget is "
            f"{format_bytes(budget)}; raise it with TINYNTK_MEMORY_BUDGET (e.g. '8G')")
    if n_rows is not None:
        rows = min(rows, max(1, int(n_rows)))
    return int(rows)
