"""The optimizer: how its cost grows with graph size, and what fusion buys at run time.

Part 1, compile time. Training graphs (forward + ``gx.grad``) of a layered scalar
network at about 10^3, 10^4 and 10^5 nodes go through ``run_pipeline`` (level 3:
canonicalize, stabilize, specialize, fuse); each pass is timed, and the growth per
10x nodes is printed (linear scaling gives 10x).

Part 2, run time. One elementwise-heavy layer, ``y = tanh(x·W + b) · sigmoid(x·W) + x²``
and its backward pass on a (4096, 256) float32 batch, is run compiled with
``optimize=False`` and with the optimizer (fused NumPy kernels writing into ``out=``
buffers), next to the same math written directly in NumPy, and in PyTorch and JAX when
they are installed. Ratios are against direct NumPy, in one run.

Run: ``python benchmarks/optimize.py`` (about a minute).
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable

import numpy as np

import graphc as gx
from graphc.graph import Graph
from graphc.passes import run_pipeline

SIZES = (10**3, 10**4, 10**5)


def training_graph(n: int, width: int = 100) -> Graph:
    """About ``n`` forward nodes h'[j] = tanh(h[j]·h[j+1]·w + h[j-1]), a loss, its gradient."""
    xs = [gx.input(f"x{j}", (), "float64") for j in range(width)]
    w = gx.param("w", 0.5)
    h = xs
    for _ in range(max(n // (4 * width), 1)):
        h = [gx.tanh(h[j] * h[(j + 1) % width] * w + h[j - 1]) for j in range(width)]
    loss = h[0]
    for node in h[1:]:
        loss = loss + node
    grads = gx.grad(loss, [*xs, w])
    return Graph.build(xs, [loss, *grads])


def compile_time() -> None:
    print("optimizer cost (level 3) on training graphs")
    print(f"{'nodes':>8} {'canonicalize':>13} {'stabilize':>10} {'specialize':>11} "
          f"{'fuse':>8} {'total s':>8} {'µs/node':>8} {'after':>8}")
    previous = None
    for n in SIZES:
        graph = training_graph(n)
        gc.collect()
        start = time.perf_counter()
        optimized, report = run_pipeline(graph)
        total = time.perf_counter() - start
        times = {p.name: p.seconds for p in report.passes}
        growth = f"  ×{total / previous:.1f} per 10×" if previous else ""
        print(f"{len(graph):>8} {times['canonicalize']:>13.3f} {times['stabilize']:>10.3f} "
              f"{times['specialize']:>11.3f} {times['fuse']:>8.3f} {total:>8.2f} "
              f"{total / len(graph) * 1e6:>8.1f} {len(optimized):>8}{growth}")
        previous = total


def best_of(fn: Callable[[], object], repeats: int = 7) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def run_time(batch: int = 4096, features: int = 256) -> None:
    rng = np.random.default_rng(0)
    x_val = rng.standard_normal((batch, features)).astype(np.float32)
    w_val = (rng.standard_normal((features, features)) / 16).astype(np.float32)
    b_val = rng.standard_normal(features).astype(np.float32)

    x = gx.input("x", ("batch", features))
    w, b = gx.input("W", (features, features)), gx.input("b", (features,))
    z = x @ w
    y = gx.tanh(z + b) * gx.sigmoid(z) + x ** 2
    loss = gx.sum(y)
    outputs = [loss, *gx.grad(loss, [x, w, b])]
    plain = gx.compile([x, w, b], outputs, optimize=False)
    fused = gx.compile([x, w, b], outputs)

    def numpy_direct():
        z = x_val @ w_val
        t = np.tanh(z + b_val)
        s = 1 / (1 + np.exp(-z))
        y = t * s + x_val ** 2
        dz = (1 - t * t) * s + t * s * (1 - s)  # ∂y/∂z with ∂loss/∂y = 1
        return y.sum(), dz @ w_val.T + 2 * x_val, x_val.T @ dz, ((1 - t * t) * s).sum(0)

    rows = [("numpy (hand-written)", numpy_direct),
            ("graphc numpy, optimize=False", lambda: plain(x_val, w_val, b_val)),
            ("graphc numpy, optimized", lambda: fused(x_val, w_val, b_val))]
    try:
        import torch

        tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x_val, w_val, b_val))

        def torch_step():
            z = tx @ tw
            out = (torch.tanh(z + tb) * torch.sigmoid(z) + tx ** 2).sum()
            return torch.autograd.grad(out, [tx, tw, tb])

        rows.append((f"torch {torch.__version__} eager", torch_step))
    except ImportError:
        print("(torch not installed: skipped)")
    try:
        import jax
        import jax.numpy as jnp

        def f(x, w, b):
            z = x @ w
            return jnp.sum(jnp.tanh(z + b) * jax.nn.sigmoid(z) + x ** 2)

        step = jax.jit(jax.value_and_grad(f, argnums=(0, 1, 2)))
        rows.append((f"jax {jax.__version__} jit",
                     lambda: jax.block_until_ready(step(x_val, w_val, b_val))))
    except ImportError:
        print("(jax not installed: skipped)")

    got = fused(x_val, w_val, b_val)
    want = plain(x_val, w_val, b_val)
    for g, e in zip(got, want, strict=True):
        np.testing.assert_allclose(g, e, rtol=1e-4, atol=1e-3)
    print(f"\nrun time of value + gradients, float32 ({batch}, {features}) "
          f"(best of 7, ratio to hand-written numpy)")
    base = None
    for name, fn in rows:
        seconds = best_of(fn)
        base = base or seconds
        print(f"  {name:<32} {seconds * 1e3:8.2f} ms   ×{seconds / base:.2f}")
    print(f"  kernels: {sum(n.op.name == 'fused' for n in fused.graph.toposort())} fused, "
          f"{len(fused.graph)} nodes (from {len(plain.graph)})")


if __name__ == "__main__":
    compile_time()
    run_time()
