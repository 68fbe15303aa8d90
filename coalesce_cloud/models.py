"""The cloud's tables: orgs and the guests they admit, enrollment codes, devices, meetings, the audit trail
and throttle records.

Secrets are never stored: enrollment codes and device tokens only as SHA-256 digests (both are
high-entropy random values, so an unsalted digest is enough), XMPP passwords not at all (ejabberd keeps
SCRAM records). Times are timezone-aware UTC in Python whatever the database keeps.

Schema changes go through Alembic (``coalesce_cloud/migrations``); never ``create_all``.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    Dialect,
    Enum,
    ForeignKey,
    Index,
    Integer,
    String,
    TypeDecorator,
    false,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# A device's standing; defined with the notice that tells boxes about it, so both read the same values.
from coalesce_common.cloud.notice import DeviceStatus as DeviceStatus

DEVICE_ID_LENGTH = 24
MEETING_ID_LENGTH = 10
NAME_MAX = 100


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in Python; SQLite keeps them naive, PostgreSQL as timestamptz."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class DeviceKind(enum.StrEnum):
    SENDER = "sender"
    BOX = "box"


def _str_enum(cls: type[enum.StrEnum], name: str) -> Enum:
    # Stored as plain strings with a CHECK constraint: portable, and readable in psql.
    return Enum(
        cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=16,
        values_callable=lambda members: [m.value for m in members],
    )


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UtcDateTime()}


class Org(Base):
    __tablename__ = "orgs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_MAX), unique=True)
    created_at: Mapped[datetime]
    web_guests: Mapped[bool] = mapped_column(default=True, server_default=true())
    """Whether people without an enrolled device may share to its meetings from a browser (``WebGuest``)."""
    suspended: Mapped[bool] = mapped_column(default=False, server_default=false())
    """An administrator stopped the organisation: no web guests are admitted to its meetings."""


class WebGuest(Base):
    """A browser's short-lived XMPP identity for one meeting (the browser sender: no enrolled device).

    Its XMPP user is ``g-<box id>-<random>``: only the API registers accounts, so the name alone proves
    which box it was admitted to, and the box ignores guests of other boxes. It ends with its meeting, or
    sooner (``web_guest_ttl``); the API's sweeper then sends it away (:mod:`coalesce_cloud.guest_expiry`).
    """

    __tablename__ = "web_guests"

    user: Mapped[str] = mapped_column(String(96), primary_key=True)
    box_id: Mapped[str] = mapped_column(ForeignKey("devices.id"), index=True)
    meeting_id: Mapped[str] = mapped_column(String(MEETING_ID_LENGTH))
    name: Mapped[str] = mapped_column(String(NAME_MAX))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)


class GuestGrant(Base):
    """Senders of ``guest_org`` may resolve the meeting IDs of ``host_org``'s boxes.

    Without a grant a sender resolves only its own organisation's meeting IDs; an admin adds and removes
    grants (``coalesce-cloud admin allow-guests`` / ``deny-guests``).
    """

    __tablename__ = "guest_grants"

    host_org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id"), primary_key=True)
    guest_org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id"), primary_key=True)
    created_at: Mapped[datetime]


class EnrollmentCode(Base):
    __tablename__ = "enrollment_codes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id"))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    uses_left: Mapped[int]

    org: Mapped[Org] = relationship(lazy="joined")


class Device(Base):
    __tablename__ = "devices"

    id: Mapped[str] = mapped_column(String(DEVICE_ID_LENGTH), primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id"), index=True)
    kind: Mapped[DeviceKind] = mapped_column(_str_enum(DeviceKind, "device_kind"))
    name: Mapped[str] = mapped_column(String(NAME_MAX))
    token_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[DeviceStatus] = mapped_column(_str_enum(DeviceStatus, "device_status"))
    suspended_until: Mapped[datetime | None]
    created_at: Mapped[datetime]
    last_seen: Mapped[datetime | None]

    org: Mapped[Org] = relationship(lazy="joined")


class Meeting(Base):
    """A meeting ID bound to a box. Rows are unique by ID: an expired row is replaced when its ID is drawn
    again, so the database itself guarantees that no two live meetings share an ID."""

    __tablename__ = "meetings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    meeting_id: Mapped[str] = mapped_column(String(MEETING_ID_LENGTH), unique=True)
    box_id: Mapped[str] = mapped_column(ForeignKey("devices.id"))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]

    box: Mapped[Device] = relationship(lazy="joined")

    __table_args__ = (Index("ix_meetings_box_expires", "box_id", "expires_at"),)


class AuditEvent(Base):
    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(index=True)
    actor: Mapped[str] = mapped_column(String(64))  # "admin", "system", or "device:<id>"
    action: Mapped[str] = mapped_column(String(32))
    device_id: Mapped[str | None] = mapped_column(String(DEVICE_ID_LENGTH), index=True)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class ThrottleRecord(Base):
    """Failed attempts per key (``enroll:<ip>``, ``lookup:<device>``), shared by every API replica."""

    __tablename__ = "throttle_records"

    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    failures: Mapped[int]
    last_failure: Mapped[datetime]
