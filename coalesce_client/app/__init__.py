"""The sender app without Qt: the flows behind the desktop app's widgets, one module per job.

``share_flow`` (connect, PIN prompts and retries, restarts on media change, the moderator's join queue,
the status and preview loop), ``discovery`` (the live list of room displays), ``cloud`` (enrollment and
updates), ``proxy`` (the proxy settings) and ``media_devices`` (screens and cameras). ``core`` composes
them over the models; ``config`` holds their timings and IO edge; ``scheduler`` runs their tasks.

Layering (import-linter): ``coalesce_client.ui`` above this package, this package above
``coalesce_client.services``, which is above ``coalesce_client.models``; PySide6 and qasync are
forbidden here, so every flow runs, and is tested, on a plain asyncio loop.
"""

from coalesce_client.app.config import SenderConfig, SenderServices
from coalesce_client.app.core import SenderCore, SenderModels

__all__ = ["SenderConfig", "SenderCore", "SenderModels", "SenderServices"]
