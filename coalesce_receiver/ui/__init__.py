"""The receiver's Qt side: the room display and the bridge that runs it beside the asyncio services.

The only package of the receiver that imports PySide6 or qasync (an import-linter contract says so).
"""

from coalesce_receiver.ui.app import run_room_app
from coalesce_receiver.ui.room_window import RoomWindow
from coalesce_receiver.ui.share_tile import ShareTile

__all__ = ["RoomWindow", "ShareTile", "run_room_app"]
