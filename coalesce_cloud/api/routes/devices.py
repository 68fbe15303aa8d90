"""The calling device itself: ``GET /devices/me`` and ``POST /devices/me/xmpp-credentials``."""

from __future__ import annotations

from fastapi import APIRouter

from coalesce_cloud.api import revocation
from coalesce_cloud.api.deps import DEVICE_ANSWERS, ContextDep, DeviceDep, NowDep, SessionDep
from coalesce_cloud.api.errors import documented
from coalesce_cloud.api.schemas import DeviceInfo, XmppCredentialsResponse, device_info, xmpp_credentials

router = APIRouter(prefix="/devices", tags=["devices"])


@router.get("/me", responses=documented(*DEVICE_ANSWERS))
def read_me(device: DeviceDep, context: ContextDep) -> DeviceInfo:
    return device_info(device, context.settings.xmpp)


@router.post("/me/xmpp-credentials", responses=documented(*DEVICE_ANSWERS, revocation.XMPP_UNAVAILABLE))
async def rotate_xmpp_credentials(
    device: DeviceDep, context: ContextDep, session: SessionDep, now: NowDep
) -> XmppCredentialsResponse:
    """Give the device a new XMPP password (after a suspension was lifted, or when it lost the old one).
    Sessions logged in with the old password stay up until they reconnect."""
    password = await revocation.rekey_xmpp(session, device=device, xmpp_admin=context.xmpp_admin, now=now)
    return XmppCredentialsResponse(xmpp=xmpp_credentials(context.settings.xmpp, device.id, password))
