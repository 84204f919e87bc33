"""Operator fusion for the PP-OCR graph interpreter: the exporter's element-wise chains and
the convolutions around them, rewritten into fewer, larger operations that keep every
parameter trainable.

``fuse`` rewrites the node list once, when a :class:`~appliance.reader.ppocr.graph.GraphNet`
is built; :func:`run_fused_conv` runs a ``FusedConv`` node. While training, the affine maps
are folded into the kernel on every pass, so fine-tuning sees the same parameters as the
ONNX graph; at inference the net keeps each folded kernel until a parameter changes.
(Handing the activation to oneDNN as a post-op was measured too: no faster per frame on
2 cores once freed memory is reused, so it is not done.)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

Node = dict[str, Any]


def symmetric_pads(pads: Sequence[int]) -> tuple[int, ...] | None:
    """ONNX pads (begin…, end…) as a symmetric conv padding, or None if asymmetric."""
    half = len(pads) // 2
    begin, end = list(pads[:half]), list(pads[half:])
    return tuple(begin) if begin == end else None


def conv(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None, a: dict[str, Any],
         ) -> torch.Tensor:
    """An ONNX ``Conv`` with attributes ``a`` (asymmetric padding applied first)."""
    pads = a.get("pads", [0] * 4)
    symmetric = symmetric_pads(pads)
    if symmetric is None:  # F.pad wants (left, right, top, bottom)
        x = F.pad(x, (pads[1], pads[3], pads[0], pads[2]))
        symmetric = (0, 0)
    return F.conv2d(x, w, b, stride=tuple(a.get("strides", [1, 1])), padding=symmetric,
                    dilation=tuple(a.get("dilations", [1, 1])), groups=int(a.get("group", 1)))


def _uses(nodes: list[Node]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for node in nodes:
        for name in node["in"]:
            counts[name] = counts.get(name, 0) + 1
    return counts


def _single_use_next(nodes: list[Node], uses: dict[str, int], k: int, op: str | tuple[str, ...],
                     ) -> int | None:
    """The index of the node that alone consumes node ``k``'s output, if it is an ``op``."""
    name = nodes[k]["out"][0]
    if uses.get(name) != 1:
        return None
    for j in range(k + 1, min(len(nodes), k + 8)):
        if name in nodes[j]["in"]:
            return j if nodes[j]["op"] in ((op,) if isinstance(op, str) else op) else None
    return None


def fuse(nodes: list[Node], literals: dict[str, Any],
         params: dict[str, Sequence[int]]) -> list[Node]:
    """The graph's nodes with element-wise chains and convolutions fused (same numbers);
    ``params`` gives each trainable tensor's shape (1×1 kernels fold more)."""
    shapes = {name: tuple(shape) for name, shape in params.items()}
    return _fuse_convs(_fuse_elementwise(nodes, literals, set(shapes)), shapes)


def _fuse_elementwise(nodes: list[Node], literals: dict[str, Any], params: set[str],
                      ) -> list[Node]:
    """``x·s + t`` → ``Affine``; ``Conv`` then ``Affine`` → ``ConvAffine`` (the scale folded
    into the kernel on the fly, so it still trains); ``y·clip(y+3, 0, 6)/6`` →
    ``HardSwish``."""
    uses = _uses(nodes)
    producer = {node["out"][0]: k for k, node in enumerate(nodes)}
    out: list[Node] = []
    skip: set[int] = set()
    for k, node in enumerate(nodes):
        if k in skip:
            continue
        op, inputs = node["op"], node["in"]
        if op == "Add" and len(inputs) == 2 and literals.get(inputs[1]) == 3.0:
            clip = _single_use_next(nodes, uses, k, "Clip")
            if clip is not None and [literals.get(n) for n in nodes[clip]["in"][1:]] == [0.0, 6.0]:
                mul = _single_use_next(nodes, uses, clip, "Mul")
                if mul is not None and inputs[0] in nodes[mul]["in"]:
                    div = _single_use_next(nodes, uses, mul, "Div")
                    if div is not None and literals.get(nodes[div]["in"][1]) == 6.0:
                        skip.update({clip, mul, div})
                        out.append({"op": "HardSwish", "in": [inputs[0]],
                                    "out": nodes[div]["out"]})
                        continue
        if op == "Mul" and len(inputs) == 2 and any(n in params for n in inputs):
            add = _single_use_next(nodes, uses, k, "Add")
            scale = next(n for n in inputs if n in params)
            x = next((n for n in inputs if n != scale), scale)
            if add is not None:
                bias = next((n for n in nodes[add]["in"] if n != node["out"][0]), None)
                if bias in params:
                    skip.add(add)
                    source = producer.get(x)
                    last = out[-1] if out else None
                    if last is not None and source is not None and last["op"] == "Conv" \
                            and last["out"][0] == x and uses.get(x) == 1 and len(last["in"]) == 3:
                        out[-1] = {"op": "ConvAffine", "in": [*last["in"], scale, bias],
                                   "out": nodes[add]["out"], "attrs": last.get("attrs", {})}
                    else:
                        out.append({"op": "Affine", "in": [x, scale, bias],
                                    "out": nodes[add]["out"]})
                    continue
        out.append(node)
    return out


def _pointwise(node: Node, shapes: dict[str, tuple[int, ...]]) -> bool:
    """A 1×1 conv without padding: an affine map of its input folds into it exactly."""
    a = node.get("attrs", {})
    kernel = shapes.get(node["in"][1], ())
    return tuple(kernel[2:]) == (1, 1) and not any(a.get("pads", [0])) \
        and int(a.get("group", 1)) == 1


def _fuse_convs(nodes: list[Node], shapes: dict[str, tuple[int, ...]]) -> list[Node]:
    """``Conv``/``ConvAffine``/``ConvTranspose`` with what follows it alone (a bias ``Add``
    after a transposed conv, a ``BatchNormalization``, a ``HardSwish``/``Relu``) →
    ``FusedConv``, with an ``Affine`` of the input folded in when the kernel is 1×1 without
    padding. ``FusedConv`` inputs: x, kernel, bias, input scale, input shift, output scale,
    output shift, then batch-norm weight, bias, mean, variance ("" where absent);
    attributes ``act``, ``transposed``, ``epsilon``."""
    uses = _uses(nodes)
    fused: list[Node] = []
    absorbed: set[int] = set()  # nodes taken into the conv before them
    for k, node in enumerate(nodes):
        if node["op"] not in ("Conv", "ConvAffine", "ConvTranspose"):
            if k not in absorbed:
                fused.append(node)
            continue
        x, kernel = node["in"][0], node["in"][1]
        bias = node["in"][2] if len(node["in"]) > 2 else ""
        post = node["in"][3:5] if node["op"] == "ConvAffine" else ["", ""]
        pre, norm = ["", ""], ["", "", "", ""]
        attrs = {**node.get("attrs", {}), "act": "", "transposed": node["op"] == "ConvTranspose"}
        last = fused[-1] if fused else None
        if last is not None and last["op"] == "Affine" and last["out"][0] == x \
                and uses.get(x) == 1 and not attrs["transposed"] and _pointwise(node, shapes):
            fused.pop()
            x, pre = last["in"][0], last["in"][1:3]
        end = k
        add = _single_use_next(nodes, uses, end, "Add") if attrs["transposed"] and not bias \
            else None
        if add is not None:
            other = [n for n in nodes[add]["in"] if n != nodes[end]["out"][0]]
            if len(other) == 1 and other[0] in shapes:  # a trained bias, one per channel
                bias, end = other[0], add
                absorbed.add(add)
        batch_norm = _single_use_next(nodes, uses, end, "BatchNormalization")
        if batch_norm is not None and nodes[batch_norm]["in"][0] == nodes[end]["out"][0]:
            norm = nodes[batch_norm]["in"][1:5]
            attrs["epsilon"] = float(nodes[batch_norm].get("attrs", {}).get("epsilon", 1e-5))
            end = batch_norm
            absorbed.add(batch_norm)
        activation = _single_use_next(nodes, uses, end, ("HardSwish", "Relu"))
        if activation is not None:
            attrs["act"] = nodes[activation]["op"].lower()
            end = activation
            absorbed.add(activation)
        fused.append({"op": "FusedConv", "in": [x, kernel, bias, *pre, *post, *norm],
                      "out": nodes[end]["out"], "attrs": attrs})
    return fused


def _per_channel(t: torch.Tensor, dim: int) -> torch.Tensor:
    """A scale or shift (one value, or one per channel) shaped to broadcast on ``dim`` of a
    4-D kernel."""
    t = t.reshape(-1)
    if t.numel() == 1:
        return t.reshape(1, 1, 1, 1)
    shape = [1, 1, 1, 1]
    shape[dim] = t.numel()
    return t.reshape(shape)


def folded(v: Sequence[Any], a: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A ``FusedConv``'s kernel and bias with its affine maps and batch norm folded in:
    conv(x·s + t; W, b)·s' + t' == conv(x; W·s·s', (b + Σ W·t)·s' + t') for a 1×1 kernel,
    and a batch norm with frozen statistics is one more output scale and shift."""
    _, w, b, s_in, t_in, s_out, t_out, gamma, beta, mean, var = v
    out_dim = 1 if a.get("transposed") else 0  # a transposed kernel is in × out × kh × kw
    if b is not None:
        b = b.reshape(-1)
    if s_in is not None:
        bias_in = (w * _per_channel(t_in, 1)).sum(dim=(1, 2, 3))
        w = w * _per_channel(s_in, 1)
        b = bias_in if b is None else b + bias_in
    for scale, shift in ((s_out, t_out), _batch_norm_affine(gamma, beta, mean, var, a)):
        if scale is None or shift is None:
            continue
        w = w * _per_channel(scale, out_dim)
        b = (b * scale.reshape(-1) if b is not None else 0.0) + shift.reshape(-1)
        if b.numel() == 1:
            b = b.expand(w.shape[out_dim])
    return w, b


def _batch_norm_affine(gamma: torch.Tensor | None, beta: torch.Tensor | None,
                       mean: torch.Tensor | None, var: torch.Tensor | None,
                       a: dict[str, Any]) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """A frozen batch norm as (scale, shift) per channel; (None, None) when there is none."""
    if gamma is None or beta is None or mean is None or var is None:
        return None, None
    scale = gamma / torch.sqrt(var + float(a.get("epsilon", 1e-5)))
    return scale, beta - mean * scale


def run_fused_conv(v: Sequence[Any], a: dict[str, Any],
                   kernel: tuple[torch.Tensor, torch.Tensor | None] | None = None,
                   ) -> torch.Tensor:
    """Run a ``FusedConv`` node on its inputs ``v`` (see :func:`fuse`); ``kernel``: its
    :func:`folded` kernel and bias when the caller kept them."""
    w, b = kernel if kernel is not None else folded(v, a)
    if a.get("transposed"):
        y = F.conv_transpose2d(v[0], w, b, stride=tuple(a.get("strides", [1, 1])),
                               groups=int(a.get("group", 1)))
    else:
        y = conv(v[0], w, b, a)
    act = a.get("act", "")
    in_place = not torch.is_grad_enabled()  # y is this node's own: nothing else reads it
    if act == "hardswish":
        return F.hardswish(y, inplace=in_place)
    return F.relu(y, inplace=in_place) if act == "relu" else y
