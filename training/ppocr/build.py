"""Build the torch port of a PP-OCR generation from its pinned wheel:
``python -m training.ppocr.build --generation ppocrv4 --out models/ppocr-base``.

Writes ``detector/``, ``recognizer/`` and ``orientation/`` model folders (config +
safetensors) that :class:`appliance.reader.ppocr.modeling.PPOCRModel` loads."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch

from appliance.reader.ppocr.graph import param_key
from appliance.reader.ppocr.modeling import PPOCRConfig, PPOCRModel
from training.ppocr.convert import convert_onnx
from training.ppocr.sources import WHEELS, extract

FOLDERS = {"det": ("detector", "detection"), "rec": ("recognizer", "recognition"),
           "cls": ("orientation", "orientation")}


def _logits_name(spec: dict[str, Any]) -> str | None:
    """The value fed to the graph's final softmax or sigmoid (what training wants)."""
    last = spec["nodes"][-1]
    if last["op"] in ("Softmax", "Sigmoid"):
        return str(last["in"][0])
    return None


def charset(generation: str, meta: dict[str, str]) -> list[str]:
    """The recogniser's CTC classes: blank, the dictionary, then a space."""
    if "character" in meta:
        chars = meta["character"].splitlines()
    else:
        chars = extract(generation, "dict").read_text(encoding="utf-8").splitlines()
    return ["<blank>", *chars, " "]


def build_model(generation: str, role: str) -> PPOCRModel:
    """Convert one network (det, rec or cls) of ``generation`` to a loaded PPOCRModel."""
    wheel = WHEELS[generation]
    path = extract(generation, role)
    spec, tensors, meta = convert_onnx(path)
    _, task = FOLDERS[role]
    config = PPOCRConfig(
        task=task, graph=spec, logits=_logits_name(spec),
        charset=charset(generation, meta) if role == "rec" else None,
        origin={"generation": generation, "wheel": f"{wheel.name}=={wheel.version}",
                "file": wheel.members[role], "sha256_wheel": wheel.sha256,
                "licence": wheel.licence, "authors": "PaddlePaddle/PaddleOCR"})
    model = PPOCRModel(config)
    state = {f"net.params.{param_key(n)}": t for n, t in tensors.items()
             if n in spec["params"]}
    state.update({f"net.{param_key(n)}": t for n, t in tensors.items() if n in spec["buffers"]})
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise RuntimeError(f"{path}: weights do not fit ({missing[:3]}, {unexpected[:3]})")
    return model.eval()


def main() -> None:
    """Command line: convert every network of one generation and save it."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--generation", default="ppocrv4", choices=sorted(WHEELS))
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--fp16", action="store_true", help="store weights in float16")
    args = parser.parse_args()
    for role, (folder, _) in FOLDERS.items():
        model: Any = build_model(args.generation, role)
        if args.fp16:
            model = model.to(torch.float16)
        model.save_pretrained(args.out / folder)
        count = sum(p.numel() for p in model.parameters())
        print(f"{args.out / folder}: {count:,} parameters")


if __name__ == "__main__":
    main()
