"""The admin API (``Authorization: Bearer <admin_token>``): enrollment codes, devices, the audit trail.

What suspending, revoking and restoring a device does is :mod:`coalesce_cloud.api.revocation`'s.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from fastapi import APIRouter, Path, Query
from sqlalchemy.orm import Session

from coalesce_cloud import crud
from coalesce_cloud.api import revocation
from coalesce_cloud.api.deps import AdminDep, AppContext, ContextDep, NowDep, SessionDep, SettingsDep
from coalesce_cloud.api.errors import ApiError
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
from coalesce_cloud.models import DEVICE_ID_LENGTH, DeviceStatus

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/admin", tags=["admin"])

DeviceIdPath = Path(min_length=1, max_length=64, description="the device id")


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
        revocation.lift_lapsed_suspension(session, device=device, now=now)
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
    return revocation.restore(session, device_id=device_id, admin=admin, xmpp=settings.xmpp, now=now)


async def _cut_off(
    context: AppContext,
    session: Session,
    admin: str,
    device_id: str,
    status: DeviceStatus,
    until: datetime | None,
    now: datetime,
) -> DeviceStatusChanged:
    return await revocation.cut_off(
        session,
        device_id=device_id,
        status=status,
        until=until,
        admin=admin,
        xmpp=context.settings.xmpp,
        xmpp_admin=context.xmpp_admin,
        now=now,
    )
