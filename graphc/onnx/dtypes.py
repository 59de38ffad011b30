"""ONNX element types as graphc (NumPy) dtype names, both ways."""

from __future__ import annotations

import numpy as np
from onnx import TensorProto

#: the ONNX element types graphc represents; the others (bfloat16, float8, int4,
#: string, complex) have no NumPy dtype graphc supports
TO_GRAPHC: dict[int, str] = {
    TensorProto.FLOAT: "float32", TensorProto.DOUBLE: "float64",
    TensorProto.FLOAT16: "float16", TensorProto.BOOL: "bool",
    TensorProto.INT8: "int8", TensorProto.INT16: "int16", TensorProto.INT32: "int32",
    TensorProto.INT64: "int64", TensorProto.UINT8: "uint8", TensorProto.UINT16: "uint16",
    TensorProto.UINT32: "uint32", TensorProto.UINT64: "uint64",
}
TO_ONNX: dict[str, int] = {v: k for k, v in TO_GRAPHC.items()}


def onnx_type_name(elem_type: int) -> str:
    try:
        return TensorProto.DataType.Name(elem_type)
    except ValueError:
        return f"type {elem_type}"


def to_graphc(elem_type: int) -> str:
    """The graphc dtype of an ONNX element type; ``TypeError`` if graphc has none."""
    try:
        return TO_GRAPHC[elem_type]
    except KeyError:
        raise TypeError(f"ONNX element type {onnx_type_name(elem_type)} has no graphc dtype "
                        f"(graphc supports {', '.join(TO_GRAPHC.values())})") from None


def to_onnx(dtype: object) -> int:
    """The ONNX element type of a graphc or NumPy dtype."""
    return TO_ONNX[np.dtype(dtype).name]  # type: ignore[call-overload]
