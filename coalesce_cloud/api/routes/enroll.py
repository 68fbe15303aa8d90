"""``POST /enroll``: a device trades an enrollment code for its identity, token and XMPP account."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from coalesce_cloud import crud
from coalesce_cloud.api.deps import ContextDep, NowDep, SessionDep
from coalesce_cloud.api.errors import (
    BODY_ANSWERS,
    THROTTLED,
    Answer,
    ApiError,
    documented,
    throttled,
)
from coalesce_cloud.api.revocation import XMPP_UNAVAILABLE, xmpp_unavailable
from coalesce_cloud.api.routes.common import backoff, client_address
from coalesce_cloud.api.schemas import EnrollRequest, EnrollResponse, xmpp_credentials
from coalesce_cloud.core.security import new_xmpp_password
from coalesce_cloud.models import Device, EnrollmentCode
from coalesce_cloud.xmpp_admin import XmppAdminError
from coalesce_common.throttle import source_key

logger = logging.getLogger(__name__)

router = APIRouter(tags=["devices"])

CODE_INVALID = Answer(403, "enrollment_code_invalid", "the code is wrong, expired or used up")


@router.post(
    "/enroll",
    status_code=201,
    responses=documented(*BODY_ANSWERS, CODE_INVALID, THROTTLED, XMPP_UNAVAILABLE),
)
async def enroll(
    body: EnrollRequest, request: Request, context: ContextDep, session: SessionDep, now: NowDep
) -> EnrollResponse:
    """Enroll a sender or a box. Wrong, expired and used-up codes get the same 403
    ``enrollment_code_invalid``; repeated failures from one address get 429 ``too_many_attempts``."""
    settings = context.settings
    throttle_key = f"enroll:{source_key(client_address(request))}"  # IPv6 by /64, as the receiver counts
    policy = backoff(settings.throttle, settings.throttle.enroll_free_failures)

    def create() -> tuple[Device, str, EnrollmentCode]:
        wait = crud.throttle_retry_after(session, key=throttle_key, policy=policy, now=now)
        if wait > 0:
            raise throttled(wait)
        code = crud.consume_enrollment_code(session, code=body.code, now=now)
        if code is None:
            crud.throttle_failure(session, key=throttle_key, policy=policy, now=now)
            session.commit()
            raise ApiError(
                403,
                "enrollment_code_invalid",
                "This enrollment code is not valid: it may be mistyped, expired or used up. "
                "Ask your administrator for a new one.",
            )
        device, token = crud.create_device(session, org=code.org, kind=body.kind, name=body.name, now=now)
        crud.record_audit(
            session,
            actor=f"device:{device.id}",
            action="enroll",
            device_id=device.id,
            details={"org": code.org.name, "kind": device.kind.value, "name": device.name},
            now=now,
        )
        session.commit()
        return device, token, code

    def undo(device: Device, code: EnrollmentCode) -> None:
        crud.undo_enrollment(session, device=device, code=code, now=now)
        session.commit()

    # Two short transactions around the XMPP call, never one held open across it (on SQLite that
    # would lock out every other request while ejabberd answers).
    device, token, code = await run_in_threadpool(create)
    password = new_xmpp_password()
    try:
        await context.xmpp_admin.register(device.id, password)
    except XmppAdminError as exc:
        await run_in_threadpool(undo, device, code)
        raise xmpp_unavailable(exc) from exc
    logger.info("enrolled %s %s in org %r", device.kind.value, device.id, device.org.name)
    return EnrollResponse(
        device_id=device.id,
        token=token,
        org=device.org.name,
        kind=device.kind,
        xmpp=xmpp_credentials(settings.xmpp, device.id, password),
        update_public_key=context.update_public_key,
    )
