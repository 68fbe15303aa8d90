"""Test doubles and helpers for the REST API tests (fixtures are in conftest.py)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from coalesce_cloud.xmpp_admin import MessageType, XmppAccountExists, XmppAdmin, XmppAdminError

ADMIN_TOKEN = "test-admin-token-" + "x" * 16
TURN_SECRET = "turn-shared-secret"
DOMAIN = "coalesce.test"
BASE_URL = "http://cloud.test/api/v1"
START = datetime(2030, 1, 15, 9, 0, tzinfo=UTC)


class FakeClock:
    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass
class SentMessage:
    from_jid: str
    to_jid: str
    body: str
    message_type: str


@dataclass
class RecordingXmppAdmin:
    """An ``XmppAdmin`` that keeps accounts in a dict and records every call; ``fail`` makes calls raise."""

    accounts: dict[str, str] = field(default_factory=dict)
    sessions: dict[str, int] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)
    messages: list[SentMessage] = field(default_factory=list)
    fail: bool = False
    refused: set[str] = field(default_factory=set)
    """Users whose calls fail, as every call does with ``fail``."""

    def _call(self, name: str, user: str) -> None:
        self.calls.append((name, user))
        if self.fail or user in self.refused:
            raise XmppAdminError(f"{name} failed (test)", command=name, status=503)

    async def register(self, user: str, password: str) -> None:
        self._call("register", user)
        if user in self.accounts:
            raise XmppAccountExists("exists", command="register", status=409)
        self.accounts[user] = password

    async def unregister(self, user: str) -> None:
        self._call("unregister", user)
        self.accounts.pop(user, None)

    async def change_password(self, user: str, password: str) -> None:
        self._call("change_password", user)
        if user not in self.accounts:
            raise XmppAdminError("unknown_user", command="change_password", status=404)
        self.accounts[user] = password

    async def kick(self, user: str) -> int:
        self._call("kick", user)
        return self.sessions.pop(user, 0)

    async def ban(self, user: str, reason: str) -> None:
        self._call("ban", user)

    async def send_message(
        self,
        from_jid: str,
        to_jid: str,
        body: str,
        *,
        message_type: MessageType = "normal",
        subject: str = "",
    ) -> None:
        self._call("send_message", to_jid)
        self.messages.append(SentMessage(from_jid, to_jid, body, message_type))

    async def aclose(self) -> None:
        pass


def _check_protocol(admin: RecordingXmppAdmin) -> XmppAdmin:
    return admin  # mypy checks that the fake satisfies the protocol


ClientFactory = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


@dataclass
class Served:
    """The API served by uvicorn over TLS on loopback: its base URL and the CA that issued its certificate."""

    url: str
    ca: Path


# ------------------------------------------------------------------------------------------- helpers

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@dataclass
class Enrolled:
    device_id: str
    token: str
    xmpp: dict[str, Any]
    body: dict[str, Any]

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    @property
    def jid(self) -> str:
        return str(self.xmpp["jid"])


class Cloud:
    """Shortcuts for the calls most tests make first."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def enrollment_code(self, org: str = "acme", uses: int = 1, ttl_seconds: int = 3600) -> str:
        response = await self.client.post(
            "/admin/enrollment-codes",
            json={"org": org, "uses": uses, "ttl_seconds": ttl_seconds},
            headers=ADMIN,
        )
        assert response.status_code == 201, response.text
        return str(response.json()["code"])

    async def enroll(self, kind: str = "sender", name: str = "Laptop", org: str = "acme") -> Enrolled:
        code = await self.enrollment_code(org)
        response = await self.client.post("/enroll", json={"code": code, "name": name, "kind": kind})
        assert response.status_code == 201, response.text
        body = response.json()
        return Enrolled(body["device_id"], body["token"], body["xmpp"], body)

    async def admin(self, action: str, device: Enrolled, **body: Any) -> httpx.Response:
        return await self.client.post(f"/admin/devices/{device.device_id}/{action}", json=body, headers=ADMIN)


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The response is the stable error shape with this status and code; returns the error object."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    error: dict[str, Any] = body["error"]
    assert error["code"] == code, body
    assert isinstance(error["message"], str) and error["message"]
    return error
