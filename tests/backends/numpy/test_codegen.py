"""The numpy backend: readable, safe generated source and errors that point at the user."""

import ast
import inspect
import traceback

import numpy as np
import pytest

import graphc as gx
from graphc.backends.numpy import NumpyCompiled
from graphc.backends.numpy.codegen import identifier


def function_def(source: str) -> ast.FunctionDef:
    """The ``graph`` function (fused kernels are functions defined before it)."""
    *kernels, fn = ast.parse(source).body
    assert isinstance(fn, ast.FunctionDef) and fn.name == "graph"
    assert all(isinstance(k, ast.FunctionDef) for k in kernels)
    return fn


def assigned(stmt: ast.stmt) -> str | None:
    if isinstance(stmt, ast.Assign):
        (target,) = stmt.targets
        return target.id
    return None


def loads(stmt: ast.stmt) -> set[str]:
    return {n.id for n in ast.walk(stmt) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def test_source_has_one_line_per_node():
    x = gx.input("x", (3,), "float64")
    y = gx.exp(gx.sin(x)) * gx.cos(x) + 1.0
    f = gx.compile([x], y, optimize=False)  # unfused: one line per op
    assert isinstance(f, NumpyCompiled)
    computed = [n for n in f.graph.toposort() if n.op.name not in ("input", "param")]
    body = function_def(f.source).body
    assignments = [s for s in body if isinstance(s, ast.Assign)]
    assert len(assignments) == len(computed) == 6  # sin, exp, cos, mul, the constant, add
    for stmt in assignments:
        assert stmt.lineno == stmt.end_lineno  # each one line
    assert f.source.splitlines()[0] == "def graph(x_x, dims):"
    assert "sin(x_x)" in f.source and "np.float64(1.0)" in f.source


def test_dead_intermediates_are_deleted_right_after_their_last_use():
    x = gx.input("x", (3,), "float64")
    w = gx.param("w", np.ones(3))
    h = gx.tanh(x * w)
    out = gx.exp(h) + gx.sin(h)
    f = gx.compile([x], [out, h], optimize=False)  # h is an output: never deleted
    body = function_def(f.source).body
    deleted = {}
    for k, stmt in enumerate(body):
        if isinstance(stmt, ast.Delete):
            for target in stmt.targets:
                deleted[target.id] = k
    intermediates = {assigned(s) for s in body if assigned(s) and assigned(s).startswith("v")}
    returned = loads(body[-1])
    assert set(deleted) == intermediates - returned and deleted
    for name, k in deleted.items():
        last_read = max(j for j, s in enumerate(body[:k]) if name in loads(s))
        assert last_read == k - 1  # deleted at once after the line that last reads it
        assert all(name not in loads(s) for s in body[k + 1:])
    assert "x_x" not in deleted and "p_w" not in deleted


EVIL_NAMES = ["x; import os", 'x"); print("pwned', "x'\n__import__('os')\n", "déjà vu", "if",
              "a b", "a_b", "dims", "np", "exp", "1st"]


def test_user_names_become_safe_distinct_identifiers():
    xs = [gx.input(name, (2,), "float64") for name in EVIL_NAMES]
    w = gx.param("w'); import os #\n", np.array([1.0, 2.0]))
    total = xs[0] * 0.0
    for k, x in enumerate(xs):
        total = total + x * float(k + 1)
    f = gx.compile(xs, total * w, {w: w + 1}, optimize=False)
    fn = function_def(f.source)
    arg_names = [a.arg for a in fn.args.args]
    assert arg_names[-1] == "dims" and len(set(arg_names)) == len(arg_names) == len(EVIL_NAMES) + 2
    for name in arg_names:
        assert name.isidentifier() and name.isascii()
    # Nothing a user typed became code: only assignments, dels and the return, one a line,
    # calling only ops and np; the only string literal is a dtype name.
    assert len(f.source.splitlines()) == len(fn.body) + 1
    assert {type(s) for s in fn.body} <= {ast.Assign, ast.Delete, ast.Return}
    called = {n.func.id if isinstance(n.func, ast.Name) else n.func.value.id
              for n in ast.walk(fn) if isinstance(n, ast.Call)}
    assert called == {"mul", "add", "np"}
    strings = {n.value for n in ast.walk(fn) if isinstance(n, ast.Constant)
               and isinstance(n.value, str)}
    assert strings <= {"float64"}
    arrays = [np.full(2, float(k)) for k in range(len(EVIL_NAMES))]
    expected = sum(a * (k + 1) for k, a in enumerate(arrays)) * np.array([1.0, 2.0])
    np.testing.assert_allclose(f(*arrays), expected)
    np.testing.assert_array_equal(w.value, [2.0, 3.0])


@pytest.mark.parametrize(("name", "prefix", "expected"), [
    ("x", "x", "x_x"), ("x; import os", "x", "x_x__import_os"), ("", "p", "p"),
    ("'\n'", "p", "p"), ("caf\u00e9", "x", "x_caf"), (None, "x", "x"),
])
def test_identifier(name, prefix, expected):
    assert identifier(name, prefix) == expected


def test_file_names_in_comments_are_sanitised():
    x = gx.input("x", (2,), "float64")
    namespace = {"gx": gx, "x": x}
    code = compile("\n\ny = gx.tanh(x)", "evil\nimport os; 'x\".py", "exec")
    exec(code, namespace)
    f = gx.compile([x], namespace["y"])
    comment = f.source.splitlines()[1].split("#", 1)[1]
    assert comment == " evil_import_os___x_.py:3"
    function_def(f.source)
    np.testing.assert_allclose(f([0.5, -1.0]), np.tanh([0.5, -1.0]))


def test_array_and_non_finite_constants_live_in_the_namespace():
    x = gx.input("x", (1000,), "float64")
    big = np.linspace(0.0, 1.0, 1000)
    f = gx.compile([x], gx.maximum(x * big, -np.inf) + np.nan * 0, optimize=False)
    assert len(f.source) < 500 and "0.001" not in f.source and "inf" not in f.source
    a = np.linspace(-1, 1, 1000)
    np.testing.assert_array_equal(f(a), np.full(1000, np.nan))
    g = gx.compile([x], gx.maximum(x * big, -np.inf), optimize=False)
    np.testing.assert_array_equal(g(a), a * big)


def test_runtime_errors_name_the_op_and_the_users_line():
    base = gx.input("base", (2,), "int64")
    exponent = gx.input("exponent", (2,), "int64")
    line = inspect.currentframe().f_lineno + 1
    power = base**exponent
    f = gx.compile([base, exponent], power + 1)
    np.testing.assert_array_equal(f([2, 3], [2, 2]), [5, 10])
    with pytest.raises(gx.GraphcError) as info:
        f([2, 3], [2, -2])
    message = str(info.value)
    assert message.startswith("pow: ValueError: Integers to negative integer powers")
    assert "inputs: (int64(2,), int64(2,))" in message
    assert f"{__file__}:{line} in test_runtime_errors_name_the_op_and_the_users_line" in message
    assert isinstance(info.value.__cause__, ValueError)


def test_the_generated_lines_show_in_tracebacks():
    base = gx.input("base", (), "int64")
    f = gx.compile([base], base ** gx.constant(-1))
    with pytest.raises(gx.GraphcError) as info:
        f(3)
    frames = traceback.extract_tb(info.value.__cause__.__traceback__)
    generated = [fr for fr in frames if fr.filename.startswith("<graphc-numpy")]
    assert len(generated) == 1 and generated[0].line.startswith("v2 = pow(x_base, c1)")


def test_symbolic_dims_are_read_from_dims_in_the_source():
    x = gx.input("x", ("batch", 6), "float64")
    f = gx.compile([x], gx.reshape(x, ("batch", 2, 3)))
    assert "shape=(dims['batch'], 2, 3)" in f.source
    for batch in (1, 4):
        a = np.arange(batch * 6.0).reshape(batch, 6)
        np.testing.assert_array_equal(f(a), a.reshape(batch, 2, 3))


def test_random_streams_are_per_key_and_advance_per_call():
    x = gx.input("x", (4,), "float64")
    f = gx.compile([x], gx.uniform_like(x, key=7))
    g = gx.compile([x], gx.uniform_like(x, key=7) * 1.0)
    first, second = f(np.zeros(4)), f(np.zeros(4))
    assert not np.array_equal(first, second)
    np.testing.assert_array_equal(g(np.zeros(4)), first)  # same key, fresh function
    expected = np.random.default_rng(7).uniform(0.0, 1.0, 4)
    np.testing.assert_array_equal(first, expected)
