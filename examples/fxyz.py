"""Backprop by hand, by graph: f(x, y, z) = (x + y)(y − z) at (1, 2, 3).

The forward pass gives f = 3 · (−1) = −3. Backward, with q = x + y and r = y − z:
∂f/∂x = r = −1, ∂f/∂y = r + q = 2, ∂f/∂z = −q = −3.

Run it to print the values and the generated code, and to draw the graph with every
node's value (green) and gradient (red) into $GRAPHC_OUT (default ``out/``). The same
drawing from the command line: ``graphc draw examples/fxyz.py:f -o fxyz.svg --backward``.
"""

import os
from pathlib import Path

import graphc as gx
from graphc import viz

x, y, z = gx.input("x", ()), gx.input("y", ()), gx.input("z", ())
f = (x + y) * (y - z)
values = {"x": 1.0, "y": 2.0, "z": 3.0}


def main() -> None:
    df_dx, df_dy, df_dz = gx.grad(f, [x, y, z])
    step = gx.compile([x, y, z], [f, df_dx, df_dy, df_dz])
    results = step(*values.values())
    print("f(x, y, z) = (x + y)(y - z) at (1, 2, 3)")
    print("  f = {:g}, df/dx = {:g}, df/dy = {:g}, df/dz = {:g}".format(*map(float, results)))
    print("generated code:")
    print(step.source)

    out = Path(os.environ.get("GRAPHC_OUT", "out"))
    print("drawn:", viz.save(f, out / "fxyz.svg", values=values, backward=True))


if __name__ == "__main__":
    main()
