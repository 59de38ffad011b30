"""ONNX image ops (Resize, Upsample, GridSample, AffineGrid) as graphc graph.

Resize with static shapes is separable and linear in the input: along each resized
axis the output is ``M @ x`` for an (out × in) interpolation matrix that depends only
on sizes and attributes. The matrices are built here in NumPy at import, following
the ONNX reference (``onnx/reference/ops/op_resize.py``) tap for tap, and applied
with ``gx.tensordot`` (nearest neighbour: ``gx.take`` of an index table), which is
exact, differentiable and fast on every backend.

GridSample's sample positions are data, so it is composed of floor, clip, casts and
``gx.take`` on the flattened input, with weights from the fractional parts.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

import graphc as gx
from graphc.onnx.handlers.quant import round_half_even
from graphc.onnx.registry import handler

_FLOATS = ("float16", "float32", "float64")

# -- 1-D interpolation kernels (coefficients of the taps around a source coordinate) -----------


def _nearest_coeffs(mode: str) -> Callable[[float, float], np.ndarray]:
    """Two taps (left, right); ``ratio`` in (0, 1] is the distance from the left tap."""
    def coeffs(ratio: float, scale: float) -> np.ndarray:
        if float(ratio).is_integer():
            return np.array([0.0, 1.0])
        right = {"round_prefer_floor": ratio > 0.5, "round_prefer_ceil": ratio >= 0.5,
                 "floor": False, "ceil": True}[mode]
        return np.array([0.0, 1.0]) if right else np.array([1.0, 0.0])
    return coeffs


def _linear_coeffs(antialias: bool) -> Callable[[float, float], np.ndarray]:
    def coeffs(ratio: float, scale: float) -> np.ndarray:
        if not antialias:
            return np.array([1 - ratio, ratio])
        # downsampling stretches the triangle filter by 1/scale
        scale = min(scale, 1.0)
        start = int(np.floor(-1 / scale) + 1)
        args = (np.arange(start, 2 - start) - ratio) * scale
        c = np.clip(1 - np.abs(args), 0, 1)
        return c / c.sum()
    return coeffs


def _cubic_kernel(x: np.ndarray, a: float) -> np.ndarray:
    """Keys' cubic convolution kernel with parameter ``a``."""
    x = np.abs(x)
    near = ((a + 2) * x - (a + 3)) * x * x + 1
    far = ((a * x - 5 * a) * x + 8 * a) * x - 4 * a
    return np.where(x <= 1, near, np.where(x < 2, far, 0.0))


def _cubic_coeffs(a: float, antialias: bool) -> Callable[[float, float], np.ndarray]:
    def coeffs(ratio: float, scale: float) -> np.ndarray:
        if not antialias:
            return _cubic_kernel(np.array([ratio + 1, ratio, 1 - ratio, 2 - ratio]), a)
        scale = min(scale, 1.0)
        start = int(np.floor(-2 / scale) + 1)
        c = _cubic_kernel(scale * (np.arange(start, 2 - start) - ratio), a)
        return c / c.sum()
    return coeffs


# -- Resize: one axis --------------------------------------------------------------------------


def _source_coords(mode: str, out_size: int, in_size: int, scale: float,
                   roi: tuple[float, float] | None) -> np.ndarray:
    """ONNX coordinate_transformation_mode: output index -> input coordinate."""
    y = np.arange(out_size, dtype=np.float64)
    out_exact = scale * in_size  # the output length before truncation
    if mode == "align_corners":
        return np.zeros(out_size) if out_exact == 1 else y * (in_size - 1) / (out_exact - 1)
    if mode == "asymmetric":
        return y / scale
    if mode == "tf_crop_and_resize":
        lo, hi = roi if roi is not None else (0.0, 1.0)
        if out_exact == 1:
            x = np.full(out_size, (hi - lo) * (in_size - 1) / 2)
        else:
            x = y * (hi - lo) * (in_size - 1) / (out_exact - 1)
        return x + lo * (in_size - 1)
    if mode == "pytorch_half_pixel":
        return np.full(out_size, -0.5) if out_exact == 1 else (y + 0.5) / scale - 0.5
    if mode == "half_pixel":
        return (y + 0.5) / scale - 0.5
    if mode == "half_pixel_symmetric":
        offset = in_size / 2 * (1 - out_size / out_exact)
        return offset + (y + 0.5) / scale - 0.5
    raise KeyError(mode)


def _axis_taps(x_src: np.ndarray, in_size: int, scale: float,
               coeffs: Callable[[float, float], np.ndarray], exclude_outside: bool
               ) -> tuple[np.ndarray, np.ndarray]:
    """Input indices (clamped, i.e. edge padding) and weights, both (out, taps)."""
    left = np.floor(x_src)
    ratio = np.where(x_src == left, 1.0, x_src - left)  # prefer the left pixel
    weights = np.stack([coeffs(float(r), scale) for r in ratio])
    n = weights.shape[1]
    # the n input positions nearest x_src, ties to the smaller index
    frac = x_src - left
    if n % 2 == 0:
        start = left + np.where(frac == 0, -(n // 2), -(n // 2) + 1)
    else:
        start = left - (n - 1) // 2 + (frac > 0.5)
    index = start[:, None].astype(np.int64) + np.arange(n)[None, :]
    if exclude_outside:
        weights = np.where((index < 0) | (index >= in_size), 0.0, weights)
        total = weights.sum(axis=1, keepdims=True)
        weights = weights / np.where(total == 0, 1.0, total)
    return np.clip(index, 0, in_size - 1), weights


def _resize_axis(x: gx.Tensor, axis: int, out_size: int, scale: float, opts: dict,
                 roi: tuple[float, float] | None) -> gx.Tensor:
    in_size = x.shape[axis]
    x_src = _source_coords(opts["ctm"], out_size, in_size, scale, roi)
    index, weights = _axis_taps(x_src, in_size, scale, opts["coeffs"], opts["exclude"])
    if opts["mode"] == "nearest":
        picked = index[np.arange(out_size), np.argmax(weights, axis=1)]
        y = gx.take(x, gx.constant(picked.astype(np.int64)), axis=axis)
    else:
        matrix = np.zeros((out_size, in_size))
        np.add.at(matrix, (np.repeat(np.arange(out_size), index.shape[1]), index.ravel()),
                  weights.ravel())
        work = "float32" if x.dtype == "float16" else x.dtype
        moved = gx.tensordot(gx.cast(x, work), gx.constant(matrix.astype(work)),
                             axes=([axis], [1]))
        perm = list(range(x.ndim - 1))
        perm.insert(axis, x.ndim - 1)
        y = gx.cast(gx.transpose(moved, perm), x.dtype)
    if opts["ctm"] == "tf_crop_and_resize":
        outside = (x_src < 0) | (x_src > in_size - 1)
        if outside.any():
            shape = [1] * x.ndim
            shape[axis] = out_size
            fill = gx.constant(np.asarray(opts["extrapolation"], dtype=x.dtype))
            y = gx.where(gx.constant(outside.reshape(shape)), fill, y)
    return y


# -- Resize: the op ----------------------------------------------------------------------------


def _output_geometry(node, shape: tuple, axes: list[int], scales, sizes
                     ) -> tuple[list[float], list[int]]:
    """Per-axis scale factors and output sizes (ONNX's rules for scales / sizes and
    keep_aspect_ratio_policy)."""
    rank = len(shape)
    scale_f, out = [1.0] * rank, list(shape)
    if sizes is not None:
        for a, s in zip(axes, sizes, strict=True):
            out[a] = int(s)
            scale_f[a] = int(s) / shape[a]
        policy = node.attr("keep_aspect_ratio_policy", "stretch")
        if policy != "stretch":
            if policy not in ("not_larger", "not_smaller"):
                raise node.unsupported(f"keep_aspect_ratio_policy={policy!r}")
            pick = min if policy == "not_larger" else max
            s = pick(scale_f[a] for a in axes)
            for a in axes:
                scale_f[a] = s
                out[a] = int(s * shape[a] + 0.5)
    else:
        for a, s in zip(axes, scales, strict=True):
            scale_f[a] = float(s)
            out[a] = int(float(s) * shape[a])
    return scale_f, out


def _kernel(node, mode: str) -> Callable[[float, float], np.ndarray]:
    antialias = bool(node.attr("antialias", 0))
    if mode == "nearest":
        if antialias:
            raise node.unsupported("antialias with mode 'nearest'")
        nearest = node.attr("nearest_mode", "round_prefer_floor")
        if nearest not in ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil"):
            raise node.unsupported(f"nearest_mode={nearest!r}")
        return _nearest_coeffs(nearest)
    if mode == "linear":
        return _linear_coeffs(antialias)
    if mode == "cubic":
        return _cubic_coeffs(float(node.attr("cubic_coeff_a", -0.75)), antialias)
    raise node.unsupported(f"mode={mode!r}")


def resize(node, x: gx.Tensor, scales, sizes, roi, opts: dict, axes: list[int] | None = None
           ) -> gx.Tensor:
    """Resize ``x`` one axis at a time (ONNX Resize is separable)."""
    shape = tuple(x.shape)
    if not all(isinstance(d, int) for d in shape):
        raise node.error(f"needs a static input shape, got {shape}")
    if opts["mode"] != "nearest" and x.dtype not in _FLOATS:
        raise node.unsupported(f"mode={opts['mode']!r} on {x.dtype} input")
    rank = len(shape)
    axes = list(range(rank)) if axes is None else [a % rank for a in axes]
    scale_f, out = _output_geometry(node, shape, axes, scales, sizes)
    for a in axes:
        axis_roi = None
        if roi is not None:
            axis_roi = (float(roi[axes.index(a)]), float(roi[len(axes) + axes.index(a)]))
        identity = np.isclose(scale_f[a], 1.0) and out[a] == shape[a] and (
            axis_roi is None or (np.isclose(axis_roi[0], 0) and np.isclose(axis_roi[1], 1)))
        if not identity:
            x = _resize_axis(x, a, out[a], scale_f[a], opts, axis_roi)
    return x


_TRANSFORMS = ("half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners",
               "asymmetric", "tf_crop_and_resize")


def _known(node, i: int) -> np.ndarray | None:
    if not node.has(i):
        return None
    v = np.asarray(node.value(i))
    return v if v.size else None


@handler("Resize", since=11)
def resize_11(node):
    mode = node.attr("mode", "nearest")
    ctm = node.attr("coordinate_transformation_mode", "half_pixel")
    if ctm not in _TRANSFORMS:
        raise node.unsupported(f"coordinate_transformation_mode={ctm!r}")
    opts = {"mode": mode, "ctm": ctm, "coeffs": _kernel(node, mode),
            "exclude": bool(node.attr("exclude_outside", 0)),
            "extrapolation": node.attr("extrapolation_value", 0.0)}
    x = node.input(0)
    scales, sizes = _known(node, 2), _known(node, 3)
    if (scales is None) == (sizes is None):
        raise node.error("exactly one of scales and sizes must be given")
    axes = node.attr("axes")
    roi = _known(node, 1) if ctm == "tf_crop_and_resize" else None
    if roi is not None and axes is None and len(roi) != 2 * len(x.shape):
        raise node.error(f"roi has {len(roi)} entries for a rank-{len(x.shape)} input")
    return resize(node, x, scales, sizes, roi, opts, axes)


def _resize_10(node, x: gx.Tensor, scales: np.ndarray) -> gx.Tensor:
    """Resize-10 and Upsample: asymmetric coordinates; nearest rounds down when
    enlarging and up when shrinking (onnxruntime's rule for these versions)."""
    mode = {"bilinear": "linear"}.get(node.attr("mode", "nearest"), node.attr("mode", "nearest"))
    if mode not in ("nearest", "linear"):
        raise node.unsupported(f"mode={mode!r}")
    y = x
    for a, s in enumerate(np.asarray(scales, dtype=np.float64)):
        nearest = "floor" if s >= 1 else "ceil"
        opts = {"mode": mode, "ctm": "asymmetric", "exclude": False, "extrapolation": 0.0,
                "coeffs": _nearest_coeffs(nearest) if mode == "nearest" else _linear_coeffs(False)}
        y = resize(node, y, [s], None, None, opts, [a])
    return y


@handler("Resize", since=10)
def resize_10(node):
    return _resize_10(node, node.input(0), node.value(1))


@handler("Upsample", since=7)
def upsample_7(node):
    return _resize_10(node, node.input(0), np.asarray(node.attr("scales")))


@handler("Upsample", since=9)
def upsample_9(node):
    return _resize_10(node, node.input(0), node.value(1))


# -- GridSample --------------------------------------------------------------------------------


def _reflect(c: gx.Tensor, lo: float, hi: float) -> gx.Tensor:
    """Fold ``c`` into [lo, hi] by mirror reflection at the borders (a triangle wave of
    period 2 (hi - lo))."""
    span = hi - lo
    if span <= 0:
        return c * 0.0 + lo
    u = c - lo
    m = u - 2 * span * gx.floor(u / (2 * span))
    return lo + gx.where(gx.greater(m, span), 2 * span - m, m)


_TAP_OFFSETS = {"nearest": (0.0,), "linear": (0.0, 1.0), "cubic": (-1.0, 0.0, 1.0, 2.0)}


def _tap_weights(mode: str, distance: gx.Tensor) -> gx.Tensor:
    """Interpolation weight of a tap at ``distance`` (in [0, 2]) from the sample."""
    if mode == "linear":
        return 1.0 - distance
    a = -0.75  # Keys' cubic kernel, as ONNX (and torch) use for bicubic sampling
    near = ((a + 2) * distance - (a + 3)) * distance * distance + 1
    far = ((a * distance - 5 * a) * distance + 8 * a) * distance - 4 * a
    return gx.where(gx.less_equal(distance, 1.0), near, far)


def _axis_samples(c: gx.Tensor, size: int, mode: str, padding: str, align: bool
                  ) -> tuple[gx.Tensor, gx.Tensor | None]:
    """Tap indices (int64) and weights (``None``: all one), both ``[*c.shape, taps]``,
    along one spatial axis for source coordinates ``c``; out-of-range taps under zeros
    padding get weight 0."""
    lo, hi = (0.0, size - 1.0) if align else (-0.5, size - 0.5)
    if mode == "nearest":
        c = round_half_even(c)
    if padding == "border":
        outside = gx.logical_or(gx.less(c, lo), gx.greater(c, hi))
        c = gx.where(outside, gx.clip(c, 0.0, size - 1.0), c)
    elif padding == "reflection":
        c = _reflect(c, lo, hi)
    offsets = gx.constant(np.array(_TAP_OFFSETS[mode], dtype=c.dtype))
    if mode == "nearest":
        taps, weights = gx.expand_dims(c, -1) + offsets, None
    else:
        left = gx.floor(c)
        taps = gx.expand_dims(left, -1) + offsets
        weights = _tap_weights(mode, gx.abs(taps - gx.expand_dims(c, -1)))
    if padding == "zeros":
        valid = gx.cast(gx.logical_and(gx.greater_equal(taps, 0.0),
                                       gx.less_equal(taps, size - 1.0)), c.dtype)
        weights = valid if weights is None else weights * valid
    elif padding == "reflection":
        taps = _reflect(taps, lo, hi)
    return gx.cast(gx.clip(taps, 0.0, size - 1.0), "int64"), weights


def grid_sample(x: gx.Tensor, grid: gx.Tensor, mode: str, padding: str, align: bool
                ) -> gx.Tensor:
    """ONNX GridSample on ``x`` ``[N, C, *spatial]`` at ``grid`` ``[N, *out, nd]``.

    Every output point reads ``taps ** nd`` pixels: their flat indices and weights are
    outer sums / products of the per-axis taps, gathered in one ``gx.take``.
    """
    n, ch, *dims = x.shape
    nd = len(dims)
    if not all(isinstance(d, int) for d in (n, *dims)):
        raise ValueError(f"needs static batch and spatial sizes, got {x.shape}")
    out_rank = grid.ndim - 1
    lead = tuple(grid.shape[:-1])  # (N, *out)
    flat, weight = None, None
    for i, d in enumerate(dims):  # grid's last axis lists coordinates innermost first
        g = gx.getitem(grid, (Ellipsis, nd - 1 - i))
        c = (g + 1) / 2 * (d - 1) if align else ((g + 1) * d - 1) / 2
        idx, w = _axis_samples(c, d, mode, padding, align)
        stride = int(np.prod(dims[i + 1:]))
        idx = idx * stride if stride != 1 else idx
        # outer sum / product with the taps of the axes before: [*lead, T_0 * ... * T_i]
        flat = idx if flat is None else gx.reshape(
            gx.expand_dims(flat, -1) + gx.expand_dims(idx, -2), (*lead, -1))
        if w is not None:
            weight = w if weight is None else gx.reshape(
                gx.expand_dims(weight, -1) * gx.expand_dims(w, -2), (*lead, -1))
    batch = np.arange(n, dtype=np.int64).reshape((n,) + (1,) * out_rank) * int(np.prod(dims))
    # [N * prod(spatial), C]: one row per pixel, so a gather picks whole channel vectors
    rows = gx.reshape(gx.transpose(x, [0, *range(2, nd + 2), 1]), (-1, ch))
    picked = gx.take(rows, flat + gx.constant(batch), axis=0)  # [N, *out, taps, C]
    if weight is None:
        total = gx.getitem(picked, (Ellipsis, 0, slice(None)))
    else:
        total = gx.sum(picked * gx.expand_dims(gx.cast(weight, x.dtype), -1), axis=-2)
    return gx.transpose(total, [0, out_rank, *range(1, out_rank)])


_GRID_MODES = {"bilinear": "linear", "linear": "linear", "nearest": "nearest",
               "bicubic": "cubic", "cubic": "cubic"}


@handler("GridSample", since=16)
def grid_sample_16(node):
    mode = _GRID_MODES.get(node.attr("mode", "bilinear"))
    padding = node.attr("padding_mode", "zeros")
    if mode is None:
        raise node.unsupported(f"mode={node.attr('mode')!r}")
    if padding not in ("zeros", "border", "reflection"):
        raise node.unsupported(f"padding_mode={padding!r}")
    x = node.input(0)
    if x.dtype not in _FLOATS:
        raise node.unsupported(f"{x.dtype} input")
    return grid_sample(x, node.input(1), mode, padding, bool(node.attr("align_corners", 0)))


# -- AffineGrid --------------------------------------------------------------------------------


def _base_grid(dims: list[int], align: bool) -> np.ndarray:
    """Homogeneous normalized coordinates ``[prod(dims), nd + 1]``, innermost axis first."""
    axes = []
    for d in dims:
        if align:
            axes.append(np.linspace(-1.0, 1.0, d) if d > 1 else np.full(1, -1.0))
        else:
            axes.append((2 * np.arange(d) + 1) / d - 1)
    mesh = np.meshgrid(*axes, indexing="ij")
    coords = [m.reshape(-1) for m in reversed(mesh)]
    return np.stack([*coords, np.ones(int(np.prod(dims)))], axis=1)


@handler("AffineGrid", since=20)
def affine_grid(node):
    """``grid[n, p] = theta[n] @ (x_p, y_p, [z_p,] 1)`` over a regular grid."""
    theta = node.input(0)
    size = [int(s) for s in np.asarray(node.value(1)).reshape(-1)]
    n, dims = size[0], size[2:]
    if len(dims) not in (2, 3):
        raise node.unsupported(f"a {len(dims)}-D grid")
    base = gx.constant(_base_grid(dims, bool(node.attr("align_corners", 0))).astype(theta.dtype))
    grid = gx.einsum("pk,nik->npi", base, theta)
    return gx.reshape(grid, (n, *dims, len(dims)))


# -- RoiAlign ----------------------------------------------------------------------------------


def _roi_taps(roi: np.ndarray, size: tuple[int, int], out: tuple[int, int], opts: dict
              ) -> tuple[np.ndarray, np.ndarray]:
    """Pixel indices and bilinear weights ``[oh, ow, samples, 4]`` of one region, as the
    ONNX reference samples it (a grid of points per bin, edge-clamped, zero outside)."""
    height, width = size
    (oh, ow), ratio = out, opts["sampling_ratio"]
    shift = 0.5 if opts["half_pixel"] else 0.0
    x0, y0, x1, y1 = (float(v) * opts["spatial_scale"] - shift for v in roi)
    roi_w, roi_h = x1 - x0, y1 - y0
    if not opts["half_pixel"]:
        roi_w, roi_h = max(roi_w, 1.0), max(roi_h, 1.0)
    bin_h, bin_w = roi_h / oh, roi_w / ow
    gh = int(ratio) if ratio > 0 else int(np.ceil(roi_h / oh))
    gw = int(ratio) if ratio > 0 else int(np.ceil(roi_w / ow))
    ys = y0 + np.arange(oh)[:, None] * bin_h + (np.arange(gh)[None, :] + 0.5) * bin_h / gh
    xs = x0 + np.arange(ow)[:, None] * bin_w + (np.arange(gw)[None, :] + 0.5) * bin_w / gw
    y = np.broadcast_to(ys[:, None, :, None], (oh, ow, gh, gw)).reshape(oh, ow, -1)
    x = np.broadcast_to(xs[None, :, None, :], (oh, ow, gh, gw)).reshape(oh, ow, -1)
    inside = (y >= -1.0) & (y <= height) & (x >= -1.0) & (x <= width)
    y, x = np.maximum(y, 0), np.maximum(x, 0)
    y_lo, x_lo = np.floor(y).astype(np.int64), np.floor(x).astype(np.int64)
    y_top, x_top = y_lo >= height - 1, x_lo >= width - 1
    y_lo, x_lo = np.minimum(y_lo, height - 1), np.minimum(x_lo, width - 1)
    y_hi, x_hi = np.where(y_top, y_lo, y_lo + 1), np.where(x_top, x_lo, x_lo + 1)
    ly, lx = np.where(y_top, 0.0, y - y_lo), np.where(x_top, 0.0, x - x_lo)
    hy, hx = 1 - ly, 1 - lx
    index = np.stack([y_lo * width + x_lo, y_lo * width + x_hi,
                      y_hi * width + x_lo, y_hi * width + x_hi], axis=-1)
    weight = np.stack([hy * hx, hy * lx, ly * hx, ly * lx], axis=-1) * inside[..., None]
    return np.where(inside[..., None], index, 0), weight


def _roi_axis(start: gx.Tensor, length: gx.Tensor, bins: int, grid: int, size: int
              ) -> tuple[gx.Tensor, gx.Tensor]:
    """Pixel indices (int64) and weights ``[R, bins, grid, 2]`` of the sample points of
    runtime regions along one axis (edge-clamped; weight 0 beyond one pixel outside)."""
    step = length / bins  # [R]
    offsets = (np.arange(bins)[:, None] + (np.arange(grid)[None, :] + 0.5) / grid)
    pos = gx.reshape(start, (-1, 1, 1)) + gx.reshape(step, (-1, 1, 1)) * gx.constant(
        offsets.astype(start.dtype))  # [R, bins, grid]
    inside = gx.logical_and(gx.greater_equal(pos, -1.0), gx.less_equal(pos, float(size)))
    pos = gx.maximum(pos, 0.0)
    low = gx.floor(pos)
    top = gx.greater_equal(low, size - 1.0)
    low = gx.minimum(low, size - 1.0)
    high = gx.where(top, low, low + 1.0)
    frac = gx.where(top, gx.zeros_like(pos), pos - low)
    valid = gx.cast(inside, pos.dtype)
    index = gx.stack([low, high], axis=-1)
    weight = gx.stack([(1.0 - frac) * valid, frac * valid], axis=-1)
    return gx.cast(index, "int64"), weight


def _roi_align_graph(x: gx.Tensor, rois: gx.Tensor, batch: gx.Tensor, out: tuple[int, int],
                     opts: dict, mode: str) -> gx.Tensor:
    """RoiAlign with runtime regions and a fixed sampling grid (sampling_ratio > 0)."""
    n, ch, height, width = x.shape
    (oh, ow), grid = out, int(opts["sampling_ratio"])
    shift = 0.5 if opts["half_pixel"] else 0.0
    box = gx.cast(rois, x.dtype) * opts["spatial_scale"] - shift  # [R, 4]: x0 y0 x1 y1
    x0, y0, x1, y1 = (gx.getitem(box, (slice(None), k)) for k in range(4))
    roi_w, roi_h = x1 - x0, y1 - y0
    if not opts["half_pixel"]:
        roi_w, roi_h = gx.maximum(roi_w, 1.0), gx.maximum(roi_h, 1.0)
    iy, wy = _roi_axis(y0, roi_h, oh, grid, height)  # [R, oh, g, 2]
    ix, wx = _roi_axis(x0, roi_w, ow, grid, width)  # [R, ow, g, 2]
    # [R, oh, ow, gy, gx, ty, tx]: every sample's four pixels and bilinear weights
    base = gx.reshape(gx.cast(batch, "int64") * (height * width), (-1, 1, 1, 1, 1, 1, 1))
    flat = (base + gx.reshape(iy * width, (-1, oh, 1, grid, 1, 2, 1))
            + gx.reshape(ix, (-1, 1, ow, 1, grid, 1, 2)))
    weight = (gx.reshape(wy, (-1, oh, 1, grid, 1, 2, 1))
              * gx.reshape(wx, (-1, 1, ow, 1, grid, 1, 2)))
    rows = gx.reshape(gx.transpose(x, [0, 2, 3, 1]), (-1, ch))  # [N*H*W, C]
    weighted = gx.take(rows, flat, axis=0) * gx.expand_dims(weight, -1)
    axes = (3, 4, 5, 6)
    pooled = (gx.sum(weighted, axis=axes) / float(grid * grid) if mode == "avg"
              else gx.max(weighted, axis=axes))
    return gx.transpose(pooled, [0, 3, 1, 2])


@handler("RoiAlign", since=10)
def roi_align(node):
    """With a fixed sampling grid (sampling_ratio > 0) the regions are runtime data and
    the op is composed as graph; with an adaptive grid (0) the number of samples depends
    on each region's size, so the regions must be known at import (the ONNX backend binds
    them) and every sample's pixels and weights become a table."""
    x = node.input(0)
    mode = node.attr("mode", "avg")
    ctm = node.attr("coordinate_transformation_mode", "output_half_pixel" if node.opset < 16
                    else "half_pixel")
    if mode not in ("avg", "max") or ctm not in ("half_pixel", "output_half_pixel"):
        raise node.unsupported(f"mode={mode!r} with coordinate_transformation_mode={ctm!r}")
    if x.dtype not in _FLOATS or not all(isinstance(d, int) for d in x.shape[1:]):
        raise node.error(f"needs a float input of static C, H, W, got {x.dtype} {x.shape}")
    out = (node.attr("output_height", 1), node.attr("output_width", 1))
    opts = {"sampling_ratio": node.attr("sampling_ratio", 0), "half_pixel": ctm == "half_pixel",
            "spatial_scale": node.attr("spatial_scale", 1.0)}
    if opts["sampling_ratio"] > 0:
        return _roi_align_graph(x, node.input(1), node.input(2), out, opts, mode)
    return _roi_align_table(x, np.asarray(node.value(1), dtype=np.float64),
                            np.asarray(node.value(2)).astype(np.int64).reshape(-1),
                            out, opts, mode)


def _roi_align_table(x: gx.Tensor, rois: np.ndarray, batch: np.ndarray, out: tuple[int, int],
                     opts: dict, mode: str) -> gx.Tensor:
    """RoiAlign of regions known at import: a gather by a constant index table."""
    n, ch, height, width = x.shape
    taps = [_roi_taps(r, (height, width), out, opts) for r in rois]
    samples = max(t[0].shape[2] for t in taps)
    index, weight = [], []
    for (idx, w), b in zip(taps, batch, strict=True):
        count = max(idx.shape[2], 1)
        pad = samples - idx.shape[2]
        if mode == "avg":  # padding samples weigh nothing; the mean is folded in
            idx = np.pad(idx, ((0, 0), (0, 0), (0, pad), (0, 0)))
            w = np.pad(w, ((0, 0), (0, 0), (0, pad), (0, 0))) / count
        else:  # padding repeats a sample, which leaves the max unchanged
            idx = np.concatenate([idx] + [idx[:, :, :1]] * pad, axis=2)
            w = np.concatenate([w] + [w[:, :, :1]] * pad, axis=2)
        index.append(idx + b * height * width)
        weight.append(w)
    rows = gx.reshape(gx.transpose(x, [0, 2, 3, 1]), (-1, ch))  # [N*H*W, C]
    picked = gx.take(rows, gx.constant(np.stack(index)), axis=0)  # [R, oh, ow, S, 4, C]
    weighted = picked * gx.constant(np.stack(weight)[..., None].astype(x.dtype))
    pooled = (gx.sum(weighted, axis=(3, 4)) if mode == "avg"
              else gx.max(weighted, axis=(3, 4)))
    return gx.transpose(pooled, [0, 3, 1, 2])
