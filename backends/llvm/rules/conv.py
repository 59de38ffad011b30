"""Convolution and pooling: conv2d, im2col, col2im, max_pool2d and avg_pool2d.

Every op here slides a window over NCHW images whose channels and spatial sizes are
static (only the batch may be symbolic), so the geometry (``Window``) is Python ints
and each loop bound is a constant. A kernel tap (i, j) reads input row
``oh·sh + i·dh − pt`` and column ``ow·sw + j·dw − pl``; instead of testing every
pixel against the padding, ``_valid`` computes the range of output positions whose
input lies inside the image, so inner loops are branch-free and contiguous (they
vectorize at stride 1).

conv2d has two strategies:

* GEMM: per image, ``im2col`` lays the windows out as a (C·kh·kw, OH·OW) matrix in a
  scratch buffer (skipped for 1x1 stride-1 convolutions, where the image already is
  that matrix) and one BLAS GEMM per group multiplies the weights by it.
* direct: per image and output channel, accumulate ``w[o,c,i,j] · x`` rows into the
  output plane, tap by tap (the loop vectorizes along output columns).

Measured (float32, batch 64, µs, best of 7, SciPy's OpenBLAS on one thread; a shared
2-core AMD EPYC, so ±20%; the numpy backend's einsum for scale):

    ===========================  =======  ========  ======  =====
    x → conv                     GEMM     batched   direct  numpy
    ===========================  =======  ========  ======  =====
    8x8, 1→16, 3x3, pad 1        79       87        114     655
    4x4, 16→32, 3x3, pad 1       255      250       674     1406
    8x8, 16→32, 3x3, pad 1       824      875       2734    10273
    28x28, 1→8, 5x5              780      914       527     14889
    12x12, 8→16, 5x5             815      899       5700    11426
    28x28, 1→32, 5x5, pad 2      2214     3184      3572    18342
    1x1, 8x8, 32→64              331      398       342     506
    1x1, 14x14, 64→128           3533     3642      17477   3835
    depthwise 8x8, 32, 3x3       997      930       214     6472
    groups 2, 8x8, 16→16, 3x3    521      543       705     1146
    ===========================  =======  ========  ======  =====

"batched" was a third candidate: im2col of the whole batch into (C·K, N·OH·OW), one GEMM
per group, then a transpose into NCHW. It never beat the per-image GEMM, and with
OpenBLAS's default threads on a loaded machine its one large call was 10-100x slower
(24 ms for the first row: the threads contend), where the small per-image calls stay
on one thread; so it is not kept. Selection rule (``_prefer_gemm``): the direct loop
when a group has fewer than 4 output channels (depthwise), when the GEMM's inner
dimension C/groups·kh·kw is below 8, or for a single input channel with at most 8
filters; GEMM otherwise. float16 (no BLAS) always runs the direct loop, accumulating
in float32.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import llvmlite.ir as ir

from graphc.backends.llvm import dtypes, loops
from graphc.backends.llvm.dtypes import I64, convert
from graphc.backends.llvm.loops import View, for_range
from graphc.backends.llvm.rules import rule
from graphc.backends.llvm.rules.elementwise import elementwise
from graphc.backends.llvm.rules.linalg import BLAS_GEMM, blas_pointer, gemm

Pair = tuple[int, int]
CONTRACT = ("contract",)  # a·b + c may become one fused multiply-add


# -- geometry ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Window:
    """A (dilated, strided, padded) kh x kw window sliding over an H x W image to give
    OH x OW outputs."""

    kernel: Pair
    stride: Pair
    padding: tuple[Pair, Pair]
    dilation: Pair
    image: Pair
    out: Pair

    @property
    def taps(self) -> int:
        return self.kernel[0] * self.kernel[1]

    @property
    def pixels(self) -> int:
        return self.out[0] * self.out[1]

    @property
    def padded(self) -> bool:
        return any(p for pads in self.padding for p in pads)

    @property
    def is_pointwise(self) -> bool:
        """A 1x1 window at stride 1 without padding: output pixel = input pixel."""
        return self.kernel == (1, 1) and self.stride == (1, 1) and not self.padded


def _window(node, image: Pair, out: Pair, kernel: Pair | None = None,
            dilation: Pair = (1, 1)) -> Window:
    a = node.attr
    return Window(tuple(kernel or a["kernel"]), tuple(a["stride"]), tuple(a["padding"]),
                  tuple(a.get("dilation", dilation)), tuple(image), tuple(out))


@dataclass
class Tap:
    """One kernel offset (i, j) = k: the input row/column of output (oh, ow) is
    ``oh·sh + row`` / ``ow·sw + col``, inside the image for oh in ``rows``, ow in ``cols``."""

    i: ir.Value
    j: ir.Value
    k: ir.Value
    row: ir.Value
    col: ir.Value
    rows: tuple[ir.Value, ir.Value]
    cols: tuple[ir.Value, ir.Value]



def _smax(b: ir.IRBuilder, x: ir.Value, y: ir.Value) -> ir.Value:
    return b.select(b.icmp_signed(">", x, y), x, y)


def _ceil_div_clamped(b: ir.IRBuilder, a: ir.Value, s: int, count: int) -> ir.Value:
    """min(max(⌈a / s⌉, 0), count) for s > 0."""
    quotient = b.sdiv(b.add(a, I64(s - 1)), I64(s))  # ⌈a/s⌉ when a > 0
    return loops.smin(b, b.select(b.icmp_signed(">", a, I64(0)), quotient, I64(0)), I64(count))


def _valid(b: ir.IRBuilder, offset: ir.Value, size: int, stride: int, count: int,
           padded: bool) -> tuple[ir.Value, ir.Value]:
    """[lo, hi): the outputs o < count whose input o·stride + offset lies in [0, size).
    Without padding every output's window is inside the image (the output size says so)."""
    if not padded:
        return I64(0), I64(count)
    lo = _ceil_div_clamped(b, b.neg(offset), stride, count)  # o·s + offset ≥ 0
    hi = _ceil_div_clamped(b, b.sub(I64(size), offset), stride, count)  # o·s + offset < size
    return lo, _smax(b, lo, hi)


@contextlib.contextmanager
def _taps(b: ir.IRBuilder, win: Window) -> Iterator[Tap]:
    """Loop over the kernel's taps, row-major."""
    (kh, kw), (dh, dw), ((pt, pb), (pl, pr)) = win.kernel, win.dilation, win.padding
    with for_range(b, I64(kh), name="ki") as i, for_range(b, I64(kw), name="kj") as j:
        row = b.sub(b.mul(i, I64(dh)), I64(pt))
        col = b.sub(b.mul(j, I64(dw)), I64(pl))
        k = b.add(b.mul(i, I64(kw)), j)
        rows = _valid(b, row, win.image[0], win.stride[0], win.out[0], bool(pt or pb))
        cols = _valid(b, col, win.image[1], win.stride[1], win.out[1], bool(pl or pr))
        yield Tap(i, j, k, row, col, rows, cols)


def _input_index(b: ir.IRBuilder, o: ir.Value, stride: int, offset: ir.Value) -> ir.Value:
    return b.add(b.mul(o, I64(stride)), offset)


Pixel = Callable[[ir.Value, ir.Value, ir.Value, ir.Value], None]


def _sweep(b: ir.IRBuilder, win: Window, tap: Tap, body: Pixel) -> None:
    """``body(oh, iy, ow, ix)`` for every output whose input under ``tap`` is in the image."""
    with for_range(b, tap.rows[1], start=tap.rows[0], name="oh") as oh:
        iy = _input_index(b, oh, win.stride[0], tap.row)
        with for_range(b, tap.cols[1], start=tap.cols[0], name="ow") as ow:
            body(oh, iy, ow, _input_index(b, ow, win.stride[1], tap.col))


def _at(b: ir.IRBuilder, view: View, *index: ir.Value) -> View:
    """The sub-array ``view[index]`` (leading axes fixed)."""
    k = len(index)
    lead = View(view.ptr, view.shape[:k], view.strides[:k], view.dtype)
    ptr = view.pointer(b, lead.offset(b, index))
    return View(ptr, view.shape[k:], view.strides[k:], view.dtype, view.contiguous)


def _fill(b: ir.IRBuilder, view: View, value: ir.Value) -> None:
    """Every element of ``view`` = ``value``."""
    with loops.loop_nest(b, view.shape, name="f") as index:
        view.store(b, index, value)


def _fill_range(b: ir.IRBuilder, row: View, start: ir.Value, stop: ir.Value,
                value: ir.Value) -> None:
    with for_range(b, stop, start=start, name="p") as o:
        row.store(b, [o], value)


# -- im2col and col2im --------------------------------------------------------------------------

def _im2col_image(b: ir.IRBuilder, win: Window, x: View, cols: View, pad: ir.Value) -> None:
    """cols[c, k, oh, ow] = x[c, iy, ix] (``pad`` outside the image), converting dtypes."""
    channels = x.shape[0]
    with for_range(b, channels, name="c") as c, _taps(b, win) as tap:
        plane = _at(b, cols, c, tap.k)
        (lo, hi), out_w = tap.cols, I64(win.out[1])
        with for_range(b, I64(win.out[0]), name="oh") as oh:
            iy = _input_index(b, oh, win.stride[0], tap.row)
            row = _at(b, plane, oh)

            def copy_row() -> None:
                _fill_range(b, row, I64(0), lo, pad)
                with for_range(b, hi, start=lo, name="ow") as ow:
                    ix = _input_index(b, ow, win.stride[1], tap.col)
                    row.store(b, [ow], convert(b, x.load(b, [c, iy, ix]), x.dtype, cols.dtype))
                _fill_range(b, row, hi, out_w, pad)

            if not any(win.padding[0]):
                copy_row()
            else:
                inside = b.icmp_unsigned("<", iy, I64(win.image[0]))  # 0 ≤ iy < H
                with b.if_else(inside) as (then, otherwise):
                    with then:
                        copy_row()
                    with otherwise:
                        _fill_range(b, row, I64(0), out_w, pad)


@rule("im2col")
def lower_im2col(ctx, node, out: View, inputs: list[View]) -> None:
    x = node.inputs[0]
    win = _window(node, x.shape[2:], node.shape[3:])
    pad = dtypes.constant(node.dtype, node.attr["pad_value"])

    def emit(kb: ir.IRBuilder, local: list[View], _: list) -> None:
        cols, image = local
        with for_range(kb, cols.shape[0], name="n") as n:
            _im2col_image(kb, win, _at(kb, image, n), _at(kb, cols, n), pad)

    ctx.kernel("im2col", [out, inputs[0]], emit)


@rule("col2im")
def lower_col2im(ctx, node, out: View, inputs: list[View]) -> None:
    cols = node.inputs[0]
    win = _window(node, node.attr["image_size"], cols.shape[3:])
    zero = dtypes.constant(node.dtype, 0)

    # image[iy, ix] += cols[k, oh, ow] tap by tap: each pixel sums its windows in tap order,
    # as the reference does
    def emit(kb: ir.IRBuilder, local: list[View], _: list) -> None:
        image, windows = local
        with loops.loop_nest(kb, image.shape[:2], name="nc") as (n, c):
            plane, src = _at(kb, image, n, c), _at(kb, windows, n, c)
            _fill(kb, plane, zero)
            with _taps(kb, win) as tap:
                def add(oh, iy, ow, ix):
                    value = src.load(kb, [tap.k, oh, ow])
                    plane.store(kb, [iy, ix], kb.fadd(plane.load(kb, [iy, ix]), value))
                _sweep(kb, win, tap, add)

    ctx.kernel("col2im", [out, inputs[0]], emit)


# -- pooling ----------------------------------------------------------------------------------

def _pool(ctx, name: str, out: View, x: View, win: Window, start: float,
          step: Callable[[ir.IRBuilder, ir.Value, ir.Value], ir.Value],
          finish: Callable[[ir.IRBuilder, View], None] | None = None) -> None:
    """out[n, c] = fold of ``step`` over each window (padding skipped), from ``start``."""
    initial = dtypes.constant(out.dtype, start)

    def emit(kb: ir.IRBuilder, local: list[View], _: list) -> None:
        dst, src = local
        with loops.loop_nest(kb, dst.shape[:2], name="nc") as (n, c):
            plane, image = _at(kb, dst, n, c), _at(kb, src, n, c)
            _fill(kb, plane, initial)
            with _taps(kb, win) as tap:
                def fold(oh, iy, ow, ix):
                    acc = plane.load(kb, [oh, ow])
                    plane.store(kb, [oh, ow], step(kb, acc, image.load(kb, [iy, ix])))
                _sweep(kb, win, tap, fold)
            if finish is not None:
                finish(kb, plane)

    ctx.kernel(name, [out, x], emit)


@rule("max_pool2d")
def lower_max_pool2d(ctx, node, out: View, inputs: list[View]) -> None:
    win = _window(node, node.inputs[0].shape[2:], node.shape[2:])
    # -inf padding never wins; llvm.maximum propagates NaN, as np.max
    _pool(ctx, "max_pool2d", out, inputs[0], win, float("-inf"),
          lambda b, acc, v: dtypes.intrinsic(b, "llvm.maximum", acc, v))


@rule("avg_pool2d")
def lower_avg_pool2d(ctx, node, out: View, inputs: list[View]) -> None:
    win = _window(node, node.inputs[0].shape[2:], node.shape[2:])
    dtype = node.dtype
    include_pad = node.attr["count_include_pad"]

    def finish(b: ir.IRBuilder, plane: View) -> None:
        # the reference divides the window sum (summed in the input dtype, taps in order) by a
        # float64 count and casts back
        with loops.loop_nest(b, plane.shape, name="d") as (oh, ow):
            count = I64(win.taps) if include_pad else b.mul(_inside(b, win, 0, oh),
                                                             _inside(b, win, 1, ow))
            total = convert(b, plane.load(b, [oh, ow]), dtype, "float64")
            mean = b.fdiv(total, b.sitofp(count, ir.DoubleType()))
            plane.store(b, [oh, ow], convert(b, mean, "float64", dtype))

    _pool(ctx, "avg_pool2d", out, inputs[0], win, 0.0,
          lambda b, acc, v: b.fadd(acc, v), finish)


def _inside(b: ir.IRBuilder, win: Window, axis: int, o: ir.Value) -> ir.Value:
    """How many of the (undilated) window's cells along ``axis`` at output ``o`` are inside
    the image: min(start + k, size) − max(start, 0)."""
    start = b.sub(b.mul(o, I64(win.stride[axis])), I64(win.padding[axis][0]))
    stop = loops.smin(b, b.add(start, I64(win.kernel[axis])), I64(win.image[axis]))
    return b.sub(stop, _smax(b, start, I64(0)))


# -- convolution ----------------------------------------------------------------------------

@rule("conv2d")
def lower_conv2d(ctx, node, out: View, inputs: list[View]) -> None:
    x, w = node.inputs
    win = _window(node, x.shape[2:], node.shape[2:], kernel=w.shape[2:])
    groups = node.attr["groups"]
    if node.dtype in BLAS_GEMM and _prefer_gemm(win, x.shape[1], w.shape[0], groups):
        _conv_gemm(ctx, node, out, inputs, win, groups)
    else:
        _conv_direct(ctx, node, out, inputs, win, groups)


def _prefer_gemm(win: Window, channels: int, out_channels: int, groups: int) -> bool:
    """The selection rule measured in the module docstring: the direct loop for depthwise
    convolutions, tiny inner dimensions and single-channel inputs with few filters."""
    per_group, group_channels = out_channels // groups, channels // groups
    depth = group_channels * win.taps  # the GEMM's inner dimension
    return not (per_group < 4 or depth < 8 or (group_channels == 1 and per_group <= 8))


def _conv_gemm(ctx, node, out: View, inputs: list[View], win: Window, groups: int) -> None:
    """Per image: cols = im2col(x[n]) (C·K × OH·OW), out[n, group] = w[group] @ cols[group]
    (one BLAS GEMM per group)."""
    x, w = inputs
    dtype = node.dtype
    channels, out_channels = node.inputs[0].shape[1], node.shape[1]
    depth = channels // groups * win.taps
    per_group = out_channels // groups
    weights = _weight_matrix(ctx, node, w, dtype)
    # a 1x1 stride-1 convolution reads the image itself as its columns, when it is one
    # row-major (C, H·W) matrix of the right dtype
    image_strides = (win.image[0] * win.image[1], win.image[1], 1)
    direct_read = win.is_pointwise and x.dtype == dtype and all(
        loops.is_const(s, v) for s, v in zip(x.strides[1:], image_strides, strict=True))
    views = [out, x, weights]
    if not direct_read:
        views.append(ctx.scratch((channels, win.taps, *win.out), dtype))
    zero = dtypes.constant(dtype, 0)
    p = I64(win.pixels)

    def emit(kb: ir.IRBuilder, local: list[View], scalars: list[ir.Value]) -> None:
        dst, src, wmat = local[:3]
        with for_range(kb, dst.shape[0], name="n") as n:
            if direct_read:
                columns = _at(kb, src, n).ptr
            else:
                _im2col_image(kb, win, _at(kb, src, n), local[3], zero)
                columns = local[3].ptr
            result = _at(kb, dst, n).ptr
            with for_range(kb, I64(groups), name="g") as g:
                a = _shift(kb, wmat.ptr, kb.mul(g, I64(per_group * depth)), dtype)
                b = _shift(kb, columns, kb.mul(g, I64(depth * win.pixels)), dtype)
                c = _shift(kb, result, kb.mul(g, I64(per_group * win.pixels)), dtype)
                gemm(kb, scalars[0], dtype, False, False, I64(per_group), p, I64(depth), 1.0,
                     a, I64(depth), b, p, 0.0, c, p, ilp64=ctx.blas_ilp64)

    ctx.kernel("conv2d_gemm", views, emit, scalars=[blas_pointer(ctx, dtype)])


def _shift(b: ir.IRBuilder, ptr: ir.Value, offset: ir.Value, dtype: str) -> ir.Value:
    return b.gep(ptr, [offset], inbounds=True, source_etype=dtypes.storage_type(dtype))


def _weight_matrix(ctx, node, w: View, dtype: str) -> View:
    """The weight as a row-major (O, C/groups·kh·kw) matrix of ``dtype`` (copied when it is
    not one already)."""
    if w.contiguous and w.dtype == dtype:
        return w
    shape = node.inputs[1].shape
    matrix = ctx.scratch(shape, dtype)
    src = w.dtype
    elementwise(ctx, "conv_weight", matrix, [w],
                lambda b, values: (convert(b, values[0][0], src, dtype), dtype), shape=shape)
    return matrix


def _conv_direct(ctx, node, out: View, inputs: list[View], win: Window, groups: int) -> None:
    """out[n, o] = Σ_{c, i, j} w[o, c, i, j] · (input rows under tap (i, j)), accumulated
    into the output plane (float16 accumulates in a float32 plane)."""
    dtype = node.dtype
    compute = "float32" if dtype == "float16" else dtype
    per_group = node.shape[1] // groups
    group_channels = node.inputs[1].shape[1]
    views = list(inputs)
    if compute != dtype:
        views.append(ctx.scratch(win.out, compute))
    zero = dtypes.constant(compute, 0)

    def emit(kb: ir.IRBuilder, local: list[View], _: list) -> None:
        dst, (x, w) = local[0], local[1:3]
        with loops.loop_nest(kb, dst.shape[:2], name="no") as (n, o):
            plane = _at(kb, dst, n, o)
            acc = local[3] if compute != dtype else plane
            _fill(kb, acc, zero)
            first = kb.mul(kb.udiv(o, I64(per_group)), I64(group_channels))
            with for_range(kb, I64(group_channels), name="c") as c:
                image = _at(kb, x, n, kb.add(first, c))
                with _taps(kb, win) as tap:
                    weight = convert(kb, w.load(kb, [o, c, tap.i, tap.j]), w.dtype, compute)

                    def fma(oh, iy, ow, ix):
                        value = convert(kb, image.load(kb, [iy, ix]), x.dtype, compute)
                        product = kb.fmul(weight, value, flags=CONTRACT)
                        total = kb.fadd(acc.load(kb, [oh, ow]), product, flags=CONTRACT)
                        acc.store(kb, [oh, ow], total)
                    _sweep(kb, win, tap, fma)
            if compute != dtype:
                with loops.loop_nest(kb, acc.shape, name="d") as index:
                    plane.store(kb, index, convert(kb, acc.load(kb, index), compute, dtype))

    ctx.kernel("conv2d_direct", [out, *views], emit)
