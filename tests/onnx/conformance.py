"""The ONNX backend test suite (node and model cases), run through graphc.

Not collected by a plain ``pytest`` (the file name does not start with ``test_``);
run it by path, on either graphc backend:

    pytest tests/onnx/conformance.py                  # numpy
    pytest tests/onnx/conformance.py --backend llvm   # llvm

Cases graphc does not run are listed, each with its reason, in ``exclusions.txt``
next to this file: a line is a regular expression over case names (without the
``_cpu`` suffix) followed by the reason, optionally after ``llvm: `` or ``numpy: `` when
it holds for one backend only.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

import onnx.backend.test

from graphc.onnx.backend import backend

EXCLUSIONS = Path(__file__).with_name("exclusions.txt")
BACKENDS = ("numpy", "llvm")


def exclusions(path: Path = EXCLUSIONS, backend: str = "numpy") -> dict[str, str]:
    """``{pattern: reason}`` from the exclusions file, for one graphc backend.

    A line ``pattern reason`` holds on every backend; ``llvm: pattern reason`` only on
    the one named.
    """
    result = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        only, _, rest = line.partition(": ")
        if only in BACKENDS:
            if only != backend:
                continue
            line = rest
        pattern, _, reason = line.partition(" ")
        if not reason.strip():
            raise ValueError(f"{path}: exclusion {pattern!r} has no reason")
        re.compile(pattern)
        result[pattern] = reason.strip()
    return result


BACKEND = os.environ.get("GRAPHC_BACKEND") or "numpy"
with warnings.catch_warnings():  # the case generators overflow casts on purpose
    warnings.simplefilter("ignore")
    _suite = onnx.backend.test.BackendTest(backend(BACKEND), __name__)
    for _pattern in exclusions(backend=BACKEND):
        _suite.exclude(f"^(?:{_pattern})_cpu$")

# the node cases, and the model cases: the "real" ones are the nine light CNNs shipped
# with onnx (AlexNet ... ZFNet, dummy weights), the others small PyTorch-made models
OnnxBackendNodeModelTest = _suite.test_cases["OnnxBackendNodeModelTest"]
OnnxBackendRealModelTest = _suite.test_cases["OnnxBackendRealModelTest"]
OnnxBackendSimpleModelTest = _suite.test_cases["OnnxBackendSimpleModelTest"]
OnnxBackendPyTorchConvertedModelTest = _suite.test_cases["OnnxBackendPyTorchConvertedModelTest"]
OnnxBackendPyTorchOperatorModelTest = _suite.test_cases["OnnxBackendPyTorchOperatorModelTest"]
