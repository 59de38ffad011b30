"""The pass count of the ONNX conformance run, printed at the end of the session."""

from __future__ import annotations

import os

import pytest


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    def node_cases(kind: str) -> int:
        return sum(1 for r in terminalreporter.stats.get(kind, [])
                   if "conformance.py::" in r.nodeid and r.nodeid.endswith("_cpu"))

    ran = node_cases("passed") + node_cases("failed")
    if ran:
        backend = os.environ.get("GRAPHC_BACKEND") or "numpy"
        terminalreporter.write_line(
            f"ONNX backend node cases on graphc {backend}: {node_cases('passed')} passed, "
            f"{node_cases('failed')} failed, {node_cases('skipped')} excluded")
