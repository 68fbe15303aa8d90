"""Where a share goes: a receiver on the LAN (address, maybe its mDNS fingerprint) or a cloud meeting ID.

:func:`parse_destination` reads what people type in the one field of the first screen: an address as the
room display shows it (``192.168.1.40:8443``, ``room.example.com``, ``[fd00::7]:8443``) or a meeting ID
(digits, spaces and dashes allowed: ``123 456 7890``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from coalesce_common.discovery import ReceiverInfo
from coalesce_common.errors import CoalesceError

DEFAULT_PORT = 443
MEETING_ID_MIN_DIGITS = 6
_HOST = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.\-]*[A-Za-z0-9])?$")


class DestinationError(CoalesceError):
    """What was typed is neither an address nor a meeting ID."""


@dataclass(frozen=True)
class Destination:
    """A LAN receiver (``host``/``port``) or a cloud meeting (``meeting_id``)."""

    host: str = ""
    port: int = 0
    meeting_id: str = ""
    name: str = ""
    fingerprint: str | None = None
    pin_required: bool | None = None

    @property
    def is_meeting(self) -> bool:
        return bool(self.meeting_id)

    @property
    def address(self) -> str:
        """``host:port`` as typed (IPv6 bracketed); empty for a meeting."""
        if self.is_meeting:
            return ""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def label(self) -> str:
        """For people: the room's name when known, else the address or meeting ID."""
        if self.is_meeting:
            return self.name or f"meeting {format_meeting_id(self.meeting_id)}"
        return self.name or self.address

    @classmethod
    def from_receiver(cls, info: ReceiverInfo) -> Destination:
        return cls(
            host=info.addresses[0],
            port=info.port,
            name=info.name,
            fingerprint=info.fingerprint,
            pin_required=info.pin_required,
        )

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"host": self.host, "port": self.port, "meeting_id": self.meeting_id}
        if self.name:
            data["name"] = self.name
        if self.fingerprint:
            data["fingerprint"] = self.fingerprint
        return data

    @classmethod
    def from_json(cls, data: object) -> Destination | None:
        """A remembered destination, or ``None`` when the stored value is not one."""
        if not isinstance(data, dict):
            return None
        try:
            destination = cls(
                host=str(data.get("host", "")),
                port=int(data.get("port", 0)),
                meeting_id=str(data.get("meeting_id", "")),
                name=str(data.get("name", "")),
                fingerprint=str(data["fingerprint"]) if data.get("fingerprint") else None,
            )
        except (TypeError, ValueError):
            return None
        if destination.is_meeting or (destination.host and 0 < destination.port < 65536):
            return destination
        return None


def format_meeting_id(digits: str) -> str:
    """``1234567890`` → ``123 456 7890``, as room displays show it."""
    if len(digits) != 10:
        return digits
    return f"{digits[:3]} {digits[3:6]} {digits[6:]}"


def parse_destination(text: str) -> Destination:
    """What the user typed → a destination; :class:`DestinationError` says what to type instead."""
    text = text.strip()
    if not text:
        raise DestinationError(
            "Type the address or the meeting ID shown on the room display, or pick a room from the list."
        )
    compact = re.sub(r"[\s\-]", "", text)
    if compact.isdigit():
        if len(compact) < MEETING_ID_MIN_DIGITS:
            raise DestinationError(
                f"{text!r} is too short for a meeting ID: type all the digits shown on the room display."
            )
        return Destination(meeting_id=compact)
    host, port = _host_and_port(text)
    return Destination(host=host, port=port)


def _host_and_port(text: str) -> tuple[str, int]:
    example = "Type the address as the room display shows it, for example 192.168.1.40:8443."
    port_text = ""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest and not rest.startswith(":"):
            raise DestinationError(f"{text!r} is not an address. {example}")
        port_text = rest[1:]
        valid = bool(host) and all(c in "0123456789abcdefABCDEF:." for c in host)
    elif text.count(":") == 1:
        host, port_text = text.split(":")
        valid = bool(_HOST.match(host))
    elif ":" in text:  # a bare IPv6 literal
        host = text
        valid = all(c in "0123456789abcdefABCDEF:." for c in host)
    else:
        host = text
        valid = bool(_HOST.match(host))
    if not valid:
        raise DestinationError(f"{text!r} is not an address or a meeting ID. {example}")
    if not port_text:
        return host, DEFAULT_PORT
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise DestinationError(f"The port in {text!r} must be a number from 1 to 65535. {example}")
    return host, int(port_text)
