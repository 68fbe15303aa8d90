"""The host-address policy: what it keeps of aioice's addresses, and what aioice then really gathers."""

from __future__ import annotations

from collections.abc import Iterator

import aioice
import pytest

from coalesce_common.media import aiortc_patches, ice
from coalesce_common.media.ice import host_addresses, reset_host_addresses_policy, set_host_addresses_policy

FOUND = ["192.0.2.7", "2001:db8::7"]
"""Addresses as aioice finds them on the interfaces (it leaves out 127.0.0.1 and ::1)."""


@pytest.fixture(autouse=True)
def _default_policy(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv(ice.HOST_ADDRESSES_ENV, raising=False)
    reset_host_addresses_policy()  # start from the default, whatever ran before
    yield
    reset_host_addresses_policy()


def test_loopback_is_added_after_the_real_interfaces_for_ipv4_only() -> None:
    assert host_addresses(FOUND, use_ipv4=True) == [*FOUND, "127.0.0.1"]
    assert host_addresses(["2001:db8::7"], use_ipv4=False) == ["2001:db8::7"]


def test_only_restricts_and_a_new_policy_replaces_the_old_one() -> None:
    set_host_addresses_policy(only=["127.0.0.1"])
    set_host_addresses_policy(only=["127.0.0.1"])
    assert host_addresses(FOUND, use_ipv4=True) == ["127.0.0.1"]
    set_host_addresses_policy(include_loopback=False)
    assert host_addresses(FOUND, use_ipv4=True) == FOUND


def test_the_environment_chooses_until_code_does(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ice.HOST_ADDRESSES_ENV, " 192.0.2.7 , 127.0.0.1")
    assert host_addresses(FOUND, use_ipv4=True) == ["192.0.2.7", "127.0.0.1"]
    set_host_addresses_policy()
    assert host_addresses(FOUND, use_ipv4=True) == [*FOUND, "127.0.0.1"]
    reset_host_addresses_policy()
    assert host_addresses(FOUND, use_ipv4=True) == ["192.0.2.7", "127.0.0.1"]


async def test_a_connection_gathers_only_loopback_candidates() -> None:
    set_host_addresses_policy(only=["127.0.0.1"])
    aiortc_patches.install()
    connection = aioice.Connection(ice_controlling=True)
    try:
        await connection.gather_candidates()
        assert {(c.host, c.type) for c in connection.local_candidates} == {("127.0.0.1", "host")}
    finally:
        await connection.close()
        aiortc_patches.uninstall()


async def test_no_stun_query_leaves_a_loopback_socket_for_a_server_elsewhere() -> None:
    assert not await ice.stun_can_answer("127.0.0.1", ("10.213.7.1", 3478))  # never answered
    assert await ice.stun_can_answer("127.0.0.1", ("127.0.0.1", 3478))  # a cloud on this machine
    assert await ice.stun_can_answer("127.0.0.1", ("localhost", 3478))
    assert await ice.stun_can_answer("10.213.7.2", ("10.213.7.1", 3478))  # any other socket asks
