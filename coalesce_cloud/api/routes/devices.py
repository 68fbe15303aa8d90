"""The calling device itself: ``GET /devices/me`` and ``POST /devices/me/xmpp-credentials``."""

from __future__ import annotations

import logging

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from coalesce_cloud import crud
from coalesce_cloud.api.deps import ContextDep, DeviceDep, NowDep, SessionDep
from coalesce_cloud.api.routes.common import xmpp_unavailable
from coalesce_cloud.api.schemas import DeviceInfo, XmppCredentialsResponse, device_info, xmpp_credentials
from coalesce_cloud.core.security import new_xmpp_password
from coalesce_cloud.xmpp_admin import XmppAdminError

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/devices", tags=["devices"])


@router.get("/me")
def read_me(device: DeviceDep, context: ContextDep) -> DeviceInfo:
    return device_info(device, context.settings.xmpp)


@router.post("/me/xmpp-credentials")
async def rotate_xmpp_credentials(
    device: DeviceDep, context: ContextDep, session: SessionDep, now: NowDep
) -> XmppCredentialsResponse:
    """Give the device a new XMPP password (after a suspension was lifted, or when it lost the old one).
    Sessions logged in with the old password stay up until they reconnect."""
    password = new_xmpp_password()
    try:
        await context.xmpp_admin.change_password(device.id, password)
    except XmppAdminError as exc:
        raise xmpp_unavailable(exc) from exc

    def audit() -> None:
        crud.record_audit(
            session, actor=f"device:{device.id}", action="xmpp_rotate", device_id=device.id, now=now
        )
        session.commit()

    await run_in_threadpool(audit)
    logger.info("new XMPP password for device %s", device.id)
    return XmppCredentialsResponse(xmpp=xmpp_credentials(context.settings.xmpp, device.id, password))
