"""A device's standing: who may use the cloud, and what suspending, revoking and restoring a device does.

A device is active, suspended until a time (the suspension lifts by itself then) or revoked (final).

- :func:`admit` is what every device request passes (``DeviceDep``): 403 ``device_revoked``, or 403
  ``device_suspended`` with ``until``; a suspension whose time has passed is lifted on the way.
- :func:`cut_off` suspends or revokes: (1) it marks the device, so its REST calls and TURN requests are
  refused and, if it is a box, its meeting ends; (2) it sets the device's XMPP password to a random one
  nobody knows and kicks its live sessions; (3) it tells every box with a live meeting, from the service
  JID, in a :class:`~coalesce_common.cloud.notice.DeviceStatusNotice`, so that they end shares from that
  device. It is idempotent: when ejabberd was unreachable (502 ``xmpp_unavailable``) the admin runs the
  same command again. A revoked device cannot be suspended (409 ``device_revoked``).
- :func:`restore` only lifts the mark: the device then fetches new XMPP credentials itself
  (``POST /devices/me/xmpp-credentials``, :func:`rekey_xmpp`). A revoked device cannot be restored (409
  ``device_revoked``).

Every XMPP admin call the API makes is about a device's account (created at enrollment, re-keyed, locked
out), so the API's answer when ejabberd fails, :func:`xmpp_unavailable`, lives here too.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from coalesce_cloud import crud
from coalesce_cloud.api.errors import Answer, ApiError
from coalesce_cloud.api.schemas import DeviceStatusChanged, device_info
from coalesce_cloud.core.config import XmppSettings
from coalesce_cloud.core.security import new_xmpp_password
from coalesce_cloud.models import Device, DeviceStatus
from coalesce_cloud.xmpp_admin import XmppAdmin, XmppAdminError
from coalesce_common.cloud.notice import DeviceStatusNotice

logger = logging.getLogger(__name__)

STANDING_ANSWERS = (
    Answer(403, "device_revoked", "an administrator revoked the calling device"),
    Answer(403, "device_suspended", "an administrator suspended the calling device (see until)"),
)
DEVICE_NOT_FOUND = Answer(404, "device_not_found", "no device has this id")
REVOKED_IS_FINAL = Answer(409, "device_revoked", "the device is revoked, which is final")
XMPP_UNAVAILABLE = Answer(502, "xmpp_unavailable", "the XMPP server could not be reached or refused")


def utc_iso(moment: datetime) -> str:
    """ISO 8601 in UTC with a ``Z``, as pydantic writes datetimes in every response body."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def admit(session: Session, *, device: Device, now: datetime) -> None:
    """Refuse a device that is revoked or still suspended (lifting a suspension that has run out)."""
    if device.status is DeviceStatus.REVOKED:
        raise ApiError(403, "device_revoked", "This device was revoked by an administrator; enroll it again.")
    lift_lapsed_suspension(session, device=device, now=now)
    if device.status is DeviceStatus.SUSPENDED:
        until = utc_iso(device.suspended_until) if device.suspended_until is not None else None
        raise ApiError(
            403,
            "device_suspended",
            "This device is suspended by an administrator" + (f" until {until}." if until else "."),
            until=until,
        )


def lift_lapsed_suspension(session: Session, *, device: Device, now: datetime) -> bool:
    """Reactivate a suspended device whose suspension has run out; True if it did."""
    if device.status is not DeviceStatus.SUSPENDED:
        return False
    if device.suspended_until is None or device.suspended_until > now:
        return False
    crud.set_device_status(
        session, device=device, status=DeviceStatus.ACTIVE, until=None, actor="system", now=now
    )
    return True


def restore(
    session: Session, *, device_id: str, admin: str, xmpp: XmppSettings, now: datetime
) -> DeviceStatusChanged:
    """Lift a suspension (a no-op for an active device)."""
    device = get_device(session, device_id)
    if device.status is DeviceStatus.REVOKED:
        raise ApiError(409, "device_revoked", "This device is revoked, which is final; enroll it again.")
    if device.status is DeviceStatus.SUSPENDED:
        crud.set_device_status(
            session, device=device, status=DeviceStatus.ACTIVE, until=None, actor=admin, now=now
        )
        session.commit()
        logger.info("device %s restored", device.id)
    return DeviceStatusChanged(device=device_info(device, xmpp))


async def cut_off(
    session: Session,
    *,
    device_id: str,
    status: DeviceStatus,
    until: datetime | None,
    admin: str,
    xmpp: XmppSettings,
    xmpp_admin: XmppAdmin,
    now: datetime,
) -> DeviceStatusChanged:
    """Suspend (``until`` a time) or revoke a device, then lock it out of XMPP and tell the boxes."""
    if not status.cut_off:
        raise ValueError(f"cut_off takes a suspension or a revocation, not {status}")

    def mark() -> tuple[Device, list[str]]:
        device = get_device(session, device_id)
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
        await xmpp_admin.change_password(device.id, new_xmpp_password())
        kicked = await xmpp_admin.kick(device.id)
    except XmppAdminError as exc:
        raise xmpp_unavailable(exc, detail=True, done=done + " Run this command again.") from exc
    notice = DeviceStatusNotice(device_id=device.id, jid=f"{device.id}@{xmpp.domain}", status=status)
    results = await asyncio.gather(
        *(
            xmpp_admin.send_message(xmpp.service_jid, f"{box}@{xmpp.domain}", notice.encode())
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


async def rekey_xmpp(session: Session, *, device: Device, xmpp_admin: XmppAdmin, now: datetime) -> str:
    """A new XMPP password for ``device`` (after a suspension was lifted, or when it lost the old one).

    Sessions logged in with the old password stay up until they reconnect.
    """
    password = new_xmpp_password()
    try:
        await xmpp_admin.change_password(device.id, password)
    except XmppAdminError as exc:
        raise xmpp_unavailable(exc) from exc

    def audit() -> None:
        crud.record_audit(
            session, actor=f"device:{device.id}", action="xmpp_rotate", device_id=device.id, now=now
        )
        session.commit()

    await run_in_threadpool(audit)
    logger.info("new XMPP password for device %s", device.id)
    return password


def xmpp_unavailable(exc: XmppAdminError, *, detail: bool = False, done: str = "") -> ApiError:
    """502 for a failed XMPP admin call; the details (server URLs) only for the admin's eyes."""
    logger.warning("XMPP admin call failed: %s", exc)
    message = f"{done} " if done else ""
    message += "The XMPP server could not be reached or refused the change"
    message += f": {exc}" if detail else "; try again in a moment."
    return ApiError(502, "xmpp_unavailable", message)


def get_device(session: Session, device_id: str) -> Device:
    device = crud.get_device(session, device_id=device_id)
    if device is None:
        raise ApiError(404, "device_not_found", "No device has this id.")
    return device
