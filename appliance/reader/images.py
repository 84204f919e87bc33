"""Decoding images for the readers, with errors that say what is wrong with which input."""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from appliance.transport.limits import MAX_PIXELS

# The pixel budget is ours (50 MP, checked from the header before anything is decoded, and
# decoding is OpenCV's); Pillow's own, looser check would only hide the image's size.
Image.MAX_IMAGE_PIXELS = None


class ImageError(ValueError):
    """An input that is not a usable image."""


def image_size(data: bytes, *, source: str = "image") -> tuple[int, int]:
    """(width, height) from an encoded image's header, without decoding its pixels."""
    try:
        with Image.open(io.BytesIO(data)) as header:
            return header.size
    except (OSError, ValueError) as exc:
        raise ImageError(f"{source}: not a decodable image ({len(data)} bytes: {exc})") from None


def decode_image(data: bytes, *, source: str = "image") -> np.ndarray:
    """Decode encoded image bytes (JPEG, PNG, …) to an RGB uint8 array."""
    if not data:
        raise ImageError(f"{source}: empty image data")
    width, height = image_size(data, source=source)
    if width * height > MAX_PIXELS:
        raise ImageError(f"{source}: {width}×{height} pixels is over the limit of "
                         f"{MAX_PIXELS / 1e6:.0f} megapixels")
    array = np.frombuffer(data, dtype=np.uint8)
    bgr = cv2.imdecode(array, cv2.IMREAD_COLOR)
    if bgr is None or bgr.size == 0:
        raise ImageError(f"{source}: not a decodable image ({len(data)} bytes)")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def load_image(path: Path | str) -> np.ndarray:
    """Read an image file to an RGB uint8 array; :class:`ImageError` names the file on failure."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ImageError(f"{path}: no such file") from None
    except OSError as exc:
        raise ImageError(f"{path}: cannot read: {exc.strerror}") from None
    return decode_image(data, source=str(path))


def encode_jpeg(rgb: np.ndarray, quality: int = 90) -> bytes:
    """Encode an RGB uint8 array as JPEG bytes."""
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
                           [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ImageError("could not encode JPEG")
    return buf.tobytes()


def raw_to_array(data: bytes, width: int, height: int, channels: int) -> np.ndarray:
    """View raw uint8 pixel bytes as an RGB array, checking the size matches the shape."""
    expected = width * height * channels
    if len(data) != expected:
        raise ImageError(f"raw image: {len(data)} bytes, expected {expected} for "
                         f"{width}x{height}x{channels}")
    array = np.frombuffer(data, dtype=np.uint8).reshape(height, width, channels)
    if channels == 1:
        return np.repeat(array, 3, axis=2)
    return array[:, :, :3].copy()


def decode_payload(payload: bytes, *, encoding: str, width: int = 0, height: int = 0,
                   channels: int = 3, source: str = "image") -> np.ndarray:
    """A frame's bytes as sent on the frames socket: ``raw`` pixels of the given shape, or
    any encoded image (JPEG, PNG, ...); :class:`ImageError` names ``source`` when unusable."""
    if encoding == "raw":
        return raw_to_array(payload, width, height, channels)
    return decode_image(payload, source=source)
