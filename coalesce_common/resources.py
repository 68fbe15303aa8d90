"""Where the apps' packaged assets are: the icons rendered from ``resources/icons/*.svg``.

``resources/`` at the top of the tree is installed as the package ``coalesce_resources`` (setup.py), so the
same lookup works from a source checkout, a wheel and a Briefcase bundle. No Qt here: the views turn these
paths into icons (Qt reads the files itself when it first draws them).
"""

from __future__ import annotations

import functools
from importlib.resources import files
from pathlib import Path

PACKAGE = "coalesce_resources"
ICON_SIZES = (16, 24, 32, 48, 64, 128, 256, 512)  # what installers/icons.py renders
SENDER_ICON = "coalesce"
SENDER_LIVE_ICON = "coalesce-live"  # red, while sharing
ROOM_ICON = "coalesce-room"


@functools.cache
def _root() -> Path:
    return Path(str(files(PACKAGE)))


def icon_paths(name: str) -> list[Path]:
    """The PNG renderings of icon ``name`` (e.g. :data:`SENDER_ICON`), smallest first.

    Only paths: nothing is read or checked here (the views run on the event loop's thread). That every file
    is in the wheel and the packages is checked by ``tests/installers/test_resources.py``.
    """
    return [_root() / "icons" / f"{name}-{size}.png" for size in ICON_SIZES]
