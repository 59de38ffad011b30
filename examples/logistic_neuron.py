"""The logistic neuron a = σ(w0·x0 + w1·x1 + w2), the cs231n backprop example.

At w = (2, −3, −3) and x = (−1, −2): the weighted sum is 1, a = σ(1) ≈ 0.731, and
σ'(1) = a(1 − a) ≈ 0.197 flows back to every input: ∂a/∂x0 = w0·0.197 ≈ 0.393,
∂a/∂w0 = x0·0.197 ≈ −0.197, ∂a/∂x1 ≈ −0.590, ∂a/∂w1 ≈ −0.393, ∂a/∂w2 ≈ 0.197.
"""

import graphc as gx

x0, x1 = gx.input("x0", ()), gx.input("x1", ())
w0, w1, w2 = gx.input("w0", ()), gx.input("w1", ()), gx.input("w2", ())
a = gx.sigmoid(w0 * x0 + w1 * x1 + w2)
wrt = [x0, w0, x1, w1, w2]

neuron = gx.compile([x0, x1, w0, w1, w2], [a, *gx.grad(a, wrt)])
value, *grads = neuron(-1.0, -2.0, 2.0, -3.0, -3.0)
print(f"logistic neuron: a = {float(value):.3f}")
for name, g in zip(["x0", "w0", "x1", "w1", "w2"], grads, strict=True):
    print(f"  da/d{name} = {float(g):+.3f}")
