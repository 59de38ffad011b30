"""graphc's command line: ``graphc SUBCOMMAND ...`` (also ``python -m graphc``).

Subcommands live in a registry. Each is registered with ``@subcommand(name, summary,
arguments)`` on the function that runs it: ``arguments`` adds its options to an argparse
parser, the function's docstring is its ``--help`` description, and it returns the exit
status. A subcommand reports a mistake in what the user asked for by raising
``UsageError``: ``main`` prints it as one line on stderr and returns 2, never a traceback.
"""

from __future__ import annotations

import argparse
import inspect
import runpy
import sys
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

#: The exit status of every user error, as argparse uses for its own.
EXIT_USAGE = 2


class UsageError(Exception):
    """A mistake in the command line or in the file it names: one line, exit status 2."""


@dataclass(frozen=True)
class Subcommand:
    """One ``graphc NAME``: its one-line summary, its arguments and what runs it."""

    name: str
    summary: str
    arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


SUBCOMMANDS: dict[str, Subcommand] = {}


def subcommand(name: str, summary: str, arguments: Callable[[argparse.ArgumentParser], None]
               ) -> Callable[[Callable[[argparse.Namespace], int]],
                             Callable[[argparse.Namespace], int]]:
    """Register the decorated function as ``graphc NAME``."""
    def register(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
        if name in SUBCOMMANDS:
            raise ValueError(f"the subcommand {name!r} is registered twice")
        SUBCOMMANDS[name] = Subcommand(name, summary, arguments, run)
        return run
    return register


def build_parser() -> argparse.ArgumentParser:
    """The ``graphc`` parser, one sub-parser per registered subcommand."""
    parser = argparse.ArgumentParser(
        prog="graphc", description="graphc: a symbolic graph compiler for neural networks.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True,
                                     title="commands")
    for command in SUBCOMMANDS.values():
        sub = commands.add_parser(command.name, help=command.summary,
                                  description=inspect.getdoc(command.run),
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
        command.arguments(sub)
        sub.set_defaults(run=command.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``graphc`` with ``argv`` (default: ``sys.argv[1:]``); return the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as done:  # --help (status 0) or an argparse usage error (status 2)
        return done.code if isinstance(done.code, int) else EXIT_USAGE
    try:
        return args.run(args)
    except UsageError as error:
        print(f"graphc {args.command}: error: {error}", file=sys.stderr)
        return EXIT_USAGE


def one_line(error: BaseException) -> str:
    """``Type: message`` on one line (graphc's build errors span several lines)."""
    text = "; ".join(line.strip() for line in str(error).splitlines() if line.strip())
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


# -- graphc draw --------------------------------------------------------------------------------

#: What ``graphc draw FILE.py`` draws when no ``:NAME`` is given.
DEFAULT_NAME = "output"
#: The module-level dict ``--values`` feeds from, input name -> array.
VALUES_NAME = "values"
#: Formats ``graphc.viz.save`` writes, chosen by the output's suffix (``.gv`` is DOT too).
FORMATS = (".svg", ".png", ".dot", ".gv")
#: Random inputs: the seed, and the size each symbolic dim takes.
SEED = 0
SYMBOLIC_DIM_SIZE = 2
#: ``__name__`` of the file while it runs: code under ``if __name__ == "__main__":`` does not.
RUN_NAME = "__graphc_draw__"


def _draw_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "target", metavar="FILE.py[:NAME]",
        help=f"the file that builds the graph, and the name of what to draw (default: "
             f"{DEFAULT_NAME})")
    parser.add_argument("-o", "--output", required=True, type=Path, metavar="OUT",
                        help="the file to write; its suffix picks the format: "
                             + ", ".join(FORMATS))
    parser.add_argument(
        "--values", action="store_true",
        help=f"evaluate the graph and show every node's value (in green); inputs take the "
             f"file's module-level dict `{VALUES_NAME}` (input name -> array) where it has "
             f"them, else seeded random normal values (seed {SEED}; each symbolic dim of size "
             f"{SYMBOLIC_DIM_SIZE}; integer inputs 0 or 1)")
    parser.add_argument(
        "--backward", action="store_true",
        help="also show the gradient of the (scalar) output with respect to every node, in "
             "red; implies --values")
    parser.add_argument("--optimized", action="store_true",
                        help="draw the graph after gx.optimize (fused kernels are dashed boxes)")
    parser.add_argument("--collapse", nargs="+", action="extend", default=[], metavar="SCOPE",
                        help="fold each scope named into one box: a gx.scope path "
                             "(mlp/layer1) or its last part (layer1)")
    parser.add_argument("--summary", choices=("stats", "values"), default="stats",
                        help="what a tensor's label shows: mean/min/max (stats, the default) "
                             "or its first few values")


@subcommand("draw", "draw a graph built by a Python file, as SVG, PNG or DOT", _draw_arguments)
def draw(args: argparse.Namespace) -> int:
    """Draw a graph that a Python file builds.

    FILE.py is run as a module (not as __main__, so the code under
    `if __name__ == "__main__":` does not run), then NAME is drawn. NAME may be a tensor,
    a list of tensors, a gx.Graph, a compiled function (drawn before optimization, or as
    compiled with --optimized), or a function of no arguments returning one of these.
    Without :NAME, the file's module-level `output` is drawn.

    examples:
      graphc draw examples/fxyz.py:f -o fxyz.svg --values --backward
      graphc draw examples/mlp_backprop.py:loss -o mlp.svg --optimized --collapse layer2
    """
    import graphc as gx
    from graphc import viz  # graphviz loads only when something is drawn

    if args.output.suffix.lower() not in FORMATS:
        raise UsageError(f"cannot write {args.output}: the suffix must be one of "
                         + ", ".join(FORMATS))
    path, name = split_target(args.target)
    namespace = run_file(path)
    target = drawable(namespace, name, path, optimized=args.optimized)
    values, note = None, None
    if args.values or args.backward:
        values, note = input_values(target, namespace.get(VALUES_NAME), path)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    try:
        written = viz.save(target, args.output, values=values, backward=args.backward,
                           summary=args.summary, collapse=args.collapse or None)
    except (gx.GraphcError, ArithmeticError, LookupError, OSError, RuntimeError, TypeError,
            ValueError) as error:
        # a wrong input shape in `values`, a backward pass of a non-scalar output, a scope
        # not in the graph, an unwritable path, no renderer: one line, not a traceback
        raise UsageError(f"cannot draw {name}: {one_line(error)}") from error
    if note:
        print(f"graphc draw: {note}", file=sys.stderr)
    print(f"wrote {written}")
    return 0


def split_target(spec: str) -> tuple[Path, str]:
    """``"FILE.py:NAME"`` -> ``(Path("FILE.py"), "NAME")``; without ``:NAME`` the default.
    A colon that is part of the path (``C:\\model.py``) stays in the path."""
    head, colon, tail = spec.rpartition(":")
    if not colon or not (head.endswith(".py") or tail.isidentifier()):
        return Path(spec), DEFAULT_NAME
    if not tail.isidentifier():
        raise UsageError(f"{spec!r}: the NAME after ':' must be a Python identifier")
    return Path(head), tail


def run_file(path: Path) -> dict[str, Any]:
    """Run ``path`` as a module (its folder first on ``sys.path``, as for a script) and
    return its globals. Whatever it raises becomes one ``UsageError`` line."""
    if not path.exists():
        raise UsageError(f"no such file: {path}")
    if not path.is_file():
        raise UsageError(f"not a file: {path}")
    folder = str(path.resolve().parent)
    sys.path.insert(0, folder)
    try:
        return runpy.run_path(str(path), run_name=RUN_NAME)
    except (Exception, SystemExit) as error:  # any failure of user code
        raise UsageError(f"running {path} failed{_where(error, path)}: {one_line(error)}") \
            from error
    finally:
        sys.path.remove(folder)


def _where(error: BaseException, path: Path) -> str:
    """`` at line N``: the last line of ``path`` the error passed through, if any."""
    if isinstance(error, SyntaxError) and error.lineno:
        return f" at line {error.lineno}"
    here = path.resolve()
    lines = [frame.lineno for frame in traceback.extract_tb(error.__traceback__)
             if Path(frame.filename).resolve() == here]
    return f" at line {lines[-1]}" if lines else ""


def drawable(namespace: dict[str, Any], name: str, path: Path, *,
             optimized: bool = False) -> Any:
    """What to hand to ``graphc.viz``: ``namespace[name]`` as a tensor, a list of tensors or
    a ``Graph``, run through ``gx.optimize`` if ``optimized``.

    A function of no arguments is called and its result taken instead. A compiled function
    gives its graph before optimization, or the graph it runs if ``optimized``.
    """
    import graphc as gx

    if name not in namespace:
        names = ", ".join(_drawable_names(namespace)) or "none"
        raise UsageError(f"{path} defines no {name!r} (names it defines that can be drawn: "
                         f"{names})")
    obj = namespace[name]
    if inspect.isfunction(obj) or inspect.ismethod(obj):
        obj, name = _call(obj, name, path), f"{name}()"
    if isinstance(obj, gx.Compiled):
        return obj.graph if optimized else obj.unoptimized
    if isinstance(obj, list | tuple) and obj and all(isinstance(t, gx.Tensor) for t in obj):
        obj = list(obj)
    elif not isinstance(obj, gx.Tensor | gx.Graph):
        raise UsageError(f"{name} is {_a(obj)}, not a tensor, a list of tensors, a gx.Graph, "
                         "a compiled function or a function returning one")
    if not optimized:
        return obj
    try:
        return gx.optimize(obj)
    except (gx.GraphcError, ArithmeticError, LookupError, TypeError, ValueError) as error:
        raise UsageError(f"optimizing {name} failed: {one_line(error)}") from error


def _call(function: Callable[[], Any], name: str, path: Path) -> Any:
    """Call a function of no required arguments; its failures become ``UsageError``."""
    required = _required_parameters(function)
    if required:
        raise UsageError(f"{name} takes arguments ({', '.join(required)}); graphc draw "
                         "calls it with none")
    if _returns_none(function):  # a script's main(): calling it would only run the script
        raise UsageError(f"{name} is annotated to return None: nothing to draw")
    try:
        return function()
    except Exception as error:  # any failure of user code
        raise UsageError(f"{name}() raised{_where(error, path)}: {one_line(error)}") \
            from error


def _required_parameters(function: Callable[..., Any]) -> list[str]:
    """The parameters a call must pass (none without defaults means it can be called bare)."""
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):  # no signature to read: let the call decide
        return []
    return [p.name for p in parameters
            if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


def _returns_none(function: Callable[..., Any]) -> bool:
    """Is the function annotated ``-> None`` (also as the string of postponed annotations)?"""
    try:
        annotation = inspect.signature(function).return_annotation
    except (TypeError, ValueError):
        return False
    return annotation is None or annotation == "None"


def _a(obj: Any) -> str:
    """``"a str"``, ``"an int"``, ``"an empty list"``, ``"a list holding a float"``: the
    kind of a thing, for messages."""
    kind = type(obj).__name__
    if isinstance(obj, list | tuple) and not obj:
        kind = f"empty {kind}"
    article = "an" if kind[0] in "aeiou" else "a"
    if isinstance(obj, list | tuple):
        import graphc as gx
        odd = next((item for item in obj if not isinstance(item, gx.Tensor)), None)
        if odd is not None:
            return f"{article} {kind} holding {_a(odd)}"
    return f"{article} {kind}"


def _drawable_names(namespace: dict[str, Any]) -> list[str]:
    """The file's own module-level names that look drawable, for the "no such name" error."""
    import graphc as gx

    def looks_drawable(value: Any) -> bool:
        if isinstance(value, gx.Tensor | gx.Graph | gx.Compiled):
            return True
        if isinstance(value, list | tuple):
            return bool(value) and all(isinstance(v, gx.Tensor) for v in value)
        return (inspect.isfunction(value) and value.__module__ == RUN_NAME
                and not _required_parameters(value) and not _returns_none(value))

    return sorted(k for k, v in namespace.items() if not k.startswith("_") and looks_drawable(v))


def input_values(target: Any, given: Any, path: Path) -> tuple[dict[Any, Any], str | None]:
    """A value for every input of ``target``: from ``given`` (the file's ``values`` dict,
    keyed by input or input name) where it has one, else seeded random normal values.
    Symbolic dims take the sizes the given values bind, else size 2. Also returns a note
    saying which inputs were made up and which symbolic dims were given size 2."""
    import graphc as gx

    if given is None:
        given = {}
    if not isinstance(given, dict):
        raise UsageError(f"`{VALUES_NAME}` in {path} is {_a(given)}; --values needs a dict of "
                         "input name -> array")
    if isinstance(target, gx.Graph):
        inputs = list(target.inputs)
    else:
        outputs = [target] if isinstance(target, gx.Tensor) else list(target)
        inputs = [n for n in gx.toposort(outputs) if n.op.name == "input"]
    # kept as given: a Python scalar or list takes the input's dtype when evaluated
    values = {node: given[node] if node in given else given[node.name] for node in inputs
              if node in given or node.name in given}
    sizes = {d: n for node, value in values.items()
             for d, n in zip(node.shape, np.shape(value), strict=False) if isinstance(d, str)}
    rng = np.random.default_rng(SEED)
    made_up: list[str] = []
    unbound: set[str] = set()
    for node in inputs:
        if node in values:
            continue
        unbound.update(d for d in node.shape if isinstance(d, str) and d not in sizes)
        shape = tuple(sizes.get(d, SYMBOLIC_DIM_SIZE) if isinstance(d, str) else d
                      for d in node.shape)
        values[node] = _random_array(rng, shape, node.dtype)
        made_up.append(node.name)
    if not made_up:
        return values, None
    note = f"random normal values (seed {SEED}) for {', '.join(made_up)}"
    if unbound:
        note += f"; symbolic dims {', '.join(sorted(unbound))} of size {SYMBOLIC_DIM_SIZE}"
    return values, note


def _random_array(rng: np.random.Generator, shape: tuple[int, ...], dtype: str) -> np.ndarray:
    """Normal values for floats; 0 or 1 for integers and booleans (valid as any index)."""
    if np.dtype(dtype).kind == "f":
        return rng.standard_normal(shape).astype(dtype)
    return rng.integers(0, 2, shape).astype(dtype)


# -- graphc demo --------------------------------------------------------------------------------

def _demo_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-o", "--out", type=Path, default=Path("out/demo"), metavar="DIR",
                        help="the folder the drawings and the loss curve go to "
                             "(default: out/demo)")
    parser.add_argument("--epochs", type=int, default=60, help="training epochs (default: 60)")
    parser.add_argument("--no-progress", dest="progress", action="store_false",
                        help="no progress bar")


@subcommand("demo", "train an MLP on the digits dataset and draw it: the whole story",
            _demo_arguments)
def demo(args: argparse.Namespace) -> int:
    """Train an MLP on scikit-learn's 8x8 digits, end to end.

    Prints the model's summary, compiles the training step (its time and what the
    optimizer did), trains with a progress bar, reports test accuracy and steps/s on each
    backend, and writes forward.svg, backward.svg and loss.png into the output folder.
    """
    from graphc import demo as the_demo

    if args.epochs < 1:
        raise UsageError(f"--epochs must be at least 1, got {args.epochs}")
    the_demo.run(args.out, epochs=args.epochs, progress=args.progress)
    return 0
