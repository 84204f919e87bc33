"""``--allocator`` for the reader benchmarks: time the same code with the C allocator's own
thresholds (``default``) or with freed blocks kept for reuse (``keep``, what the reader
sets: :func:`appliance.runtime.keep_freed_memory`). The setting is process-wide, so each
choice needs a process of its own."""

from __future__ import annotations

import argparse

import appliance.reader.ppocr.pipeline as pipeline


def add_option(parser: argparse.ArgumentParser) -> None:
    """Add ``--allocator keep|default`` to a benchmark's options."""
    parser.add_argument("--allocator", choices=["keep", "default"], default="keep",
                        help="keep: freed blocks reused (the reader's setting); default: "
                             "the C library's thresholds (the reader before session 10)")


def apply(choice: str) -> None:
    """Make readers made from now on leave the allocator alone when ``choice`` is default."""
    if choice == "default":
        pipeline.keep_freed_memory = lambda **_: False  # type: ignore[assignment]
