"""ONNX op handlers, one module per family; importing this package registers them all."""

from __future__ import annotations

import importlib

FAMILIES = ("elementwise", "reduce", "shape", "nn", "attention", "rnn", "losses", "quant",
            "signal", "control", "training", "image")

for _family in FAMILIES:
    importlib.import_module(f"{__name__}.{_family}")
