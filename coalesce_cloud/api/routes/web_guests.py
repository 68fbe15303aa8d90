"""``POST /web-guests``: a browser without an enrolled device asks to share to a meeting (the browser sender).

It gets a short-lived XMPP identity scoped to that meeting's box (:class:`~coalesce_cloud.models.WebGuest`),
TURN credentials for its media, and the box's address. The PIN shown in the room is still needed: pairing
runs between the browser and the box as for the app, and the box throttles wrong PINs per guest as per device.

Unknown and expired meeting IDs get the same 404 a device gets, and count towards the address's back-off, as
every admission does: one address is admitted ``web_guest_free_admissions`` times before it must wait. An
organisation whose administrator turned web guests off, or that is suspended, refuses them with a 403 that
says so. Expired identities are removed from XMPP in the background (:mod:`coalesce_cloud.guest_expiry`).
"""

from __future__ import annotations

import logging
import secrets
from datetime import datetime

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session

from coalesce_cloud import crud
from coalesce_cloud.api.deps import NowDep, SessionDep, SettingsDep, XmppAdminDep
from coalesce_cloud.api.errors import BODY_ANSWERS, THROTTLED, Answer, ApiError, documented, throttled
from coalesce_cloud.api.routes.common import backoff, client_address
from coalesce_cloud.api.routes.meetings import MEETING_NOT_FOUND
from coalesce_cloud.api.routes.turn import TURN_UNAVAILABLE, turn_credentials
from coalesce_cloud.api.schemas import MeetingBox, WebGuestAdmitted, WebGuestRequest, WebGuestXmpp
from coalesce_cloud.core.config import Settings
from coalesce_cloud.core.security import normalise_meeting_id
from coalesce_cloud.models import WebGuest
from coalesce_cloud.xmpp_admin import XmppAdminError
from coalesce_common.throttle import source_key

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/web-guests", tags=["web guests"])

WEB_GUESTS_OFF = Answer(403, "web_guests_off", "the meeting's organisation does not admit web guests")
ORG_SUSPENDED = Answer(403, "org_suspended", "the meeting's organisation is suspended")
XMPP_UNAVAILABLE = Answer(503, "xmpp_unavailable", "the XMPP service could not register the guest")


@router.post(
    "",
    status_code=201,
    responses=documented(
        *BODY_ANSWERS,
        MEETING_NOT_FOUND,
        WEB_GUESTS_OFF,
        ORG_SUSPENDED,
        THROTTLED,
        TURN_UNAVAILABLE,
        XMPP_UNAVAILABLE,
    ),
)
async def admit_web_guest(
    body: WebGuestRequest,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    xmpp_admin: XmppAdminDep,
    now: NowDep,
) -> WebGuestAdmitted:
    """An identity for sharing to ``meeting_id`` from a browser, until the meeting ends (or sooner)."""
    address = source_key(client_address(request))  # IPv6 by /64, as enrollment counts
    guest, box_name = await run_in_threadpool(_admit, session, settings, body, address, now)
    turn = turn_credentials(settings, guest.user, now)
    await run_in_threadpool(session.commit)  # the row first: an account is never left without one
    password = secrets.token_urlsafe(24)
    try:
        await xmpp_admin.register(guest.user, password)
    except XmppAdminError as exc:
        await run_in_threadpool(crud.forget_web_guests, session, [guest.user])
        logger.warning("could not register web guest %s: %s", guest.user, exc)
        raise ApiError(
            503, "xmpp_unavailable", "The cloud's messaging service is not answering; try again in a minute."
        ) from exc
    logger.info("web guest %s admitted to box %s until %s", guest.user, guest.box_id, guest.expires_at)
    domain = settings.xmpp.domain
    return WebGuestAdmitted(
        xmpp=WebGuestXmpp(
            jid=f"{guest.user}@{domain}", password=password, websocket_url=settings.xmpp.websocket_url
        ),
        box=MeetingBox(device_id=guest.box_id, name=box_name, jid=f"{guest.box_id}@{domain}"),
        meeting_id=guest.meeting_id,
        expires_at=guest.expires_at,
        turn=turn,
    )


def _admit(
    session: Session,
    settings: Settings,
    body: WebGuestRequest,
    address: str,
    now: datetime,
) -> tuple[WebGuest, str]:
    """The address's back-off, the meeting and its organisation's consent; the new guest (not committed)."""
    throttle_key = f"web-guest:{address}"
    policy = backoff(settings.throttle, settings.throttle.web_guest_free_admissions)
    wait = crud.throttle_retry_after(session, key=throttle_key, policy=policy, now=now)
    if wait > 0:
        session.commit()
        raise throttled(wait)
    crud.throttle_failure(session, key=throttle_key, policy=policy, now=now)  # every admission counts
    session.commit()
    normalised = normalise_meeting_id(body.meeting_id)
    meeting = (
        None
        if normalised is None
        else crud.get_meeting_for_web_guests(session, meeting_id=normalised, now=now)
    )
    if meeting is None:
        raise ApiError(
            404, "meeting_not_found", "No meeting has this id now; check the id on the room display."
        )
    org = meeting.box.org
    if org.suspended:
        raise ApiError(
            403,
            "org_suspended",
            "This room's organisation is suspended: nobody can share to it from the web.",
        )
    if not org.web_guests:
        raise ApiError(
            403,
            "web_guests_off",
            "This room does not take shares from a browser: use the Coalesce app, or ask the room's IT team.",
        )
    guest = crud.admit_web_guest(
        session, meeting=meeting, name=body.name, ttl=settings.web_guest_ttl, now=now
    )
    return guest, meeting.box.name
