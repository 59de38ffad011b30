"""How graph building, differentiation and topological sorting scale with graph size.

Two graph shapes, each at about 10^3, 10^4 and 10^5 forward nodes:

* ``chain``: one long dependency chain of scalar elementwise ops (the deepest graph a
  recursive walk would choke on);
* ``layered``: an MLP-like stack of layers of elementwise ops, each node reading its own
  and its neighbours' previous values (wide fan-out and fan-in), summed into a loss.

For each graph the script times building it, ``gx.grad`` of the loss with respect to
the inputs, and ``toposort`` of loss and gradients together, and prints microseconds
per node and the growth of each step per 10x nodes (linear scaling gives 10x).
For the largest layered graph it then compares graphc's ``toposort`` with networkx
(``to_networkx()`` then ``nx.topological_sort``) in time and in peak memory
(``tracemalloc``).

Run: ``python benchmarks/scaling.py`` (or ``make bench``); it takes well under a minute.
"""

from __future__ import annotations

import gc
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass

import graphc as gx
from graphc.graph import Graph, toposort

SIZES = (10**3, 10**4, 10**5)
#: best of this many runs per size: small graphs are the noisiest
REPEATS = {10**3: 3, 10**4: 1, 10**5: 1}


def chain(n: int) -> tuple[gx.Tensor, list[gx.Tensor]]:
    """A scalar chain of about ``n`` nodes: y ← sin(y) · 0.5 + x, repeated."""
    x = gx.input("x", (), "float64")
    y = x
    for _ in range(n // 3):
        y = gx.sin(y) * 0.5 + x  # three new nodes per step (the constant is shared)
    return y, [x]


def layered(n: int, width: int = 100) -> tuple[gx.Tensor, list[gx.Tensor]]:
    """About ``n`` nodes in layers of ``width``: h'[j] = tanh(h[j] · h[j+1] + h[j-1])."""
    xs = [gx.input(f"x{j}", (), "float64") for j in range(width)]
    h = xs
    for _ in range(max(n // (3 * width), 1)):
        h = [gx.tanh(h[j] * h[(j + 1) % width] + h[j - 1]) for j in range(width)]
    loss = h[0]
    for node in h[1:]:
        loss = loss + node
    return loss, xs


@dataclass
class Row:
    graph: str
    size: int
    forward_nodes: int
    total_nodes: int
    build_s: float
    grad_s: float
    toposort_s: float


def timed(fn: Callable[..., object], *args: object) -> tuple[float, object]:
    gc.collect()
    start = time.perf_counter()
    result = fn(*args)
    return time.perf_counter() - start, result


def measure(name: str, make: Callable[[int], tuple], n: int, repeats: int = 1) -> Row:
    """Best of ``repeats`` runs of each step (each run builds a fresh graph)."""
    best: Row | None = None
    for _ in range(repeats):
        build_s, (loss, xs) = timed(make, n)
        grad_s, grads = timed(gx.grad, loss, xs)
        toposort_s, order = timed(toposort, [loss, *grads])
        row = Row(name, n, len(toposort([loss])), len(order), build_s, grad_s, toposort_s)
        if best is not None:
            row.build_s, row.grad_s, row.toposort_s = (
                min(row.build_s, best.build_s), min(row.grad_s, best.grad_s),
                min(row.toposort_s, best.toposort_s))
        best = row
    return best


def print_scaling(rows: list[Row]) -> None:
    header = (f"{'graph':8} {'nodes':>8} {'+grad':>8} | {'build':>8} {'grad':>8} {'topo':>8}"
              f" us/node | {'build':>6} {'grad':>6} {'topo':>6} x per 10x")
    print(header)
    print("-" * len(header))
    previous: dict[str, Row] = {}
    for row in rows:
        per_node = [1e6 * row.build_s / row.forward_nodes, 1e6 * row.grad_s / row.forward_nodes,
                    1e6 * row.toposort_s / row.total_nodes]
        prev = previous.get(row.graph)
        growth = ("" if prev is None else
                  " ".join(f"{now / before:6.1f}" for now, before in
                           [(row.build_s, prev.build_s), (row.grad_s, prev.grad_s),
                            (row.toposort_s, prev.toposort_s)]))
        print(f"{row.graph:8} {row.forward_nodes:8d} {row.total_nodes:8d} | "
              + " ".join(f"{v:8.2f}" for v in per_node) + f"         | {growth}")
        previous[row.graph] = row


def peak_memory(fn: Callable[[], object]) -> tuple[float, int]:
    """Seconds and peak bytes allocated while ``fn`` runs (its result is kept alive)."""
    gc.collect()
    tracemalloc.start()
    start = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del result
    return seconds, peak


def compare_with_networkx(n: int) -> None:
    """graphc's toposort against networkx on the forward layered graph of ``n`` nodes."""
    import networkx as nx

    loss, xs = layered(n)
    graph = Graph.build(xs, [loss])
    def nx_order(g: nx.MultiDiGraph) -> list:
        return list(nx.topological_sort(g))

    ours_s, order = timed(toposort, graph.roots)
    convert_s, g = timed(graph.to_networkx)
    sort_s, sorted_ids = timed(nx_order, g)
    assert len(sorted_ids) == len(order) == g.number_of_nodes()
    g = sorted_ids = None  # free them before measuring memory
    _, ours_bytes = peak_memory(lambda: toposort(graph.roots))
    _, nx_bytes = peak_memory(lambda: list(nx.topological_sort(graph.to_networkx())))
    print(f"\ntoposort of the layered graph ({len(order)} nodes), graphc vs networkx:")
    print(f"  graphc toposort            {1e3 * ours_s:8.1f} ms   "
          f"peak {ours_bytes / 2**20:6.1f} MiB")
    print(f"  networkx convert + sort    {1e3 * (convert_s + sort_s):8.1f} ms   "
          f"peak {nx_bytes / 2**20:6.1f} MiB")
    print(f"    (to_networkx {1e3 * convert_s:.1f} ms, topological_sort {1e3 * sort_s:.1f} ms)")
    print(f"  networkx / graphc: time {(convert_s + sort_s) / ours_s:.1f}x "
          f"(sort alone {sort_s / ours_s:.1f}x), peak memory {nx_bytes / ours_bytes:.1f}x")


def main() -> None:
    start = time.perf_counter()
    for make in (chain, layered):  # warm up: first calls import and fill caches
        measure("warm-up", make, 300)
    rows = [measure(name, make, n, REPEATS[n])
            for name, make in [("chain", chain), ("layered", layered)] for n in SIZES]
    print_scaling(rows)
    compare_with_networkx(SIZES[-1])
    print(f"\ntotal {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
