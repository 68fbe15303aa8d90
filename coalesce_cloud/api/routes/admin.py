"""The admin API (``Authorization: Bearer <admin_token>``): enrollment codes, devices, organisations and
the guests they admit, the audit trail.

What suspending, revoking and restoring a device does is :mod:`coalesce_cloud.api.revocation`'s.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from fastapi import APIRouter, Path, Query
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session

from coalesce_cloud import crud
from coalesce_cloud.api import revocation
from coalesce_cloud.api.deps import (
    ADMIN_ANSWERS,
    AdminDep,
    AppContext,
    ContextDep,
    NowDep,
    SessionDep,
    SettingsDep,
    XmppAdminDep,
)
from coalesce_cloud.api.errors import BODY_ANSWERS, VALIDATION, Answer, ApiError, documented
from coalesce_cloud.api.revocation import DEVICE_NOT_FOUND, REVOKED_IS_FINAL, XMPP_UNAVAILABLE
from coalesce_cloud.api.schemas import (
    NAME_PATTERN,
    AuditEntry,
    AuditList,
    DeviceList,
    DeviceStatusChanged,
    EnrollmentCodeIssued,
    EnrollmentCodeRequest,
    GuestAccessChange,
    OrgChange,
    OrgInfo,
    OrgList,
    SuspendRequest,
    device_info,
)
from coalesce_cloud.guest_expiry import send_all_away
from coalesce_cloud.models import DEVICE_ID_LENGTH, NAME_MAX, DeviceStatus, Org

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/admin", tags=["admin"])

# Ids are base32; the pattern is looser so that a mistyped id is "not found" (404), while what no id can
# hold (control characters, which PostgreSQL text cannot even store) is refused up front (422).
DEVICE_ID_PATTERN = "^[A-Za-z0-9_-]+$"
DeviceIdPath = Path(min_length=1, max_length=64, pattern=DEVICE_ID_PATTERN, description="the device id")
ORG_NOT_FOUND = Answer(404, "org_not_found", "no organisation has this name (enrollment codes create them)")


@router.post("/enrollment-codes", status_code=201, responses=documented(*ADMIN_ANSWERS, *BODY_ANSWERS))
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


@router.get("/devices", responses=documented(*ADMIN_ANSWERS, VALIDATION))
def list_devices(
    admin: AdminDep,
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
    org: str | None = Query(default=None, max_length=NAME_MAX, pattern=NAME_PATTERN),
) -> DeviceList:
    devices = crud.list_devices(session, org_name=org)
    for device in devices:  # show lapsed suspensions as lifted, as the next call would find them
        revocation.lift_lapsed_suspension(session, device=device, now=now)
    session.commit()
    return DeviceList(devices=[device_info(d, settings.xmpp) for d in devices])


@router.get("/audit", responses=documented(*ADMIN_ANSWERS, VALIDATION))
def list_audit(
    admin: AdminDep,
    session: SessionDep,
    device_id: str | None = Query(default=None, max_length=DEVICE_ID_LENGTH, pattern=DEVICE_ID_PATTERN),
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


@router.post(
    "/devices/{device_id}/suspend",
    responses=documented(*ADMIN_ANSWERS, *BODY_ANSWERS, DEVICE_NOT_FOUND, REVOKED_IS_FINAL, XMPP_UNAVAILABLE),
)
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


@router.post(
    "/devices/{device_id}/revoke",
    responses=documented(*ADMIN_ANSWERS, DEVICE_NOT_FOUND, VALIDATION, XMPP_UNAVAILABLE),
)
async def revoke_device(
    admin: AdminDep, context: ContextDep, session: SessionDep, now: NowDep, device_id: str = DeviceIdPath
) -> DeviceStatusChanged:
    return await _cut_off(context, session, admin, device_id, DeviceStatus.REVOKED, None, now)


@router.post(
    "/devices/{device_id}/restore",
    responses=documented(*ADMIN_ANSWERS, DEVICE_NOT_FOUND, REVOKED_IS_FINAL, VALIDATION),
)
def restore_device(
    admin: AdminDep, settings: SettingsDep, session: SessionDep, now: NowDep, device_id: str = DeviceIdPath
) -> DeviceStatusChanged:
    """Lift a suspension (a no-op for an active device)."""
    return revocation.restore(session, device_id=device_id, admin=admin, xmpp=settings.xmpp, now=now)


@router.get("/orgs", responses=documented(*ADMIN_ANSWERS))
def list_orgs(admin: AdminDep, session: SessionDep) -> OrgList:
    """Every organisation, and the organisations whose senders may resolve its meeting ids."""
    return OrgList(orgs=[_org_info(session, org) for org in crud.list_orgs(session)])


@router.post("/guest-access", responses=documented(*ADMIN_ANSWERS, *BODY_ANSWERS, ORG_NOT_FOUND))
def change_guest_access(
    body: GuestAccessChange, admin: AdminDep, session: SessionDep, now: NowDep
) -> OrgInfo:
    """Let the senders of ``guest_org`` resolve the meeting ids of ``org``'s boxes (``allowed``), or stop
    them. A sender always resolves its own organisation's meeting ids; others get 404 as for an unknown id.
    """
    if body.guest_org == body.org:
        raise ApiError(
            422,
            "validation_error",
            "Invalid guest_org: an organisation's own senders always join its meetings; name another one.",
        )
    host, guest = _org(session, body.org), _org(session, body.guest_org)
    if crud.set_guest_access(session, host=host, guest=guest, allowed=body.allowed, now=now):
        crud.record_audit(
            session,
            actor=admin,
            action="guests_allow" if body.allowed else "guests_deny",
            details={"org": host.name, "guest_org": guest.name},
            now=now,
        )
        logger.info("guests of org %r from org %r: %s", host.name, guest.name, body.allowed)
    session.commit()
    return _org_info(session, host)


@router.patch("/orgs/{name}", responses=documented(*ADMIN_ANSWERS, *BODY_ANSWERS, ORG_NOT_FOUND))
async def change_org(
    name: str,
    body: OrgChange,
    admin: AdminDep,
    session: SessionDep,
    xmpp_admin: XmppAdminDep,
    settings: SettingsDep,
    now: NowDep,
) -> OrgInfo:
    """Let browsers share to the organisation's rooms as web guests, or not (``web_guests``); suspend the
    organisation or restore it (``suspended``: a suspended organisation admits no web guests).

    Turning web guests off, or suspending, also ends the shares of the guests admitted so far: each guest's
    account is removed and its XMPP session kicked (its page loses the cloud), and its box is told, as for a
    revoked device, so that the box ends the share even if the page would not."""
    org, closed = await run_in_threadpool(_change_org, session, name, body, admin, now)
    if closed:
        guests = await run_in_threadpool(crud.web_guests_of_org, session, org)
        gone = await send_all_away(xmpp_admin, settings.xmpp, guests)
        await run_in_threadpool(crud.forget_web_guests, session, gone)
        if gone:
            logger.info("org %r: %d web guest(s) sent away", name, len(gone))
    return await run_in_threadpool(_org_info, session, org)


def _change_org(session: Session, name: str, body: OrgChange, admin: str, now: datetime) -> tuple[Org, bool]:
    """The organisation, changed and committed, and whether this change stopped it admitting web guests."""
    org = _org(session, name)
    changes = {
        field: value
        for field, value in (("web_guests", body.web_guests), ("suspended", body.suspended))
        if value is not None and getattr(org, field) != value
    }
    for field, value in changes.items():
        setattr(org, field, value)
    if changes:
        crud.record_audit(
            session, actor=admin, action="org_change", details={"org": org.name, **changes}, now=now
        )
        logger.info("org %r changed by %s: %s", org.name, admin, changes)
    closed = bool(changes.get("suspended") is True or changes.get("web_guests") is False)
    session.commit()
    return org, closed


def _org(session: Session, name: str) -> Org:
    org = crud.get_org(session, name=name)
    if org is None:
        raise ApiError(
            404, "org_not_found", f"No organisation is called {name!r}; check the name with 'admin orgs'."
        )
    return org


def _org_info(session: Session, org: Org) -> OrgInfo:
    return OrgInfo(
        name=org.name,
        created_at=org.created_at,
        guest_orgs=crud.guest_org_names(session, host=org),
        web_guests=org.web_guests,
        suspended=org.suspended,
    )


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
