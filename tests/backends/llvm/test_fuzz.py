"""Fuzzing llvm-compiled functions with wrong and odd arguments: never a crash.

Each subject graph (an MLP training step with params and updates, an elementwise graph
with symbolic dims, reductions, a small static graph that runs through the builtin entry)
is compiled with both backends and called thousands of times with arguments drawn by a
seeded generator: wrong shapes, ranks and dtypes, non-arrays, empty arrays, huge
zero-strided views, NaN and inf, non-contiguous, negative-strided, misaligned, read-only
and Fortran-ordered arrays, too many or too few arguments, keywords. For every call the
llvm function must do what the numpy backend (the reference) does: return the same
values and param updates, or raise a graphc error (a bare ``MemoryError`` is accepted
for arrays claiming terabytes). After a failing call no param may have changed, and no
call may write into its arguments.

The loop runs in a subprocess: a segfault fails the test, naming the last case, instead
of killing pytest.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import graphc as gx
from graphc.errors import GraphcError

REPO = Path(__file__).resolve().parents[3]
CALLS = {"mlp": 3400, "elementwise": 3400, "reduction": 3400, "static": 2000}  # 12,200
SIZES = (0, 1, 2, 3, 5, 8)  # sizes of symbolic dims
HUGE = 2**40  # elements a zero-strided view claims: 4 TiB of float32


# -- subjects ----------------------------------------------------------------------------------

@dataclass
class Subject:
    """A graph compiled by both backends, sharing inputs and params."""

    name: str
    inputs: list[gx.Tensor]
    reference: Any  # the numpy backend's function
    llvm: Any
    params: list[gx.Param] = field(default_factory=list)
    #: may a huge argument be non-empty (every output allocates before any work is done)?
    huge_nonempty: bool = True

    @classmethod
    def build(cls, name: str, inputs: list, outputs: list, updates: dict | None = None,
              params: list | None = None, huge_nonempty: bool = True) -> Subject:
        return cls(name, inputs, gx.compile(inputs, outputs, updates, backend="numpy"),
                   gx.compile(inputs, outputs, updates, backend="llvm"), params or [],
                   huge_nonempty)


def mlp() -> Subject:
    """One SGD step of a two-layer tanh MLP on a mean squared error: loss, prediction."""
    rng = np.random.default_rng(0)
    x = gx.input("x", ("batch", 4), "float32")
    t = gx.input("t", ("batch", 2), "float32")
    w1 = gx.param("W1", rng.standard_normal((4, 8)).astype("float32"))
    b1 = gx.param("b1", rng.standard_normal(8).astype("float32"))
    w2 = gx.param("W2", rng.standard_normal((8, 2)).astype("float32"))
    b2 = gx.param("b2", rng.standard_normal(2).astype("float32"))
    params = [w1, b1, w2, b2]
    y = gx.tanh(x @ w1 + b1) @ w2 + b2
    loss = gx.mean(gx.square(y - t))
    grads = gx.grad(loss, params)
    updates = {p: p - 0.1 * g for p, g in zip(params, grads, strict=True)}
    return Subject.build("mlp", [x, t], [loss, y], updates, params)


def elementwise() -> Subject:
    """Broadcasting over symbolic dims, a scalar input and an int input (float64 result)."""
    x = gx.input("x", ("n", "m"), "float32")
    y = gx.input("y", ("m",), "float32")
    s = gx.input("s", (), "float32")
    i = gx.input("i", ("n", 1), "int32")
    out = gx.maximum(x * y + s, 0.0) - y / (1.0 + y * y)
    return Subject.build("elementwise", [x, y, s, i], [out, (x - i) * 2.0, x > y])


def reduction() -> Subject:
    """Sums, a max and a mean over symbolic dims. (Nothing of size n·m: a huge claim of
    both would take the llvm backend hours, correctly, where numpy runs out of memory.)"""
    x = gx.input("x", ("n", "k"), "float64")
    y = gx.input("y", ("k", "m"), "float64")
    return Subject.build("reduction", [x, y],
                         [gx.sum(x, axis=1), gx.max(y, axis=1), gx.mean(x),
                          gx.sum(gx.exp(gx.sum(x, axis=0)) * 2.0),
                          gx.sum(gx.square(y), axis=0, keepdims=True)], huge_nonempty=False)


def static() -> Subject:
    """Static shapes, a param, one output: a small graph the llvm backend runs through its
    builtin entry (arguments checked in native code), with a gather whose indices come from
    the caller (out of range: an error raised by native code)."""
    x = gx.input("x", (3, 4), "float32")
    i = gx.input("i", (2,), "int64")
    w = gx.param("w", np.linspace(-1.0, 1.0, 4, dtype=np.float32))
    out = gx.take(gx.tanh(x * w + 1.0), i, axis=0)
    return Subject.build("static", [x, i], out, params=[w])


SUBJECTS: dict[str, Callable[[], Subject]] = {
    "mlp": mlp, "elementwise": elementwise, "reduction": reduction, "static": static}


# -- argument generators ---------------------------------------------------------------------

@dataclass
class Case:
    category: str
    args: list
    kwargs: dict = field(default_factory=dict)
    must_fail: bool = False  # a call that both backends must reject


def _dims(rng: np.random.Generator, subject: Subject) -> dict[str, int]:
    names = {d for x in subject.inputs for d in x.shape if isinstance(d, str)}
    return {d: int(rng.choice(SIZES)) for d in sorted(names)}


def _shape(x: gx.Tensor, dims: dict[str, int]) -> tuple[int, ...]:
    return tuple(d if isinstance(d, int) else dims[d] for d in x.shape)


def _values(rng: np.random.Generator, shape: tuple[int, ...], dtype: str) -> np.ndarray:
    if np.dtype(dtype).kind in "iu":
        return rng.integers(-5, 6, shape).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


def _valid(rng, subject, dims=None) -> list[np.ndarray]:
    dims = _dims(rng, subject) if dims is None else dims
    return [_values(rng, _shape(x, dims), x.dtype) for x in subject.inputs]


def _relayout(rng: np.random.Generator, a: np.ndarray, how: str) -> np.ndarray:
    """``a``'s values in another memory layout."""
    if how == "noncontiguous" and a.ndim:  # every other element of a larger array, per axis
        big = np.zeros(tuple(2 * d + 1 for d in a.shape), a.dtype)
        view = big[tuple(slice(1, None, 2) for _ in a.shape)]
        view[...] = a
        return view
    if how in ("noncontiguous", "negative_strides") and not a.ndim:
        return a
    if how == "negative_strides":  # reversed on every axis, holding the same values
        flip = tuple(slice(None, None, -1) for _ in a.shape)
        return a[flip].copy()[flip]
    if how == "fortran":
        return np.asfortranarray(a)
    if how == "misaligned":  # one byte into a buffer: no element is aligned
        raw = bytearray(a.nbytes + 1)
        out = np.frombuffer(raw, a.dtype, count=a.size, offset=1).reshape(a.shape)
        out[...] = a
        return out
    if how == "readonly":
        a = a.copy()
        a.setflags(write=False)
        return a
    if how == "zero_strided":  # one row repeated: stride 0 on axis 0
        return np.broadcast_to(a[:1], a.shape) if a.ndim and a.shape[0] else a
    raise AssertionError(how)


# (no huge finite values: 3e38 - 3e38 + 0.1 depends on the order of a sum, which LLVM
# reassociates to vectorize; that is rounding, not safety)
SPECIALS = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-40])


def _nan_inf(rng, a: np.ndarray) -> np.ndarray:
    if a.dtype.kind != "f" or a.size == 0:
        return a
    a = a.copy()
    mask = rng.random(a.shape) < 0.4
    a[mask] = rng.choice(SPECIALS, size=int(mask.sum())).astype(a.dtype)
    return a


def _wrong_dtype(rng, a: np.ndarray) -> Any:
    unsafe = {"f": ["float64", "int64", "uint64", "complex64", "int32"],
              "i": ["float32", "int64", "uint32", "complex128"]}[a.dtype.kind]
    choice = rng.integers(0, 4)
    if choice == 0 and a.dtype.itemsize < 8 or choice == 1:
        kinds = [k for k in unsafe if not np.can_cast(k, a.dtype, "safe")]
        return a.astype(rng.choice(kinds))
    if choice == 2:
        return a.astype(str)
    return np.array(["2024-01-01"] * a.size, "datetime64[D]").reshape(a.shape)


def _safe_dtype(rng, a: np.ndarray) -> np.ndarray:
    """The same values in a smaller dtype that casts safely (float16, int8, bool)."""
    kinds = {"float32": ["float16", "int8", "int16", "bool"],
             "float64": ["float32", "float16", "int32", "bool"],
             "int32": ["int8", "int16", "uint8", "bool"],
             "int64": ["int8", "int32", "uint8", "bool"]}[a.dtype.name]
    small = rng.choice(kinds)
    return np.clip(a, -100, 100).astype(small)


NON_ARRAYS: list[Callable[[], Any]] = [
    lambda: "x", lambda: None, lambda: object(), lambda: {"a": 1}, lambda: {1, 2},
    lambda: b"\x00\x01", lambda: [[1.0], [2.0, 3.0]], lambda: [["a", "b"]], lambda: (lambda: 0),
    lambda: 10**30, lambda: -(10**30), lambda: 1 + 2j, lambda: [None, None],
    lambda: np.array([object(), object()]), lambda: [[[[[1.0]]]]], lambda: Ellipsis,
    lambda: np.float32, lambda: slice(1, 2),
]


def _huge(rng, subject: Subject) -> list:
    """Zero-strided views claiming ``HUGE`` or 2**62 elements along symbolic dims (others
    0-3). Where the reference would reduce over such a view element by element (for
    hours), each huge argument also gets an empty dim."""
    names = sorted(_dims(rng, subject))
    if not names:  # static shapes: one argument claims a huge first axis
        args = _valid(rng, subject)
        k = int(rng.integers(len(args)))
        shape = (int(rng.choice([HUGE, 2**40 + 1])), *np.shape(args[k])[1:])
        args[k] = np.broadcast_to(np.ones((), args[k].dtype), shape)
        return args
    dims = {d: int(rng.choice([0, 1, 3])) for d in names}
    for d in rng.choice(names, size=int(rng.integers(1, len(names) + 1)), replace=False):
        dims[d] = int(rng.choice([HUGE, 2**62]))  # nothing a machine could hold
    for x in subject.inputs if not subject.huge_nonempty else []:
        shape = _shape(x, dims)
        if max(shape, default=0) >= HUGE and 0 not in shape:
            dims[rng.choice([d for d in x.shape if isinstance(d, str)])] = 0
    args = []
    for x in subject.inputs:
        shape = _shape(x, dims)
        try:
            args.append(np.broadcast_to(np.ones((), x.dtype), shape))
        except ValueError:  # numpy refuses over 2**63 bytes: one axis claims HUGE, the
            # other huge ones 1 (never a size a machine could really compute on)
            first = next(k for k, s in enumerate(shape) if s >= HUGE)
            shape = tuple(HUGE if k == first else 1 if s >= HUGE else s
                          for k, s in enumerate(shape))
            args.append(np.broadcast_to(np.ones((), x.dtype), shape))
    return args


def draw_case(rng: np.random.Generator, subject: Subject) -> Case:
    """One call's arguments: valid in an odd layout, or wrong in one way."""
    kind = rng.choice(CATEGORIES)
    inputs = subject.inputs
    args = _valid(rng, subject)
    k = int(rng.integers(len(inputs)))  # the argument a mutation changes
    if kind == "valid":
        return Case(kind, args)
    if kind == "empty":
        return Case(kind, _valid(rng, subject, {d: 0 for d in _dims(rng, subject)}))
    if kind in ("noncontiguous", "negative_strides", "fortran", "misaligned", "readonly",
                "zero_strided"):
        return Case(kind, [_relayout(rng, a, kind) if rng.random() < 0.7 else a for a in args])
    if kind == "nan_inf":
        return Case(kind, [_nan_inf(rng, a) for a in args])
    if kind == "lists":
        return Case(kind, [a.tolist() if a.dtype.kind == "f" else a for a in args])
    if kind == "safe_dtype":
        args[k] = _safe_dtype(rng, args[k])
        return Case(kind, args)
    if kind == "keywords":
        order = rng.permutation(len(inputs))
        split = int(rng.integers(0, len(inputs) + 1))  # first `split` positional
        positional = [args[j] for j in range(split)]
        named = {inputs[j].name: args[j] for j in order if j >= split}
        return Case(kind, positional, named)
    if kind == "huge":
        return Case(kind, _huge(rng, subject))
    return _wrong_case(rng, kind, subject, args, k)


def _wrong_case(rng, kind: str, subject: Subject, args: list, k: int) -> Case:
    inputs = subject.inputs
    if kind == "wrong_shape":
        a = args[k]
        if a.ndim == 0:
            args[k] = np.zeros(3, a.dtype)
        else:
            axis = int(rng.integers(a.ndim))
            fixed = [ax for ax, d in enumerate(inputs[k].shape) if isinstance(d, int)]
            axis = int(rng.choice(fixed)) if fixed and rng.random() < 0.7 else axis
            shape = list(a.shape)
            if isinstance(inputs[k].shape[axis], int):
                shape[axis] = int(rng.choice([s for s in (0, 1, 3, 7, HUGE)
                                              if s != shape[axis]]))
                args[k] = np.broadcast_to(np.zeros((), a.dtype), shape)
            else:  # a symbolic dim bound inconsistently with another argument
                others = [j for j, x in enumerate(inputs)
                          if j != k and inputs[k].shape[axis] in x.shape]
                if not others:
                    return _wrong_case(rng, "wrong_rank", subject, args, k)
                shape[axis] += int(rng.integers(1, 4))
                args[k] = _values(rng, tuple(shape), a.dtype.name)
        return Case(kind, args, must_fail=True)
    if kind == "wrong_rank":
        a = args[k]
        if a.ndim and rng.random() < 0.5:
            args[k] = a.reshape(-1)[None] if a.ndim == 1 else a.reshape(-1)
        else:
            args[k] = a[None, None] if rng.random() < 0.5 else a[..., None]
        if args[k].ndim == a.ndim:
            args[k] = a[None]
        return Case(kind, args, must_fail=True)
    if kind == "wrong_dtype":
        args[k] = _wrong_dtype(rng, args[k])
        return Case(kind, args, must_fail=True)
    if kind == "non_array":
        args[k] = NON_ARRAYS[int(rng.integers(len(NON_ARRAYS)))]()
        return Case(kind, args, must_fail=True)
    if kind == "too_many":
        return Case(kind, args + [args[0]] * int(rng.integers(1, 3)), must_fail=True)
    if kind == "too_few":
        return Case(kind, args[:k], must_fail=True)
    if kind == "bad_keyword":
        named = {inputs[k].name: args[k]} if rng.random() < 0.5 else {"nope": args[k]}
        if inputs[k].name in named:  # given twice: by position and by keyword
            return Case(kind, args, named, must_fail=True)
        return Case(kind, args[:k] + args[k + 1:], named, must_fail=True)
    raise AssertionError(kind)


CATEGORIES = ["valid", "empty", "noncontiguous", "negative_strides", "fortran", "misaligned",
              "readonly", "zero_strided", "nan_inf", "lists", "safe_dtype", "keywords", "huge",
              "wrong_shape", "wrong_rank", "wrong_dtype", "non_array", "too_many", "too_few",
              "bad_keyword"]


# -- one call, checked -------------------------------------------------------------------------

def _call(fn, params: list[gx.Param], case: Case) -> tuple[Any, list[np.ndarray] | None]:
    """``(outputs, new param values)``, or ``(exception, None)``."""
    try:
        outputs = fn(*case.args, **case.kwargs)
    except Exception as e:  # noqa: BLE001 - the outcome is what is checked
        return e, None
    return outputs, [p.value.copy() for p in params]


def _same_values(got, want, loose: bool) -> str | None:
    """Why ``got`` differs from the reference ``want``, or ``None``."""
    got = got if isinstance(got, tuple) else (got,)
    want = want if isinstance(want, tuple) else (want,)
    for g, w in zip(got, want, strict=True):
        g, w = np.asarray(g), np.asarray(w)
        if g.shape != w.shape or g.dtype != w.dtype:
            return f"got {g.dtype}{g.shape}, the reference {w.dtype}{w.shape}"
        if w.dtype.kind != "f":
            if not np.array_equal(g, w):
                return "values differ"
            continue
        tol = 1e-4 if w.dtype == np.float32 else 1e-9
        if loose:  # inf/nan: the sum order may turn one into the other; finite must agree
            if not np.array_equal(np.isfinite(g), np.isfinite(w)):
                return "finite/non-finite pattern differs"
            g, w = np.where(np.isfinite(w), g, 0), np.where(np.isfinite(w), w, 0)
        try:
            np.testing.assert_allclose(g, w, rtol=tol, atol=tol * 10, equal_nan=True)
        except AssertionError as e:
            return " ".join(str(e).split())[:300]
    return None


def check_case(subject: Subject, case: Case) -> str | None:
    """Run ``case`` on both backends from the same params; what went wrong, or ``None``."""
    start = [p.value.copy() for p in subject.params]
    arrays = [a for a in [*case.args, *case.kwargs.values()]
              if isinstance(a, np.ndarray) and a.size < 10**6]  # huge views: not copied
    before = [a.copy() for a in arrays]
    want, want_params = _call(subject.reference, subject.params, case)
    for p, v in zip(subject.params, start, strict=True):
        p.value = v.copy()
    got, got_params = _call(subject.llvm, subject.params, case)
    try:
        return _judge(subject, case, start, want, want_params, got, got_params, arrays, before)
    finally:
        for p, v in zip(subject.params, start, strict=True):
            p.value = v


def _judge(subject, case, start, want, want_params, got, got_params, arrays, before):
    for a, b in zip(arrays, before, strict=True):
        if not np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"):
            return "an argument was modified"
    if got_params is None:  # llvm raised
        if not isinstance(got, GraphcError | MemoryError) or (
                isinstance(got, MemoryError) and case.category != "huge"):
            return f"raised {type(got).__name__}: {got}"
        changed = [p.name for p, v in zip(subject.params, start, strict=True)
                   if p.value.tobytes() != v.tobytes()]
        if changed:
            return f"a failing call changed params {changed}"
        if want_params is not None and case.category != "huge":
            # (a view claiming terabytes may be refused: llvm kernels read contiguous copies)
            return f"rejected a call the reference accepts: {type(got).__name__}: {got}"
        return None
    if case.must_fail:
        return "accepted a wrong call"
    if want_params is None:
        return f"accepted a call the reference rejects ({type(want).__name__}: {want})"
    why = _same_values(got, want, loose=case.category == "nan_inf")
    if why is None:
        why = _same_values(tuple(got_params), tuple(want_params), case.category == "nan_inf")
        why = why and f"param updates: {why}"
    return why


def _describe(case: Case) -> str:
    def one(a):
        if isinstance(a, np.ndarray):
            return f"{a.dtype}{a.shape} strides={a.strides}"
        return type(a).__name__
    named = ", ".join(f"{k}={one(v)}" for k, v in case.kwargs.items())
    return f"{case.category}: ({', '.join(one(a) for a in case.args)}{', ' if named else ''}" \
           f"{named})"


def main(argv: list[str]) -> int:
    """Fuzz one subject: ``main([name, calls, seed])``. Prints each case before running it
    (unbuffered, so a crash names it), then a JSON summary line."""
    name, calls, seed = argv[0], int(argv[1]), int(argv[2])
    subject = SUBJECTS[name]()
    rng = np.random.default_rng(seed)
    outcomes: Counter[str] = Counter()
    failures: list[str] = []
    for n in range(calls):
        case = draw_case(rng, subject)
        os.write(1, f"case {n} {_describe(case)}\n".encode())
        why = check_case(subject, case)
        outcomes[f"{case.category}:{'ok' if why is None else 'bad'}"] += 1
        if why is not None:
            failures.append(f"{_describe(case)} -> {why}")
    print(json.dumps({"calls": calls, "failures": sorted(set(failures))[:20],
                      "outcomes": outcomes}), flush=True)
    return 0


# -- the tests ---------------------------------------------------------------------------------

def run_child(code: str, *args: str) -> list[str]:
    """Run ``code`` in a subprocess, returning its stdout lines; a crash fails the test,
    naming the last ``case`` line the child printed."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONFAULTHANDLER": "1"}
    proc = subprocess.run([sys.executable, "-c", code, *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)
    lines = proc.stdout.splitlines()
    if proc.returncode < 0:
        last = next((ln for ln in reversed(lines) if ln.startswith("case ")), "(no case)")
        pytest.fail(f"the fuzz loop crashed with {signal.Signals(-proc.returncode).name} "
                    f"at {last}\n{proc.stderr[-3000:]}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return lines


def run_fuzz(name: str, calls: int, seed: int = 0) -> dict:
    """``main`` on one subject, in a subprocess: its summary."""
    lines = run_child("import sys; from tests.backends.llvm.test_fuzz import main; "
                      "sys.exit(main(sys.argv[1:]))", name, str(calls), str(seed))
    return json.loads(lines[-1])


@pytest.mark.parametrize("name", sorted(CALLS))
def test_wrong_calls_never_crash_and_change_nothing(name: str) -> None:
    summary = run_fuzz(name, CALLS[name])
    assert summary["calls"] == CALLS[name]
    assert not summary["failures"], "\n".join(summary["failures"])
    seen = {key.split(":")[0] for key in summary["outcomes"]}
    assert seen == set(CATEGORIES)  # every kind of wrong call was tried


def test_there_are_ten_thousand_calls() -> None:
    assert sum(CALLS.values()) >= 10_000


def test_a_crash_in_the_child_fails_the_test_naming_the_case() -> None:
    code = ("import os, ctypes; os.write(1, b'case 7 valid: (float32(2,))\\n'); "
            "ctypes.string_at(0)")
    with pytest.raises(pytest.fail.Exception, match=r"SIGSEGV at case 7 valid"):
        run_child(code)
