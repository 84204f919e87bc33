"""Encode and decode multipart messages: a JSON header frame plus optional raw bytes.

No pickle anywhere: a header is checked for size, nesting and number length before it is
parsed, then validated against its pydantic model, so a malformed, hostile or wrong-version
message raises :class:`MessageError` with a reason that names the problem; nothing else.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from appliance.transport.limits import (
    MAX_HEADER_BYTES,
    MAX_JSON_DEPTH,
    MAX_NUMBER_DIGITS,
    MAX_PAYLOAD_BYTES,
)
from appliance.transport.messages import PROTOCOL_VERSION

_LONG_NUMBER = re.compile(rb"[0-9]{%d,}" % (MAX_NUMBER_DIGITS + 1))
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')
_ADAPTERS: dict[Any, TypeAdapter[Any]] = {}


class MessageError(ValueError):
    """A message that cannot be accepted; ``reason`` says why in one line.

    ``kind`` is a short stable key for counting rejections by cause.
    """

    def __init__(self, reason: str, *, kind: str = "invalid") -> None:
        super().__init__(reason)
        self.reason = reason
        self.kind = kind


def encode(header: BaseModel, payload: bytes | None = None) -> list[bytes]:
    """Return the ZeroMQ frames for ``header`` and an optional binary payload."""
    frames = [header.model_dump_json().encode("utf-8")]
    if payload is not None:
        frames.append(payload)
    return frames


def _check_structure(raw: bytes) -> None:
    """Refuse deep nesting and long numbers before ``json.loads`` can recurse or convert them."""
    bare = _STRING.sub(b'""', raw)  # brackets and digits inside strings are harmless
    depth = deepest = 0
    for byte in bare:
        if byte in b"[{":
            depth += 1
            deepest = max(deepest, depth)
            if deepest > MAX_JSON_DEPTH:
                raise MessageError(f"header nests deeper than {MAX_JSON_DEPTH} levels",
                                   kind="too_deep")
        elif byte in b"]}":
            depth -= 1
    if _LONG_NUMBER.search(bare):
        raise MessageError(f"header holds a number longer than {MAX_NUMBER_DIGITS} digits",
                           kind="number_too_long")


def _adapter(model: Any) -> TypeAdapter[Any]:
    if model not in _ADAPTERS:
        _ADAPTERS[model] = TypeAdapter(model)
    return _ADAPTERS[model]


def decode(frames: list[bytes], model: Any, *, payload: bool) -> tuple[Any, bytes | None]:
    """Validate ``frames`` as a ``model`` header (+ payload when ``payload`` is true).

    ``model`` is a pydantic model class or any type a :class:`TypeAdapter` accepts (such as a
    discriminated union of commands).
    """
    if not frames:
        raise MessageError("empty message", kind="empty")
    expected = 2 if payload else 1
    if len(frames) != expected:
        raise MessageError(f"expected {expected} frame(s), got {len(frames)}", kind="frames")
    raw = frames[0]
    if len(raw) > MAX_HEADER_BYTES:
        raise MessageError(f"header of {len(raw)} bytes exceeds {MAX_HEADER_BYTES}",
                           kind="header_too_large")
    _check_structure(raw)
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise MessageError(f"header is not JSON: {str(exc)[:120]}", kind="not_json") from None
    if not isinstance(data, dict):
        raise MessageError("header is not a JSON object", kind="not_object")
    version = data.get("version")
    if version != PROTOCOL_VERSION:
        shown = repr(version)[:40]
        raise MessageError(f"unsupported protocol version {shown} (want {PROTOCOL_VERSION})",
                           kind="version")
    name = getattr(model, "__name__", "message")
    try:
        header = _adapter(model).validate_python(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "header"
        raise MessageError(f"invalid {name}: {where}: {first['msg']}"[:300],
                           kind="invalid") from None
    body = frames[1] if payload else None
    if payload and not body:
        raise MessageError("image payload is empty", kind="empty_payload")
    if body is not None and len(body) > MAX_PAYLOAD_BYTES:
        raise MessageError(f"image payload of {len(body)} bytes exceeds {MAX_PAYLOAD_BYTES}",
                           kind="payload_too_large")
    return header, body
