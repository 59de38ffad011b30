"""Backprop by hand, by graph: f(x, y, z) = (x + y)(y − z) at (1, 2, 3).

The forward pass gives f = 3 · (−1) = −3. Backward, with q = x + y and r = y − z:
∂f/∂x = r = −1, ∂f/∂y = r + q = 2, ∂f/∂z = −q = −3.
"""

import graphc as gx

x, y, z = gx.input("x", ()), gx.input("y", ()), gx.input("z", ())
f = (x + y) * (y - z)
df_dx, df_dy, df_dz = gx.grad(f, [x, y, z])

step = gx.compile([x, y, z], [f, df_dx, df_dy, df_dz])
values = step(1.0, 2.0, 3.0)
print("f(x, y, z) = (x + y)(y - z) at (1, 2, 3)")
print("  f = {:g}, df/dx = {:g}, df/dy = {:g}, df/dz = {:g}".format(*map(float, values)))
print("generated code:")
print(step.source)
