"""The admin API (``Authorization: Bearer <admin_token>``): enrollment codes, devices, the audit trail.

Suspending or revoking a device (1) marks it, so its REST calls and TURN requests are refused and, if
it is a box, its meeting ends; (2) sets its XMPP password to a random one nobody knows and kicks its
live sessions; (3) tells every box with a live meeting, from the service JID, so that they end shares
from that device. Both are idempotent: when ejabberd was unreachable (502 ``xmpp_unavailable``) the
admin runs the same command again. Restoring only lifts the mark: the device then fetches new XMPP
credentials itself (``POST /devices/me/xmpp-credentials``). Revoked is final (409 ``device_revoked``).
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import datetime, timedelta

from fastapi import APIRouter, Path, Query
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from coalesce_cloud import crud
from coalesce_cloud.api.deps import AdminDep, AppContext, ContextDep, NowDep, SessionDep, SettingsDep
from coalesce_cloud.api.errors import ApiError
from coalesce_cloud.api.routes.common import xmpp_unavailable
from coalesce_cloud.api.schemas import (
    AuditEntry,
    AuditList,
    DeviceList,
    DeviceStatusChanged,
    EnrollmentCodeIssued,
    EnrollmentCodeRequest,
    SuspendRequest,
    device_info,
)
from coalesce_cloud.core.security import new_xmpp_password
from coalesce_cloud.models import DEVICE_ID_LENGTH, Device, DeviceStatus
from coalesce_cloud.xmpp_admin import XmppAdminError

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/admin", tags=["admin"])

DeviceIdPath = Path(min_length=1, max_length=64, description="the device id")
DEVICE_STATUS_NOTICE = "device-status"


@router.post("/enrollment-codes", status_code=201)
def create_enrollment_code(
    body: EnrollmentCodeRequest, admin: AdminDep, session: SessionDep, now: NowDep
) -> EnrollmentCodeIssued:
    """A code for enrolling ``uses`` devices into ``org`` (created if new) within ``ttl_seconds``."""
    row, code = crud.create_enrollment_code(
        session, org_name=body.org, uses=body.uses, ttl=timedelta(seconds=body.ttl_seconds), now=now
    )
    crud.record_audit(
        session,
        actor=admin,
        action="enrollment_code_create",
        details={"org": body.org, "uses": body.uses, "expires_at": row.expires_at.isoformat()},
        now=now,
    )
    session.commit()
    return EnrollmentCodeIssued(code=code, org=body.org, uses=body.uses, expires_at=row.expires_at)


@router.get("/devices")
def list_devices(
    admin: AdminDep,
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
    org: str | None = Query(default=None, max_length=100),
) -> DeviceList:
    devices = crud.list_devices(session, org_name=org)
    for device in devices:  # show lapsed suspensions as lifted, as the next call would find them
        crud.lift_expired_suspension(session, device=device, now=now)
    session.commit()
    return DeviceList(devices=[device_info(d, settings.xmpp) for d in devices])


@router.get("/audit")
def list_audit(
    admin: AdminDep,
    session: SessionDep,
    device_id: str | None = Query(default=None, max_length=DEVICE_ID_LENGTH),
    limit: int = Query(default=100, ge=1, le=1000),
) -> AuditList:
    """The newest audit events first."""
    events = crud.list_audit_events(session, device_id=device_id, limit=limit)
    return AuditList(
        events=[
            AuditEntry(at=e.at, actor=e.actor, action=e.action, device_id=e.device_id, details=e.details)
            for e in events
        ]
    )


@router.post("/devices/{device_id}/suspend")
async def suspend_device(
    body: SuspendRequest,
    admin: AdminDep,
    context: ContextDep,
    session: SessionDep,
    now: NowDep,
    device_id: str = DeviceIdPath,
) -> DeviceStatusChanged:
    until = body.ends(now)
    if until <= now:
        raise ApiError(422, "validation_error", "Invalid until: it must be in the future.")
    return await _cut_off(context, session, admin, device_id, DeviceStatus.SUSPENDED, until, now)


@router.post("/devices/{device_id}/revoke")
async def revoke_device(
    admin: AdminDep, context: ContextDep, session: SessionDep, now: NowDep, device_id: str = DeviceIdPath
) -> DeviceStatusChanged:
    return await _cut_off(context, session, admin, device_id, DeviceStatus.REVOKED, None, now)


@router.post("/devices/{device_id}/restore")
def restore_device(
    admin: AdminDep, settings: SettingsDep, session: SessionDep, now: NowDep, device_id: str = DeviceIdPath
) -> DeviceStatusChanged:
    """Lift a suspension (a no-op for an active device)."""
    device = _get_device(session, device_id)
    if device.status is DeviceStatus.REVOKED:
        raise ApiError(409, "device_revoked", "This device is revoked, which is final; enroll it again.")
    if device.status is DeviceStatus.SUSPENDED:
        crud.set_device_status(
            session, device=device, status=DeviceStatus.ACTIVE, until=None, actor=admin, now=now
        )
        session.commit()
        logger.info("device %s restored", device.id)
    return DeviceStatusChanged(device=device_info(device, settings.xmpp))


def _get_device(session: Session, device_id: str) -> Device:
    device = crud.get_device(session, device_id=device_id)
    if device is None:
        raise ApiError(404, "device_not_found", "No device has this id.")
    return device


async def _cut_off(
    context: AppContext,
    session: Session,
    admin: str,
    device_id: str,
    status: DeviceStatus,
    until: datetime | None,
    now: datetime,
) -> DeviceStatusChanged:
    xmpp = context.settings.xmpp

    def mark() -> tuple[Device, list[str]]:
        device = _get_device(session, device_id)
        if device.status is DeviceStatus.REVOKED and status is not DeviceStatus.REVOKED:
            raise ApiError(409, "device_revoked", "This device is revoked already, which is final.")
        crud.set_device_status(session, device=device, status=status, until=until, actor=admin, now=now)
        boxes = [box.id for box in crud.boxes_with_live_meetings(session, now=now) if box.id != device.id]
        session.commit()
        return device, boxes

    device, box_ids = await run_in_threadpool(mark)
    logger.info("device %s %s by %s", device.id, status.value, admin)
    done = f"The device is marked {status.value}, but it may still be logged in to XMPP."
    try:
        await context.xmpp_admin.change_password(device.id, new_xmpp_password())
        kicked = await context.xmpp_admin.kick(device.id)
    except XmppAdminError as exc:
        raise xmpp_unavailable(exc, detail=True, done=done + " Run this command again.") from exc
    notice = json.dumps(
        {
            "coalesce": DEVICE_STATUS_NOTICE,
            "device_id": device.id,
            "jid": f"{device.id}@{xmpp.domain}",
            "status": status.value,
        },
        separators=(",", ":"),
    )
    results = await asyncio.gather(
        *(
            context.xmpp_admin.send_message(xmpp.service_jid, f"{box}@{xmpp.domain}", notice)
            for box in box_ids
        ),
        return_exceptions=True,
    )
    failed = [box for box, result in zip(box_ids, results, strict=True) if isinstance(result, BaseException)]
    for result in results:
        if isinstance(result, BaseException) and not isinstance(result, XmppAdminError):
            raise result
    if failed:
        logger.warning("could not tell %d box(es) that device %s is %s", len(failed), device.id, status.value)
    return DeviceStatusChanged(
        device=device_info(device, xmpp), sessions_kicked=kicked, boxes_notified=len(box_ids) - len(failed)
    )
