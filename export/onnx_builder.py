"""Write ONNX graphs op by op, one line per node.

The end-to-end graphs' preprocessing (loudness, looping, STFT, filterbanks, face resizing)
has no PyTorch module to trace: it is numpy code in ``s2f.runtime``. It is written here as
ONNX nodes directly, with standard operators only, so that every ONNX runtime can run it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from onnx import GraphProto, NodeProto, TensorProto, ValueInfoProto, helper, numpy_helper

DOUBLE, FLOAT, INT64, UINT8 = TensorProto.DOUBLE, TensorProto.FLOAT, TensorProto.INT64, TensorProto.UINT8


class GraphBuilder:
    """Nodes and constants with fresh names under ``prefix``; ``op`` returns the output name(s),
    so expressions nest the way the numpy code they mirror does."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.nodes: list[NodeProto] = []
        self.initializers: list[TensorProto] = []
        self._count = 0

    def _name(self, hint: str) -> str:
        self._count += 1
        return f"{self.prefix}/{hint}_{self._count}"

    def const(self, value: Any, dtype: type = np.float64) -> str:
        """A constant tensor (stored in the graph: these are small, computed tables, not weights)."""
        tensor = numpy_helper.from_array(np.asarray(value, dtype=dtype), self._name("const"))
        self.initializers.append(tensor)
        return tensor.name

    def ints(self, *values: int) -> str:
        return self.const(list(values), np.int64)

    def scalar(self, value: float, dtype: type = np.float64) -> str:
        return self.const(np.asarray(value, dtype=dtype), dtype)

    def op(self, op_type: str, *inputs: str, outputs: int = 1, output: str | None = None,
           **attributes: Any) -> Any:
        """Append one node; ``output`` names its (single) result, otherwise a fresh name is used."""
        names = [output] if output else [self._name(op_type) for _ in range(outputs)]
        self.nodes.append(helper.make_node(op_type, list(inputs), names, name=self._name(op_type + "_node"),
                                           **attributes))
        return names[0] if outputs == 1 else tuple(names)

    def graph(self, name: str, inputs: list[ValueInfoProto], outputs: list[ValueInfoProto]) -> GraphProto:
        return helper.make_graph(self.nodes, name, inputs, outputs, initializer=self.initializers)


def tensor_info(name: str, dtype: int, shape: list[int | str]) -> ValueInfoProto:
    return helper.make_tensor_value_info(name, dtype, shape)
