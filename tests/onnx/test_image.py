"""ONNX image ops (Resize, Upsample, GridSample, AffineGrid, RoiAlign) against torch."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
import torch.nn.functional as F
from onnx import TensorProto, helper, numpy_helper

import graphc as gx
from graphc.onnx import OnnxImportError, load
from graphc.onnx.handlers.image import grid_sample

BACKENDS = ["numpy", "llvm"]
RNG = np.random.default_rng(0)


def _model(node: onnx.NodeProto, inputs: dict[str, np.ndarray], consts: dict[str, np.ndarray],
           opset: int = 19) -> onnx.ModelProto:
    """One node; ``inputs`` are float32 graph inputs, ``consts`` initializers."""
    graph = helper.make_graph(
        [node], "m",
        [helper.make_tensor_value_info(k, TensorProto.FLOAT, v.shape) for k, v in inputs.items()],
        [helper.make_tensor_value_info(node.output[0], TensorProto.FLOAT, None)],
        initializer=[numpy_helper.from_array(v, k) for k, v in consts.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _run(model: onnx.ModelProto, inputs: dict[str, np.ndarray], backend: str) -> np.ndarray:
    fn = load(model, initializers="constants").compile(backend)
    return fn(*inputs.values())[0]


X = RNG.standard_normal((2, 3, 5, 6)).astype(np.float32)

# (onnx attrs, scales or sizes, torch.interpolate kwargs)
RESIZE_CASES = [
    ({"mode": "linear"}, "scales", (2.0, 1.5), {"mode": "bilinear", "align_corners": False}),
    ({"mode": "linear", "coordinate_transformation_mode": "align_corners"}, "sizes", (9, 4),
     {"mode": "bilinear", "align_corners": True}),
    ({"mode": "cubic", "coordinate_transformation_mode": "align_corners"}, "sizes", (7, 11),
     {"mode": "bicubic", "align_corners": True}),
    ({"mode": "nearest", "coordinate_transformation_mode": "asymmetric", "nearest_mode": "floor"},
     "sizes", (8, 13), {"mode": "nearest"}),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("attrs,kind,values,torch_kw", RESIZE_CASES)
def test_resize_matches_torch_interpolate(backend, attrs, kind, values, torch_kw):
    inputs = ["x", "", "scales"] if kind == "scales" else ["x", "", "", "sizes"]
    arr = (np.array([1, 1, *values], np.float32) if kind == "scales"
           else np.array([2, 3, *values], np.int64))
    node = helper.make_node("Resize", inputs, ["y"], **attrs)
    y = _run(_model(node, {"x": X}, {kind: arr}), {"x": X}, backend)
    size = (tuple(int(v * s) for v, s in zip(values, X.shape[2:], strict=True))
            if kind == "scales" else values)
    expected = F.interpolate(torch.from_numpy(X), size=size, **torch_kw).numpy()
    assert y.dtype == np.float32 and y.shape == expected.shape
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)


def test_resize_gradient_matches_torch():
    """The imported Resize differentiates: d sum(y * r) / dx against torch autograd."""
    node = helper.make_node("Resize", ["x", "", "", "sizes"], ["y"], mode="cubic")
    sizes = np.array([2, 3, 8, 4], np.int64)
    imported = load(_model(node, {"x": X}, {"sizes": sizes}), initializers="constants")
    x, y = imported.inputs["x"], imported.outputs["y"]
    r = RNG.standard_normal(y.shape).astype(np.float32)
    (g,) = gx.compile([x], [gx.grad(gx.sum(y * gx.constant(r)), x)])(X)
    xt = torch.from_numpy(X).requires_grad_()
    yt = F.interpolate(xt, size=(8, 4), mode="bicubic", align_corners=False)
    (yt * torch.from_numpy(r)).sum().backward()
    np.testing.assert_allclose(g, xt.grad.numpy(), rtol=1e-4, atol=1e-5)


# torch has no counterpart for these: the ONNX reference evaluator is the second system
REFERENCE_CASES = [
    ({"mode": "linear", "antialias": 1}, "sizes", [2, 3, 3, 4]),
    ({"mode": "cubic", "antialias": 1, "axes": [3]}, "scales", [0.6]),
    ({"mode": "cubic", "exclude_outside": 1, "cubic_coeff_a": -0.5}, "scales", [1, 1, 1.7, 0.8]),
    ({"mode": "linear", "coordinate_transformation_mode": "tf_crop_and_resize",
      "extrapolation_value": 7.0, "axes": [2, 3]}, "sizes", [4, 5]),
    ({"mode": "nearest", "keep_aspect_ratio_policy": "not_smaller", "axes": [2, 3],
      "nearest_mode": "round_prefer_ceil"}, "sizes", [7, 7]),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("attrs,kind,values", REFERENCE_CASES)
def test_resize_matches_onnx_reference(backend, attrs, kind, values):
    from onnx.reference import ReferenceEvaluator
    consts = {kind: np.array(values, np.float32 if kind == "scales" else np.int64)}
    inputs = ["x", "", "scales"] if kind == "scales" else ["x", "", "", "sizes"]
    if attrs.get("coordinate_transformation_mode") == "tf_crop_and_resize":
        consts["roi"] = np.array([-0.2, 0.1, 0.9, 1.3], np.float32)
        inputs[1] = "roi"
    node = helper.make_node("Resize", inputs, ["y"], **attrs)
    model = _model(node, {"x": X}, consts)
    expected = ReferenceEvaluator(model).run(None, {"x": X})[0]
    y = _run(model, {"x": X}, backend)
    assert y.shape == expected.shape
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("backend", BACKENDS)
def test_upsample_nearest_repeats(backend):
    node = helper.make_node("Upsample", ["x", "scales"], ["y"], mode="nearest")
    scales = np.array([1, 1, 2, 3], np.float32)
    y = _run(_model(node, {"x": X}, {"scales": scales}, opset=9), {"x": X}, backend)
    np.testing.assert_array_equal(y, X.repeat(2, axis=2).repeat(3, axis=3))


GRID = RNG.uniform(-1.2, 1.2, (2, 4, 7, 2)).astype(np.float32)


GRID_CASES = [(m, p, a) for m in ("linear", "cubic", "nearest")
              for p in ("zeros", "border", "reflection") for a in (0, 1)]
TORCH_MODE = {"linear": "bilinear", "cubic": "bicubic", "nearest": "nearest"}


# every case on numpy; llvm (a native compile each, seconds for cubic) on a sample
@pytest.mark.parametrize("backend,mode,padding,align",
                         [("numpy", *c) for c in GRID_CASES]
                         + [("llvm", "linear", "reflection", 0), ("llvm", "nearest", "border", 1)])
def test_grid_sample_matches_torch(backend, mode, padding, align):
    torch_mode = TORCH_MODE[mode]
    node = helper.make_node("GridSample", ["x", "grid"], ["y"], mode=mode,
                            padding_mode=padding, align_corners=align)
    y = _run(_model(node, {"x": X, "grid": GRID}, {}, opset=20),
             {"x": X, "grid": GRID}, backend)
    if mode == "cubic" and padding != "zeros":
        # torch clamps/reflects each cubic tap, ONNX the sample coordinate: the ONNX
        # reference evaluator is the second system here
        from onnx.reference import ReferenceEvaluator
        model = _model(node, {"x": X, "grid": GRID}, {}, opset=20)
        expected = ReferenceEvaluator(model).run(None, {"x": X, "grid": GRID})[0]
    else:
        expected = F.grid_sample(torch.from_numpy(X), torch.from_numpy(GRID), mode=torch_mode,
                                 padding_mode=padding, align_corners=bool(align)).numpy()
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-5)


def test_grid_sample_gradient_in_image_and_grid():
    x = RNG.standard_normal((1, 2, 4, 5))
    grid = RNG.uniform(-0.9, 0.9, (1, 3, 3, 2))  # away from pixel edges: smooth there
    report = gx.check_grad(lambda a, g: grid_sample(a, g, "linear", "zeros", False), [x, grid])
    assert report.ok, report


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dims", [(5, 6), (3, 4, 5)])
@pytest.mark.parametrize("align", [0, 1])
def test_affine_grid_matches_torch(backend, dims, align):
    nd = len(dims)
    theta = RNG.standard_normal((2, nd, nd + 1)).astype(np.float32)
    size = np.array([2, 3, *dims], np.int64)
    node = helper.make_node("AffineGrid", ["theta", "size"], ["grid"], align_corners=align)
    y = _run(_model(node, {"theta": theta}, {"size": size}, opset=20), {"theta": theta}, backend)
    expected = F.affine_grid(torch.from_numpy(theta), list(size), align_corners=bool(align))
    np.testing.assert_allclose(y, expected.numpy(), rtol=1e-5, atol=1e-6)


ROIS = np.array([[0.5, 0.5, 4.0, 3.5], [1.0, 0.0, 5.5, 4.5], [-2.0, 1.0, 7.0, 9.0]], np.float32)
ROI_BATCH = np.array([0, 1, 1], np.int64)


# sampling_ratio 0: the regions are bound at import (a table); > 0: runtime inputs
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("ratio,mode,ctm", [(0, "avg", "half_pixel"), (2, "avg", "half_pixel"),
                                            (2, "max", "output_half_pixel")])
def test_roi_align_matches_reference(backend, ratio, mode, ctm):
    from onnx.reference import ReferenceEvaluator
    node = helper.make_node("RoiAlign", ["x", "rois", "b"], ["y"], output_height=3,
                            output_width=2, sampling_ratio=ratio, spatial_scale=0.9, mode=mode,
                            coordinate_transformation_mode=ctm)
    graph = helper.make_graph(
        [node], "m", [helper.make_tensor_value_info("x", TensorProto.FLOAT, X.shape),
                      helper.make_tensor_value_info("rois", TensorProto.FLOAT, ROIS.shape),
                      helper.make_tensor_value_info("b", TensorProto.INT64, ROI_BATCH.shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 16)])
    feeds = {"x": X, "rois": ROIS, "b": ROI_BATCH}
    expected = ReferenceEvaluator(model).run(None, feeds)[0]
    if ratio == 0:
        imported = load(model, values={"rois": ROIS, "b": ROI_BATCH})
        y = imported.compile(backend)(X)[0]
    else:
        y = load(model).compile(backend)(*feeds.values())[0]
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-6)


def test_unsupported_resize_mode_names_the_op():
    node = helper.make_node("Resize", ["x", "", "scales"], ["y"], mode="area")
    model = _model(node, {"x": X}, {"scales": np.array([1, 1, 2, 2], np.float32)})
    with pytest.raises(OnnxImportError, match="Resize.*mode='area'"):
        load(model)
