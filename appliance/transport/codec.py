"""Encode and decode multipart messages: a JSON header frame plus optional raw bytes.

No pickle anywhere: a header is validated against its pydantic model, so a malformed or
wrong-version message raises :class:`MessageError` with a reason that names the problem.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from appliance.transport.messages import PROTOCOL_VERSION

MAX_HEADER_BYTES = 1 << 20


class MessageError(ValueError):
    """A message that cannot be accepted; ``reason`` says why in one line."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def encode(header: BaseModel, payload: bytes | None = None) -> list[bytes]:
    """Return the ZeroMQ frames for ``header`` and an optional binary payload."""
    frames = [header.model_dump_json().encode("utf-8")]
    if payload is not None:
        frames.append(payload)
    return frames


def decode(frames: list[bytes], model: Any, *, payload: bool) -> tuple[Any, bytes | None]:
    """Validate ``frames`` as a ``model`` header (+ payload when ``payload`` is true).

    ``model`` is a pydantic model class or any type a :class:`TypeAdapter` accepts (such as a
    discriminated union of commands).
    """
    if not frames:
        raise MessageError("empty message")
    expected = 2 if payload else 1
    if len(frames) != expected:
        raise MessageError(f"expected {expected} frame(s), got {len(frames)}")
    raw = frames[0]
    if len(raw) > MAX_HEADER_BYTES:
        raise MessageError(f"header of {len(raw)} bytes exceeds {MAX_HEADER_BYTES}")
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MessageError(f"header is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise MessageError("header is not a JSON object")
    version = data.get("version")
    if version != PROTOCOL_VERSION:
        raise MessageError(f"unsupported protocol version {version!r} (want {PROTOCOL_VERSION})")
    name = getattr(model, "__name__", "message")
    try:
        header = TypeAdapter(model).validate_python(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "header"
        raise MessageError(f"invalid {name}: {where}: {first['msg']}") from None
    body = frames[1] if payload else None
    if payload and not body:
        raise MessageError("image payload is empty")
    return header, body
