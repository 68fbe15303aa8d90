"""Render the app icons in ``resources/icons/`` from their SVG sources: the PNG sizes, ``.ico`` and ``.icns``.

Run it after changing an SVG and commit what it writes: builds use the committed files, so a build machine
needs neither tool. PNGs come from ``rsvg-convert`` (Debian: librsvg2-bin), which renders SVG exactly as the
desktops do; the Windows ``.ico`` and the macOS ``.icns`` are packed by Pillow (``pip install pillow``).

    python installers/icons.py
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ICONS = Path(__file__).resolve().parent.parent / "resources" / "icons"
# Briefcase looks for NAME-SIZE.png for Linux (16..512); the apps' own window icons use the same files.
PNG_SIZES = (16, 24, 32, 48, 64, 128, 256, 512)
ICO_SIZES = (16, 24, 32, 48, 64, 128, 256)  # what Windows asks for, from the task bar to the Start menu
ICNS_SOURCE = 1024  # Pillow derives every .icns size (16..1024) from the largest picture
WITH_PLATFORM_FILES = ("coalesce", "coalesce-room")  # the apps Briefcase packages; the live icon is in-app


def render(svg: Path, size: int, out: Path) -> None:
    subprocess.run(
        ["rsvg-convert", "--width", str(size), "--height", str(size), "--output", str(out), str(svg)],
        check=True,
    )


def main() -> int:
    if shutil.which("rsvg-convert") is None:
        print("icons: rsvg-convert not found: apt-get install librsvg2-bin", file=sys.stderr)
        return 1
    try:
        from PIL import Image
    except ImportError:
        print("icons: Pillow not found: pip install pillow", file=sys.stderr)
        return 1
    for svg in sorted(ICONS.glob("*.svg")):
        name = svg.stem
        for size in PNG_SIZES:
            render(svg, size, ICONS / f"{name}-{size}.png")
        if name not in WITH_PLATFORM_FILES:
            continue
        big = ICONS / f".{name}-{ICNS_SOURCE}.png"
        render(svg, ICNS_SOURCE, big)
        try:
            with Image.open(big) as image:
                image.load()
                image.save(ICONS / f"{name}.icns", format="ICNS")
                image.save(ICONS / f"{name}.ico", format="ICO", sizes=[(s, s) for s in ICO_SIZES])
        finally:
            big.unlink()
        print(f"icons: {name}: {len(PNG_SIZES)} PNGs, .ico, .icns")
    return 0


if __name__ == "__main__":
    sys.exit(main())
