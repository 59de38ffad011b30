"""``graphc draw``: the examples drawn from the command line, its options, and every
mistake a user can make answered by one line on stderr and exit status 2."""

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import graphc as gx
from graphc import cli
from tests.test_examples import svg_nodes

EXAMPLES = Path(__file__).parent.parent / "examples"


def graphc(*argv: str, capsys) -> tuple[int, str, str]:
    """Run ``graphc ARGV`` in-process: ``(status, stdout, stderr)``."""
    status = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def draw(capsys, target: str, output: Path, *options: str) -> str:
    """``graphc draw`` that must succeed; the text of what it wrote."""
    status, out, err = graphc("draw", target, "-o", output, *options, capsys=capsys)
    assert status == 0, err
    assert out.strip() == f"wrote {output}"
    return output.read_text()


def dot_node_count(dot: str) -> int:
    """Node statements of a DOT source: ``id [attrs]`` lines other than the ``graph``,
    ``node`` and ``edge`` defaults (edges read ``a -> b [attrs]``)."""
    statements = re.findall(r"^\s*(\w+) \[", dot, flags=re.MULTILINE)
    return sum(s not in ("graph", "node", "edge") for s in statements)


@pytest.fixture
def script(tmp_path):
    """``script(source) -> path`` of a Python file holding ``source``."""
    def write(source: str, name: str = "model.py") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(source))
        return path
    return write


# -- the examples, drawn from the command line ----------------------------------------------

def test_fxyz_with_values_and_gradients(capsys, tmp_path):
    out = tmp_path / "fxyz.svg"
    draw(capsys, f"{EXAMPLES / 'fxyz.py'}:f", out, "--values", "--backward")
    nodes = svg_nodes(out)
    for expected in [("x", ("1.000",), ("-1.000",)), ("y", ("2.000",), ("2.000",)),
                     ("z", ("3.000",), ("-3.000",)), ("×", ("-3.000",), ("1.000",))]:
        assert expected in nodes


def test_values_without_backward(capsys, tmp_path):
    out = tmp_path / "fxyz.svg"
    draw(capsys, f"{EXAMPLES / 'fxyz.py'}:f", out, "--values")
    assert ("×", ("-3.000",), ()) in svg_nodes(out)


def test_backward_implies_values(capsys, tmp_path):
    plain = draw(capsys, f"{EXAMPLES / 'logistic_neuron.py'}:a", tmp_path / "a.dot")
    backward = draw(capsys, f"{EXAMPLES / 'logistic_neuron.py'}:a", tmp_path / "b.dot",
                    "--backward")
    for number in ["0.731", "0.393", "-0.197", "-0.590", "-0.393", "0.197"]:
        assert number in backward
        assert number not in plain


def test_collapse_folds_a_scope_into_one_box(capsys, tmp_path):
    xor = f"{EXAMPLES / 'xor.py'}:xor"
    full = draw(capsys, xor, tmp_path / "full.dot", "--values")
    folded = draw(capsys, xor, tmp_path / "folded.dot", "--values", "--collapse", "hidden")
    both = draw(capsys, xor, tmp_path / "both.dot", "--collapse", "hidden", "output")
    assert dot_node_count(both) < dot_node_count(folded) < dot_node_count(full)


def test_optimized_draws_the_optimizer_output(capsys, tmp_path):
    loss = f"{EXAMPLES / 'mlp_backprop.py'}:loss"
    before = draw(capsys, loss, tmp_path / "before.dot")
    after = draw(capsys, loss, tmp_path / "after.dot", "--optimized")
    assert dot_node_count(after) < dot_node_count(before)
    assert "fused" not in before and "fused" in after


def test_summary_values_shows_the_first_values(capsys, tmp_path):
    xor = f"{EXAMPLES / 'xor.py'}:xor"
    stats = draw(capsys, xor, tmp_path / "stats.dot", "--values")
    first = draw(capsys, xor, tmp_path / "first.dot", "--values", "--summary", "values")
    xor_of_the_rows = "[0.000, 1.000, 1.000, 0.000]"
    assert xor_of_the_rows in first and xor_of_the_rows not in stats
    assert "μ 0.500" in stats and "μ" not in first


def test_the_default_name_is_output_and_png_works(capsys, script, tmp_path):
    path = script("""
        import graphc as gx
        x = gx.input("x", ())
        output = gx.exp(x)
        values = {"x": 0.0}
    """)
    draw(capsys, str(path), tmp_path / "o.svg", "--values")
    assert ("exp", ("1.000",), ()) in svg_nodes(tmp_path / "o.svg")
    png = tmp_path / "o.png"
    assert graphc("draw", path, "-o", png, capsys=capsys)[:2] == (0, f"wrote {png}\n")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("name", ["pair", "build", "fn", "graph"])
def test_lists_functions_compiled_functions_and_graphs_are_drawable(capsys, script, tmp_path,
                                                                    name):
    path = script("""
        import graphc as gx
        x = gx.input("x", (3,))
        pair = [gx.sin(x), gx.cos(x)]
        def build(scale=2.0):
            return [gx.sin(x) * scale]
        fn = gx.compile([x], gx.sin(x))
        graph = gx.Graph.build([x], pair)
    """)
    dot = draw(capsys, f"{path}:{name}", tmp_path / "d.dot")
    assert "sin" in dot


def test_a_compiled_function_is_drawn_before_or_after_its_optimizer(capsys, script, tmp_path):
    path = script("""
        import graphc as gx
        x = gx.input("x", (3,))
        fn = gx.compile([x], gx.exp(x).sum())
    """)
    assert "fused" not in draw(capsys, f"{path}:fn", tmp_path / "before.dot")
    assert "fused" in draw(capsys, f"{path}:fn", tmp_path / "after.dot", "--optimized")


def test_random_values_for_inputs_the_file_does_not_give(capsys, script, tmp_path):
    path = script("""
        import graphc as gx
        x = gx.input("x", ("batch", 3))
        k = gx.input("k", ("batch",), "int64")
        scale = gx.input("scale", ())
        output = gx.take_along_axis(x, gx.expand_dims(k, 1), 1).sum() * scale
        values = {"scale": 10.0}
    """)
    status, _, err = graphc("draw", path, "-o", tmp_path / "o.dot", "--values", capsys=capsys)
    assert status == 0
    assert err.strip() == ("graphc draw: random normal values (seed 0) for x, k; "
                           "symbolic dims batch of size 2")


def test_input_values_are_seeded_and_shaped():
    x = gx.input("x", ("batch", 3))
    k = gx.input("k", (4,), "int32")
    y = gx.input("y", ())
    target = [x.sum() * y, k]
    first, note = cli.input_values(target, {"y": 0.5}, Path("m.py"))
    again, _ = cli.input_values(target, {y: 0.5}, Path("m.py"))
    assert note == "random normal values (seed 0) for x, k; symbolic dims batch of size 2"
    assert first[x].shape == (2, 3) and first[x].dtype == np.float32
    assert first[k].dtype == np.int32 and set(first[k].tolist()) <= {0, 1}
    assert first[y] == 0.5 and again[y] == 0.5
    np.testing.assert_array_equal(first[x], again[x])


def test_random_inputs_take_the_dims_the_given_values_bind():
    x = gx.input("x", ("batch", 3))
    k = gx.input("k", ("batch",), "int64")
    values, note = cli.input_values([x, k], {"x": np.ones((5, 3))}, Path("m.py"))
    assert values[k].shape == (5,)
    assert note == "random normal values (seed 0) for k"


@pytest.mark.parametrize("spec, path, name", [
    ("model.py", "model.py", "output"),
    ("model.py:loss", "model.py", "loss"),
    ("dir/model.py:f2", "dir/model.py", "f2"),
    ("C:\\work\\model.py", "C:\\work\\model.py", "output"),
    ("C:\\work\\model.py:f", "C:\\work\\model.py", "f"),
])
def test_split_target(spec, path, name):
    assert cli.split_target(spec) == (Path(path), name)


# -- mistakes: one line on stderr, exit status 2 --------------------------------------------

BROKEN = """\
import graphc as gx
x = gx.input("x", (3,))
y = gx.sum(x)
count = 3
values_list = [1.0]
def raises():
    return {}["missing"]
def needs(a, b=1):
    return a
def returns_string():
    return "y"
def main() -> None:
    print("the script's own work")
"""


@pytest.mark.parametrize("target, options, message", [
    ("missing.py:y", [], "no such file: {dir}/missing.py"),
    (".:y", [], "not a file: ."),
    ("model.py:nothing", [], "{dir}/model.py defines no 'nothing' (names it defines that can "
                             "be drawn: raises, returns_string, x, y)"),
    ("model.py", [], "{dir}/model.py defines no 'output'"),
    ("model.py:count", [], "count is an int, not a tensor, a list of tensors"),
    ("model.py:values_list", [], "values_list is a list holding a float, not a tensor"),
    ("model.py:raises", [], "raises() raised at line 7: KeyError: 'missing'"),
    ("model.py:needs", [], "needs takes arguments (a); graphc draw calls it with none"),
    ("model.py:returns_string", [], "returns_string() is a str, not a tensor"),
    ("model.py:main", [], "main is annotated to return None: nothing to draw"),
    ("model.py:y", ["--collapse", "layer1"], "cannot draw y: ValueError: collapse='layer1': "
                                             "the graph has no such scope"),
    ("model.py:x", ["--backward"], "cannot draw x: GradientError: backward=True needs a "
                                   "scalar output"),
    ("model.py:9bad", [], "'{dir}/model.py:9bad': the NAME after ':' must be a Python identifier"),
])
def test_mistakes_in_the_target(capsys, tmp_path, target, options, message):
    (tmp_path / "model.py").write_text(BROKEN)
    target = target if target.startswith(".") else f"{tmp_path}/{target}"
    status, out, err = graphc("draw", target, "-o", tmp_path / "o.svg", *options, capsys=capsys)
    assert status == 2
    assert out == ""
    assert err.startswith("graphc draw: error: ") and err.count("\n") == 1
    assert message.format(dir=tmp_path) in err


@pytest.mark.parametrize("source, message", [
    ("import graphc as gx\nx = gx.input('x', ())\ny = x / 0\nraise RuntimeError('boom')\n",
     "failed at line 4: RuntimeError: boom"),
    ("y = (\n", "failed at line 1: SyntaxError"),
    ("import sys\nsys.exit(3)\n", "failed at line 2: SystemExit: 3"),
    ("import graphc as gx\ngx.input('x', (2,)) + gx.input('y', (3,))\n",
     "failed at line 2: GraphcTypeError: "),
    ("import graphc as gx\nx = gx.input('x', (3,))\ny = x.sum()\nvalues = [1, 2]\n",
     "`values` in {path} is a list holding an int; --values needs a dict of input name -> array"),
    ("import graphc as gx\nx = gx.input('x', (3,))\ny = x.sum()\nvalues = {'x': [1.0, 2.0]}\n",
     "cannot draw y: ArgumentError: "),
])
def test_mistakes_in_the_file(capsys, script, tmp_path, source, message):
    path = script(source)
    status, _, err = graphc("draw", f"{path}:y", "-o", tmp_path / "o.svg", "--values",
                            capsys=capsys)
    assert status == 2
    assert err.startswith("graphc draw: error: ") and err.count("\n") == 1
    assert message.format(path=path) in err


def test_an_unknown_output_format(capsys, script, tmp_path):
    path = script("import graphc as gx\ny = gx.input('y', ())\n")
    status, _, err = graphc("draw", f"{path}:y", "-o", tmp_path / "y.pdf", capsys=capsys)
    assert status == 2
    assert err == f"graphc draw: error: cannot write {tmp_path}/y.pdf: the suffix must be " \
                  "one of .svg, .png, .dot, .gv\n"


@pytest.mark.parametrize("argv, status, stream, expected", [
    ([], 2, "err", "the following arguments are required: COMMAND"),
    (["--help"], 0, "out", "draw      draw a graph built by a Python file"),
    (["--help"], 0, "out", "demo      train an MLP on the digits dataset and draw it"),
    (["demo", "--help"], 0, "out", "writes forward.svg, backward.svg and loss.png"),
    (["demo", "--epochs", "0"], 2, "err", "graphc demo: error: --epochs must be at least 1"),
    (["draw", "--help"], 0, "out", "Without :NAME, the file's module-level `output` is drawn"),
    (["draw", "x.py"], 2, "err", "the following arguments are required: -o/--output"),
    (["draw", "x.py", "-o", "x.svg", "--summary", "all"], 2, "err", "invalid choice: 'all'"),
    (["paint"], 2, "err", "invalid choice: 'paint'"),
])
def test_command_line_usage(capsys, argv, status, stream, expected):
    code, out, err = graphc(*argv, capsys=capsys)
    assert code == status
    assert expected in (out if stream == "out" else err)


def test_python_dash_m_graphc_exits_2_without_a_traceback(tmp_path):
    done = subprocess.run([sys.executable, "-m", "graphc", "draw", "nope.py:f", "-o", "f.svg"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert done.returncode == 2
    assert done.stderr == "graphc draw: error: no such file: nope.py\n"


def test_the_console_script_draws_an_example(tmp_path):
    script = Path(sys.executable).parent / "graphc"
    done = subprocess.run([str(script), "draw", f"{EXAMPLES / 'fxyz.py'}:f", "-o", "f.svg",
                           "--backward"], capture_output=True, text=True, cwd=tmp_path,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "wrote f.svg\n"
    assert ("×", ("-3.000",), ("1.000",)) in svg_nodes(tmp_path / "f.svg")
