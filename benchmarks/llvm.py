"""graphc's backends against NumPy, PyTorch, JAX and onnxruntime, on the issue's four targets.

1. GELU (tanh form) over 2^24 float32 on one thread, against the memory floor (a copy of
   the same bytes).
2. One SGD training step of an MLP 784-512-256-10 (ReLU, softmax cross-entropy), batch 256,
   float32, on 1 and on 2 threads, against the GEMM floor: the step's matmul FLOPs divided
   by the sgemm rate measured in the same process. Each step, and the sgemm, is also timed
   alone, in a process of its own, where no other framework's threads compete for the
   cores (bursts round-robin over the processes).
3. Time to the first result of that step in a fresh process, and the part of it after the
   imports and the data, timed inside the process (graphc llvm with an empty and with a
   filled code cache).
4. Call overhead of ``y = x*2 + 1`` on 4 float32.

Every table holds medians over repeats, measured in the same run, and a ratio against the
table's baseline. Each benchmark runs in a child process of this script, because BLAS
reads its thread count when NumPy is imported: the child gets OPENBLAS/OMP/MKL_NUM_THREADS
and GRAPHC_NUM_THREADS in its environment, and a 1-thread child is also pinned to one CPU
(``sched_setaffinity``), the only setting that bounds JAX's CPU thread pool (its XLA_FLAGS
intra-op options do not, measured with jax 0.10). Every implementation is checked against
a reference before it is timed.

Run: ``python benchmarks/llvm.py`` (about 2 min on 2 cores) or ``--quick`` (fewer repeats,
about 1.5 min); ``--only`` picks tables, ``--backends numpy`` leaves graphc llvm out.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from itertools import pairwise
from types import ModuleType
from typing import Any

import numpy as np

THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
               "GRAPHC_NUM_THREADS")
GELU_SIZE = 2 ** 24
GELU_BLOCK = 2 ** 14            # 64 KiB of float32 per temporary: stays in L2
GELU_K = math.sqrt(2 / math.pi)
GELU_KAPPA = 0.044715
MLP_SIZES = (784, 512, 256, 10)
MLP_BATCH = 256
LR = 0.01
FIRST_STEP_FRAMEWORKS = ("jax", "torch", "graphc numpy", "graphc llvm")
BACKENDS_VAR = "GRAPHC_BENCH_BACKENDS"


# -- measuring and printing ---------------------------------------------------------------------

@dataclass
class Case:
    """One implementation in a benchmark table: a name and a zero-argument call to time."""

    name: str
    call: Callable[[], Any]
    note: str = ""


@dataclass
class Timing:
    """Seconds per call of one case: the median and the fastest of the repeats."""

    name: str
    median: float
    low: float
    note: str = ""


def measure(cases: Sequence[Case], repeats: int, number: int = 1,
            settle: bool = False) -> list[Timing]:
    """Seconds per call of each case: one warm-up call each, then ``repeats`` rounds of
    ``number`` calls, round-robin over the cases, so that a burst of load from other
    processes on this shared machine slows every case alike.

    With ``settle``, each round first makes one untimed call of the case, so that its
    timed call follows a call of its own, as steps follow each other in training, not
    whatever the previous case left behind: PyTorch's OpenMP threads still spinning on
    the other core, or NumPy's temporaries just returned to the OS."""
    timers = [timeit.Timer(case.call) for case in cases]
    for case in cases:
        case.call()
    runs: list[list[float]] = [[] for _ in cases]
    for _ in range(repeats):
        for case, timer, seconds in zip(cases, timers, runs, strict=True):
            if settle:
                case.call()
            seconds.append(timer.timeit(number) / number)
    return [Timing(case.name, statistics.median(seconds), min(seconds), case.note)
            for case, seconds in zip(cases, runs, strict=True)]


def print_table(title: str, timings: Sequence[Timing], base: float, ratio: str,
                unit: str = "ms", missing: Sequence[str] = ()) -> None:
    """One table: a row per timing with its median, fastest, and median / ``base``."""
    scale = {"s": 1.0, "ms": 1e3, "µs": 1e6}[unit]
    print(f"\n{title}")
    print(f"  {'case':<36} {'median ' + unit:>11} {'min ' + unit:>11} {ratio:>10}")
    for t in timings:
        print(f"  {t.name:<36} {t.median * scale:>11.2f} {t.low * scale:>11.2f} "
              f"{t.median / base:>10.2f}" + (f"   {t.note}" if t.note else ""))
    for line in missing:
        print(f"  {line}")
    sys.stdout.flush()


def optional(name: str) -> ModuleType | None:
    """The module ``name``, or None when it is not installed."""
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def graphc_backends() -> list[str]:
    """graphc's backends to time: numpy, and llvm once it is registered (``--backends``
    narrows them; the parent passes the choice to its children in ``BACKENDS_VAR``)."""
    from graphc.backends import BACKENDS

    chosen = os.environ.get(BACKENDS_VAR, "numpy,llvm").split(",")
    return [name for name in ("numpy", "llvm") if name in BACKENDS and name in chosen]


def unavailable(onnx: bool = False) -> list[str]:
    """Lines naming the columns this run does not fill."""
    from graphc.backends import BACKENDS

    lines = []
    if "llvm" not in graphc_backends():
        lines.append("graphc llvm: " + ("skipped (--backends)" if "llvm" in BACKENDS
                                        else "not available"))
    wanted = ["torch", "jax"] + (["onnxruntime"] if onnx else [])
    return lines + [f"{name}: not installed" for name in wanted if optional(name) is None]


def attempt(name: str, build: Callable[[], Any], failed: list[str]) -> Any:
    """``build()``, or None after noting in ``failed`` why ``name`` could not be built.

    A backend still being written must not hide every other column of a table.
    """
    try:
        return build()
    except Exception as error:  # noqa: BLE001 - reported in the table, not swallowed
        failed.append(f"{name}: failed to build ({type(error).__name__}: {error})")
        return None


def to_numpy(value: Any) -> np.ndarray:
    """A framework's result as a NumPy array (torch tensors, JAX arrays, 1-tuples, lists)."""
    if isinstance(value, (tuple, list)):
        (value,) = value
    if hasattr(value, "detach"):
        value = value.detach()
    return np.asarray(value)


def check(cases: Sequence[Case], reference: np.ndarray, rtol: float, atol: float) -> None:
    """Assert every case computes ``reference`` (this call is also each case's warm-up)."""
    for case in cases:
        got = to_numpy(case.call())
        np.testing.assert_allclose(got, reference, rtol=rtol, atol=atol,
                                   err_msg=f"{case.name} disagrees with the reference")


# -- 1. GELU ------------------------------------------------------------------------------------

def gelu_reference(x: np.ndarray) -> np.ndarray:
    """0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))) in float64."""
    x = x.astype(np.float64)
    return 0.5 * x * (1 + np.tanh(GELU_K * (x + GELU_KAPPA * x ** 3)))


def gelu_numpy(x: np.ndarray, out: np.ndarray, tmp: np.ndarray) -> np.ndarray:
    """GELU with ``out=`` ufuncs: no allocation, one pass over memory per ufunc."""
    np.multiply(x, x, out=tmp)
    np.multiply(tmp, GELU_KAPPA, out=tmp)
    np.add(tmp, 1, out=tmp)
    np.multiply(tmp, x, out=tmp)               # x + κx³ = x·(1 + κx²)
    np.multiply(tmp, GELU_K, out=tmp)
    np.tanh(tmp, out=tmp)
    np.add(tmp, 1, out=tmp)
    np.multiply(tmp, x, out=out)
    return np.multiply(out, 0.5, out=out)


def gelu_numpy_chunked(x: np.ndarray, out: np.ndarray, tmp: np.ndarray) -> np.ndarray:
    """``gelu_numpy`` block by block, so the temporary stays in cache."""
    for start in range(0, x.size, tmp.size):
        stop = min(start + tmp.size, x.size)
        gelu_numpy(x[start:stop], out[start:stop], tmp[:stop - start])
    return out


def onnx_gelu_session(size: int) -> Any:
    """An onnxruntime session of one opset-20 ``Gelu(approximate="tanh")``, on one thread."""
    import onnxruntime as ort
    from onnx import TensorProto, helper

    node = helper.make_node("Gelu", ["x"], ["y"], approximate="tanh")
    graph = helper.make_graph(
        [node], "gelu", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [size])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [size])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    return ort.InferenceSession(model.SerializeToString(), options,
                                providers=["CPUExecutionProvider"])


def gelu_cases(x: np.ndarray, failed: list[str]) -> list[Case]:
    """Every GELU implementation available here, as cases on ``x``."""
    import graphc as gx

    out, tmp, block = np.empty_like(x), np.empty_like(x), np.empty(GELU_BLOCK, x.dtype)
    cases = [Case("numpy, out= buffers", lambda: gelu_numpy(x, out, tmp)),
             Case(f"numpy, chunked (2^{GELU_BLOCK.bit_length() - 1})",
                  lambda: gelu_numpy_chunked(x, out, block))]
    if (torch := optional("torch")) is not None:
        torch.set_num_threads(1)
        tx, t_out = torch.from_numpy(x), torch.empty(x.size)
        gelu = torch.nn.functional.gelu
        cases.append(Case(f"torch {torch.__version__} F.gelu",
                          lambda: gelu(tx, approximate="tanh"), "allocates its output"))
        cases.append(Case("torch F.gelu, out= buffer",
                          lambda: torch._C._nn.gelu(tx, approximate="tanh", out=t_out)))
    if (jax := optional("jax")) is not None:
        f = jax.jit(lambda v: jax.nn.gelu(v, approximate=True))
        xj = jax.device_put(x)
        cases.append(Case(f"jax {jax.__version__} jit", lambda: f(xj).block_until_ready()))
    if optional("onnxruntime") is not None and optional("onnx") is not None:
        session = onnx_gelu_session(x.size)
        cases.append(Case("onnxruntime Gelu (opset 20)", lambda: session.run(None, {"x": x})))
    xs = gx.input("x", (x.size,), "float32")
    for backend in graphc_backends():
        fn = attempt(f"graphc {backend}", lambda b=backend: gx.compile(
            [xs], gx.gelu(xs, approximate="tanh"), backend=b), failed)
        if fn is not None:
            cases.append(Case(f"graphc {backend}", lambda fn=fn: fn(x)))
    return cases


def streamed_copy(x: np.ndarray) -> list[Case]:
    """``x*2 + 1`` compiled by graphc llvm, whose large outputs bypass the cache: what
    moving these bytes costs without np.copyto's read-for-ownership of the output."""
    if "llvm" not in graphc_backends():
        return []
    import graphc as gx

    xs = gx.input("x_copy", (x.size,), "float32")
    fn = gx.compile([xs], xs * 2.0 + 1.0, backend="llvm")
    return [Case("graphc llvm x*2+1 (streamed stores)", lambda: fn(x), "a lower floor")]


def bench_gelu(repeats: int) -> None:
    """Table 1: GELU over 2^24 float32, ratio to the time of copying the same bytes."""
    x = (np.random.default_rng(0).standard_normal(GELU_SIZE) * 3).astype(np.float32)
    out = np.empty_like(x)
    copy = Case("copy floor (np.copyto)", lambda: np.copyto(out, x))
    failed: list[str] = []
    cases = gelu_cases(x, failed)
    check(cases, gelu_reference(x), rtol=1e-5, atol=1e-5)
    timings = measure([copy, *cases, *streamed_copy(x)], repeats)
    print_table(f"1. GELU (tanh) over 2^24 float32, 1 thread, median of {repeats}",
                timings, timings[0].median, "× copy", missing=failed + unavailable(onnx=True))


# -- 2. MLP training step -----------------------------------------------------------------------

Init = list[np.ndarray]          # [W1, b1, W2, b2, W3, b3], float32, W of shape (in, out)
Step = Callable[[], float]       # one training step on the fixed batch; returns its loss


def mlp_problem() -> tuple[Init, np.ndarray, np.ndarray]:
    """He-normal weights, zero biases, one batch of standard-normal inputs and labels."""
    rng = np.random.default_rng(0)
    init: Init = []
    for fan_in, fan_out in pairwise(MLP_SIZES):
        init.append((rng.standard_normal((fan_in, fan_out)) * math.sqrt(2 / fan_in))
                    .astype(np.float32))
        init.append(np.zeros(fan_out, np.float32))
    x = rng.standard_normal((MLP_BATCH, MLP_SIZES[0])).astype(np.float32)
    y = rng.integers(0, MLP_SIZES[-1], MLP_BATCH)
    return init, x, y


def mlp_flops(sizes: Sequence[int] = MLP_SIZES, batch: int = MLP_BATCH) -> int:
    """Matmul FLOPs of one step: forward and dW for every layer, dX for all but the first."""
    gemms = [2 * batch * m * n for m, n in pairwise(sizes)]
    return 2 * sum(gemms) + sum(gemms[1:])


def numpy_step(init: Init, x: np.ndarray, y: np.ndarray) -> Step:
    """The step written by hand in NumPy: forward, softmax cross-entropy, backward, SGD."""
    params = [p.copy() for p in init]
    rows = np.arange(len(y))

    def step() -> float:
        w1, b1, w2, b2, w3, b3 = params
        h1 = np.maximum(x @ w1 + b1, 0)
        h2 = np.maximum(h1 @ w2 + b2, 0)
        z = h2 @ w3 + b3
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        total = e.sum(axis=1, keepdims=True)
        loss = float(np.mean(np.log(total[:, 0]) - z[rows, y]))
        dz = e / total                     # ∂loss/∂z = (softmax(z) − onehot(y)) / batch
        dz[rows, y] -= 1
        dz /= len(y)
        dh2 = (dz @ w3.T) * (h2 > 0)
        dh1 = (dh2 @ w2.T) * (h1 > 0)
        grads = (x.T @ dh1, dh1.sum(0), h1.T @ dh2, dh2.sum(0), h2.T @ dz, dz.sum(0))
        for p, g in zip(params, grads, strict=True):
            p -= LR * g
        return loss

    return step


def torch_step(init: Init, x: np.ndarray, y: np.ndarray) -> Step:
    """The step in eager PyTorch with ``torch.optim.SGD``."""
    import torch

    params = [torch.tensor(p, requires_grad=True) for p in init]
    optimizer = torch.optim.SGD(params, lr=LR)
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)

    def step() -> float:
        w1, b1, w2, b2, w3, b3 = params
        optimizer.zero_grad(set_to_none=True)
        h = torch.relu(torch.relu(tx @ w1 + b1) @ w2 + b2)
        loss = torch.nn.functional.cross_entropy(h @ w3 + b3, ty)
        loss.backward()
        optimizer.step()
        return loss.item()

    return step


def jax_step(init: Init, x: np.ndarray, y: np.ndarray) -> Step:
    """The step as one ``jax.jit`` function (value_and_grad and the update, params donated)."""
    import jax
    import jax.numpy as jnp

    def loss_fn(params: list[Any], xb: Any, yb: Any) -> Any:
        w1, b1, w2, b2, w3, b3 = params
        z = jax.nn.relu(jax.nn.relu(xb @ w1 + b1) @ w2 + b2) @ w3 + b3
        picked = jnp.take_along_axis(z, yb[:, None], axis=1)[:, 0]
        return jnp.mean(jax.nn.logsumexp(z, axis=1) - picked)

    def update(params: list[Any], xb: Any, yb: Any) -> tuple[list[Any], Any]:
        loss, grads = jax.value_and_grad(loss_fn)(params, xb, yb)
        return [p - LR * g for p, g in zip(params, grads, strict=True)], loss

    jitted = jax.jit(update, donate_argnums=0)
    state = {"params": [jnp.asarray(p) for p in init]}
    xj, yj = jnp.asarray(x), jnp.asarray(y)

    def step() -> float:
        state["params"], loss = jitted(state["params"], xj, yj)
        return float(loss)

    return step


def graphc_step(backend: str) -> Callable[[Init, np.ndarray, np.ndarray], Step]:
    """The step built with graphc's API (ops, ``gx.grad``, updates), compiled for ``backend``."""
    def build(init: Init, x: np.ndarray, y: np.ndarray) -> Step:
        import graphc as gx

        names = ("W1", "b1", "W2", "b2", "W3", "b3")
        params = [gx.param(name, value.copy()) for name, value in zip(names, init, strict=True)]
        w1, b1, w2, b2, w3, b3 = params
        xs = gx.input("x", ("batch", MLP_SIZES[0]), "float32")
        ys = gx.input("y", ("batch",), "int64")
        logits = gx.relu(gx.relu(xs @ w1 + b1) @ w2 + b2) @ w3 + b3
        loss = gx.cross_entropy(logits, ys, reduction="mean")
        grads = gx.grad(loss, params)
        fn = gx.compile([xs, ys], loss, backend=backend,
                        updates={p: p - LR * g for p, g in zip(params, grads, strict=True)})
        return lambda: float(fn(x, y))

    return build


def mlp_steps() -> dict[str, Callable[[Init, np.ndarray, np.ndarray], Step]]:
    """Every available implementation of the step, by display name."""
    steps = {"numpy (hand-written)": numpy_step}
    if optional("torch") is not None:
        steps["torch eager"] = torch_step
    if optional("jax") is not None:
        steps["jax jit"] = jax_step
    for backend in graphc_backends():
        steps[f"graphc {backend}"] = graphc_step(backend)
    return steps


def sgemm(n: int = 1024) -> tuple[Case, int]:
    """A float32 (n, n) @ (n, n) ``np.matmul`` on this process's BLAS threads, and its FLOPs."""
    rng = np.random.default_rng(1)
    a, b = (rng.standard_normal((n, n)).astype(np.float32) for _ in range(2))
    c = np.empty_like(a)
    return Case("sgemm", lambda: np.matmul(a, b, out=c)), 2 * n ** 3


def bench_mlp(repeats: int, threads: int) -> None:
    """Table 2: one training step, ratio to its matmul FLOPs at the measured sgemm rate."""
    if (torch := optional("torch")) is not None:
        torch.set_num_threads(threads)
    init, x, y = mlp_problem()
    failed: list[str] = []
    steps = {name: attempt(name, lambda b=build: b(init, x, y), failed)
             for name, build in mlp_steps().items()}
    steps = {name: step for name, step in steps.items() if step is not None}
    # two steps from the same init: the second loss also checks the first update
    losses = {name: [step(), step()] for name, step in steps.items()}
    reference = losses["numpy (hand-written)"]
    for name, got in losses.items():
        np.testing.assert_allclose(got, reference, rtol=1e-4, atol=1e-4,
                                   err_msg=f"{name}: losses of steps 1 and 2")
    gemm, gemm_flops = sgemm()
    gemm_time, *timings = measure([gemm, *(Case(name, step) for name, step in steps.items())],
                                  repeats, settle=True)
    rate = gemm_flops / gemm_time.median
    floor = mlp_flops() / rate
    # the same, each in a process of its own, against a floor measured the same way
    gemm_alone, *alone = measure_alone(["sgemm", *steps], threads, 5, repeats)
    floor_alone = mlp_flops() * gemm_alone / gemm_flops
    timings = [replace(t, note=f"alone {s * 1e3:.2f} ms, {s / floor_alone:.2f}×")
               for t, s in zip(timings, alone, strict=True)]
    timings.insert(0, Timing(f"GEMM floor ({mlp_flops() / 1e6:.0f} MFLOP)", floor,
                             mlp_flops() * gemm_time.low / gemm_flops,
                             f"alone {floor_alone * 1e3:.2f} ms"))
    print_table(f"2. MLP {'-'.join(map(str, MLP_SIZES))} SGD step, batch {MLP_BATCH}, "
                f"{threads} thread{'s' * (threads > 1)}, median of {repeats} "
                f"(sgemm {rate / 1e9:.1f} GFLOP/s; loss {reference[0]:.4f} → "
                f"{reference[1]:.4f} in every framework)",
                timings, floor, "× GEMM", missing=failed + unavailable())


def alone(name: str, threads: int) -> None:
    """The body of a process that times one implementation of the step by itself. It
    prints "ready" once built and warm, then for each number n read from stdin runs n
    steps back to back and prints their seconds (JSON), until stdin closes. In the
    table's shared process, the other frameworks' threads (OpenBLAS's still spinning
    after a product, PyTorch's OpenMP pool, JAX's Eigen pool) compete for the 2 cores."""
    if (torch := optional("torch")) is not None and name.startswith("torch"):
        torch.set_num_threads(threads)
    if name == "sgemm":
        step = sgemm()[0].call
    else:
        init, x, y = mlp_problem()
        step = mlp_steps()[name](init, x, y)
    for _ in range(3):
        step()
    print("ready", flush=True)
    for line in sys.stdin:
        seconds = []
        for _ in range(int(line)):
            start = time.perf_counter()
            step()
            seconds.append(time.perf_counter() - start)
        print(json.dumps(seconds), flush=True)


def measure_alone(names: Sequence[str], threads: int, rounds: int, steps: int) -> list[float]:
    """The median step of each implementation, each in a process of its own (inheriting
    this one's thread settings and CPU affinity): ``rounds`` bursts of ``steps`` steps,
    round-robin over the processes with a pause before each burst, so that the previous
    burst's threads have gone quiet and a slow spell of the shared machine hits all."""
    children = [subprocess.Popen([sys.executable, __file__, "--alone", name, "--threads",
                                  str(threads)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 text=True) for name in names]
    try:
        for child in children:
            if child.stdout.readline().strip() != "ready":
                raise RuntimeError(f"{child.args}: no step")
        seconds: list[list[float]] = [[] for _ in children]
        for _ in range(rounds):
            for child, times in zip(children, seconds, strict=True):
                time.sleep(0.2)
                child.stdin.write(f"{steps}\n")
                child.stdin.flush()
                times += json.loads(child.stdout.readline())
        return [statistics.median(times) for times in seconds]
    finally:
        for child in children:
            child.stdin.close()
            child.wait()


# -- 3. time to first result --------------------------------------------------------------------

FIRST_STEP_IMPORTS = {"jax": ("jax", "jax.numpy"), "torch": ("torch",),
                      "graphc numpy": ("graphc",), "graphc llvm": ("graphc",)}


def first_step(framework: str) -> None:
    """Child of table 3: import, build and run one step; print the wall clock after the
    imports and the data, and at the result."""
    for module in FIRST_STEP_IMPORTS[framework]:
        importlib.import_module(module)
    init, x, y = mlp_problem()  # making the data is nobody's cost
    result: dict[str, float] = {"ready": time.time()}
    builders = {"jax": jax_step, "torch": torch_step,
                "graphc numpy": graphc_step("numpy"), "graphc llvm": graphc_step("llvm")}
    result["loss"] = builders[framework](init, x, y)()
    result["clock"] = time.time()
    print(json.dumps(result))


@dataclass(frozen=True)
class FirstStep:
    """One fresh process: seconds from spawning it to the loss, of which after the imports
    and the data (timed inside the process, so no two noisy totals are subtracted)."""

    total: float
    after_imports: float
    loss: float


def spawn_first_step(framework: str, cache_dir: str | None = None) -> FirstStep:
    """Run ``first_step`` in a fresh interpreter. The child may write and read bytecode
    caches (``__pycache__``), as an installed package does, even where this environment
    sets PYTHONDONTWRITEBYTECODE."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if cache_dir is not None:
        env["GRAPHC_CACHE_DIR"] = cache_dir
    start = time.time()
    done = subprocess.run([sys.executable, __file__, "--first-step", framework], env=env,
                          capture_output=True, text=True)
    if done.returncode:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise RuntimeError(f"exit {done.returncode}: {last}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return FirstStep(result["clock"] - start, result["clock"] - result["ready"],
                     result["loss"])


def first_steps(framework: str) -> list[tuple[str, FirstStep]]:
    """(label, run) of one fresh-process run of ``framework``; graphc llvm runs three
    times on one new cache directory: empty (cold); holding the object the first run
    compiled (the second process loads it with LLVM and links it into a library); holding
    that library too (every later process)."""
    if framework != "graphc llvm":
        return [(framework, spawn_first_step(framework))]
    cache_dir = tempfile.mkdtemp(prefix="graphc-cache-")
    try:
        return [(f"graphc llvm, {label}", spawn_first_step(framework, cache_dir=cache_dir))
                for label in ("cold cache", "cached object", "cached library")]
    finally:
        shutil.rmtree(cache_dir, ignore_errors=True)


def bench_first_result(repeats: int) -> None:
    """Table 3: fresh-process time to the first step's loss, and the part of it after the
    imports and the data."""
    available = {"jax": optional("jax") is not None, "torch": optional("torch") is not None,
                 "graphc numpy": "numpy" in graphc_backends(),
                 "graphc llvm": "llvm" in graphc_backends()}
    frameworks = [f for f in FIRST_STEP_FRAMEWORKS if available[f]]
    runs: dict[str, list[FirstStep]] = {}
    failed: list[str] = []
    scratch_cache = tempfile.mkdtemp(prefix="graphc-cache-")
    for framework in frameworks:  # untimed: writes the bytecode caches every run then reads
        with contextlib.suppress(RuntimeError):
            spawn_first_step(framework, cache_dir=scratch_cache)
    shutil.rmtree(scratch_cache, ignore_errors=True)
    for _ in range(repeats):
        for framework in list(frameworks):
            try:
                timed = first_steps(framework)
            except RuntimeError as error:
                failed.append(f"{framework}: failed ({error})")
                frameworks.remove(framework)
                continue
            for label, run in timed:
                runs.setdefault(label, []).append(run)
    losses = [run.loss for label_runs in runs.values() for run in label_runs] or [math.nan]
    np.testing.assert_allclose(losses, losses[0], rtol=1e-4, err_msg=f"first losses {losses}")
    print(f"\n3. time to the first MLP step's loss in a fresh process, median of {repeats} "
          f"(loss {losses[0]:.4f} in every one)")
    print(f"  {'case':<36} {'first loss s':>13} {'after imports+data s':>21}")
    for label, label_runs in runs.items():
        total = statistics.median(run.total for run in label_runs)
        after = statistics.median(run.after_imports for run in label_runs)
        print(f"  {label:<36} {total:>13.3f} {after:>21.3f}")
    for line in failed + unavailable():
        print(f"  {line}")


# -- 4. call overhead ---------------------------------------------------------------------------

def overhead_cases(x: np.ndarray, failed: list[str]) -> list[Case]:
    """``x*2 + 1`` in every framework, each fed its own native array."""
    import graphc as gx

    cases = [Case("numpy x*2+1", lambda: x * 2 + 1)]
    if (torch := optional("torch")) is not None:
        tx = torch.from_numpy(x)
        cases.append(Case("torch eager", lambda: tx * 2 + 1))
    if (jax := optional("jax")) is not None:
        f = jax.jit(lambda v: v * 2 + 1)
        xj = jax.device_put(x)
        cases.append(Case("jax jit", lambda: f(xj).block_until_ready()))
    xs = gx.input("x", x.shape, "float32")
    for backend in graphc_backends():
        fn = attempt(f"graphc {backend}", lambda b=backend: gx.compile(
            [xs], xs * 2 + 1, backend=b), failed)
        if fn is not None:
            cases.append(Case(f"graphc {backend}", lambda fn=fn: fn(x)))
    return cases


def bench_overhead(repeats: int, calls: int) -> None:
    """Table 4: µs per call of a trivial function, ratio to NumPy's."""
    x = np.arange(4, dtype=np.float32)
    failed: list[str] = []
    cases = overhead_cases(x, failed)
    check(cases, x * 2 + 1, rtol=0, atol=0)
    timings = measure(cases, repeats, calls)
    print_table(f"4. call overhead of y = x*2+1 on 4 float32, median of {repeats} × {calls} "
                f"calls", timings, timings[0].median, "× numpy", unit="µs",
                missing=failed + unavailable())


# -- driver -------------------------------------------------------------------------------------

def run_child(bench: str, threads: int, quick: bool) -> None:
    """Run one benchmark in a fresh interpreter with ``threads`` BLAS/graphc threads."""
    env = dict(os.environ, **{var: str(threads) for var in THREAD_VARS})
    cpus = sorted(os.sched_getaffinity(0))
    pin = (lambda: os.sched_setaffinity(0, cpus[:threads])) if threads < len(cpus) else None
    command = [sys.executable, __file__, "--child", bench, "--threads", str(threads)]
    done = subprocess.run(command + ["--quick"] * quick, env=env, preexec_fn=pin)
    if done.returncode:
        print(f"\n({bench} on {threads} thread(s): the child exited with {done.returncode})")


def child(bench: str, threads: int, quick: bool) -> None:
    """The body of a child process: one benchmark table."""
    if bench == "gelu":
        bench_gelu(3 if quick else 9)
    elif bench == "mlp":
        bench_mlp(3 if quick else 21, threads)
    elif bench == "overhead":
        bench_overhead(3 if quick else 9, 200 if quick else 5000)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats: a smoke run")
    parser.add_argument("--only", nargs="+", choices=("gelu", "mlp", "first", "overhead"),
                        help="run only these benchmarks")
    parser.add_argument("--backends", nargs="+", choices=("numpy", "llvm"),
                        help="graphc backends to time (default: every registered one)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--first-step", choices=FIRST_STEP_FRAMEWORKS, help=argparse.SUPPRESS)
    parser.add_argument("--alone", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.first_step:
        return first_step(args.first_step)
    if args.alone:
        return alone(args.alone, args.threads)
    if args.child:
        return child(args.child, args.threads, args.quick)
    if args.backends:
        os.environ[BACKENDS_VAR] = ",".join(args.backends)     # read by every child
    start = time.perf_counter()
    only = set(args.only or ("gelu", "mlp", "first", "overhead"))
    print(f"python {sys.version.split()[0]}, numpy {np.__version__}, "
          f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    if "gelu" in only:
        run_child("gelu", 1, args.quick)
    if "mlp" in only:
        for threads in (1, 2):
            run_child("mlp", threads, args.quick)
    if "first" in only:
        bench_first_result(1 if args.quick else 5)
    if "overhead" in only:
        run_child("overhead", 1, args.quick)
    print(f"\ntotal {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
