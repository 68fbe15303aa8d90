"""The OpenAPI schema states what the server enforces: a fuzzer (schemathesis) generates requests from
``/openapi.json`` against the API served by uvicorn on loopback, and every answer must be a status the
schema lists for that operation, with a body of the schema it gives, and never a server error."""

from __future__ import annotations

import re
import ssl
import unicodedata
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from pydantic import TypeAdapter, ValidationError
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from coalesce_cloud.api.app import create_app
from coalesce_cloud.api.schemas import NAME_PATTERN, Name
from coalesce_cloud.core.config import Settings
from tests.cloud.api.support import ADMIN, ADMIN_TOKEN, ClientFactory, Cloud, RecordingXmppAdmin, Served

MAX_EXAMPLES = 25  # per operation: ~15 operations on 2 cores, for SQLite and PostgreSQL each


def _enroll(client: httpx.Client, kind: str) -> str:
    code = client.post(
        "/admin/enrollment-codes", json={"org": "acme", "uses": 1, "ttl_seconds": 3600}, headers=ADMIN
    ).json()["code"]
    answer = client.post("/enroll", json={"code": code, "name": f"fuzz {kind}", "kind": kind})
    assert answer.status_code == 201, answer.text
    return str(answer.json()["token"])


@pytest.fixture
def device_token(served: Served) -> str:
    """A box's token (a box may call every device route, a sender all but ``POST /meetings``). The box
    holds a live meeting, so that suspending or revoking a device also sends it a notice."""
    verify = ssl.create_default_context(cafile=str(served.ca))
    with httpx.Client(base_url=served.url + "/api/v1", verify=verify) as client:
        box = _enroll(client, "box")
        issued = client.post("/meetings", headers={"Authorization": f"Bearer {box}"})
        assert issued.status_code == 201, issued.text
        return box


# The schema as the app publishes it (building the app opens nothing: that is the lifespan's work); the
# requests go to the app served by uvicorn, which publishes the same schema (checked below).
schema = schemathesis.openapi.from_dict(create_app(Settings(state_dir=Path("unused"))).openapi())


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    database=None,  # nothing carried from one run to the next
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.function_scoped_fixture,
    ],
)
def test_every_answer_is_in_the_schema(case: Any, served: Served, device_token: str) -> None:
    token = ADMIN_TOKEN if case.path.startswith("/api/v1/admin/") else device_token
    case.call_and_validate(
        base_url=served.url,
        headers={"Authorization": f"Bearer {token}"},
        verify=str(served.ca),
        checks=[not_a_server_error, status_code_conformance, response_schema_conformance],
    )


def test_the_name_pattern_is_the_servers_rule() -> None:
    """Over the Basic Multilingual Plane, the published pattern (read by Python's re, as fuzzers and
    clients read it) and the server's validation (pydantic's Rust regex) refuse exactly the characters
    that are not printable (Python's str.isprintable), unassigned code points aside."""
    pattern = re.compile(NAME_PATTERN)
    names = TypeAdapter(Name)
    for point in range(0x10000):
        char = chr(point)
        if unicodedata.category(char) in ("Cs", "Cn"):
            continue
        published = pattern.fullmatch(f"a{char}") is not None
        try:
            names.validate_python(f"a{char}")
        except ValidationError:
            enforced = False
        else:
            enforced = True
        assert published == enforced == char.isprintable(), f"U+{point:04X}"
    assert pattern.fullmatch("   ") is None
    assert names.validate_python("  Room 4.12 ") == "Room 4.12"


def test_the_served_schema_is_the_fuzzed_one(served: Served) -> None:
    with httpx.Client(verify=ssl.create_default_context(cafile=str(served.ca))) as client:
        assert client.get(f"{served.url}/openapi.json").json() == schema.raw_schema


async def test_suspend_takes_exactly_one_of_until_and_for_seconds(client: httpx.AsyncClient) -> None:
    schema = (await client.get("http://cloud.test/openapi.json")).json()
    assert schema["components"]["schemas"]["SuspendRequest"]["oneOf"] == [
        {"required": ["until"]},
        {"required": ["for_seconds"]},
    ]
    both = {"until": "2031-01-01T00:00:00Z", "for_seconds": 60}
    for body in (both, {}):
        answer = await client.post("/admin/devices/x/suspend", json=body, headers=ADMIN)
        assert answer.status_code == 422 and answer.json()["error"]["code"] == "validation_error"


def _declared(openapi: dict[str, Any], method: str, path: str, answer: httpx.Response) -> None:
    """``answer``'s status is among the operation's responses, and its code in that status's enum."""
    responses = openapi["paths"][f"/api/v1{path}"][method.lower()]["responses"]
    assert str(answer.status_code) in responses, (path, answer.status_code, sorted(responses))
    body = responses[str(answer.status_code)]["content"]["application/json"]["schema"]["$ref"]
    detail = openapi["components"]["schemas"][body.split("/")[-1]]["properties"]["error"]["$ref"]
    code = openapi["components"]["schemas"][detail.split("/")[-1]]["properties"]["code"]
    assert answer.json()["error"]["code"] in code.get("enum", [code.get("const")])


async def test_answers_when_xmpp_or_turn_are_missing_are_declared(
    cloud: Cloud, xmpp: RecordingXmppAdmin, make_client: ClientFactory, settings: Settings
) -> None:
    """The fuzzer runs with a working XMPP admin and TURN configured; these are the other answers.
    (Suspend before revoke: the mark stays when XMPP fails, and a revoked device cannot be suspended.)"""
    openapi = (await cloud.client.get("http://cloud.test/openapi.json")).json()
    box = await cloud.enroll("box")
    code = await cloud.enrollment_code()
    xmpp.fail = True
    calls = [
        ("POST", "/enroll", "/enroll", {"code": code, "name": "x", "kind": "box"}, {}),
        ("POST", "/devices/me/xmpp-credentials", "/devices/me/xmpp-credentials", None, box.headers),
        (
            "POST",
            f"/admin/devices/{box.device_id}/suspend",
            "/admin/devices/{device_id}/suspend",
            {"for_seconds": 60},
            ADMIN,
        ),
        ("POST", f"/admin/devices/{box.device_id}/revoke", "/admin/devices/{device_id}/revoke", None, ADMIN),
    ]
    for method, path, template, body, headers in calls:
        answer = await cloud.client.request(method, path, json=body, headers=headers)
        assert answer.status_code == 502, answer.text
        _declared(openapi, method, template, answer)

    xmpp.fail = False
    bare = settings.model_copy(update={"turn": settings.turn.model_copy(update={"regions": []})})
    async with make_client(settings=bare) as client:
        sender = await Cloud(client).enroll()
        answer = await client.post("/turn-credentials", headers=sender.headers)
        assert answer.status_code == 503
        _declared(openapi, "POST", "/turn-credentials", answer)
