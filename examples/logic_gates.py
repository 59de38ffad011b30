"""Logic gates and XOR from threshold neurons a = θ(Σ wⱼxⱼ − w₀).

AND fires on x1 + x2 − 3/2, OR on x1 + x2 − 1/2, NOT on −x1 + 1/2. XOR is not
linearly separable, so it takes a hidden layer; two classic constructions:

1. OR minus AND:   XOR = θ(OR − AND − 1/2)
2. two one-sided:  XOR = θ((x1 ∧ ¬x2) + (¬x1 ∧ x2) − 1/2),
   with x1 ∧ ¬x2 = θ(x1 − x2 − 1/2) and ¬x1 ∧ x2 = θ(−x1 + x2 − 1/2)
"""

import numpy as np

import graphc as gx

x1 = gx.input("x1", (4,), "float64")
x2 = gx.input("x2", (4,), "float64")
step = gx.heaviside

gates = {
    "AND": step(x1 + x2 - 1.5),
    "OR": step(x1 + x2 - 0.5),
    "NOT x1": step(-x1 + 0.5),
    "XOR (OR - AND)": step(step(x1 + x2 - 0.5) - step(x1 + x2 - 1.5) - 0.5),
    "XOR (one-sided)": step(step(x1 - x2 - 0.5) + step(-x1 + x2 - 0.5) - 0.5),
}

table = gx.compile([x1, x2], list(gates.values()))
a = np.array([0.0, 0.0, 1.0, 1.0])
b = np.array([0.0, 1.0, 0.0, 1.0])
print("x1 x2 | " + " | ".join(gates))
for row, outs in enumerate(zip(*table(a, b), strict=True)):
    cells = " | ".join(f"{int(o):^{len(name)}d}" for o, name in zip(outs, gates, strict=True))
    print(f" {int(a[row])}  {int(b[row])} | {cells}")
