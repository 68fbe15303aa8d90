"""Bad input never causes a 500: every refusal is a 4xx in the stable error shape."""

from __future__ import annotations

import json
import random
from typing import Any

import httpx
import pytest

from tests.cloud.api.support import ADMIN, Cloud, Enrolled, assert_error


async def test_unknown_routes_and_methods_use_the_error_shape(client: httpx.AsyncClient) -> None:
    assert_error(await client.get("/nope"), 404, "not_found")
    assert_error(await client.delete("/enroll"), 405, "method_not_allowed")


async def test_health_and_openapi(client: httpx.AsyncClient) -> None:
    assert (await client.get("/health")).json() == {"status": "ok"}
    schema = (await client.get("http://cloud.test/openapi.json")).json()
    assert "/api/v1/enroll" in schema["paths"] and "/api/v1/turn-credentials" in schema["paths"]
    enroll_responses = schema["paths"]["/api/v1/enroll"]["post"]["responses"]
    assert set(enroll_responses) == {"201", "400", "403", "413", "422", "429", "502"}
    # Validation errors have the same shape as every other error, and each status lists its codes.
    invalid = enroll_responses["422"]["content"]["application/json"]["schema"]["$ref"].split("/")[-1]
    detail = schema["components"]["schemas"][invalid]["properties"]["error"]["$ref"].split("/")[-1]
    assert schema["components"]["schemas"][detail]["properties"]["code"]["const"] == "validation_error"
    throttled = enroll_responses["429"]
    assert "Retry-After" in throttled["headers"] and "too_many_attempts" in throttled["description"]


async def test_validation_errors_name_the_field_but_do_not_echo_input(client: httpx.AsyncClient) -> None:
    secret_looking = "S3CRET-" * 10
    response = await client.post("/enroll", json={"code": secret_looking, "name": "x", "kind": "fridge"})
    error = assert_error(response, 422, "validation_error")
    assert error["message"].startswith("Invalid code")
    assert secret_looking not in response.text
    assert {tuple(d["loc"]) for d in error["details"]} >= {("body", "code"), ("body", "kind")}


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"[1, 2, 3]",
        b'"string"',
        b"null",
        b'{"code": 1, "name": 2, "kind": 3}',
        b'{"code": null, "name": null, "kind": null}',
        b'{"code": "x", "name": "\\u0000\\u0007", "kind": "box"}',
        b'{"code": "x", "name": "   ", "kind": "box"}',
        b'{"code": "x", "name": "' + b"n" * 5000 + b'", "kind": "box"}',
        b'{"code": {"$gt": ""}, "name": "x", "kind": "box"}',
        b"\xff\xfe\x00garbage",
        b'{"code": "x", "name": "x", "kind": "box"',
    ],
)
async def test_malformed_enrollments_are_422(client: httpx.AsyncClient, body: bytes) -> None:
    response = await client.post("/enroll", content=body, headers={"Content-Type": "application/json"})
    assert_error(response, 422, "validation_error")


async def test_oversized_bodies_are_413(client: httpx.AsyncClient) -> None:
    huge = json.dumps({"code": "x" * 200_000, "name": "x", "kind": "box"})
    assert_error(await client.post("/enroll", content=huge), 413, "payload_too_large")

    async def chunks() -> Any:
        for _ in range(100):
            yield b"x" * 1024

    streamed = await client.post("/enroll", content=chunks(), headers={"Content-Type": "application/json"})
    assert_error(streamed, 413, "payload_too_large")


def random_json(rng: random.Random, depth: int = 0) -> Any:
    choice = rng.randrange(9 if depth < 3 else 6)
    if choice == 0:
        return None
    if choice == 1:
        return rng.choice([True, False])
    if choice == 2:
        return rng.randint(-(2**70), 2**70)
    if choice == 3:
        return rng.uniform(-1e300, 1e300)
    if choice == 4:
        return "".join(chr(rng.randrange(0x20, 0x3000)) for _ in range(rng.randrange(0, 300)))
    if choice == 5:
        return rng.choice(["", "box", "sender", "2030-01-01T00:00:00Z", "0123456789", "x" * 3000, "\u202e"])
    if choice == 6:
        return [random_json(rng, depth + 1) for _ in range(rng.randrange(0, 4))]
    keys = ["code", "name", "kind", "org", "uses", "ttl_seconds", "until", "x"]
    return {rng.choice(keys): random_json(rng, depth + 1) for _ in range(rng.randrange(0, 6))}


async def test_fuzzed_bodies_never_cause_a_server_error(cloud: Cloud) -> None:
    """ASGITransport re-raises app exceptions, so any crash fails here as well as any 5xx."""
    rng = random.Random(20301115)
    box = await cloud.enroll("box")
    device_auth: dict[str, str] = box.headers
    targets: list[tuple[str, str, dict[str, str]]] = [
        ("POST", "/enroll", {}),
        ("POST", "/admin/enrollment-codes", ADMIN),
        ("POST", f"/admin/devices/{box.device_id}/suspend", ADMIN),
        ("POST", "/meetings", device_auth),
        ("POST", "/turn-credentials", device_auth),
        ("POST", "/devices/me/xmpp-credentials", device_auth),
    ]
    for _ in range(60):
        for method, path, headers in targets:
            body = random_json(rng)
            response = await cloud.client.request(method, path, json=body, headers=headers)
            assert response.status_code < 500, (path, body, response.text)
            if response.status_code >= 400:
                assert set(response.json()) == {"error"}
                assert {"code", "message"} <= set(response.json()["error"])
            if path.endswith("/suspend") and response.status_code == 200:
                await cloud.admin("restore", Enrolled(box.device_id, box.token, box.xmpp, box.body))


@pytest.mark.parametrize(
    "query", ["?limit=0", "?limit=abc", "?limit=99999999999999999999", "?device_id=" + "x" * 500]
)
async def test_bad_query_parameters_are_422(client: httpx.AsyncClient, query: str) -> None:
    assert_error(await client.get(f"/admin/audit{query}", headers=ADMIN), 422, "validation_error")


async def test_huge_path_parameters_are_refused_cleanly(cloud: Cloud) -> None:
    sender = await cloud.enroll()
    response = await cloud.client.get("/meetings/" + "9" * 5000, headers=sender.headers)
    assert response.status_code in (404, 422)
    assert set(response.json()) == {"error"}
    response = await cloud.client.post("/admin/devices/" + "d" * 5000 + "/revoke", headers=ADMIN)
    assert_error(response, 422, "validation_error")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/admin/devices?org=a%00b"),
        ("GET", "/admin/audit?device_id=a%00b"),
        ("POST", "/admin/devices/a%00b/revoke"),
        ("POST", "/admin/devices/a%01b/restore"),
    ],
)
async def test_control_characters_in_ids_are_422_not_a_database_error(
    client: httpx.AsyncClient, method: str, path: str
) -> None:
    """PostgreSQL text cannot hold NUL: without the patterns these were 500s there (SQLite took them)."""
    assert_error(await client.request(method, path, headers=ADMIN), 422, "validation_error")
