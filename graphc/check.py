"""``gx.check_grad``: symbolic gradients against central finite differences.

This is how one checks backprop by hand: nudge each input element by ±ε, watch
the output move, and compare the slope with the gradient graphc derived.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from graphc.autodiff import grad
from graphc.compile import compile
from graphc.ops import elementwise as ew
from graphc.ops import reduce
from graphc.tensor import Tensor, constant, input


@dataclass
class GradCheckReport:
    """Per checked (derivative order, argument): the largest absolute and relative error,
    and the verdict. ``orders[i]`` and ``args[i]`` say what ``abs_errors[i]`` measured."""

    order: int
    abs_errors: list[float] = field(default_factory=list)
    rel_errors: list[float] = field(default_factory=list)
    ok: bool = True
    orders: list[int] = field(default_factory=list)
    args: list[int] = field(default_factory=list)

    def __str__(self) -> str:
        rows = [f"  order {o}, arg {k}: max abs err {a:.3g}, max rel err {r:.3g}"
                for o, k, a, r in zip(self.orders, self.args, self.abs_errors, self.rel_errors,
                                      strict=True)]
        verdict = "ok" if self.ok else "MISMATCH"
        return f"gradient check (order {self.order}): {verdict}\n" + "\n".join(rows)


def check_grad(f: Callable[..., Tensor], args: Sequence[Any], *, argnums: Sequence[int] | None
               = None, order: int = 1, eps: float = 1e-6, rtol: float = 1e-5,
               atol: float = 1e-7, seed: int = 0) -> GradCheckReport:
    """Compare ``gx.grad`` of ``f`` with central differences at ``args``.

    Parameters
    ----------
    f : callable
        Builds the output from one tensor per argument. A non-scalar output is
        checked through a fixed random projection ``sum(f(x) * r)``, which tests
        every output element at once.
    args : sequence of array-like
        The point. Float arguments are checked in float64; others (labels) are fed
        as they are.
    argnums : sequence of int, optional
        Which arguments to differentiate; by default every float argument.
    order : int
        1 checks the gradient; 2 also checks the gradient of the gradient (the
        Hessian along a random direction), and so on.
    """
    arrays = [np.asarray(a, np.float64) if np.asarray(a).dtype.kind == "f" else np.asarray(a)
              for a in args]
    if argnums is None:
        argnums = [k for k, a in enumerate(arrays) if a.dtype.kind == "f"]
    rng = np.random.default_rng(seed)
    scalar = _projected(f, rng)
    report = _check_first_order(scalar, arrays, list(argnums), eps, rtol, atol)
    report.order = order
    if order > 1 and report.ok:
        directions = [rng.standard_normal(arrays[k].shape) for k in argnums]
        higher = check_grad(_directional_gradient(scalar, list(argnums), directions), arrays,
                            argnums=argnums, order=order - 1, eps=eps, rtol=rtol * 10,
                            atol=atol * 10, seed=seed + 1)
        report.abs_errors += higher.abs_errors
        report.rel_errors += higher.rel_errors
        report.orders += [o + 1 for o in higher.orders]  # orders of f, not of its derivative
        report.args += higher.args
        report.ok = higher.ok
    return report


def _projected(f: Callable[..., Tensor], rng: np.random.Generator) -> Callable[..., Tensor]:
    cache: dict[tuple, np.ndarray] = {}

    def scalar(*xs: Tensor) -> Tensor:
        y = f(*xs)
        if y.shape == ():
            return y
        key = y.shape
        if key not in cache:
            cache[key] = rng.standard_normal(y.shape)
        return reduce.sum(ew.mul(y, constant(cache[key], y.dtype)))

    return scalar


def _directional_gradient(f: Callable[..., Tensor], argnums: list[int],
                          directions: list[np.ndarray]) -> Callable[..., Tensor]:
    """x ↦ Σ_k ⟨∂f/∂x_k, v_k⟩: its gradient is the Hessian times v."""

    def g(*xs: Tensor) -> Tensor:
        y = f(*xs)
        grads = grad(y, [xs[k] for k in argnums], allow_unused=True)
        terms = [reduce.sum(ew.mul(gk, constant(v, gk.dtype)))
                 for gk, v in zip(grads, directions, strict=True)]
        total = terms[0]
        for t in terms[1:]:
            total = ew.add(total, t)
        return total

    return g


def _check_first_order(f: Callable[..., Tensor], arrays: list[np.ndarray], argnums: list[int],
                       eps: float, rtol: float, atol: float) -> GradCheckReport:
    xs = [input(f"arg{k}", a.shape, a.dtype) for k, a in enumerate(arrays)]
    y = f(*xs)
    grads = grad(y, [xs[k] for k in argnums], allow_unused=True)
    value_fn = compile(xs, y)
    grad_fn = compile(xs, grads)
    analytic = grad_fn(*arrays)
    analytic = list(analytic) if isinstance(analytic, tuple) else [analytic]
    report = GradCheckReport(order=1)
    for k, g in zip(argnums, analytic, strict=True):
        numeric, noise = _central_differences(value_fn, arrays, k, eps)
        err = np.abs(g - numeric)
        report.orders.append(1)
        report.args.append(k)
        report.abs_errors.append(float(err.max(initial=0.0)))
        report.rel_errors.append(float((err / np.maximum(np.abs(numeric), 1e-12)).max(initial=0)))
        report.ok &= bool(np.all(err <= atol + rtol * np.abs(numeric) + noise))
    return report


#: Rounding error of a float64 output, in ulps of its magnitude (sums of many terms drift).
_ROUNDING_ULPS = 32


def _central_differences(fn: Callable[..., Any], arrays: list[np.ndarray], k: int,
                         eps: float) -> tuple[np.ndarray, np.ndarray]:
    """(f(x+εe_i) − f(x−εe_i)) / 2ε for each element i of argument k, and the rounding
    noise of that quotient: f's own rounding error, ~ulps·|f|, divided by 2ε. Where |f| is
    large the noise dominates and no tolerance on the slope alone can be met."""
    x = arrays[k].copy()
    out = np.zeros_like(x)
    noise = np.zeros_like(x)
    point = list(arrays)
    point[k] = x
    flat, flat_out, flat_noise = x.reshape(-1), out.reshape(-1), noise.reshape(-1)
    ulp = np.finfo(np.float64).eps
    for i in range(flat.size):
        orig = flat[i]
        flat[i] = orig + eps
        up = float(fn(*point))
        flat[i] = orig - eps
        down = float(fn(*point))
        flat[i] = orig
        flat_out[i] = (up - down) / (2 * eps)
        flat_noise[i] = _ROUNDING_ULPS * ulp * max(abs(up), abs(down)) / (2 * eps)
    return out, noise
