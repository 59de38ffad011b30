"""Fused kernels drawn as dashed clusters holding their scalar program."""

import numpy as np

import graphc as gx
import graphc.viz as viz
from graphc.ops.fused import fused
from graphc.ops.scalar import Program
from graphc.viz import style
from tests.viz.dot import GREEN, RED, colored, parse

#: tanh(in0 · in1 + 1), over (4, 3)
PROGRAM = Program((("t0", "mul", ("in0", "in1")), ("t1", "add", ("t0", 1.0)),
                   ("t2", "tanh", ("t1",))), "t2")


def kernel_graph(reduce=None):
    u, v = gx.input("u", (4, 3)), gx.input("v", (3,))
    k = fused((u, v), kernel="fused_mul_add_tanh_0", program=PROGRAM, shape=(4, 3),
              dtype="float32", compute="float32", reduce=reduce)
    return u, v, k


def test_a_kernel_is_a_dashed_cluster_of_its_instructions():
    u, v, k = kernel_graph()
    dot = parse(viz.draw(gx.sum(k * 2.0)).source)
    cluster = dot.cluster_named("fused_mul_add_tanh_0")
    attrs = dot.clusters[cluster]
    assert "dashed" in attrs["style"] and attrs["color"] == style.FUSED_COLOR
    assert "over (4, 3) f32" in dot.cluster_labels()[0]
    members = [dot.text(n) for n in dot.members[cluster]]
    assert members == ["×", "+ 1", "tanh", "result"]  # the body, then the kernel's result
    instrs = {dot.text(n): n for n in dot.members[cluster]}
    # the inputs enter the instruction reading them; the body flows to the result
    into = sorted((dot.text(t).split("\n")[0], a.get("label")) for t, h, a in dot.edges
                  if h == instrs["×"])
    assert into == [("u", None), ("v", None)]
    chain = [(dot.text(t), dot.text(h)) for t, h, _ in dot.edges
             if t in dot.members[cluster] and h in dot.members[cluster]]
    assert chain == [("×", "+ 1"), ("+ 1", "tanh"), ("tanh", "result")]
    assert [dot.text(h).split("\n")[0] for t, h, _ in dot.edges if t == instrs["result"]] == \
        ["× 2"]


def test_a_kernel_with_a_reduction_names_it():
    _, _, k = kernel_graph(reduce=("sum", (0, 1), False))
    dot = parse(viz.draw(k).source)
    assert "then sum axis=(0, 1)" in dot.cluster_labels()[0]
    assert dot.find("sum axis=(0, 1)")


def test_values_and_gradients_flow_through_a_kernel():
    u, v, k = kernel_graph()
    uv, vv = np.ones((4, 3), "float32"), np.array([0.0, 1.0, 2.0], "float32")
    dot = parse(viz.draw(gx.sum(k), values={u: uv, v: vv}, backward=True,
                         summary="values").source)
    t = np.tanh(uv * vv + 1)
    result = dot.nodes[dot.one("result")]["label"]
    assert colored(result, GREEN) == ["[" + ", ".join(f"{a:.3f}" for a in t.ravel()[:4])
                                      + ", …]"]
    assert colored(result, RED) == ["[1.000, 1.000, 1.000, 1.000, …]"]
    dv = ((1 - t ** 2) * uv).sum(axis=0)  # ∂ Σ tanh(u·v + 1) / ∂v
    assert colored(dot.nodes[dot.one("v")]["label"], RED) == \
        ["[" + ", ".join(f"{a:.3f}" for a in dv) + "]"]


def test_a_constant_input_of_a_kernel_is_written_into_its_instruction():
    u = gx.input("u", (3,))
    program = Program((("t0", "mul", ("in0", "in1")),), "t0")
    k = fused((u, gx.constant(0.5, "float32")), kernel="fused_mul_0", program=program,
              shape=(3,), dtype="float32", compute="float32")
    dot = parse(viz.draw(k).source)
    assert dot.find("× 0.5") and len(dot.nodes) == 3


def test_the_optimizer_s_kernels_are_drawn_open():
    x = gx.input("x", (4, 3))
    y = gx.sum(gx.square(gx.tanh(x) * 2.0 + 1.0))
    optimized = gx.optimize(y)
    kernels = [n for n in gx.toposort([optimized]) if n.op.name == "fused"]
    assert kernels
    dot = parse(viz.draw(optimized).source)
    names = [label.split("\n")[0] for label in dot.cluster_labels()]
    assert names == [k.attr["kernel"] for k in kernels]
    assert not parse(viz.draw(y).source).clusters


def test_a_folded_kernel_is_not_opened():
    x = gx.input("x", (3,))
    with gx.scope("block"):
        k = fused((x,), kernel="fused_tanh_0", program=Program((("t0", "tanh", ("in0",)),),
                                                                 "t0"),
                  shape=(3,), dtype="float32", compute="float32")
    dot = parse(viz.draw(k * 2.0, collapse="block").source)
    assert not any("fused_tanh_0" in label for label in dot.cluster_labels())
    assert dot.find("block")
