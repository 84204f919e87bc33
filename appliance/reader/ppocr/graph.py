"""Run a converted PP-OCR network in torch: a small, trainable interpreter of its graph.

The pretrained networks ship as ONNX graphs (conv, matmul, layer-norm pieces, resize…).
``training.ppocr.convert`` turns such a graph into a JSON-able *spec* (nodes, attributes,
static literals) plus named float tensors; :class:`GraphNet` rebuilds the network from the
spec with every weight an ``nn.Parameter`` (BatchNorm statistics as buffers), so the same
module runs inference, fine-tunes with autograd and saves as safetensors. Shape arithmetic
(``Shape``/``Slice``/``Concat`` of sizes) stays in Python lists: no host-device copies.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from appliance.reader.ppocr.fusion import conv, folded, fuse, run_fused_conv, symmetric_pads

Value = Any  # a tensor, a float, or a list of ints (shape arithmetic)


def param_key(name: str) -> str:
    """The ``nn.ParameterDict`` key of an ONNX tensor name (dots are not allowed there)."""
    return name.replace(".", "__").replace("/", "_")


class UnsupportedOp(NotImplementedError):
    """The graph holds an operator this interpreter does not implement."""


def _ints(value: Value) -> list[int]:
    if isinstance(value, torch.Tensor):
        return [int(v) for v in value.reshape(-1).tolist()]
    if isinstance(value, (list, tuple)):
        return [int(v) for v in value]
    return [int(value)]


def _slice(data: Value, starts: Value, ends: Value, axes: Value | None,
           steps: Value | None) -> Value:
    s, e = _ints(starts), _ints(ends)
    ax = _ints(axes) if axes is not None else list(range(len(s)))
    st = _ints(steps) if steps is not None else [1] * len(s)
    if isinstance(data, list):
        big = 2**62
        return data[s[0]: None if e[0] >= big else e[0]: st[0]]
    index: list[slice] = [slice(None)] * data.dim()
    for axis, start, end, step in zip(ax, s, e, st, strict=True):
        size = data.shape[axis]
        start = max(-size, min(start, size))
        end = max(-size, min(end, size))
        index[axis] = slice(start, end, step)
    return data[tuple(index)]


def _reshape(x: torch.Tensor, shape: Value) -> torch.Tensor:
    dims = _ints(shape)
    dims = [x.shape[i] if d == 0 else d for i, d in enumerate(dims)]  # ONNX: 0 keeps the dim
    return x.reshape(dims)


def _resize(x: torch.Tensor, a: dict[str, Any], scales: Value | None,
            sizes: Value | None) -> torch.Tensor:
    mode = a.get("mode", "nearest")
    if sizes is not None and len(_ints(sizes)):
        size = _ints(sizes)[2:]
        if mode == "nearest":
            return F.interpolate(x, size=size, mode="nearest")
        return F.interpolate(x, size=size, mode="bilinear", align_corners=False)
    factors = [float(v) for v in (scales if isinstance(scales, list) else
                                  scales.reshape(-1).tolist())][2:]  # type: ignore[union-attr]
    if mode == "nearest":
        # asymmetric + floor == PyTorch's "nearest" for integer factors
        return F.interpolate(x, scale_factor=factors, mode="nearest")
    return F.interpolate(x, scale_factor=factors, mode="bilinear", align_corners=False)


class GraphNet(nn.Module):
    """A network rebuilt from a converted graph spec; ``forward`` runs it node by node.

    ``spec`` keys: ``inputs`` (one name), ``outputs`` (names), ``nodes`` (``op``, ``in``,
    ``out``, ``attrs``), ``literals`` (name → float or list of ints, never trained),
    ``params`` / ``buffers`` (name → shape).
    """

    def __init__(self, spec: dict[str, Any]) -> None:
        super().__init__()
        self.spec = spec
        self.params = nn.ParameterDict({
            param_key(n): nn.Parameter(torch.zeros(shape)) for n, shape in spec["params"].items()})
        for name, shape in spec["buffers"].items():
            self.register_buffer(param_key(name), torch.zeros(shape))
        self._literals: dict[str, Value] = dict(spec["literals"])
        self._buffer_names = set(spec["buffers"])
        self._nodes = fuse(spec["nodes"], self._literals, spec["params"])
        #: folded kernels of fused convs at inference, by node, with the parameter
        #: versions they were folded from (a training step changes them) and the type
        #: autocast runs them in (None: as folded)
        self._folded: dict[int, tuple[tuple[tuple[tuple[int, int], ...], torch.dtype | None],
                                      Any]] = {}
        self._heads: dict[str, tuple[str, str, str] | None] = {}
        #: with :meth:`freeze`: every fused conv's folded kernel, by node index
        self._frozen: dict[int, tuple[torch.Tensor, torch.Tensor | None]] | None = None

    @torch.no_grad()
    def freeze(self, dtype: torch.dtype | None = None) -> None:
        """Fold every fused conv's kernel once (cast to ``dtype`` when given: the type
        autocast would run it in) and use those from now on. A pass then does no
        bookkeeping per conv, which is what ``torch.compile`` wants; the parameters are
        not read again, so a frozen net is for inference only."""
        frozen = {}
        for k, node in enumerate(self._nodes):
            if node["op"] == "FusedConv":
                args = [None, *(self.tensor(n) if n else None for n in node["in"][1:])]
                w, b = folded(args, node["attrs"])
                frozen[k] = (w.to(dtype), None if b is None else b.to(dtype)) \
                    if dtype is not None else (w, b)
        self._frozen = frozen

    def tensor(self, name: str) -> Value:
        """A weight, buffer or literal of the graph by its ONNX name."""
        if name in self._literals:
            return self._literals[name]
        if name in self._buffer_names:
            return getattr(self, param_key(name))
        return self.params[param_key(name)]

    def linear_head(self, name: str) -> tuple[str, str, str] | None:
        """(input, weight, bias) names when value ``name`` is ``input @ weight + bias`` with
        trained weight and bias (an output layer); else None."""
        if name not in self._heads:
            self._heads[name] = self._find_linear_head(name)
        return self._heads[name]

    def _find_linear_head(self, name: str) -> tuple[str, str, str] | None:
        made = {node["out"][0]: node for node in self._nodes}
        add = made.get(name)
        if add is None or add["op"] != "Add":
            return None
        for product, bias in (add["in"], add["in"][::-1]):
            matmul = made.get(product)
            if matmul is not None and matmul["op"] == "MatMul" \
                    and matmul["in"][1] in self.spec["params"] and bias in self.spec["params"]:
                return matmul["in"][0], matmul["in"][1], bias
        return None

    def forward(self, x: torch.Tensor, *, until: str | None = None) -> dict[str, torch.Tensor]:
        """Run the graph on ``x``; returns its outputs by name. ``until`` stops at that
        value (for instance the logits before a final softmax) and returns it alone."""
        env: dict[str, Value] = {self.spec["inputs"][0]: x}
        for k, node in enumerate(self._nodes):
            args = [None if not n else env[n] if n in env else self.tensor(n)
                    for n in node["in"]]
            if node["op"] == "FusedConv":
                kernel = self._frozen[k] if self._frozen is not None \
                    else self._kernel(node, args)
                result = run_fused_conv(args, node["attrs"], kernel)
            else:
                result = self._run(node["op"], args, node.get("attrs", {}))
            env[node["out"][0]] = result
            if until is not None and node["out"][0] == until:
                return {until: result}
        return {name: env[name] for name in self.spec["outputs"]}

    def _kernel(self, node: dict[str, Any], v: list[Value]) -> Any:
        """A fused conv's folded kernel and bias, kept between inference passes; None while
        gradients flow (folded on every pass, so the parameters train)."""
        if torch.is_grad_enabled():
            return None
        # storage (a move to another device or dtype) and version (an in-place update; a
        # tensor made in inference mode has none and is never trained)
        stamp = tuple((t.data_ptr(), -1 if t.is_inference() else t._version)
                      for t in v[1:] if isinstance(t, torch.Tensor))
        # under a GPU's autocast the convolution would cast the kernel to float16 on every
        # pass (two more kernels a conv inside a CUDA graph): keep it cast, the same values
        device = v[1].device.type
        half = torch.get_autocast_dtype(device) \
            if device == "cuda" and torch.is_autocast_enabled(device) else None
        key = (stamp, half)
        kept = self._folded.get(id(node))
        if kept is None or kept[0] != key:
            w, b = folded(v, node["attrs"])
            if half is not None:
                w, b = w.to(half), None if b is None else b.to(half)
            kept = self._folded[id(node)] = (key, (w, b))
        return kept[1]

    def _run(self, op: str, v: list[Value], a: dict[str, Any]) -> Value:
        if op == "Conv":
            return conv(v[0], v[1], v[2] if len(v) > 2 else None, a)
        if op == "Affine":
            return torch.addcmul(v[2], v[0], v[1])
        if op == "ConvTranspose":
            return F.conv_transpose2d(v[0], v[1], v[2] if len(v) > 2 else None,
                                      stride=tuple(a.get("strides", [1, 1])),
                                      groups=int(a.get("group", 1)))
        if op == "BatchNormalization":  # statistics frozen: fine-tuning keeps them
            return F.batch_norm(v[0], v[3], v[4], v[1], v[2], training=False,
                                eps=float(a.get("epsilon", 1e-5)))
        if op in _BINARY:
            return _BINARY[op](v[0], v[1])
        if op in _UNARY:
            return _UNARY[op](v[0])
        if op == "Clip":
            low = v[1] if len(v) > 1 and v[1] is not None else a.get("min", -math.inf)
            high = v[2] if len(v) > 2 and v[2] is not None else a.get("max", math.inf)
            return torch.clamp(v[0], float(low), float(high))
        if op == "HardSigmoid":
            return torch.clamp(v[0] * float(a.get("alpha", 0.2)) + float(a.get("beta", 0.5)),
                               0.0, 1.0)
        if op == "GlobalAveragePool":
            return v[0].mean(dim=(2, 3), keepdim=True)
        if op in ("AveragePool", "MaxPool"):
            return self._pool(op, v[0], a)
        if op == "Resize":
            return _resize(v[0], a, v[2] if len(v) > 2 else None, v[3] if len(v) > 3 else None)
        if op == "Concat":
            if all(isinstance(t, list) for t in v):
                return [d for t in v for d in t]
            return torch.cat(v, dim=int(a["axis"]))
        if op == "Shape":
            return list(v[0].shape)
        if op == "Cast":
            return v[0] if isinstance(v[0], list) else v[0].to(_DTYPES[int(a["to"])])
        if op == "Slice":
            return _slice(v[0], v[1], v[2], v[3] if len(v) > 3 else None,
                          v[4] if len(v) > 4 else None)
        if op == "Reshape":
            return _reshape(v[0], v[1])
        if op == "Transpose":
            return v[0].permute(*a["perm"])
        if op == "ReduceMean":
            axes = a["axes"] if "axes" in a else _ints(v[1])
            return v[0].mean(dim=tuple(axes), keepdim=bool(a.get("keepdims", 1)))
        if op in ("Squeeze", "Unsqueeze") and not isinstance(v[0], torch.Tensor):
            return _ints(v[0])  # shape arithmetic: sizes stay a flat list
        if op == "Squeeze":
            axes = a["axes"] if "axes" in a else _ints(v[1])
            for axis in sorted((ax % v[0].dim() for ax in axes), reverse=True):
                v[0] = v[0].squeeze(axis)
            return v[0]
        if op == "Unsqueeze":
            axes = a["axes"] if "axes" in a else _ints(v[1])
            out = v[0]
            for axis in sorted(axes):
                out = out.unsqueeze(axis if axis >= 0 else axis + out.dim() + 1)
            return out
        if op == "Softmax":
            return torch.softmax(v[0], dim=int(a.get("axis", -1)))
        if op == "Flatten":
            return torch.flatten(v[0], int(a.get("axis", 1)))
        if op == "Identity":
            return v[0]
        raise UnsupportedOp(f"ONNX operator {op!r} is not supported by the PP-OCR port")

    @staticmethod
    def _pool(op: str, x: torch.Tensor, a: dict[str, Any]) -> torch.Tensor:
        kernel = tuple(a["kernel_shape"])
        stride = tuple(a.get("strides", kernel))
        pads = a.get("pads", [0] * 4)
        symmetric = symmetric_pads(pads)
        if symmetric is None:
            x = F.pad(x, (pads[1], pads[3], pads[0], pads[2]),
                      value=-math.inf if op == "MaxPool" else 0.0)
            symmetric = (0, 0)
        ceil = bool(a.get("ceil_mode", 0))
        if op == "MaxPool":
            return F.max_pool2d(x, kernel, stride, symmetric, ceil_mode=ceil)
        return F.avg_pool2d(x, kernel, stride, symmetric, ceil_mode=ceil,
                            count_include_pad=bool(a.get("count_include_pad", 0)))


def _matmul(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return torch.matmul(x, y)


_BINARY = {
    "Add": lambda x, y: x + y,
    "Sub": lambda x, y: x - y,
    "Mul": lambda x, y: x * y,
    "Div": lambda x, y: x / y,
    "Pow": lambda x, y: x ** y,
    "MatMul": _matmul,
}
_UNARY: dict[str, Any] = {
    "Relu": F.relu,
    "Sigmoid": torch.sigmoid,
    "Sqrt": torch.sqrt,
    "HardSwish": F.hardswish,
}
_DTYPES = {1: torch.float32, 6: torch.int32, 7: torch.int64, 10: torch.float16,
           11: torch.float64}
