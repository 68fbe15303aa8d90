"""Data access: keyword-only functions over a SQLAlchemy session. They flush but never commit; the caller
(one request) owns the transaction. ``now`` is always passed in, so tests control time."""

from __future__ import annotations

import secrets
from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from coalesce_cloud.core import security
from coalesce_cloud.errors import CloudServiceError
from coalesce_cloud.models import (
    AuditEvent,
    Device,
    DeviceKind,
    DeviceStatus,
    EnrollmentCode,
    GuestGrant,
    Meeting,
    Org,
    ThrottleRecord,
    WebGuest,
)
from coalesce_common.throttle import BackoffPolicy

MEETING_ID_ATTEMPTS = 20
LAST_SEEN_RESOLUTION = timedelta(minutes=1)  # write last_seen at most this often per device


class MeetingIdsExhausted(CloudServiceError):
    """No free meeting id after many draws: the id space is nearly full (should never happen)."""


# ------------------------------------------------------------------------------------------ orgs, codes


def get_or_create_org(session: Session, *, name: str, now: datetime) -> Org:
    org = session.scalar(select(Org).where(Org.name == name))
    if org is not None:
        return org
    try:
        with session.begin_nested():
            org = Org(name=name, created_at=now)
            session.add(org)
    except IntegrityError:  # another request created it meanwhile
        org = session.scalars(select(Org).where(Org.name == name)).one()
    return org


def get_org(session: Session, *, name: str) -> Org | None:
    return session.scalar(select(Org).where(Org.name == name))


def list_orgs(session: Session) -> Sequence[Org]:
    return session.scalars(select(Org).order_by(Org.name)).all()


def guest_org_names(session: Session, *, host: Org) -> list[str]:
    """The organisations whose senders may resolve ``host``'s meeting IDs (besides its own), by name."""
    query = (
        select(Org.name)
        .join(GuestGrant, GuestGrant.guest_org_id == Org.id)
        .where(GuestGrant.host_org_id == host.id)
        .order_by(Org.name)
    )
    return list(session.scalars(query).all())


def set_guest_access(session: Session, *, host: Org, guest: Org, allowed: bool, now: datetime) -> bool:
    """Let ``guest``'s senders resolve ``host``'s meeting IDs, or stop them; True if that changed anything."""
    grant = session.get(GuestGrant, (host.id, guest.id))
    if allowed and grant is None:
        try:
            with session.begin_nested():
                session.add(GuestGrant(host_org_id=host.id, guest_org_id=guest.id, created_at=now))
        except IntegrityError:  # a concurrent request granted it meanwhile
            return False
        return True
    if not allowed and grant is not None:
        session.delete(grant)
        session.flush()
        return True
    return False


def create_enrollment_code(
    session: Session, *, org_name: str, uses: int, ttl: timedelta, now: datetime
) -> tuple[EnrollmentCode, str]:
    """A new code for ``org_name`` (created if new). Returns the row and the code, which is not stored."""
    org = get_or_create_org(session, name=org_name, now=now)
    code = security.new_enrollment_code()
    row = EnrollmentCode(
        code_hash=security.digest(security.normalise_enrollment_code(code)),
        org=org,
        created_at=now,
        expires_at=now + ttl,
        uses_left=uses,
    )
    session.add(row)
    session.flush()
    return row, code


def consume_enrollment_code(session: Session, *, code: str, now: datetime) -> EnrollmentCode | None:
    """Use up one use of ``code``; the code's row, or None if it is unknown, expired or used up.

    The decrement is one conditional UPDATE, so concurrent enrollments cannot overspend a code.
    """
    code_hash = security.digest(security.normalise_enrollment_code(code))
    result = session.execute(
        update(EnrollmentCode)
        .where(
            EnrollmentCode.code_hash == code_hash,
            EnrollmentCode.uses_left > 0,
            EnrollmentCode.expires_at > now,
        )
        .values(uses_left=EnrollmentCode.uses_left - 1)
        .returning(EnrollmentCode.id)
    )
    code_id = result.scalar_one_or_none()
    return None if code_id is None else session.get(EnrollmentCode, code_id, populate_existing=True)


def undo_enrollment(session: Session, *, device: Device, code: EnrollmentCode, now: datetime) -> None:
    """Forget a device whose enrollment could not be finished, and give its code's use back."""
    give_back = update(EnrollmentCode).where(EnrollmentCode.id == code.id)
    session.execute(give_back.values(uses_left=EnrollmentCode.uses_left + 1))
    session.delete(device)
    record_audit(session, actor="system", action="enroll_undone", device_id=device.id, now=now)


# ---------------------------------------------------------------------------------------------- devices


def create_device(
    session: Session, *, org: Org, kind: DeviceKind, name: str, now: datetime
) -> tuple[Device, str]:
    """A new active device, and its bearer token ``<id>.<secret>`` (only a digest of it is kept)."""
    secret = security.new_secret()
    device = Device(
        id=security.new_device_id(),
        org=org,
        kind=kind,
        name=name,
        token_hash=security.digest(secret),
        status=DeviceStatus.ACTIVE,
        suspended_until=None,
        created_at=now,
        last_seen=now,
    )
    session.add(device)
    session.flush()
    return device, f"{device.id}.{secret}"


def get_device(session: Session, *, device_id: str) -> Device | None:
    return session.get(Device, device_id)


def authenticate_device(session: Session, *, token: str) -> Device | None:
    """The device whose bearer token this is, whatever its status; None for a wrong token."""
    parts = security.split_device_token(token)
    if parts is None:
        return None
    device_id, secret = parts
    device = session.get(Device, device_id)
    expected = device.token_hash if device is not None else security.digest("")  # same work either way
    if not security.digest_matches(secret, expected) or device is None:
        return None
    return device


def touch_device(session: Session, *, device: Device, now: datetime) -> None:
    if device.last_seen is None or now - device.last_seen >= LAST_SEEN_RESOLUTION:
        device.last_seen = now


def list_devices(session: Session, *, org_name: str | None = None) -> Sequence[Device]:
    query = select(Device).order_by(Device.created_at, Device.id)
    if org_name is not None:
        query = query.join(Device.org).where(Org.name == org_name)
    return session.scalars(query).all()


def set_device_status(
    session: Session,
    *,
    device: Device,
    status: DeviceStatus,
    until: datetime | None,
    actor: str,
    now: datetime,
) -> None:
    """Mark ``device`` (and record who did it). A box that is no longer active loses its meeting."""
    previous = device.status
    device.status = status
    device.suspended_until = until if status is DeviceStatus.SUSPENDED else None
    if status is not DeviceStatus.ACTIVE and device.kind is DeviceKind.BOX:
        expire_meetings_of(session, box=device, now=now)
    action = {
        DeviceStatus.ACTIVE: "restore",
        DeviceStatus.SUSPENDED: "suspend",
        DeviceStatus.REVOKED: "revoke",
    }
    details: dict[str, Any] = {"previous": previous.value}
    if until is not None and status is DeviceStatus.SUSPENDED:
        details["until"] = until.isoformat()
    record_audit(session, actor=actor, action=action[status], device_id=device.id, details=details, now=now)


# --------------------------------------------------------------------------------------------- meetings


def expire_meetings_of(session: Session, *, box: Device, now: datetime) -> None:
    """End the box's live meeting (its web guests end with it: :mod:`coalesce_cloud.guest_expiry`)."""
    session.execute(
        update(Meeting).where(Meeting.box_id == box.id, Meeting.expires_at > now).values(expires_at=now)
    )


def issue_meeting(session: Session, *, box: Device, ttl: timedelta, now: datetime) -> Meeting:
    """A fresh meeting for ``box``, ending the box's previous one.

    Ids are drawn at random; one that belongs to a live meeting is drawn again, one that belongs to an
    expired meeting is taken over (its row goes). The unique index settles races between replicas.
    """
    expire_meetings_of(session, box=box, now=now)
    for _ in range(MEETING_ID_ATTEMPTS):
        meeting_id = security.new_meeting_id()
        existing = session.scalar(select(Meeting).where(Meeting.meeting_id == meeting_id))
        if existing is not None:
            if existing.expires_at > now:
                continue
            session.delete(existing)
            session.flush()
        meeting = Meeting(meeting_id=meeting_id, box=box, created_at=now, expires_at=now + ttl)
        try:
            with session.begin_nested():
                session.add(meeting)
        except IntegrityError:
            continue
        record_audit(
            session,
            actor=f"device:{box.id}",
            action="meeting_issue",
            device_id=box.id,
            details={"meeting_id": meeting_id, "expires_at": meeting.expires_at.isoformat()},
            now=now,
        )
        return meeting
    raise MeetingIdsExhausted(f"no free meeting id after {MEETING_ID_ATTEMPTS} draws")


def get_live_meeting(session: Session, *, meeting_id: str, visible_to: Org, now: datetime) -> Meeting | None:
    """The meeting with this id if it is live, its box active, and ``visible_to`` is the box's organisation
    or one it admits as guests; None otherwise (one answer for all, so that nobody learns which it was)."""
    meeting = session.scalar(
        select(Meeting).where(Meeting.meeting_id == meeting_id, Meeting.expires_at > now)
    )
    if meeting is None or meeting.box.status is not DeviceStatus.ACTIVE:
        return None
    host_org_id = meeting.box.org_id
    if host_org_id != visible_to.id and session.get(GuestGrant, (host_org_id, visible_to.id)) is None:
        return None
    return meeting


def get_meeting_for_web_guests(session: Session, *, meeting_id: str, now: datetime) -> Meeting | None:
    """The live meeting with this id whose box is active, whatever its organisation lets web guests do."""
    meeting = session.scalar(
        select(Meeting).where(Meeting.meeting_id == meeting_id, Meeting.expires_at > now)
    )
    if meeting is None or meeting.box.status is not DeviceStatus.ACTIVE:
        return None
    return meeting


def admit_web_guest(
    session: Session, *, meeting: Meeting, name: str, ttl: timedelta, now: datetime
) -> WebGuest:
    """A new web guest of ``meeting``'s box, lasting ``ttl`` at most and never beyond the meeting."""
    guest = WebGuest(
        user=f"g-{meeting.box_id}-{secrets.token_hex(8)}",
        box_id=meeting.box_id,
        meeting_id=meeting.meeting_id,
        name=name,
        created_at=now,
        expires_at=min(meeting.expires_at, now + ttl),
    )
    session.add(guest)
    return guest


def expired_web_guests(
    session: Session, *, now: datetime, limit: int, leaving_out: Collection[str] = ()
) -> list[tuple[str, str]]:
    """``(XMPP user, box id)`` of up to ``limit`` guests past their time, or whose meeting is not live
    (ended, or its ID taken over), oldest first; ``leaving_out`` these users."""
    meeting_live = (
        select(Meeting.id)
        .where(
            Meeting.meeting_id == WebGuest.meeting_id,
            Meeting.box_id == WebGuest.box_id,
            Meeting.expires_at > now,
        )
        .exists()
    )
    query = select(WebGuest.user, WebGuest.box_id).where(or_(WebGuest.expires_at <= now, ~meeting_live))
    if leaving_out:
        query = query.where(WebGuest.user.not_in(list(leaving_out)))
    rows = session.execute(query.order_by(WebGuest.expires_at, WebGuest.user).limit(limit)).all()
    return [(user, box_id) for user, box_id in rows]


def web_guests_of_org(session: Session, org: Org) -> list[tuple[str, str]]:
    """``(XMPP user, box id)`` of every web guest admitted to one of ``org``'s boxes (expired or not)."""
    rows = session.execute(
        select(WebGuest.user, WebGuest.box_id)
        .join(Device, Device.id == WebGuest.box_id)
        .where(Device.org_id == org.id)
    ).all()
    return [(user, box_id) for user, box_id in rows]


def forget_web_guests(session: Session, users: Sequence[str]) -> None:
    """Delete these guests' rows, committed (rows another request deleted first are no error)."""
    if users:
        session.execute(delete(WebGuest).where(WebGuest.user.in_(users)))
    session.commit()


def boxes_with_live_meetings(session: Session, *, now: datetime) -> Sequence[Device]:
    return session.scalars(
        select(Device)
        .join(Meeting, Meeting.box_id == Device.id)
        .where(Meeting.expires_at > now)
        .distinct()
        .order_by(Device.id)
    ).all()


# ------------------------------------------------------------------------------------------------ audit


def record_audit(
    session: Session,
    *,
    actor: str,
    action: str,
    now: datetime,
    device_id: str | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append an audit event. ``details`` must never hold a secret."""
    event = AuditEvent(at=now, actor=actor, action=action, device_id=device_id, details=details or {})
    session.add(event)
    return event


def list_audit_events(
    session: Session, *, device_id: str | None = None, limit: int = 100
) -> Sequence[AuditEvent]:
    query = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
    if device_id is not None:
        query = query.where(AuditEvent.device_id == device_id)
    return session.scalars(query).all()


# --------------------------------------------------------------------------------------------- throttle


def throttle_retry_after(session: Session, *, key: str, policy: BackoffPolicy, now: datetime) -> float:
    """Seconds ``key`` must wait before its next attempt (0 when it may go ahead)."""
    record = session.get(ThrottleRecord, key)
    if record is None:
        return 0.0
    return policy.retry_after(record.failures, idle=(now - record.last_failure).total_seconds())


def throttle_failure(session: Session, *, key: str, policy: BackoffPolicy, now: datetime) -> float:
    """Count a failure for ``key``; return the wait it now faces."""
    session.execute(
        delete(ThrottleRecord).where(
            ThrottleRecord.last_failure < now - timedelta(seconds=policy.forget_after)
        )
    )
    updated = session.execute(
        update(ThrottleRecord)
        .where(ThrottleRecord.key == key)
        .values(failures=ThrottleRecord.failures + 1, last_failure=now)
    )
    if getattr(updated, "rowcount", 0) == 0:
        try:
            with session.begin_nested():
                session.add(ThrottleRecord(key=key, failures=1, last_failure=now))
        except IntegrityError:  # a concurrent first failure inserted it
            session.execute(
                update(ThrottleRecord)
                .where(ThrottleRecord.key == key)
                .values(failures=ThrottleRecord.failures + 1, last_failure=now)
            )
    record = session.get(ThrottleRecord, key, populate_existing=True)
    if record is None:
        return 0.0
    return policy.retry_after(record.failures, idle=(now - record.last_failure).total_seconds())
