"""Bounds on everything that arrives from outside a process: headers, ids, images.

They are checked before anything is parsed or decoded, so one hostile or broken message costs
a counted rejection, never a crash or gigabytes of memory.
"""

from __future__ import annotations

#: a real header is a few kilobytes (a result with every field and box); nothing needs more
MAX_HEADER_BYTES = 64 * 1024
#: JSON nesting of a result header is 4; deeper input is refused before parsing
MAX_JSON_DEPTH = 8
#: digits in one JSON number (ids are strings; counters and sizes fit in 20 digits)
MAX_NUMBER_DIGITS = 24
#: an encoded image payload (a 12-megapixel raw RGB frame is 36 MB)
MAX_PAYLOAD_BYTES = 40 * 1024 * 1024
#: ZeroMQ drops larger multipart messages itself (socket option ``MAXMSGSIZE``)
MAX_MESSAGE_BYTES = MAX_PAYLOAD_BYTES + MAX_HEADER_BYTES
#: decoded pixels an image may have (a 12-megapixel photo is well inside); larger inputs are
#: refused from their header, so a small file cannot claim gigabytes
MAX_PIXELS = 50_000_000
MAX_IMAGE_SIDE = 20_000

#: ids become file names and URL parts: letters, digits and ``_ . -``, no leading dot
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,95}$"
STATION_PATTERN = r"^[A-Za-z0-9_-]{1,32}$"
#: unit ids come from the ERP; they never reach a path, but stay printable and short
UNIT_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:/#+-]{0,63}$"
MAX_TEXT = 2000
MAX_FIELDS = 64
