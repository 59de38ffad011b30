"""Fit the polynomial coefficients used by :mod:`graphc.backends.llvm.vecmath`.

Run ``python -m graphc.backends.llvm.vecmath_fit`` (or this file) and paste the printed
``COEFFS`` table into ``vecmath.py``. Each entry is a near-minimax polynomial found by
Lawson's algorithm (iteratively reweighted least squares, which converges to the minimax
fit) on Chebyshev points, with the true function values taken from mpmath at 40 digits:

* the reweighting runs in float64 (fast); the final solve with the converged weights is
  refined twice against residuals computed in mpmath, so float64 round-off in the target
  values does not limit the float64 fits;
* coefficients are then rounded to the function's dtype, and the printed error is the
  maximum *relative* error of the rounded polynomial measured in mpmath on a denser grid
  (approximation error only; the arithmetic adds about one rounding per operation).

Every polynomial ``P`` is in a variable ``u`` and the table stores ``P``'s coefficients
lowest degree first; the comments in ``vecmath.py`` state how each one is used.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Callable
from dataclasses import dataclass

import mpmath as mp
import numpy as np

from graphc.backends.llvm.vecmath import ERF_PIECES, ERF_SPLIT

mp.mp.dps = 40


@dataclass(frozen=True)
class Fit:
    """One polynomial: ``target(u) ≈ P(u)`` minimizing ``max |weight(u) * (target - P)|``."""

    name: str
    dtype: str  # "f32" or "f64": the precision the coefficients are rounded to
    lo: float
    hi: float
    degree: int
    target: Callable[[mp.mpf], mp.mpf]
    weight: Callable[[mp.mpf], mp.mpf]  # turns an error in P into a relative error of f


def _expm1_q(r: mp.mpf) -> mp.mpf:  # expm1(r) = r + r^2 q(r)
    return (mp.expm1(r) - r) / r**2 if r else mp.mpf(1) / 2


def _expm1_w(r: mp.mpf) -> mp.mpf:
    return r**2 / mp.expm1(r) if r else mp.mpf(0)


def _log_p(z: mp.mpf) -> mp.mpf:  # log1p(f) = 2s + s z P(z), s = f/(2+f), z = s^2
    s = mp.sqrt(z)
    return (2 * mp.atanh(s) / s - 2) / z if z else mp.mpf(2) / 3


def _log_w(z: mp.mpf) -> mp.mpf:
    s = mp.sqrt(z)
    return s * z / (2 * mp.atanh(s)) if z else mp.mpf(0)


def _logpow_q(z: mp.mpf) -> mp.mpf:  # log1p(f) = 2s + 2s^3/3 + s^5 Q(z), for pow
    s = mp.sqrt(z)
    return (2 * mp.atanh(s) - 2 * s - 2 * s**3 / 3) / s**5 if z else mp.mpf(2) / 5


def _logpow_w(z: mp.mpf) -> mp.mpf:
    s = mp.sqrt(z)
    return s**5 / (2 * mp.atanh(s)) if z else mp.mpf(0)


def _erf_p(z: mp.mpf) -> mp.mpf:  # erf(x) = x + x P(x^2)
    x = mp.sqrt(z)
    return (mp.erf(x) / x if z else 2 / mp.sqrt(mp.pi)) - 1


def _erf_w(z: mp.mpf) -> mp.mpf:
    return 1 / (1 + _erf_p(z))


def _erfc_scaled(center: float) -> tuple[Callable, Callable]:
    """erf(x) = 1 - exp(-x^2) R(x - center) with R(t) = erfc(x) exp(x^2)."""
    def target(t: mp.mpf) -> mp.mpf:
        x = t + center
        return mp.erfc(x) * mp.exp(x * x)

    def weight(t: mp.mpf) -> mp.mpf:
        x = t + center
        return mp.exp(-x * x) / mp.erf(x)

    return target, weight


def _sin_p(z: mp.mpf) -> mp.mpf:  # sin(r) = r + r^3 P(r^2)
    r = mp.sqrt(z)
    return (mp.sin(r) - r) / r**3 if z else -mp.mpf(1) / 6


def _sin_w(z: mp.mpf) -> mp.mpf:
    r = mp.sqrt(z)
    return r**3 / mp.sin(r) if z else mp.mpf(0)


def _cos_p(z: mp.mpf) -> mp.mpf:  # cos(r) = 1 - r^2/2 + r^4 P(r^2)
    return (mp.cos(mp.sqrt(z)) - 1 + z / 2) / z**2 if z else mp.mpf(1) / 24


def _cos_w(z: mp.mpf) -> mp.mpf:
    return z**2 / mp.cos(mp.sqrt(z))


def _atan_p(z: mp.mpf) -> mp.mpf:  # atan(u) = u + u^3 P(u^2)
    u = mp.sqrt(z)
    return (mp.atan(u) - u) / u**3 if z else -mp.mpf(1) / 3


def _atan_w(z: mp.mpf) -> mp.mpf:
    u = mp.sqrt(z)
    return u**3 / mp.atan(u) if z else mp.mpf(0)


LN2_HALF = math.log(2) / 2 + 1e-3  # |r| after rounding x/ln2 to an integer, with slack
S_MAX = (math.sqrt(2) - 1) / (math.sqrt(2) + 1)  # |s| for mantissas in [sqrt(1/2), sqrt(2))
PIO4 = math.pi / 4 + 1e-3
TAN_PIO8 = math.tan(math.pi / 8) * 1.001  # |u| after atan's reduction, with slack
ERFC_DEGREE = {"f32": 8, "f64": 13}


def _specs() -> list[Fit]:
    fits = [
        Fit("expm1", "f32", -LN2_HALF, LN2_HALF, 4, _expm1_q, _expm1_w),
        Fit("expm1", "f64", -LN2_HALF, LN2_HALF, 9, _expm1_q, _expm1_w),
        Fit("log", "f32", 0.0, S_MAX**2 * 1.01, 2, _log_p, _log_w),
        Fit("log", "f64", 0.0, S_MAX**2 * 1.01, 6, _log_p, _log_w),
        Fit("logpow", "f64", 0.0, S_MAX**2 * 1.01, 8, _logpow_q, _logpow_w),
        Fit("erf", "f32", 0.0, ERF_SPLIT**2, 5, _erf_p, _erf_w),
        Fit("erf", "f64", 0.0, ERF_SPLIT**2, 11, _erf_p, _erf_w),
        Fit("sin", "f32", 0.0, PIO4**2, 3, _sin_p, _sin_w),
        Fit("sin", "f64", 0.0, PIO4**2, 5, _sin_p, _sin_w),
        Fit("cos", "f32", 0.0, PIO4**2, 3, _cos_p, _cos_w),
        Fit("cos", "f64", 0.0, PIO4**2, 5, _cos_p, _cos_w),
        Fit("atan", "f64", 0.0, TAN_PIO8**2, 10, _atan_p, _atan_w),
    ]
    for dtype, edges in ERF_PIECES.items():
        for i, (a, b) in enumerate(zip(edges, edges[1:], strict=False)):
            center = (a + b) / 2
            target, weight = _erfc_scaled(center)
            fits.append(Fit(f"erfc{i}", dtype, a - center, b - center, ERFC_DEGREE[dtype],
                            target, weight))
    return fits


def _nodes(lo: float, hi: float, count: int) -> np.ndarray:
    """Chebyshev points of the second kind on [lo, hi] (they include both ends)."""
    return (lo + hi) / 2 + (hi - lo) / 2 * np.cos(np.linspace(0.0, np.pi, count))


def _evaluate(coeffs: list[mp.mpf], u: mp.mpf) -> mp.mpf:
    result = mp.mpf(0)
    for c in reversed(coeffs):
        result = result * u + c
    return result


def _residual(coeffs: list[mp.mpf], target: list[mp.mpf], u: np.ndarray,
              scale: float) -> np.ndarray:
    """The exact ``target - P`` at the nodes, rounded to float64."""
    return np.array([float(t - _evaluate(coeffs, mp.mpf(float(x)) / scale))
                     for t, x in zip(target, u, strict=True)])


def _correct(coeffs, lam, target, u, scale, basis, weight) -> list[mp.mpf]:
    """One weighted least-squares correction of ``coeffs`` to the exact residual."""
    root = np.sqrt(lam) * weight
    residual = _residual(coeffs, target, u, scale)
    delta, *_ = np.linalg.lstsq(basis * root[:, None], residual * root, rcond=None)
    return [c + mp.mpf(float(d)) for c, d in zip(coeffs, delta, strict=True)]


def _lawson_step(coeffs, lam, target, u, scale, basis, weight):
    """Reweight the nodes by their error, then correct the fit with the new weights."""
    err = np.abs(weight * _residual(coeffs, target, u, scale))
    lam = np.maximum(lam * err / np.sum(lam * err), 1e-12 / len(lam))
    return lam, _correct(coeffs, lam, target, u, scale, basis, weight)


def fit(spec: Fit, count: int = 400, iterations: int = 30) -> tuple[list[float], float]:
    """The rounded coefficients of ``spec`` and their maximum relative error (of f)."""
    u = _nodes(spec.lo, spec.hi, count)
    target = [spec.target(mp.mpf(float(x))) for x in u]
    weight = np.array([float(spec.weight(mp.mpf(float(x)))) for x in u])
    scale = max(abs(spec.lo), abs(spec.hi))  # columns in u/scale keep the system well scaled
    basis = np.vander(u / scale, spec.degree + 1, increasing=True)
    coeffs = [mp.mpf(0)] * (spec.degree + 1)
    lam = np.full(count, 1.0 / count)
    for _ in range(2):  # least squares, refined against exact residuals
        coeffs = _correct(coeffs, lam, target, u, scale, basis, weight)
    for _ in range(iterations):  # Lawson: reweight by the error until it equioscillates
        lam, coeffs = _lawson_step(coeffs, lam, target, u, scale, basis, weight)
    cast = np.float32 if spec.dtype == "f32" else np.float64
    rounded = [float(cast(float(c / mp.mpf(scale) ** k))) for k, c in enumerate(coeffs)]
    dense = _nodes(spec.lo, spec.hi, 4 * count)
    error = max(abs(spec.weight(mp.mpf(x)) * (spec.target(mp.mpf(x))
                                               - _evaluate([mp.mpf(c) for c in rounded],
                                                           mp.mpf(x))))
                for x in map(float, dense))
    return rounded, float(error)


def main() -> None:
    """Print the ``COEFFS`` table for vecmath.py."""
    print("COEFFS: dict[tuple[str, str], tuple[float, ...]] = {")
    for spec in _specs():
        coeffs, error = fit(spec)
        ulps = error / (2.0**-24 if spec.dtype == "f32" else 2.0**-53)
        print(f"    # degree {spec.degree} on [{spec.lo:.6g}, {spec.hi:.6g}], "
              f"max relative error {error:.2e} = {ulps:.3f} units of roundoff")
        print(f'    ("{spec.name}", "{spec.dtype}"): (')
        print(textwrap.fill(", ".join(repr(c) for c in coeffs) + ",", width=99,
                            initial_indent=" " * 8, subsequent_indent=" " * 8))
        print("    ),")
    print("}")


if __name__ == "__main__":
    main()
