"""Reader stage: turn a frame into field values, confidences and boxes.

Public interface: :func:`load_reader` (by backend name), :class:`Reader`, :class:`PlateReading`,
and the image helpers.
"""

from appliance.reader.base import (
    PlateReading,
    Reader,
    available_backends,
    load_reader,
    resolve_device,
)
from appliance.reader.images import ImageError, decode_image, encode_jpeg, load_image

__all__ = [
    "ImageError",
    "PlateReading",
    "Reader",
    "available_backends",
    "decode_image",
    "encode_jpeg",
    "load_image",
    "load_reader",
    "resolve_device",
]
