"""Prompts per schema, the answer's JSON as scored pieces, and parsing what a model wrote."""

from __future__ import annotations

import json
from dataclasses import dataclass

from appliance.schema import PlateSchema

MAX_HINT_LINES = 40


def read_prompt(schema: PlateSchema, fields: list[str], hints: list[str] | None = None) -> str:
    """Ask for ``fields`` of ``schema`` as one JSON object; OCR lines may come as hints."""
    lines = ["Read the rating plate in the image.",
             "Answer with one JSON object and nothing else, with exactly these keys "
             "(the value as printed on the plate, or null when it is not legible):"]
    for name in fields:
        spec = schema.fields[name]
        lines.append(f'"{name}": {spec.description or name.replace("_", " ")}')
    if hints:
        lines.append("Text an OCR found on the plate (it may hold errors):")
        lines.extend(hints[:MAX_HINT_LINES])
    return "\n".join(lines)


def answer_pieces(values: dict[str, str]) -> list[tuple[str, str | None]]:
    """The JSON answer ``{"f": "v", ...}`` as (text, field) pieces: ``field`` is set on the
    pieces that are a value, so their tokens can be scored on their own."""
    pieces: list[tuple[str, str | None]] = []
    for i, (name, value) in enumerate(values.items()):
        opener = "{" if i == 0 else ", "
        pieces.append((f'{opener}{json.dumps(name)}: "', None))
        pieces.append((json.dumps(value)[1:-1], name))
        pieces.append(('"', None))
    pieces.append(("}", None))
    return pieces


@dataclass(frozen=True)
class ParsedAnswer:
    """What a generated answer says, field by field (None: not read or not in format)."""

    values: dict[str, str | None]
    complete: bool                      # a whole JSON object was found
    spans: dict[str, tuple[int, int]]   # character span of each value in the text


def first_json_object(text: str) -> tuple[int, int] | None:
    """Span of the first balanced ``{...}`` in ``text`` (strings respected), or None."""
    start = text.find("{")
    if start < 0:
        return None
    depth, in_string, escaped = 0, False, False
    for i in range(start, len(text)):
        char = text[i]
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return start, i + 1
    return None


def parse_answer(text: str, schema: PlateSchema, fields: list[str]) -> ParsedAnswer:
    """Each asked field's value when the answer holds it in the field's format, else None.

    A value outside its regex is ``not_read``, never guessed: the rules decide on what was
    read, and a generative model's near-miss must not look like a reading."""
    none: dict[str, str | None] = dict.fromkeys(fields)
    span = first_json_object(text)
    if span is None:
        return ParsedAnswer(none, False, {})
    try:
        data = json.loads(text[span[0]:span[1]])
    except ValueError:
        return ParsedAnswer(none, True, {})
    if not isinstance(data, dict):
        return ParsedAnswer(none, True, {})
    values: dict[str, str | None] = {}
    spans: dict[str, tuple[int, int]] = {}
    for name in fields:
        raw = data.get(name)
        value = raw.strip() if isinstance(raw, str) else None
        if value and schema.fields[name].matches(value):
            values[name] = value
            key = text.find(json.dumps(name), span[0])
            at = text.find(value, key) if key >= 0 else -1
            if at >= 0:
                spans[name] = (at, at + len(value))
        else:
            values[name] = None
    return ParsedAnswer(values, True, spans)
