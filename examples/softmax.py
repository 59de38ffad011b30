"""Softmax turns scores into probabilities: softmax(z)ᵢ = e^(zᵢ) / Σⱼ e^(zⱼ).

For z = [0.5, 0.5, 0.1, 0.7] it gives ≈ [0.257, 0.257, 0.172, 0.314]; graphc
computes it stably, subtracting max(z) first.
"""

import numpy as np

import graphc as gx

z = gx.input("z", (4,), "float64")
probs = gx.softmax(z).eval({z: np.array([0.5, 0.5, 0.1, 0.7])})
print("softmax([0.5, 0.5, 0.1, 0.7]) =", np.round(probs, 3))
