"""The cloud's REST API as devices use it (httpx, TLS, device token auth).

Errors come back as JSON ``{"error": {"code", "message"}}``; :class:`CloudError` carries the stable code
and a message fit for the user (the ones people meet, such as a suspended device, are worded here).
"""

from __future__ import annotations

import logging
import ssl
from dataclasses import dataclass
from typing import Any

import httpx

from coalesce_common.errors import CoalesceError
from coalesce_common.net.connector import ProxyConnectError
from coalesce_common.net.http import proxied_transport
from coalesce_common.net.proxy import ProxyResolver, ProxySettingsError
from coalesce_common.net.why import describe_ca_file_error, describe_os_error
from coalesce_common.signaling.xmpp import XmppAccount, XmppNode

logger = logging.getLogger(__name__)

API_PREFIX = "/api/v1"
_DEFAULT_PORTS = {"https": 443, "http": 80}
_PEER = "the Coalesce cloud"


class CloudError(CoalesceError):
    def __init__(self, message: str, code: str = "cloud_error", status: int = 0) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


@dataclass(frozen=True)
class DeviceCredentials:
    """A device's identity with one cloud, as enrollment returns it. Lives in the OS keyring."""

    api_url: str
    device_id: str
    token: str
    org: str
    xmpp: XmppAccount
    ca_file: str | None = None
    update_public_key: str | None = None

    def __repr__(self) -> str:
        return f"DeviceCredentials(api_url={self.api_url!r}, device_id={self.device_id!r}, org={self.org!r})"

    def to_json(self) -> dict[str, Any]:
        return {
            "api_url": self.api_url,
            "device_id": self.device_id,
            "token": self.token,
            "org": self.org,
            "xmpp": {
                "jid": self.xmpp.jid,
                "password": self.xmpp.password,
                "host": self.xmpp.host,
                "port": self.xmpp.port,
                "direct_tls": self.xmpp.direct_tls,
                "tls_port": self.xmpp.tls_port,
                "others": [[n.host, n.starttls_port, n.tls_port] for n in self.xmpp.others],
            },
            "ca_file": self.ca_file,
            "update_public_key": self.update_public_key,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DeviceCredentials:
        x = data["xmpp"]
        ca_file = data.get("ca_file")
        return cls(
            api_url=data["api_url"],
            device_id=data["device_id"],
            token=data["token"],
            org=data.get("org", ""),
            xmpp=XmppAccount(
                x["jid"],
                x["password"],
                x["host"],
                int(x["port"]),
                bool(x["direct_tls"]),
                ca_file,
                int(x.get("tls_port") or 0),
                tuple(XmppNode(str(h), int(p), int(t)) for h, p, t in x.get("others") or ()),
            ),
            ca_file=ca_file,
            update_public_key=data.get("update_public_key"),
        )

    def with_xmpp(self, xmpp: XmppAccount) -> DeviceCredentials:
        return DeviceCredentials(
            self.api_url, self.device_id, self.token, self.org, xmpp, self.ca_file, self.update_public_key
        )


def xmpp_account(
    block: dict[str, Any], ca_file: str | None, *, prefer_direct_tls: bool = False
) -> XmppAccount:
    """The XMPP login from an API ``xmpp`` block: STARTTLS by default, direct TLS (port 443) when asked.
    The block's ``endpoints`` (every cluster node, its own first) become the account's ``others``."""
    main = XmppNode(str(block["host"]), int(block["starttls_port"]), int(block.get("tls_port") or 0))
    others = tuple(
        node
        for node in (
            XmppNode(str(e["host"]), int(e["starttls_port"]), int(e.get("tls_port") or 0))
            for e in block.get("endpoints") or ()
        )
        if node != main
    )
    account = XmppAccount(
        block["jid"],
        block["password"],
        main.host,
        main.starttls_port,
        False,
        ca_file,
        main.tls_port,
        others,
    )
    return account.via_direct_tls() if prefer_direct_tls else account


def _friendly(code: str, message: str, body: dict[str, Any]) -> str:
    if code == "device_suspended":
        until = body.get("until")
        return f"This device is suspended{f' until {until}' if until else ''} by your IT administrator."
    if code == "device_revoked":
        return "This device was removed from the organisation by your IT administrator; enroll it again."
    if code == "meeting_not_found":
        return "No meeting has that ID (or it has ended): check the meeting ID shown on the room display."
    if code == "enrollment_code_invalid":
        return (
            "That enrollment code is not valid (wrong, expired or already used): ask your IT administrator."
        )
    if code == "unauthenticated":
        return "The cloud does not recognise this device: enroll it again."
    return message or code


class CloudClient:
    """Calls to the cloud's REST API. Use as an async context manager."""

    def __init__(
        self,
        api_url: str,
        *,
        token: str | None = None,
        ca_file: str | None = None,
        timeout: float = 10.0,
        resolver: ProxyResolver | None = None,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        ctx = ssl.create_default_context()
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        if ca_file:
            try:
                ctx.load_verify_locations(ca_file)
            except (OSError, ssl.SSLError) as exc:
                raise CloudError(
                    f"Cannot use the cloud's CA certificate: {describe_ca_file_error(exc, ca_file)}.",
                    code="bad_ca_file",
                ) from exc
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.AsyncClient(
            base_url=self.api_url + API_PREFIX,
            transport=proxied_transport(resolver or ProxyResolver(), ctx),
            headers=headers,
            timeout=timeout,
            trust_env=False,  # proxies come from our resolver, which reads the environment itself
        )

    async def __aenter__(self) -> CloudClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _call(self, method: str, path: str, json: dict[str, Any] | None = None) -> dict[str, Any]:
        try:
            response = await self._http.request(method, path, json=json)
        except ProxySettingsError as exc:
            raise CloudError(str(exc), code="proxy_failed") from exc
        except ProxyConnectError as exc:  # our network backend raises it, and httpx lets it through
            raise CloudError(str(exc), code="unreachable") from exc
        except httpx.HTTPError as exc:
            url = self._http.base_url
            why = describe_os_error(exc, url.host, url.port or _DEFAULT_PORTS.get(url.scheme), peer=_PEER)
            raise CloudError(
                f"Cannot reach the Coalesce cloud at {self.api_url}: {why}.", code="unreachable"
            ) from exc
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code >= 400:
            error = body.get("error", {}) if isinstance(body, dict) else {}
            code = str(error.get("code", f"http_{response.status_code}"))
            raise CloudError(
                _friendly(code, str(error.get("message", "")), error), code, response.status_code
            )
        if not isinstance(body, dict):
            raise CloudError("the cloud sent an unexpected answer", code="bad_response")
        return body

    async def enroll(
        self, code: str, name: str, kind: str, *, ca_file: str | None = None
    ) -> DeviceCredentials:
        body = await self._call("POST", "/enroll", {"code": code, "name": name, "kind": kind})
        return DeviceCredentials(
            api_url=self.api_url,
            device_id=body["device_id"],
            token=body["token"],
            org=body.get("org", ""),
            xmpp=xmpp_account(body["xmpp"], ca_file),
            ca_file=ca_file,
            update_public_key=body.get("update_public_key"),
        )

    async def rotate_xmpp(self, ca_file: str | None) -> XmppAccount:
        body = await self._call("POST", "/devices/me/xmpp-credentials")
        return xmpp_account(body.get("xmpp", body), ca_file)

    async def read_me(self) -> dict[str, Any]:
        """The calling device as the cloud sees it; CloudError ``device_suspended``/``device_revoked``."""
        return await self._call("GET", "/devices/me")

    async def create_meeting(self) -> dict[str, Any]:
        return await self._call("POST", "/meetings")

    async def resolve_meeting(self, meeting_id: str) -> dict[str, Any]:
        digits = "".join(c for c in meeting_id if c.isalnum())
        if not digits:
            raise CloudError("Type the meeting ID shown on the room display.", code="meeting_not_found")
        return await self._call("GET", f"/meetings/{digits}")

    async def turn_credentials(self) -> dict[str, Any]:
        return await self._call("POST", "/turn-credentials")

    async def update_manifest(self, platform: str) -> dict[str, Any]:
        return await self._call("GET", f"/updates/{platform}")
