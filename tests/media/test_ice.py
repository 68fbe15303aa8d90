"""The host-address policy really changes what aioice gathers."""

from __future__ import annotations

from collections.abc import Iterator

import aioice
import aioice.ice
import pytest

from coalesce_common.media.ice import reset_host_addresses_policy, set_host_addresses_policy


@pytest.fixture(autouse=True)
def _restore_policy() -> Iterator[None]:
    reset_host_addresses_policy()  # start from aioice's own choice, whatever ran before
    yield
    reset_host_addresses_policy()


def test_aioice_alone_leaves_out_loopback() -> None:
    assert "127.0.0.1" not in aioice.ice.get_host_addresses(use_ipv4=True, use_ipv6=False)


def test_loopback_is_added_after_the_real_interfaces() -> None:
    plain = aioice.ice.get_host_addresses(True, False)
    set_host_addresses_policy()
    assert aioice.ice.get_host_addresses(True, False) == [*plain, "127.0.0.1"]
    assert "127.0.0.1" not in aioice.ice.get_host_addresses(False, True)


def test_only_restricts_and_a_new_policy_replaces_the_old_one() -> None:
    set_host_addresses_policy(only=["127.0.0.1"])
    set_host_addresses_policy(only=["127.0.0.1"])
    assert aioice.ice.get_host_addresses(True, True) == ["127.0.0.1"]
    set_host_addresses_policy(include_loopback=False)
    assert "127.0.0.1" not in aioice.ice.get_host_addresses(True, False)


async def test_a_connection_gathers_only_loopback_candidates() -> None:
    set_host_addresses_policy(only=["127.0.0.1"])
    connection = aioice.Connection(ice_controlling=True)
    try:
        await connection.gather_candidates()
        assert {(c.host, c.type) for c in connection.local_candidates} == {("127.0.0.1", "host")}
    finally:
        await connection.close()
