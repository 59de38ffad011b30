"""Matrix products: ``matmul``, ``dense`` and ``einsum``, through BLAS where it applies.

The building block is ``gemm``, which emits one row-major matrix product from inside a
kernel body (other rules, conv2d's im2col, call it too)::

    C (m×n, row stride ldc) = alpha · op(A) · op(B) + beta · C
    op(A) = A (m×k, row stride lda), or Aᵀ when ``trans_a`` (A stored k×m)
    op(B) = B (k×n, row stride ldb), or Bᵀ when ``trans_b`` (B stored n×k)

BLAS is column-major: a row-major matrix with row stride ld *is* its transpose in
column-major order with leading dimension ld. So the row-major C = op(A)·op(B) is the
column-major Cᵀ = op(B)ᵀ·op(A)ᵀ: call ``?gemm(tb, ta, n, m, k, alpha, B, ldb, A, lda,
beta, C, ldc)`` with the operands swapped and the same transpose flags.

float32 and float64 call BLAS ``sgemm``/``dgemm`` (their addresses come through the
entry's ``fns`` argument: ``blas_pointer``; with 64-bit ints when ``ctx.blas_ilp64``, see
``externs``); other dtypes (integers, bool, float16) run
a loop product with NumPy's results: integers wrap, bool is or-of-ands, float16
accumulates each dot product in float32 as NumPy does.
"""

from __future__ import annotations

import llvmlite.ir as ir

from graphc.backends.llvm import dtypes, loops
from graphc.backends.llvm.dtypes import I8, I32, I64, PTR, convert, is_float
from graphc.backends.llvm.externs import Callee
from graphc.backends.llvm.loops import View, for_range
from graphc.backends.llvm.rules import rule

#: the BLAS product of each dtype that has one (``externs.NAMES``)
BLAS_GEMM = {"float32": "sgemm", "float64": "dgemm"}
_INT32_MAX = 2**31 - 1  # LP64 BLAS takes 32-bit ints
_GEMM_TYPE = ir.FunctionType(ir.VoidType(), [PTR] * 13)


def blas_pointer(ctx, dtype: str) -> ir.Value | None:
    """The ``sgemm``/``dgemm`` pointer for ``dtype`` as an IR value of the entry function
    (pass it into a kernel as a scalar: ``ctx.kernel(..., scalars=[ptr])``), or ``None``
    for a dtype without BLAS (``gemm`` then runs its loop product)."""
    name = BLAS_GEMM.get(dtype)
    return None if name is None else ctx.extern(name + "64" * ctx.blas_ilp64)


def gemm(b: ir.IRBuilder, fn_ptr: ir.Value | None, dtype: str, trans_a: bool, trans_b: bool,
         m: ir.Value, n: ir.Value, k: ir.Value, alpha: float,
         a_ptr: ir.Value, lda: ir.Value, b_ptr: ir.Value, ldb: ir.Value,
         beta: float, c_ptr: ir.Value, ldc: ir.Value, ilp64: bool = False) -> None:
    """Emit the row-major ``C = alpha·op(A)·op(B) + beta·C`` at ``b``'s position.

    Parameters
    ----------
    b : the builder of a kernel body (its function's entry block gets the BLAS
        argument slots).
    fn_ptr : ``blas_pointer(ctx, dtype)`` as passed into the kernel, or ``None`` for the
        loop product (the only choice for dtypes without BLAS).
    dtype : the element type of A, B and C (all three).
    trans_a, trans_b : whether A (B) is stored transposed (see the module docstring).
    m, n, k, lda, ldb, ldc : i64 values; each ld is the row stride of its stored matrix,
        in elements. Leading dims are raised to BLAS's minimum (max(1, columns)), which
        changes nothing that is read: it only matters when a matrix has at most one row
        or no elements.
    alpha, beta : Python numbers. With ``beta == 0`` C is write-only (may hold garbage).
    ilp64 : ``fn_ptr`` takes 64-bit ints (``ctx.blas_ilp64``), else 32-bit ones.

    Empty products are safe: nothing is called when m or n is 0, and k == 0 gives
    ``beta·C``. Sizes beyond 32-bit ints take the loop product with an LP64 BLAS.
    """
    if fn_ptr is None:
        _loop_gemm(b, dtype, trans_a, trans_b, m, n, k, alpha, a_ptr, lda, b_ptr, ldb,
                   beta, c_ptr, ldc)
        return
    lda = _max(b, lda, m if trans_a else k)
    ldb = _max(b, ldb, k if trans_b else n)
    ldc = _max(b, ldc, n)
    nonempty = b.and_(b.icmp_signed(">", m, I64(0)), b.icmp_signed(">", n, I64(0)))
    with b.if_then(nonempty):
        if ilp64:
            _call_blas(b, fn_ptr, dtype, trans_a, trans_b, m, n, k, alpha, a_ptr, lda,
                       b_ptr, ldb, beta, c_ptr, ldc, I64)
            return
        fits = _all_fit_int32(b, [m, n, k, lda, ldb, ldc])
        with b.if_else(fits, likely=True) as (blas, loop):
            with blas:
                _call_blas(b, fn_ptr, dtype, trans_a, trans_b, m, n, k, alpha, a_ptr, lda,
                           b_ptr, ldb, beta, c_ptr, ldc, I32)
            with loop:
                _loop_gemm(b, dtype, trans_a, trans_b, m, n, k, alpha, a_ptr, lda, b_ptr,
                           ldb, beta, c_ptr, ldc)


def _max(b: ir.IRBuilder, ld: ir.Value, columns: ir.Value) -> ir.Value:
    """max(ld, columns, 1): BLAS's lower bound on a leading dimension."""
    if loops.is_const(ld) and loops.is_const(columns):
        return I64(max(ld.constant, columns.constant, 1))
    bound = b.select(b.icmp_signed(">", columns, I64(1)), columns, I64(1))
    return b.select(b.icmp_signed(">", ld, bound), ld, bound)


def _all_fit_int32(b: ir.IRBuilder, values: list[ir.Value]) -> ir.Value:
    fits: ir.Value = ir.Constant(dtypes.I1, 1)
    for v in values:
        if loops.is_const(v) and v.constant <= _INT32_MAX:
            continue
        fits = b.and_(fits, b.icmp_signed("<=", v, I64(_INT32_MAX)))
    return fits


def _slot(b: ir.IRBuilder, ty: ir.Type) -> ir.Value:
    """A stack slot in the function's entry block (so loops reuse one slot)."""
    with b.goto_entry_block():
        return b.alloca(ty)


def _by_pointer(b: ir.IRBuilder, value: ir.Value) -> ir.Value:
    slot = _slot(b, value.type)
    b.store(value, slot)
    return slot


def _call_blas(b: ir.IRBuilder, fn_ptr: ir.Value, dtype: str, trans_a: bool, trans_b: bool,
               m, n, k, alpha, a_ptr, lda, b_ptr, ldb, beta, c_ptr, ldc,
               int_type: ir.IntType) -> None:
    """The column-major call Cᵀ = op(B)ᵀ·op(A)ᵀ (see the module docstring), sizes passed
    as ``int_type`` (i32 for LP64 BLAS, i64 for ILP64)."""
    def flag(trans: bool) -> ir.Value:
        return _by_pointer(b, I8(ord("T" if trans else "N")))

    def integer(v: ir.Value) -> ir.Value:
        return _by_pointer(b, v if int_type.width == 64 else b.trunc(v, int_type))

    def number(v: float) -> ir.Value:
        return _by_pointer(b, dtypes.constant(dtype, v))

    args = [flag(trans_b), flag(trans_a), integer(n), integer(m), integer(k), number(alpha),
            b_ptr, integer(ldb), a_ptr, integer(lda), number(beta), c_ptr, integer(ldc)]
    b.call(Callee(fn_ptr, _GEMM_TYPE), args)


# -- the loop product (no BLAS) ------------------------------------------------------------------

def _loop_gemm(b: ir.IRBuilder, dtype: str, trans_a: bool, trans_b: bool, m, n, k, alpha,
               a_ptr, lda, b_ptr, ldb, beta, c_ptr, ldc) -> None:
    """C = alpha·op(A)·op(B) + beta·C by loops: i-k-j order (C's row i is updated with
    contiguous sweeps, which vectorize), except float16, whose dot products accumulate in
    float32 (as NumPy's) and so run i-j-k."""
    a = _matrix(a_ptr, m, k, lda, trans_a, dtype)
    bm = _matrix(b_ptr, k, n, ldb, trans_b, dtype)
    c = _matrix(c_ptr, m, n, ldc, False, dtype)
    acc_dtype = "float32" if dtype == "float16" else dtype
    with for_range(b, m, name="gi") as i:
        if dtype == "float16":
            with for_range(b, n, name="gj") as j:
                ty = dtypes.value_type(acc_dtype)
                slot = _slot(b, ty)
                b.store(dtypes.constant(acc_dtype, 0), slot)
                with for_range(b, k, name="gk") as p:
                    x = convert(b, a.load(b, [i, p]), dtype, acc_dtype)
                    y = convert(b, bm.load(b, [p, j]), dtype, acc_dtype)
                    b.store(_madd(b, b.load(slot, typ=ty), x, y, acc_dtype), slot)
                total = _scale(b, b.load(slot, typ=ty), alpha, acc_dtype)
                c.store(b, [i, j], convert(b, _add_beta(b, total, c, [i, j], beta, dtype,
                                                        acc_dtype), acc_dtype, dtype))
        else:
            with for_range(b, n, name="gz") as j:
                old = _scale(b, c.load(b, [i, j]), beta, dtype) if beta else None
                c.store(b, [i, j], old if old is not None else dtypes.constant(dtype, 0))
            with for_range(b, k, name="gk") as p:
                x = _scale(b, a.load(b, [i, p]), alpha, dtype)
                with for_range(b, n, name="gj") as j:
                    c.store(b, [i, j], _madd(b, c.load(b, [i, j]), x, bm.load(b, [p, j]), dtype))


def _matrix(ptr: ir.Value, rows: ir.Value, cols: ir.Value, ld: ir.Value, trans: bool,
            dtype: str) -> View:
    """The logical (rows × cols) matrix over a row-major buffer stored as such, or as its
    transpose when ``trans``."""
    strides = (I64(1), ld) if trans else (ld, I64(1))
    return View(ptr, (rows, cols), strides, dtype)


def _madd(b: ir.IRBuilder, acc: ir.Value, x: ir.Value, y: ir.Value, dtype: str) -> ir.Value:
    """acc + x·y (bool: acc or (x and y); integers wrap)."""
    if dtype == "bool":
        return b.or_(acc, b.and_(x, y))
    if is_float(dtype):
        return b.fadd(acc, b.fmul(x, y))
    return b.add(acc, b.mul(x, y))


def _scale(b: ir.IRBuilder, x: ir.Value, factor: float, dtype: str) -> ir.Value:
    if factor == 1 or dtype == "bool":
        return x
    if is_float(dtype):
        return b.fmul(x, dtypes.constant(dtype, factor))
    return b.mul(x, dtypes.constant(dtype, factor))


def _add_beta(b: ir.IRBuilder, total: ir.Value, c: View, index, beta: float, dtype: str,
              acc_dtype: str) -> ir.Value:
    if not beta:
        return total
    old = _scale(b, convert(b, c.load(b, index), dtype, acc_dtype), beta, acc_dtype)
    return b.fadd(total, old) if is_float(acc_dtype) else b.add(total, old)


# -- operands as BLAS matrices --------------------------------------------------------------------

def matrix_layout(view: View) -> tuple[bool, ir.Value] | None:
    """How BLAS reads the last two axes (rows, cols) of ``view``: ``(False, ld)`` when
    they are a row-major matrix with row stride ld, ``(True, ld)`` when they are the
    transpose of one (column stride ld), ``None`` when neither can be proved at compile
    time (the caller copies). Decide on the entry's views, whose constants are known."""
    rows, cols = view.shape[-2:]
    # the stride of an axis of size one is never used: any value will do, 1 included
    row_stride, col_stride = (I64(1) if loops.is_const(size, 1) else stride
                              for size, stride in zip(view.shape[-2:], view.strides[-2:],
                                                      strict=True))
    if view.contiguous or (loops.is_const(col_stride, 1)
                           and _leading_ok(row_stride, rows, cols)):
        return False, row_stride
    if loops.is_const(row_stride, 1) and _leading_ok(col_stride, cols, rows):
        return True, col_stride
    return None


def _leading_ok(ld: ir.Value, rows: ir.Value, cols: ir.Value) -> bool:
    """Is a stored (rows × cols) matrix with unit column stride at row stride ``ld`` a
    valid BLAS matrix (``ld ≥ cols``, or at most one row, when ld is never used)?"""
    if loops.is_const(rows) and rows.constant <= 1:
        return True
    if ld is cols:  # a contiguous matrix of symbolic width
        return True
    return loops.is_const(ld) and loops.is_const(cols) and ld.constant >= cols.constant


def matrix_operand(ctx, view: View, static_shape: tuple, dtype: str) -> tuple[View, bool]:
    """``view`` (..., rows, cols) ready for ``gemm``: as is when BLAS can read it (the
    flag says whether it is stored transposed), else copied (and converted to ``dtype``)
    into a contiguous scratch buffer."""
    layout = matrix_layout(view)
    if layout is not None and view.dtype == dtype:
        return view, layout[0]
    from graphc.backends.llvm.rules.elementwise import elementwise

    buffer = ctx.scratch(static_shape, dtype)
    elementwise(ctx, "matmul_operand", buffer, [view], lambda b, values: values[0],
                shape=static_shape)
    return buffer, False


def _leading(view: View, trans: bool) -> ir.Value:
    """The leading dimension (row stride of the stored matrix) of a logical matrix view."""
    return view.strides[-1] if trans else view.strides[-2]


def matmul_views(ctx, name: str, c: View, a: View, b: View, trans_a: bool, trans_b: bool,
                 merge_rows: bool = False, alpha: float = 1.0, beta: float = 0.0) -> None:
    """``c[..., :, :] = alpha·a[..., :, :] @ b[..., :, :] + beta·c`` for views of one batch shape
    (broadcast batch axes have stride 0); ``c``'s last axis must have unit stride and
    ``a``/``b`` be BLAS-readable as flagged (``matrix_operand``). ``merge_rows`` (a's batch
    and row axes form one axis at stride lda, b is not batched, c is contiguous) makes it
    one product of ``batch·m`` rows."""
    fn = blas_pointer(ctx, c.dtype)

    def emit(kb: ir.IRBuilder, local: list[View], scalars: list[ir.Value]) -> None:
        cv, av, bv = local
        ptr = scalars[0] if scalars else None
        m, n = cv.shape[-2:]
        k = av.shape[-1]
        lda, ldb, ldc = _leading(av, trans_a), _leading(bv, trans_b), cv.strides[-2]
        if merge_rows:
            rows = loops.product(kb, [*cv.shape[:-2], m])
            gemm(kb, ptr, cv.dtype, trans_a, trans_b, rows, n, k, alpha, av.ptr, lda, bv.ptr,
                 ldb, beta, cv.ptr, ldc, ilp64=ctx.blas_ilp64)
            return
        with loops.loop_nest(kb, cv.shape[:-2], name="batch") as index:
            at = [*index, I64(0), I64(0)]
            gemm(kb, ptr, cv.dtype, trans_a, trans_b, m, n, k, alpha,
                 av.pointer(kb, av.offset(kb, at)), lda, bv.pointer(kb, bv.offset(kb, at)),
                 ldb, beta, cv.pointer(kb, cv.offset(kb, at)), ldc, ilp64=ctx.blas_ilp64)

    ctx.kernel(name, [c, a, b], emit, scalars=[fn] if fn is not None else [])


def _rows_merge(view: View, trans: bool, batch: int) -> bool:
    """Do ``view``'s batch axes and row axis form one axis (so a batch of products with
    one shared right operand is one product)?"""
    return not trans and batch > 0 and view.contiguous


# -- rules ---------------------------------------------------------------------------------------

@rule("matmul")
def lower_matmul(ctx, node, out: View, inputs: list[View]) -> None:
    """NumPy's matmul on operands of at least two dims (1-D operands are reshaped at build
    time): a BLAS product per batch entry, or one product when the batches fold into rows."""
    from graphc.backends.llvm.rules.elementwise import broadcast

    batch = tuple(node.shape[:-2])
    operands = []
    for view, x in zip(inputs, node.inputs, strict=True):
        view, trans = matrix_operand(ctx, view, tuple(x.shape), node.dtype)
        static = (*batch, *x.shape[-2:])
        merged_ok = _rows_merge(view, trans, len(batch)) and len(x.shape) == len(static) \
            and tuple(x.shape[:-2]) == batch
        operands.append((broadcast(ctx.builder, view, ctx.shape(static), static), trans,
                         merged_ok))
    (a, trans_a, a_merges), (b, trans_b, _) = operands
    b_shared = all(loops.is_const(s, 0) for s in b.strides[:-2])
    matmul_views(ctx, "matmul", out, a, b, trans_a, trans_b,
                 merge_rows=a_merges and b_shared and bool(batch))


@rule("addmm")
def lower_addmm(ctx, node, out: View, inputs: list[View]) -> None:
    """``beta·c + alpha·(a @ b)``: c's values in the output, then one GEMM adding into
    them. An update written in place gets c's own array as its output, so there is
    nothing to copy: the weight update happens inside the gradient's product."""
    from graphc.backends.llvm.rules.elementwise import elementwise

    c, a, b = inputs
    alpha, beta = node.attr["alpha"], node.attr["beta"]
    if beta != 0 and not (c.ptr is out.ptr and c.contiguous):
        elementwise(ctx, "addmm_c", out, [c], lambda kb, values: values[0],
                    shape=tuple(node.shape))
    operands = [matrix_operand(ctx, view, tuple(x.shape), node.dtype)
                for view, x in zip((a, b), node.inputs[1:], strict=True)]
    (av, trans_a), (bv, trans_b) = operands
    matmul_views(ctx, "addmm", out, av, bv, trans_a, trans_b, alpha=alpha, beta=beta)


@rule("dense")
def lower_dense(ctx, node, out: View, inputs: list[View]) -> None:
    """``act(x @ W + b)``: one product of all rows of x, then one in-place pass over the
    output adding the bias and applying the activation."""
    x_node, w_node = node.inputs[:2]
    xv, wv = inputs[:2]
    if x_node.ndim > 2 and not xv.contiguous:
        xv = matrix_operand(ctx, xv, tuple(x_node.shape), node.dtype)[0]  # copies
    x_rows, trans_x = _rows_of(ctx, xv, tuple(x_node.shape), node.dtype)
    w, trans_w = matrix_operand(ctx, wv, tuple(w_node.shape), node.dtype)
    n = out.shape[-1]
    out_rows = View(out.ptr, (x_rows.shape[0], n), (n, I64(1)), out.dtype, contiguous=True)
    matmul_views(ctx, "dense", out_rows, x_rows, w, trans_x, trans_w)
    epilogue = _epilogue(node)
    if epilogue is not None:
        from graphc.backends.llvm.rules.elementwise import elementwise

        elementwise(ctx, f"dense_{node.attr['activation'] or 'bias'}", out,
                    [out, *inputs[2:]], epilogue, shape=tuple(node.shape))


def _rows_of(ctx, xv: View, static_shape: tuple, dtype: str) -> tuple[View, bool]:
    """x (..., k) as the matrix (rows, k) of all its rows: x itself when 2-D, else its
    leading axes folded (x contiguous, or 1-D: one row)."""
    if len(static_shape) == 2:
        return matrix_operand(ctx, xv, static_shape, dtype)
    k = xv.shape[-1]
    if len(static_shape) == 1:  # one row (its row stride is never used)
        row = View(xv.ptr, (I64(1), k), (I64(0), xv.strides[-1]), xv.dtype)
        return matrix_operand(ctx, row, (1, static_shape[0]), dtype)
    rows = loops.product(ctx.builder, xv.shape[:-1])  # dense's operands share one dtype
    return View(xv.ptr, (rows, k), xv.strides[-2:], xv.dtype, contiguous=True), False


def _epilogue(node):
    """The body ``act(z + bias)`` of dense's in-place pass over its output (``None`` when
    there is neither a bias nor an activation)."""
    from graphc.backends.llvm.scalar import emit_primitive, emit_program
    from graphc.ops.elementwise import ELEMENTWISE

    activation = node.attr["activation"]
    has_bias = len(node.inputs) == 3
    if activation is None and not has_bias:
        return None
    dtype = node.dtype
    params = dict(node.attr["params"])

    def body(kb: ir.IRBuilder, values: list) -> tuple[ir.Value, str]:
        z = values[0][0]
        if has_bias:
            z = emit_primitive(kb, "add", [(z, dtype), values[1]], dtype)
        if activation == "relu":  # as the reference's fmax(z, 0): NaN gives 0
            zero = dtypes.constant(dtype, 0)
            return kb.select(kb.fcmp_ordered(">=", z, zero), z, zero), dtype
        if activation is not None:
            formula = ELEMENTWISE[activation].formula
            return emit_program(kb, formula.value, {formula.inputs[0]: (z, dtype)}, params,
                                dtype)
        return z, dtype
    return body


# -- einsum ----------------------------------------------------------------------------------------

@rule("einsum")
def lower_einsum(ctx, node, out: View, inputs: list[View]) -> None:
    """Explicit subscripts (no ellipsis: normalised at build time). Two-operand
    contractions that are batched matrix products go to ``gemm``; everything else (one
    operand, diagonals, several operands, broadcast labels) runs as nested loops."""
    lhs, out_labels = node.attr["subscripts"].split("->")
    terms = lhs.split(",")
    if not _einsum_gemm(ctx, node, out, inputs, terms, out_labels):
        _einsum_loops(ctx, node, out, inputs, terms, out_labels)


def _label_strides(view: View, term: str, static_shape: tuple, labels: str) -> list[ir.Value]:
    """Per label, the stride an operand steps by (a repeated label adds its axes' strides:
    a diagonal; an axis of static size 1 broadcasts: stride 0)."""
    strides = []
    for label in labels:
        parts = [view.strides[k] for k, c in enumerate(term) if c == label
                 and static_shape[k] != 1]
        strides.append(parts)
    return strides


def _einsum_loops(ctx, node, out: View, inputs: list[View], terms: list[str],
                  out_labels: str) -> None:
    """out[o] = Σ_s Π_j operand_j[labels of j], looping over output labels o then summed
    labels s, one accumulator per output element."""
    from graphc.backends.llvm.rules.elementwise import accumulator_dtype, combine

    dtype = node.dtype
    acc_dtype = accumulator_dtype("sum", dtype)
    summed = "".join(sorted(set("".join(terms)) - set(out_labels)))
    labels = out_labels + summed
    sizes = _label_sizes(ctx, node, terms)
    shapes = [tuple(x.shape) for x in node.inputs]
    summed_sizes = [sizes[c] for c in summed]

    def emit(kb: ir.IRBuilder, local: list[View], scalars: list[ir.Value]) -> None:
        dst, srcs = local[0], local[1:]
        per_label = [_label_strides(v, t, s, labels) for v, t, s in zip(srcs, terms, shapes,
                                                                           strict=True)]
        acc_type = dtypes.value_type(acc_dtype)
        with loops.loop_nest(kb, dst.shape, name="o") as index:
            slot = _slot(kb, acc_type)
            kb.store(dtypes.constant(acc_dtype, 0), slot)
            with loops.loop_nest(kb, scalars, name="s") as inner:
                full = [*index, *inner]
                term = None
                for v, strides in zip(srcs, per_label, strict=True):
                    offset = _offset(kb, full, strides)
                    value = convert(kb, convert(kb, v.load_flat(kb, offset), v.dtype, dtype),
                                    dtype, acc_dtype)
                    term = value if term is None else _product(kb, term, value, acc_dtype)
                total = combine(kb, "sum", kb.load(slot, typ=acc_type), term, acc_dtype)
                kb.store(total, slot)
            dst.store(kb, index, convert(kb, kb.load(slot, typ=acc_type), acc_dtype, dtype))

    ctx.kernel("einsum", [out, *inputs], emit, scalars=summed_sizes)


def _label_sizes(ctx, node, terms: list[str]) -> dict[str, ir.Value]:
    """Each label's size (the largest of its dims: others are 1 and broadcast)."""
    sizes: dict[str, object] = {}
    for term, x in zip(terms, node.inputs, strict=True):
        for label, dim in zip(term, x.shape, strict=True):
            if sizes.get(label, 1) == 1:
                sizes[label] = dim
    return {c: ctx.dim(d) for c, d in sizes.items()}


def _offset(b: ir.IRBuilder, index: list[ir.Value], strides: list[list[ir.Value]]) -> ir.Value:
    total: ir.Value = I64(0)
    for i, parts in zip(index, strides, strict=True):
        for s in parts:
            term = b.mul(i, s, flags=["nsw"])
            total = term if loops.is_const(total, 0) else b.add(total, term, flags=["nsw"])
    return total


def _product(b: ir.IRBuilder, x: ir.Value, y: ir.Value, dtype: str) -> ir.Value:
    if dtype == "bool":
        return b.and_(x, y)
    return b.fmul(x, y) if is_float(dtype) else b.mul(x, y)


def _einsum_gemm(ctx, node, out: View, inputs: list[View], terms: list[str],
                 out_labels: str) -> bool:
    """Lower a two-operand einsum that is a batched matrix product to ``gemm``; False
    (emitting nothing) when it is not one or its axes do not fold into matrices."""
    if len(terms) != 2 or node.dtype not in BLAS_GEMM:
        return False
    (ta, tb), (xa, xb) = terms, node.inputs
    if any(len(set(t)) != len(t) for t in terms) or any(x.dtype != node.dtype for x in (xa, xb)):
        return False
    if (set(ta) ^ set(tb)) - set(out_labels):  # a label summed within one operand only
        return False
    dims_a, dims_b = dict(zip(ta, xa.shape, strict=True)), dict(zip(tb, xb.shape, strict=True))
    if any(dims_a[c] != dims_b[c] for c in set(ta) & set(tb)):  # size-1 broadcasting
        return False
    batch = [c for c in out_labels if c in ta and c in tb]
    m = [c for c in out_labels if c in ta and c not in tb]
    n = [c for c in out_labels if c in tb and c not in ta]
    k = [c for c in ta if c in tb and c not in out_labels]
    va, vb = inputs
    a = _fold(ctx, va, ta, [*batch], [m, k])
    b = _fold(ctx, vb, tb, [*batch], [k, n])
    c = _fold(ctx, out, out_labels, [*batch], [m, n])
    if a is None or b is None or c is None:
        return False
    layout_c = matrix_layout(c)
    if layout_c is not None and layout_c[0]:  # C stored transposed: Cᵀ = Bᵀ·Aᵀ
        a, b, c = _swap(b), _swap(a), _swap(c)
        layout_c = matrix_layout(c)
    layouts = [matrix_layout(a), matrix_layout(b)]
    if layout_c is None or layout_c[0] or None in layouts:
        return False
    matmul_views(ctx, "einsum", c, a, b, layouts[0][0], layouts[1][0])
    return True


def _fold(ctx, view: View, term: str, batch: list[str], groups: list[list[str]]) -> View | None:
    """``view`` with axes (batch..., one axis per group): each group's labels folded into
    one axis (an empty group is an axis of size 1), or None when they do not fold."""
    shape = [view.shape[term.index(c)] for c in batch]
    strides = [view.strides[term.index(c)] for c in batch]
    for group in groups:
        axes = [term.index(c) for c in group]
        if not axes:
            shape.append(I64(1))
            strides.append(I64(0))
            continue
        if not _folds(view, axes):
            return None
        shape.append(loops.product(ctx.builder, [view.shape[a] for a in axes]))
        strides.append(view.strides[axes[-1]])
    return View(view.ptr, tuple(shape), tuple(strides), view.dtype)


def _folds(view: View, axes: list[int]) -> bool:
    """Do ``axes`` (in this order) form one axis: consecutive in a row-major array, or
    constant strides with stride[a] = stride[next] · size[next]?"""
    if view.contiguous and axes == list(range(axes[0], axes[0] + len(axes))):
        return True
    for a, nxt in zip(axes, axes[1:], strict=False):
        s, t, size = view.strides[a], view.strides[nxt], view.shape[nxt]
        if not (loops.is_const(s) and loops.is_const(t) and loops.is_const(size)
                and s.constant == t.constant * size.constant):
            return False
    return True


def _swap(view: View) -> View:
    """The transpose of the last two axes."""
    shape, strides = list(view.shape), list(view.strides)
    shape[-2:], strides[-2:] = shape[:-3:-1], strides[:-3:-1]
    return View(view.ptr, tuple(shape), tuple(strides), view.dtype)
