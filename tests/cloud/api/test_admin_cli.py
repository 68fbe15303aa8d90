"""``coalesce-cloud admin``: the CLI against the API served by uvicorn over TLS from a private CA."""

from __future__ import annotations

import io
import json
import ssl
from datetime import timedelta

import httpx
import pytest

from coalesce_cloud.admin_cli import admin_main, parse_duration
from tests.cloud.api.support import ADMIN_TOKEN, Served


def run(served: Served, *argv: str, token: str = ADMIN_TOKEN, ca: bool = True) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    options = ["--url", served.url, *(["--ca", str(served.ca)] if ca else [])]
    code = admin_main([*options, "--admin-token", token, *argv], out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def enroll(served: Served, code: str, kind: str = "sender") -> str:
    verify = ssl.create_default_context(cafile=str(served.ca))
    with httpx.Client(base_url=served.url + "/api/v1", verify=verify) as client:
        response = client.post("/enroll", json={"code": code, "name": "CLI test device", "kind": kind})
    assert response.status_code == 201, response.text
    return str(response.json()["device_id"])


def test_codes_devices_suspend_restore_revoke(served: Served) -> None:
    status, out, _ = run(served, "--json", "enroll-code", "--org", "acme", "--uses", "2", "--ttl", "1h")
    assert status == 0
    code = json.loads(out)["code"]
    device_id = enroll(served, code)

    status, out, _ = run(served, "devices")
    assert status == 0 and device_id in out and "active" in out and "acme" in out

    status, out, _ = run(served, "suspend", device_id, "--for", "2h")
    assert status == 0 and "suspended until" in out and "XMPP sessions kicked: 0" in out
    status, out, _ = run(served, "restore", device_id)
    assert status == 0 and ": active" in out
    status, out, _ = run(served, "suspend", device_id, "--until", "2031-01-01T00:00:00Z")
    assert status == 0 and "2031-01-01" in out
    assert run(served, "revoke", device_id)[0] == 0

    status, _, err = run(served, "restore", device_id)
    assert status == 1 and "device_revoked" in err

    status, out, _ = run(served, "audit", "--device", device_id)
    assert status == 0 and out.count(device_id) >= 4 and "revoke" in out
    assert code not in out


def test_guests_from_another_org(served: Served) -> None:
    for org in ("acme", "partner"):
        assert run(served, "enroll-code", "--org", org)[0] == 0
    status, out, _ = run(served, "allow-guests", "acme", "--from", "partner")
    assert status == 0 and "org acme resolve for its own senders and those of: partner" in out
    status, out, _ = run(served, "orgs")
    assert status == 0
    assert [line.split()[:2] for line in out.splitlines()[1:]] == [["acme", "partner"], ["partner", "-"]]
    status, out, _ = run(served, "deny-guests", "acme", "--from", "partner")
    assert status == 0 and "its own senders only" in out
    status, _, err = run(served, "allow-guests", "acme", "--from", "parnter")
    assert status == 1 and "'parnter'" in err and "org_not_found" in err


def test_human_output_of_a_new_code(served: Served) -> None:
    status, out, _ = run(served, "enroll-code", "--org", "acme")
    assert status == 0 and "enrollment code: " in out and "shown only now" in out


def test_refusals_and_trust_problems_are_explained(served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    status, _, err = run(served, "devices", token="wrong-token-wrong-token")
    assert status == 1 and "unauthenticated" in err and "wrong-token" not in err
    status, _, err = run(served, "devices", ca=False)
    assert status == 1 and "is not trusted" in err and "with --ca FILE" in err
    assert "CERTIFICATE_VERIFY_FAILED" not in err and "SSL" not in err
    monkeypatch.delenv("COALESCE_CLOUD_ADMIN_TOKEN", raising=False)
    out, err_io = io.StringIO(), io.StringIO()
    assert admin_main(["--url", served.url, "devices"], out=out, err=err_io) == 1
    assert "COALESCE_CLOUD_ADMIN_TOKEN" in err_io.getvalue()
    monkeypatch.setenv("COALESCE_CLOUD_ADMIN_TOKEN", ADMIN_TOKEN)
    assert admin_main(["--url", served.url, "--ca", str(served.ca), "devices"], out=out, err=err_io) == 0


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert admin_main(["suspend", "dev"]) == 2  # needs --until or --for
    assert admin_main(["suspend", "dev", "--for", "soon"]) == 2
    assert admin_main(["enroll-code"]) == 2
    assert admin_main(["--help"]) == 0
    assert "enroll-code" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90", timedelta(seconds=90)),
        ("15m", timedelta(minutes=15)),
        ("1h30m", timedelta(minutes=90)),
        ("7d", timedelta(days=7)),
        ("2d12h", timedelta(hours=60)),
    ],
)
def test_durations(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected
