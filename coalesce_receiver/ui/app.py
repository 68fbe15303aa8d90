"""The receiver's Qt entry point: the room window over the receiver's model, run with the shared
Qt/asyncio bridge (:mod:`coalesce_common.ui.qtloop`, whose docstring explains how qasync is driven)."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import qasync
from PySide6.QtGui import QIcon

from coalesce_common.resources import ROOM_ICON, icon_paths
from coalesce_common.ui.qtloop import application, run_with_qt
from coalesce_receiver.models.room import RoomActions, RoomModel
from coalesce_receiver.ui.room_window import RoomWindow

DESKTOP_ID = "org.coalesce.coalesce-room"  # resources/linux/org.coalesce.coalesce-room.desktop


def room_icon() -> QIcon:
    """The room display's icon (``resources/icons/coalesce-room-*.png``)."""
    icon = QIcon()
    for path in icon_paths(ROOM_ICON):
        icon.addFile(str(path))
    return icon


def run_room_app(
    model: RoomModel,
    actions: RoomActions,
    main: Callable[[], Coroutine[Any, Any, None]],
    *,
    pin: str | None = None,
    fullscreen: bool = True,
) -> int:
    """Show the room display for ``model`` (its controls acting through ``actions``) and run ``main()`` on
    a qasync loop until one of them ends.

    Returns 0 when ``main`` returns, or when the window is closed (Ctrl+Q) or SIGINT/SIGTERM arrives: then
    ``main``'s task is cancelled and its cleanup awaited first. Returns 1 when ``main`` raises (logged).
    Must be called from the main thread with no asyncio loop running; the QApplication is reused if one
    exists and created otherwise (and then kept alive for the rest of the process, as Qt expects).
    """
    app = application("coalesce-receiver")
    app.setWindowIcon(room_icon())
    app.setDesktopFileName(DESKTOP_ID)  # lets a Wayland desktop match the window to its menu entry
    window = RoomWindow(model, actions, pin=pin)
    return run_with_qt(
        app,
        qasync.QEventLoop(app),
        main,
        closed=window.closed,
        show=window.show_fullscreen if fullscreen else window.show,
        teardown=window.close,
        label="room",
    )
