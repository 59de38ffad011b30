"""ONNX in and out of graphc.

``gx.onnx.load(model)`` imports an ONNX model (a path, bytes or ``onnx.ModelProto``)
as a graphc graph; ``gx.onnx.save(graph_or_compiled, path)`` writes a graphc graph
as ONNX; ``graphc.onnx.backend`` runs ONNX models through graphc for the ONNX
backend test suite.
"""

from graphc.onnx import handlers as _handlers  # noqa: F401  (registers every op)
from graphc.onnx.exporter import save
from graphc.onnx.importer import NeedsValue, OnnxImportError, OnnxModel, load
from graphc.onnx.registry import supported_ops

__all__ = ["NeedsValue", "OnnxImportError", "OnnxModel", "load", "save", "supported_ops"]
