"""Device and admin authentication."""

from __future__ import annotations

import httpx
import pytest

from coalesce_cloud.core.config import Settings
from tests.cloud.api.support import ADMIN, ADMIN_TOKEN, ClientFactory, Cloud, FakeClock, assert_error


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Basic dXNlcjpwYXNz",
        "Bearer not-a-token",
        "Bearer aaaaaaaaaaaaaaaaaaaaaaaa.wrong-secret",
        "Bearer " + "x" * 5000,
        f"Bearer {ADMIN_TOKEN}",
    ],
)
async def test_bad_device_credentials_get_401(client: httpx.AsyncClient, authorization: str | None) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    for method, path in (
        ("GET", "/devices/me"),
        ("POST", "/turn-credentials"),
        ("GET", "/meetings/0123456789"),
    ):
        response = await client.request(method, path, headers=headers)
        assert_error(response, 401, "unauthenticated")
        assert response.headers["WWW-Authenticate"] == "Bearer"


async def test_a_wrong_secret_for_a_real_device_gets_401(cloud: Cloud) -> None:
    device = await cloud.enroll()
    forged = {"Authorization": f"Bearer {device.device_id}.{'A' * 43}"}
    assert_error(await cloud.client.get("/devices/me", headers=forged), 401, "unauthenticated")


async def test_last_seen_is_updated(cloud: Cloud, clock: FakeClock) -> None:
    device = await cloud.enroll()
    clock.advance(hours=2)
    await cloud.client.get("/devices/me", headers=device.headers)
    me = (await cloud.client.get("/devices/me", headers=device.headers)).json()
    assert me["last_seen"].startswith(clock.now.strftime("%Y-%m-%dT%H:%M"))


def admin_routes(openapi: dict[str, object]) -> list[tuple[str, str]]:
    paths = openapi["paths"]
    assert isinstance(paths, dict)
    return [(method.upper(), path) for path, ops in paths.items() if "/admin/" in path for method in ops]


async def test_every_admin_route_needs_the_admin_token(cloud: Cloud) -> None:
    device = await cloud.enroll()
    openapi = (await cloud.client.get("http://cloud.test/openapi.json")).json()
    routes = admin_routes(openapi)
    assert len(routes) >= 6
    for method, path in routes:
        url = path.replace("/api/v1", "").replace("{device_id}", device.device_id)
        for headers in ({}, {"Authorization": "Bearer wrong-token-wrong-token"}, device.headers):
            response = await cloud.client.request(method, url, headers=headers, json={})
            assert_error(response, 401, "unauthenticated")


async def test_admin_api_is_off_without_a_token(make_client: ClientFactory, settings: Settings) -> None:
    async with make_client(settings=settings.model_copy(update={"admin_token": None})) as client:
        response = await client.get("/admin/devices", headers=ADMIN)
        assert_error(response, 403, "admin_disabled")


def test_short_admin_tokens_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 16"):
        Settings(admin_token="short")
