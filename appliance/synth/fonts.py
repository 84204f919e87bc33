"""Find the fonts installed from Debian packages (see README set-up) for plate rendering."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

FONT_DIRS = (Path("/usr/share/fonts"), Path("/usr/local/share/fonts"))
DEMO_FONT = "DejaVuSans-Bold"


class FontNotFound(RuntimeError):
    """A font the renderer needs is not installed."""


@lru_cache(maxsize=1)
def installed_fonts() -> dict[str, Path]:
    """Map of font file stem → path for every TrueType/OpenType font installed."""
    found: dict[str, Path] = {}
    for base in FONT_DIRS:
        if base.is_dir():
            for path in sorted(base.rglob("*")):
                if path.suffix.lower() in (".ttf", ".otf"):
                    found.setdefault(path.stem, path)
    return found


def font_path(stem: str) -> Path:
    """Path of the installed font ``stem`` (e.g. ``DejaVuSans-Bold``)."""
    fonts = installed_fonts()
    if stem not in fonts:
        raise FontNotFound(f"font {stem!r} is not installed; run the README set-up "
                           "(Debian font packages)")
    return fonts[stem]
