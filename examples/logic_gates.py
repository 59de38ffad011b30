"""Logic gates and XOR from threshold neurons a = θ(Σ wⱼxⱼ − w₀), then XOR learned.

AND fires on x1 + x2 − 3/2, OR on x1 + x2 − 1/2, NOT on −x1 + 1/2. XOR is not
linearly separable, so it takes a hidden layer; two classic constructions:

1. OR minus AND:   XOR = θ(OR − AND − 1/2)
2. two one-sided:  XOR = θ((x1 ∧ ¬x2) + (¬x1 ∧ x2) − 1/2),
   with x1 ∧ ¬x2 = θ(x1 − x2 − 1/2) and ¬x1 ∧ x2 = θ(−x1 + x2 − 1/2)

The step θ has no useful gradient, so those weights are set by hand. Swap θ for the
sigmoid σ and the same 2-2-1 network can *learn* XOR from random weights: gradient
descent on the binary cross-entropy of its four rows (Adam, full batch). The learned
weights are one more construction: each hidden unit is a soft half-plane, and the
output unit combines the two.
"""

import numpy as np

import graphc as gx
from graphc import nn, optim

ROWS = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
XOR = np.array([[0.0], [1.0], [1.0], [0.0]])


def threshold_gates() -> None:
    """Print the truth table of the hand-wired threshold neurons."""
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
    a, b = ROWS[:, 0], ROWS[:, 1]
    print("x1 x2 | " + " | ".join(gates))
    for row, outs in enumerate(zip(*table(a, b), strict=True)):
        cells = " | ".join(f"{int(o):^{len(name)}d}" for o, name in zip(outs, gates, strict=True))
        print(f" {int(a[row])}  {int(b[row])} | {cells}")


def learned_xor(steps: int = 1000, lr: float = 0.1, seed: int = 1) -> None:
    """Train a 2-2-1 sigmoid network on XOR from random weights; print what it learned."""
    model = nn.Sequential([nn.Dense(2, "sigmoid"), nn.Dense(1, "sigmoid")], seed=seed)
    x = gx.input("x", (4, 2), "float64")
    target = gx.input("target", (4, 1), "float64")
    loss = gx.binary_cross_entropy(model(x), target, reduction="mean")
    # one compiled call = forward, backward and the Adam step of every weight
    train_step = gx.compile([x, target], loss,
                            updates=optim.Adam(lr).minimize(loss, model.params()))
    for _ in range(steps):
        value = train_step(ROWS, XOR)
    outputs = gx.compile([x], model(x, training=False))(ROWS)

    print(f"\nXOR learned by a 2-2-1 sigmoid network (seed {seed}, Adam lr {lr}, "
          f"{steps} steps): loss = {float(value):.4f}")
    print("x1 x2 | output | rounded")
    for (a, b), (out,) in zip(ROWS, outputs, strict=True):
        print(f" {a:.0f}  {b:.0f} | {out:6.3f} | {round(out):4d}")
    print("learned weights (W is (in, out), the thresholds w0 are -b):")
    for name, param in model.named_params().items():
        print(f"  {name} = {np.round(param.value, 2).tolist()}")


def main() -> None:
    threshold_gates()
    learned_xor()


if __name__ == "__main__":
    main()
