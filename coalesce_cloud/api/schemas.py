"""Request and response bodies of the REST API (they are also its OpenAPI schema)."""

from __future__ import annotations

import functools
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    create_model,
    model_validator,
)

from coalesce_cloud.core.config import XmppSettings
from coalesce_cloud.models import NAME_MAX, Device, DeviceKind, DeviceStatus

# What a name may not hold: control characters (C0, DEL, C1), spaces other than the plain one, line and
# paragraph separators, invisible format characters (zero-width, bidirectional overrides, the BOM), private
# use and non-characters. They make a name look like another one, or break the lists it is shown in.
# Written as \uXXXX ranges of the BMP because Python's re, pydantic's Rust regex and the ECMA-262 regexes
# that OpenAPI tools use all read them alike; the pattern is the rule, enforced and published as one.
_REFUSED = (
    r"\u0000-\u001f\u007f-\u00a0\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890-\u0891\u08e2\u1680\u180e"
    r"\u2000-\u200f\u2028-\u202f\u205f-\u206f\u3000\ue000-\uf8ff\ufdd0-\ufdef\ufeff\ufff9-\ufffb\ufffe\uffff"
)
NAME_PATTERN = f"^[^{_REFUSED}]*[^ {_REFUSED}][^{_REFUSED}]*$"

Name = Annotated[
    str,
    Field(
        min_length=1,
        max_length=NAME_MAX,
        pattern=NAME_PATTERN,
        description="printable (no control, format or separator characters) and not only spaces; "
        "leading and trailing spaces are trimmed",
    ),
    AfterValidator(str.strip),
]


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore", str_max_length=4096)


# --------------------------------------------------------------------------------------------- errors


class ValidationIssue(BaseModel):
    loc: list[str] = Field(description="where: body, query or path, then the field")
    message: str
    type: str


class ErrorDetail(BaseModel):
    model_config = ConfigDict(extra="allow")

    code: str = Field(description="stable, for programs: switch on it")
    message: str = Field(description="for people: what happened and what to do")
    retry_after: int | None = Field(default=None, description="429: seconds to wait before trying again")
    until: str | None = Field(default=None, description="403 device_suspended: when the suspension ends")
    details: list[ValidationIssue] | None = Field(default=None, description="422: what is wrong, per field")


class ErrorBody(BaseModel):
    """Every answer that is not a success: ``{"error": {"code": ..., "message": ...}}``."""

    error: ErrorDetail


@functools.cache
def error_body(codes: tuple[str, ...]) -> type[ErrorBody]:
    """The error body whose ``code`` is one of ``codes`` (so the schema lists the codes a route gives)."""
    name = "Error_" + "_or_".join(codes)
    detail = create_model(
        f"{name}_detail",
        __base__=ErrorDetail,
        code=(Literal[codes], Field(description="stable, for programs: switch on it")),  # type: ignore[valid-type,arg-type]
    )
    return create_model(name, __base__=ErrorBody, __doc__=ErrorBody.__doc__, error=(detail, ...))


# ---------------------------------------------------------------------------------------------- enroll


class EnrollRequest(_Body):
    code: str = Field(min_length=1, max_length=64)
    name: Name
    kind: DeviceKind


class XmppEndpoint(BaseModel):
    host: str
    starttls_port: int
    tls_port: int


class XmppCredentials(BaseModel):
    jid: str
    password: str
    domain: str
    host: str
    starttls_port: int
    tls_port: int
    endpoints: list[XmppEndpoint] = Field(
        default_factory=list,
        description="every ejabberd node the device may log in to, this one (host and ports) first; "
        "a device that cannot reach one tries the next",
    )


class EnrollResponse(BaseModel):
    device_id: str
    token: str = Field(description="bearer token for every later call; shown once")
    org: str
    kind: DeviceKind
    xmpp: XmppCredentials
    update_public_key: str = Field(description="base64 of the raw ed25519 key that signs update manifests")


# -------------------------------------------------------------------------------------------- devices


class DeviceInfo(BaseModel):
    device_id: str
    org: str
    kind: DeviceKind
    name: str
    jid: str
    status: DeviceStatus
    suspended_until: datetime | None
    created_at: datetime
    last_seen: datetime | None


class DeviceList(BaseModel):
    devices: list[DeviceInfo]


class XmppCredentialsResponse(BaseModel):
    xmpp: XmppCredentials


# ------------------------------------------------------------------------------------------- meetings


class MeetingIssued(BaseModel):
    meeting_id: str
    expires_at: datetime
    share_url: str | None = Field(
        default=None,
        description="the browser sharing page the room display shows beside the meeting ID; null when the "
        "box's organisation does not admit web guests or the cloud has no WebSocket signaling",
    )


class MeetingBox(BaseModel):
    device_id: str
    name: str
    jid: str


class MeetingInfo(BaseModel):
    meeting_id: str
    box: MeetingBox
    expires_at: datetime


class WebGuestRequest(_Body):
    """A browser asks to share to a meeting: the meeting ID shown in the room, and the name to show."""

    meeting_id: str = Field(max_length=32, description="10 digits; spaces and dashes are ignored")
    name: Name = Field(description="shown on the room display beside the share")


class WebGuestXmpp(BaseModel):
    jid: str
    password: str
    websocket_url: str = Field(description="XMPP over WebSocket (RFC 7395), where the browser logs in")


class WebGuestAdmitted(BaseModel):
    """A browser's identity for one meeting: XMPP to the box, TURN for the media, until ``expires_at``."""

    xmpp: WebGuestXmpp
    box: MeetingBox
    meeting_id: str
    expires_at: datetime
    turn: TurnCredentials


# ----------------------------------------------------------------------------------------------- turn


class IceServer(BaseModel):
    region: str
    urls: list[str]
    username: str
    credential: str


class TurnCredentials(BaseModel):
    ttl: int
    expires_at: datetime
    servers: list[IceServer]


# ---------------------------------------------------------------------------------------------- admin


class EnrollmentCodeRequest(_Body):
    org: Name
    uses: int = Field(default=1, ge=1, le=10_000)
    ttl_seconds: int = Field(default=7 * 86400, ge=60, le=365 * 86400)


class EnrollmentCodeIssued(BaseModel):
    code: str = Field(description="shown once; only a digest is kept")
    org: str
    uses: int
    expires_at: datetime


class SuspendRequest(_Body):
    """Exactly one of ``until`` (in the future) or ``for_seconds`` (counted by the server's clock, so client
    clocks do not matter)."""

    model_config = ConfigDict(
        json_schema_extra={"oneOf": [{"required": ["until"]}, {"required": ["for_seconds"]}]}
    )

    until: AwareDatetime | None = Field(
        default=None, description="ISO 8601 with a UTC offset; the suspension lifts by itself then"
    )
    for_seconds: int | None = Field(default=None, ge=1, le=10 * 365 * 86400)

    @model_validator(mode="after")
    def _one_of(self) -> SuspendRequest:
        if (self.until is None) == (self.for_seconds is None):
            raise ValueError("give either until or for_seconds")
        return self

    def ends(self, now: datetime) -> datetime:
        return self.until if self.until is not None else now + timedelta(seconds=self.for_seconds or 0)


class OrgInfo(BaseModel):
    name: str
    created_at: datetime
    guest_orgs: list[str] = Field(
        description="organisations whose senders may resolve this organisation's meeting ids, besides its own"
    )
    web_guests: bool = Field(description="whether browsers without an enrolled device may share to its rooms")
    suspended: bool


class OrgChange(_Body):
    """Turn an organisation's web guests on or off, or suspend or restore it (fields left out stay)."""

    web_guests: bool | None = None
    suspended: bool | None = None


class OrgList(BaseModel):
    orgs: list[OrgInfo]


class GuestAccessChange(_Body):
    """Let the senders of ``guest_org`` resolve the meeting ids of ``org``'s boxes, or stop them."""

    org: Name = Field(description="the organisation whose boxes hold the meetings")
    guest_org: Name = Field(description="the organisation whose senders join them")
    allowed: bool


class DeviceStatusChanged(BaseModel):
    device: DeviceInfo
    sessions_kicked: int = 0
    boxes_notified: int = 0


class AuditEntry(BaseModel):
    at: datetime
    actor: str
    action: str
    device_id: str | None
    details: dict[str, Any]


class AuditList(BaseModel):
    events: list[AuditEntry]


# -------------------------------------------------------------------------------------------- updates


class ManifestBody(BaseModel):
    platform: str
    version: str
    url: str
    sha256: str
    notes: str
    published_at: str


class SignedManifest(BaseModel):
    manifest: ManifestBody
    signature: str = Field(description="base64 ed25519 signature over the manifest's canonical JSON")


class Health(BaseModel):
    status: Literal["ok"]


# ----------------------------------------------------------------------------------------- converters


def xmpp_credentials(xmpp: XmppSettings, user: str, password: str) -> XmppCredentials:
    return XmppCredentials(
        jid=f"{user}@{xmpp.domain}",
        password=password,
        domain=xmpp.domain,
        host=xmpp.client_host,
        starttls_port=xmpp.starttls_port,
        tls_port=xmpp.tls_port,
        endpoints=[
            XmppEndpoint(host=n.host, starttls_port=n.starttls_port, tls_port=n.tls_port)
            for n in xmpp.client_nodes
        ],
    )


def device_info(device: Device, xmpp: XmppSettings) -> DeviceInfo:
    return DeviceInfo(
        device_id=device.id,
        org=device.org.name,
        kind=device.kind,
        name=device.name,
        jid=f"{device.id}@{xmpp.domain}",
        status=device.status,
        suspended_until=device.suspended_until,
        created_at=device.created_at,
        last_seen=device.last_seen,
    )
