"""Fused kernels as NumPy source: every body instruction is one ufunc call with ``out=``.

``def fused_mul_add_tanh_0(in0, in1, out):`` computes the body into ``out`` (an array
of the kernel's iteration shape) and a few scratch registers, so a chain of n
elementwise ops allocates nothing per op. Registers are given out by a linear
scan: a value's register is free after its last reader, and a ufunc may write
into the register of an argument it reads for the last time (elementwise
in-place is exact). ``where`` is two ``np.copyto`` calls and must not overwrite
the condition or the first branch before reading them.

When the caller passes one of the inputs as ``out`` (the memory plan found that
input dying here), that input's value starts in the ``out`` register.
"""

from __future__ import annotations

from typing import Any

from graphc.ops.fused import input_name
from graphc.ops.scalar import Program

UFUNCS = {
    "add": "np.add", "sub": "np.subtract", "mul": "np.multiply", "div": "np.true_divide",
    "pow": "np.power", "neg": "np.negative", "abs": "np.absolute", "sign": "np.sign",
    "floor": "np.floor", "exp": "np.exp", "log": "np.log", "log1p": "np.log1p",
    "expm1": "np.expm1", "sqrt": "np.sqrt", "square": "np.square", "sin": "np.sin", "cos": "np.cos",
    "tanh": "np.tanh", "erf": "_erf", "sigmoid": "_sigmoid",
    "maximum": "np.maximum", "minimum": "np.minimum",
    "less": "np.less", "less_equal": "np.less_equal", "greater": "np.greater",
    "greater_equal": "np.greater_equal", "equal": "np.equal", "not_equal": "np.not_equal",
    "logical_and": "np.logical_and", "logical_or": "np.logical_or",
    "logical_xor": "np.logical_xor", "logical_not": "np.logical_not",
    "atan": "np.arctan", "round": "np.rint", "fmod": "np.fmod", "mod": "np.mod",
    "bitwise_and": "np.bitwise_and", "bitwise_or": "np.bitwise_or",
    "bitwise_xor": "np.bitwise_xor", "bitwise_not": "np.invert",
    "left_shift": "np.left_shift", "right_shift": "np.right_shift",
}
PREDICATES = frozenset(("less", "less_equal", "greater", "greater_equal", "equal",
                        "not_equal", "logical_and", "logical_or", "logical_xor",
                        "logical_not"))


def kernel_source(name: str, node_attrs: dict[str, Any], input_dtypes: list[str],
                  out_input: int | None) -> str:
    """Python source of the kernel function ``name`` for a fused node's attributes.

    ``out_input``: the input whose buffer is passed as ``out`` (it is read from there).
    """
    program: Program = node_attrs["program"]
    compute, dtype = node_attrs["compute"], node_attrs["dtype"]
    params = [input_name(k) for k in range(len(input_dtypes))]
    lines = [f"def {name}({', '.join([*params, 'out'])}):"]
    emit = lines.append

    last_use: dict[str, int] = {}
    for k, (_, _, args) in enumerate(program.instrs):
        for a in args:
            if isinstance(a, str):
                last_use[a] = k
    # "b": a bool value, "f": a value of the compute dtype
    kind_of = {p: "b" if d == "bool" else "f" for p, d in zip(params, input_dtypes, strict=True)}
    register: dict[str, str] = {}  # value → register holding it (inputs: only if aliased)
    free: dict[str, list[str]] = {"b": [], "f": []}
    out_kind = "b" if dtype == "bool" else "f"
    if out_input is None:
        free[out_kind].append("out")
    else:
        register[input_name(out_input)] = "out"
    scratch = 0

    def source(arg: Any) -> str:
        if isinstance(arg, float):
            return f"np.{compute}({arg!r})"
        return register.get(arg, arg)

    def release(args: tuple, k: int) -> None:
        for a in dict.fromkeys(args):
            if isinstance(a, str) and last_use.get(a) == k and a in register \
                    and a != program.result:
                free[kind_of[a]].append(register.pop(a))  # a register holds one kind

    def take(kind: str, result: bool) -> str:
        """A free register: ``out`` for the result if it can, else anything but ``out``."""
        nonlocal scratch
        regs = free[kind]
        if "out" in regs and (result or len(regs) == 1):
            regs.remove("out")
            return "out"
        if regs:
            return regs.pop(next(k for k in range(len(regs) - 1, -1, -1) if regs[k] != "out"))
        scratch += 1
        reg = f"{kind}{scratch}"
        emit(f"    {reg} = np.empty(out.shape, {'bool' if kind == 'b' else compute!r})")
        return reg

    for k, (dest, op, args) in enumerate(program.instrs):
        srcs = [source(a) for a in args]
        if op == "where":
            # bool only when both branches are: a float branch makes the result float
            kind = "b" if all(isinstance(a, str) and kind_of[a] == "b" for a in args[1:]) \
                else "f"
            branch = register.get(args[2]) if isinstance(args[2], str) else None
            reg = branch if branch is not None and last_use.get(args[2]) == k \
                and args[2] != program.result and branch not in srcs[:2] \
                and kind_of[args[2]] == kind else None  # a bool register cannot hold floats
            if reg is None:
                reg = take(kind, dest == program.result)
                emit(f"    np.copyto({reg}, {srcs[2]})")
            else:
                register.pop(args[2])
            emit(f"    np.copyto({reg}, {srcs[1]}, where={srcs[0]})")
            release(args, k)
        else:
            kind = "b" if op in PREDICATES else "f"
            release(args, k)
            reg = take(kind, dest == program.result)
            if op == "reciprocal":
                emit(f"    np.divide(np.{compute}(1.0), {srcs[0]}, out={reg})")
            else:
                emit(f"    {UFUNCS[op]}({', '.join(srcs)}, out={reg})")
        register[dest] = reg
        kind_of[dest] = kind

    result = source(program.result)
    if result != "out":
        emit(f"    np.copyto(out, {result})")
    reduce = node_attrs["reduce"]
    if reduce is None:
        emit("    return out")
    else:
        kind, axes, keepdims = reduce
        emit(f"    return np.asarray(np.{kind}(out, axis={axes!r}, keepdims={keepdims!r}))")
    return "\n".join(lines) + "\n"
