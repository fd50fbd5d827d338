"""Reading back the PNG files the tests make."""
from __future__ import annotations

from pathlib import Path


def png_colours(path: Path) -> int:
    from PIL import Image
    with Image.open(path) as im:
        colours = im.convert("RGB").getcolors(maxcolors=1 << 20)
    return len(colours)
