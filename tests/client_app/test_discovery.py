"""Discovery in the app core: real receivers publishing on loopback mDNS, the list following them live."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from coalesce_client.app.config import SenderConfig, SenderServices
from coalesce_client.app.discovery import Discovery
from coalesce_client.models.receivers import ReceiverList
from tests.client_app.conftest import until
from tests.e2e.conftest import ReceiverFactory
from tests.e2e.vanishing import CONFIRM_INTERVAL, CONFIRM_TIMEOUT, SILENT_FOR_AT_MOST, publish_in_child

LOOPBACK = ["127.0.0.1"]
Start = Callable[..., "asyncio.Task[None]"]


@pytest.fixture
async def start_discovery() -> AsyncIterator[Start]:
    """``start_discovery(receivers, config, services)``: :meth:`Discovery.run` in a task, for the test."""
    tasks: list[asyncio.Task[None]] = []

    def start(
        receivers: ReceiverList, config: SenderConfig, services: SenderServices | None = None
    ) -> asyncio.Task[None]:
        discovery = Discovery(receivers, config, services or SenderServices(local_addresses=lambda: LOOPBACK))
        task = asyncio.ensure_future(discovery.run())
        tasks.append(task)
        return task

    yield start
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def names(receivers: ReceiverList) -> list[str]:
    return [r.name for r in receivers.receivers]


async def test_a_receiver_appears_and_disappears_when_it_stops(
    make_receiver: ReceiverFactory, start_discovery: Start
) -> None:
    receivers = ReceiverList()
    start_discovery(receivers, SenderConfig(discovery_interfaces=LOOPBACK, discovery_settle=0.2))
    await until(receivers, lambda: not receivers.searching, "the search to settle")
    assert receivers.receivers == [] and receivers.problem is None

    aurora = await make_receiver(name="Aurora", pin="4821", mdns=True, mdns_interfaces=LOOPBACK)
    await make_receiver(name="Borealis", mdns=True, mdns_interfaces=LOOPBACK)
    await until(receivers, lambda: names(receivers) == ["Aurora", "Borealis"], "both receivers listed")
    listed = receivers.receivers[0]
    assert aurora.identity is not None
    assert listed.port == aurora.port and listed.fingerprint == aurora.identity.fingerprint
    assert listed.pin_required and "127.0.0.1" in listed.addresses

    await aurora.aclose()
    await until(receivers, lambda: names(receivers) == ["Borealis"], "Aurora gone from the list")


async def test_a_room_display_switched_off_without_a_goodbye_leaves_the_list_within_seconds(
    make_receiver: ReceiverFactory, start_discovery: Start
) -> None:
    receivers = ReceiverList()
    config = SenderConfig(
        discovery_interfaces=LOOPBACK,
        discovery_confirm_interval=CONFIRM_INTERVAL,
        discovery_confirm_timeout=CONFIRM_TIMEOUT,
    )
    start_discovery(receivers, config)
    await make_receiver(name="Aurora", mdns=True, mdns_interfaces=LOOPBACK)
    async with publish_in_child("Borealis") as borealis:
        await until(receivers, lambda: names(receivers) == ["Aurora", "Borealis"], "both receivers listed")
        seen: list[list[str]] = []
        receivers.subscribe(lambda: seen.append(names(receivers)))

        borealis.kill()  # the power cut: no goodbye packet
        await until(
            receivers, lambda: names(receivers) == ["Aurora"], "Borealis gone", timeout=SILENT_FOR_AT_MOST
        )
    assert seen and all("Aurora" in listed for listed in seen)  # it answered every confirmation meanwhile


async def test_the_list_starts_again_when_this_computers_addresses_change(
    make_receiver: ReceiverFactory, start_discovery: Start
) -> None:
    await make_receiver(name="Aurora", mdns=True, mdns_interfaces=LOOPBACK)
    addresses = ["192.168.1.20"]
    receivers = ReceiverList()
    start_discovery(
        receivers,
        SenderConfig(discovery_interfaces=LOOPBACK, discovery_settle=60.0, network_check_interval=0.05),
        SenderServices(local_addresses=lambda: list(addresses)),
    )
    await until(receivers, lambda: names(receivers) == ["Aurora"], "Aurora listed")
    seen: list[tuple[list[str], bool]] = []
    receivers.subscribe(lambda: seen.append((names(receivers), receivers.searching)))

    addresses[:] = ["10.8.0.2"]  # joined another network
    await until(receivers, lambda: ([], True) in seen and names(receivers) == ["Aurora"], "Aurora again")
    assert seen[0] == ([], True)  # the old list was dropped first, and the search began again


async def test_when_mdns_cannot_run_the_list_says_what_to_do(start_discovery: Start) -> None:
    receivers = ReceiverList()
    # 192.0.2.1 (TEST-NET-1) is no address of this computer: zeroconf cannot open its sockets there.
    start_discovery(receivers, SenderConfig(discovery_interfaces=["192.0.2.1"], discovery_retry=60.0))
    await until(receivers, lambda: receivers.problem is not None, "the problem to be said")
    assert receivers.problem is not None
    assert receivers.problem.startswith("Cannot look for room displays on this network (")
    assert receivers.problem.endswith("Type the address shown on the room display instead.")
    assert not receivers.searching
