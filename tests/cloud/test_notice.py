"""The device-status notice: one definition the cloud writes and devices read, strictly."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from coalesce_common.cloud.device import notice_reader
from coalesce_common.cloud.notice import DeviceStatus, DeviceStatusNotice, service_jid
from coalesce_common.errors import ProtocolError

BOX = "box1@coalesce.test/coalesce"
NOTICE = DeviceStatusNotice("dev42", "dev42@coalesce.test", DeviceStatus.SUSPENDED)


@pytest.mark.parametrize("status", list(DeviceStatus))
def test_a_notice_survives_the_wire(status: DeviceStatus) -> None:
    notice = DeviceStatusNotice("dev42", "dev42@coalesce.test", status)
    assert DeviceStatusNotice.parse(notice.encode()) == notice
    assert DeviceStatusNotice.parse(json.loads(notice.encode())) == notice
    assert notice.status.cut_off is (status is not DeviceStatus.ACTIVE)


def test_the_wire_form_is_the_documented_json() -> None:
    assert json.loads(NOTICE.encode()) == {
        "coalesce": "device-status",
        "device_id": "dev42",
        "jid": "dev42@coalesce.test",
        "status": "suspended",
    }


def _with(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(NOTICE.encode())
    body.update(changes)
    return {key: value for key, value in body.items() if value is not None}


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        "[]",
        "x" * 5000,
        _with(status="deleted"),
        _with(status=None),
        _with(extra=1),
        _with(coalesce="update"),
        _with(device_id=""),
        _with(device_id=7),
        _with(jid="dev42@coalesce.test/laptop"),
        _with(jid="coalesce.test"),
        _with(jid="a@@b"),
        _with(jid=None),
    ],
    ids=lambda body: str(body)[:40],
)
def test_anything_else_is_refused_with_a_protocol_error(body: str | dict[str, Any]) -> None:
    with pytest.raises(ProtocolError):
        DeviceStatusNotice.parse(json.dumps(body) if isinstance(body, dict) else body)


def test_notices_come_from_the_service_account_of_the_devices_domain() -> None:
    assert service_jid(BOX) == service_jid("coalesce.test") == "coalesce-cloud@coalesce.test"


def test_a_device_believes_only_the_clouds_well_formed_notices(caplog: pytest.LogCaptureFixture) -> None:
    heard: list[DeviceStatusNotice] = []
    read = notice_reader(BOX, heard.append)
    body = json.loads(NOTICE.encode())

    read({**body, "from": "mallory@coalesce.test"})
    read({**body, "from": "coalesce-cloud@elsewhere.test"})
    with caplog.at_level(logging.WARNING):
        read({**body, "status": "gone", "from": "coalesce-cloud@coalesce.test"})
    assert heard == []
    assert "ignoring a notice from the cloud" in caplog.text

    read({**body, "from": "coalesce-cloud@coalesce.test"})
    assert heard == [NOTICE]
