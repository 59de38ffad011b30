"""The pass count of the ONNX conformance run, printed at the end of the session."""

from __future__ import annotations

import os

import pytest


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    def cases(kind: str, node: bool) -> int:
        return sum(1 for r in terminalreporter.stats.get(kind, [])
                   if "conformance.py::" in r.nodeid and r.nodeid.endswith("_cpu")
                   and ("::OnnxBackendNodeModelTest::" in r.nodeid) == node)

    backend = os.environ.get("GRAPHC_BACKEND") or "numpy"
    for node, what in ((True, "node cases"), (False, "model cases")):
        if cases("passed", node) + cases("failed", node):
            terminalreporter.write_line(
                f"ONNX backend {what} on graphc {backend}: {cases('passed', node)} passed, "
                f"{cases('failed', node)} failed, {cases('skipped', node)} excluded")
