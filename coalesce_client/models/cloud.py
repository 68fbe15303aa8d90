"""The sender's standing with a Coalesce cloud (enrollment) and the update it offers."""

from __future__ import annotations

import enum
import logging
from pathlib import Path

from coalesce_client.models.observable import Observable

logger = logging.getLogger(__name__)


class CloudAccount(Observable):
    """Whether this computer is enrolled, and the outcome of an enrollment in progress."""

    def __init__(self) -> None:
        super().__init__()
        self.api_url = ""
        self.device_id = ""
        self.org = ""
        self.enrolling = False
        self.message: str | None = None
        self.error: str | None = None

    @property
    def enrolled(self) -> bool:
        return bool(self.device_id)

    def describe(self) -> str:
        if not self.enrolled:
            return "Not enrolled: meeting IDs need a Coalesce cloud. Ask your IT administrator for a code."
        org = f" of {self.org}" if self.org else ""
        return f"Enrolled with {self.api_url} as device {self.device_id}{org}."

    def set_enrolled(self, api_url: str, device_id: str, org: str) -> None:
        self.api_url, self.device_id, self.org = api_url, device_id, org
        self._changed()

    def begin_enrollment(self) -> None:
        self.enrolling = True
        self.message = "Enrolling…"
        self.error = None
        self._changed()

    def enrollment_done(self, *, error: str | None = None) -> None:
        self.enrolling = False
        self.error = error
        self.message = None if error else "Enrolled."
        self._changed()


class UpdatePhase(enum.Enum):
    NONE = "none"
    AVAILABLE = "available"
    DOWNLOADING = "downloading"
    READY = "ready"
    FAILED = "failed"


class UpdateOffer(Observable):
    """A newer version the cloud offers: its notes, the download's progress and where it went."""

    def __init__(self) -> None:
        super().__init__()
        self.phase = UpdatePhase.NONE
        self.version = ""
        self.notes = ""
        self.progress = 0.0
        self.path: Path | None = None
        self.message = ""

    def offer(self, version: str, notes: str) -> None:
        if self.phase is not UpdatePhase.NONE and version == self.version:
            return
        self.version, self.notes = version, notes
        self.progress, self.path, self.message = 0.0, None, ""
        self._set(UpdatePhase.AVAILABLE)

    def downloading(self, progress: float) -> None:
        self.progress = max(0.0, min(1.0, progress))
        self._set(UpdatePhase.DOWNLOADING, force=True)

    def ready(self, path: Path, message: str) -> None:
        self.path, self.message = path, message
        self._set(UpdatePhase.READY)

    def failed(self, message: str) -> None:
        self.message = message
        self._set(UpdatePhase.FAILED)

    def dismiss(self) -> None:
        self._set(UpdatePhase.NONE)

    def _set(self, phase: UpdatePhase, *, force: bool = False) -> None:
        if phase is self.phase and not force:
            return
        logger.debug("update %s -> %s", self.phase.value, phase.value)
        self.phase = phase
        self._changed()
