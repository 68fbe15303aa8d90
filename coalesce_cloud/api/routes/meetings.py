"""Meetings: a box asks for a meeting id; a sender resolves an id to the box's XMPP address.

A sender resolves the meeting ids of its own organisation's boxes, and those of organisations that admit
its organisation as guests (an admin's grant, see ``coalesce-cloud admin allow-guests``). Any other id
gets the answer an unknown id gets, throttle count included, so that nobody learns that it exists.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Path

from coalesce_cloud import crud
from coalesce_cloud.api.deps import (
    BOX_ANSWERS,
    DEVICE_ANSWERS,
    BoxDep,
    DeviceDep,
    NowDep,
    SessionDep,
    SettingsDep,
)
from coalesce_cloud.api.errors import THROTTLED, VALIDATION, Answer, ApiError, documented, throttled
from coalesce_cloud.api.routes.common import backoff
from coalesce_cloud.api.schemas import MeetingBox, MeetingInfo, MeetingIssued
from coalesce_cloud.api.share_page import SHARE_PATH
from coalesce_cloud.core.security import normalise_meeting_id

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/meetings", tags=["meetings"])

MEETING_NOT_FOUND = Answer(
    404, "meeting_not_found", "no live meeting has this id, or it is another organisation's"
)


@router.post("", status_code=201, responses=documented(*BOX_ANSWERS))
def issue_meeting(box: BoxDep, session: SessionDep, settings: SettingsDep, now: NowDep) -> MeetingIssued:
    """A new meeting id for the calling box; the box's previous meeting ends."""
    meeting = crud.issue_meeting(session, box=box, ttl=settings.meeting_ttl, now=now)
    session.commit()
    logger.info("box %s opened a meeting until %s", box.id, meeting.expires_at.isoformat())
    browsers = box.org.web_guests and not box.org.suspended and bool(settings.xmpp.websocket_url)
    return MeetingIssued(
        meeting_id=meeting.meeting_id,
        expires_at=meeting.expires_at,
        share_url=settings.public_url.rstrip("/") + SHARE_PATH if browsers else None,
    )


@router.get("/{meeting_id}", responses=documented(*DEVICE_ANSWERS, MEETING_NOT_FOUND, VALIDATION, THROTTLED))
def read_meeting(
    device: DeviceDep,
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
    meeting_id: str = Path(max_length=32, description="10 digits; spaces and dashes are ignored"),
) -> MeetingInfo:
    """The box behind a live meeting id. Unknown and expired ids, and those of an organisation that does
    not admit the caller's, get the same 404 ``meeting_not_found``; a device that tries many such ids gets
    429 ``too_many_attempts``."""
    throttle_key = f"lookup:{device.id}"
    policy = backoff(settings.throttle, settings.throttle.lookup_free_failures)
    wait = crud.throttle_retry_after(session, key=throttle_key, policy=policy, now=now)
    if wait > 0:
        raise throttled(wait)
    normalised = normalise_meeting_id(meeting_id)
    meeting = (
        None
        if normalised is None
        else crud.get_live_meeting(session, meeting_id=normalised, visible_to=device.org, now=now)
    )
    if meeting is None:
        crud.throttle_failure(session, key=throttle_key, policy=policy, now=now)
        session.commit()
        raise ApiError(
            404, "meeting_not_found", "No meeting has this id now; check the id on the room display."
        )
    box = meeting.box
    return MeetingInfo(
        meeting_id=meeting.meeting_id,
        box=MeetingBox(device_id=box.id, name=box.name, jid=f"{box.id}@{settings.xmpp.domain}"),
        expires_at=meeting.expires_at,
    )
