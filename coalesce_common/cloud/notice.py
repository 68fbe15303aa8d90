"""The device-status notice: what the cloud tells boxes when an admin suspends, revokes or restores a device.

The cloud writes it (:meth:`DeviceStatusNotice.encode`) and devices read it (:meth:`DeviceStatusNotice.parse`)
from this one definition. On the wire it is the body of an XMPP message from the cloud's service account
(:func:`service_jid`, ``coalesce-cloud@<domain>``), as compact JSON::

    {"coalesce": "device-status", "device_id": "...", "jid": "<device id>@<domain>", "status": "suspended"}

``status`` is one of :class:`DeviceStatus`, the same three values the cloud keeps for each device. A box
that reads a suspended or revoked device (:attr:`DeviceStatus.cut_off`) ends that device's shares at once.
Only notices from the service account count: anybody on the XMPP server can send a box a message.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from slixmpp import JID
from slixmpp.jid import InvalidJID

from coalesce_common.errors import ProtocolError

SERVICE_USER = "coalesce-cloud"
"""Local part of the account the cloud sends notices from (the cloud's ``xmpp.service_user`` default)."""
KIND = "device-status"
MAX_NOTICE_SIZE = 4096
"""Bytes of JSON; a real notice is about 150."""
MAX_ID_LENGTH = 64


class DeviceStatus(enum.StrEnum):
    """A device's standing with its cloud."""

    ACTIVE = "active"
    SUSPENDED = "suspended"
    REVOKED = "revoked"

    @property
    def cut_off(self) -> bool:
        """Whether the device may no longer share (its live shares end)."""
        return self is not DeviceStatus.ACTIVE


def service_jid(domain_or_jid: str) -> str:
    """The bare JID notices come from, on the XMPP domain of ``domain_or_jid`` (a domain or any JID)."""
    return f"{SERVICE_USER}@{JID(domain_or_jid).domain}"


@dataclass(frozen=True)
class DeviceStatusNotice:
    device_id: str
    jid: str
    """The device's bare JID: shares whose peer has it are the device's."""
    status: DeviceStatus

    def encode(self) -> str:
        return json.dumps(
            {"coalesce": KIND, "device_id": self.device_id, "jid": self.jid, "status": self.status.value},
            separators=(",", ":"),
        )

    @classmethod
    def parse(cls, data: str | Mapping[str, Any]) -> DeviceStatusNotice:
        """A notice from its JSON text or decoded object; :class:`ProtocolError` for anything else.

        The object must have exactly the four members, all strings, ``status`` a known one and ``jid`` a
        valid bare JID.
        """
        if isinstance(data, str):
            if len(data.encode()) > MAX_NOTICE_SIZE:
                raise ProtocolError(f"a {KIND} notice is at most {MAX_NOTICE_SIZE} bytes", code="too-large")
            try:
                data = json.loads(data)
            except ValueError as exc:
                raise ProtocolError(f"{KIND} notice: not JSON ({exc})", code="malformed") from exc
        if not isinstance(data, Mapping):
            raise ProtocolError(f"a {KIND} notice is a JSON object", code="malformed")
        expected = {"coalesce", "device_id", "jid", "status"}
        if set(data) != expected:
            raise ProtocolError(
                f"{KIND} notice: members {sorted(map(str, data))[:6]}, expected {sorted(expected)}",
                code="malformed",
            )
        if data["coalesce"] != KIND:
            raise ProtocolError(f"not a {KIND} notice: {str(data['coalesce'])[:32]!r}", code="unknown-type")
        device_id, jid, status = data["device_id"], data["jid"], data["status"]
        if not (isinstance(device_id, str) and 0 < len(device_id) <= MAX_ID_LENGTH):
            raise ProtocolError(
                f"{KIND} notice: device_id must be 1 to {MAX_ID_LENGTH} characters", code="malformed"
            )
        try:
            standing = DeviceStatus(status)
        except ValueError as exc:
            raise ProtocolError(f"{KIND} notice: unknown status {status!r:.40}", code="malformed") from exc
        if not isinstance(jid, str):
            raise ProtocolError(f"{KIND} notice: jid must be a string", code="malformed")
        try:
            parsed = JID(jid)
        except InvalidJID as exc:
            raise ProtocolError(f"{KIND} notice: {jid[:64]!r} is not a JID", code="malformed") from exc
        if not parsed.user or parsed.resource:
            raise ProtocolError(f"{KIND} notice: {jid[:64]!r} is not a bare JID", code="malformed")
        return cls(device_id=device_id, jid=parsed.bare, status=standing)
