"""Receivers are found by mDNS, with the fingerprint a sender then pins."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from coalesce_client.services.share import Share, ShareOptions, ShareTarget
from coalesce_common.discovery import ReceiverBrowser, ReceiverInfo, browse, find, instance_label
from coalesce_common.protocol import AccessMode
from tests.e2e.conftest import ReceiverFactory
from tests.e2e.vanishing import CONFIRM_INTERVAL, CONFIRM_TIMEOUT, SILENT_FOR_AT_MOST, publish_in_child

EVENT_TIMEOUT = 10.0
LOOPBACK = ["127.0.0.1"]
CONFIRM = {"confirm_interval": CONFIRM_INTERVAL, "confirm_timeout": CONFIRM_TIMEOUT}


class Events:
    """A :class:`~coalesce_common.discovery.ReceiverListener` that queues what the browser reports."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[tuple[str, str, ReceiverInfo | None]] = asyncio.Queue()

    def found(self, key: str, info: ReceiverInfo) -> None:
        self.queue.put_nowait(("found", key, info))

    def lost(self, key: str) -> None:
        self.queue.put_nowait(("lost", key, None))

    async def next(self) -> tuple[str, str, ReceiverInfo | None]:
        async with asyncio.timeout(EVENT_TIMEOUT):
            return await self.queue.get()


class Listing:
    """A :class:`~coalesce_common.discovery.ReceiverListener` keeping what is listed and all it was told."""

    def __init__(self) -> None:
        self.listed: dict[str, ReceiverInfo] = {}
        self.told: list[tuple[str, str]] = []
        self._changed = asyncio.Event()

    def found(self, key: str, info: ReceiverInfo) -> None:
        self.listed[key] = info
        self.told.append(("found", key))
        self._changed.set()

    def lost(self, key: str) -> None:
        self.listed.pop(key, None)
        self.told.append(("lost", key))
        self._changed.set()

    async def until(self, holds: Callable[[], bool], what: str, timeout: float = EVENT_TIMEOUT) -> None:
        """Return once ``holds()`` is true, checked at each report; fail after ``timeout`` seconds."""
        try:
            async with asyncio.timeout(timeout):
                while not holds():
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            pytest.fail(f"timed out after {timeout:g} s waiting for {what}")


async def test_discovery_finds_the_receiver_with_its_fingerprint(
    make_receiver: ReceiverFactory, video_file: Callable[..., Path]
) -> None:
    receiver = await make_receiver(
        name="Discovery Room", pin="4821", mdns=True, mdns_interfaces=["127.0.0.1"]
    )
    assert receiver.identity is not None
    found = await find("discovery room", timeout=10, interfaces=["127.0.0.1"])
    assert found.port == receiver.port
    assert "127.0.0.1" in found.addresses
    assert found.pin_required is True
    assert found.fingerprint == receiver.identity.fingerprint
    target = ShareTarget("127.0.0.1", found.port, fingerprint=found.fingerprint, name=found.name)
    async with Share(target, ShareOptions(pin="4821", screen=None, camera=str(video_file()))):
        assert len(receiver.model.shares) == 1


async def test_the_browser_reports_a_receiver_found_then_lost_when_it_says_goodbye(
    make_receiver: ReceiverFactory,
) -> None:
    events = Events()
    async with ReceiverBrowser(events, interfaces=["127.0.0.1"]):
        receiver = await make_receiver(
            name="Event Room", pin="4821", mdns=True, mdns_interfaces=["127.0.0.1"]
        )
        assert receiver.identity is not None
        kind, key, info = await events.next()
        assert kind == "found" and key == "Event Room._coalesce._tcp.local."
        assert info is not None and info.name == "Event Room" and info.port == receiver.port
        assert info.fingerprint == receiver.identity.fingerprint and info.pin_required is True
        await receiver.aclose()  # goodbye packets: zeroconf removes it at once, no TTL to wait out
        assert await events.next() == ("lost", key, None)
        assert events.queue.empty()


async def test_the_instance_name_other_browsers_show_is_the_rooms_name(
    make_receiver: ReceiverFactory,
) -> None:
    events = Events()
    async with ReceiverBrowser(events, interfaces=["127.0.0.1"]):
        await make_receiver(name="Bob's Room (4.12)", mdns=True, mdns_interfaces=["127.0.0.1"])
        kind, key, info = await events.next()
    assert kind == "found" and info is not None
    # What Bonjour and Avahi list: the whole name in one label, its dot as the look-alike U+2024.
    assert key == "Bob's Room (4\u202412)._coalesce._tcp.local."
    assert info.name == "Bob's Room (4.12)"  # from the TXT record: what Coalesce shows


def test_an_instance_name_fits_one_dns_label() -> None:
    assert instance_label("Ä" * 40) == "Ä" * 31  # 63 bytes at most, cut between characters
    assert instance_label("Room\x07 1\\") == "Room 1"  # no control characters, no backslash
    assert instance_label(" \t ") == "Coalesce"


async def test_a_receiver_that_vanishes_without_a_goodbye_is_lost_within_seconds(
    make_receiver: ReceiverFactory,
) -> None:
    listing = Listing()
    async with ReceiverBrowser(listing, interfaces=LOOPBACK, **CONFIRM):
        await make_receiver(name="Staying Room", mdns=True, mdns_interfaces=LOOPBACK)
        staying = "Staying Room._coalesce._tcp.local."
        async with publish_in_child("Vanishing Room") as vanishing:
            await listing.until(lambda: listing.listed.keys() == {staying, vanishing.key}, "both listed")
            vanishing.kill()  # a power cut: no goodbye, its records stay in zeroconf's cache for 19 minutes
            await listing.until(
                lambda: vanishing.key not in listing.listed,
                "the silent receiver to be dropped",
                timeout=SILENT_FOR_AT_MOST,
            )
        # the receiver that kept answering was confirmed in the same rounds and never dropped
        assert listing.listed.keys() == {staying}
        assert ("lost", staying) not in listing.told


async def test_a_receiver_that_answers_again_is_listed_again() -> None:
    listing = Listing()
    async with (
        ReceiverBrowser(listing, interfaces=LOOPBACK, **CONFIRM),
        publish_in_child("Flaky Room") as flaky,
    ):
        await listing.until(lambda: flaky.key in listing.listed, "the receiver to be listed")
        flaky.freeze()  # its network drops out: it answers nothing and says no goodbye
        await listing.until(
            lambda: flaky.key not in listing.listed, "it to be dropped", timeout=SILENT_FOR_AT_MOST
        )
        flaky.thaw()  # back: zeroconf saw no change at all, only the confirmations hear it again
        await listing.until(lambda: flaky.key in listing.listed, "it to be listed again")
        assert listing.listed[flaky.key].name == "Flaky Room"
        assert listing.told.count(("lost", flaky.key)) == 1


async def test_a_browser_reports_receivers_that_were_there_before_it(make_receiver: ReceiverFactory) -> None:
    first = await make_receiver(name="Early Room", mdns=True, mdns_interfaces=["127.0.0.1"])
    await find("Early Room", timeout=EVENT_TIMEOUT, interfaces=["127.0.0.1"])  # announced by now
    events = Events()
    async with ReceiverBrowser(events, interfaces=["127.0.0.1"]):
        kind, _, info = await events.next()
        assert kind == "found" and info is not None and info.port == first.port
    assert events.queue.empty()  # closed: nothing more reported, not even the receiver going
    await first.aclose()
    assert events.queue.empty()


async def test_a_stopped_receiver_is_no_longer_listed(make_receiver: ReceiverFactory) -> None:
    receiver = await make_receiver(name="Gone Room", mdns=True, mdns_interfaces=["127.0.0.1"])
    await find("Gone Room", timeout=10, interfaces=["127.0.0.1"])
    await receiver.aclose()
    names = [r.name for r in await browse(1.5, interfaces=["127.0.0.1"])]
    assert "Gone Room" not in names


async def test_discover_cli_prints_json(make_receiver: ReceiverFactory) -> None:
    receiver = await make_receiver(name="CLI Room", mdns=True)
    assert receiver.identity is not None
    await find("CLI Room", timeout=10)  # announced before the CLI looks
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "coalesce_client",
        "discover",
        "--json",
        "--timeout",
        "3",
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0
    listed = {r["name"]: r for r in json.loads(out)}
    assert listed["CLI Room"]["port"] == receiver.port
    assert listed["CLI Room"]["fingerprint"] == receiver.identity.fingerprint
    assert listed["CLI Room"]["pin_required"] is False


async def test_the_txt_record_follows_pin_changes_and_the_lock(make_receiver: ReceiverFactory) -> None:
    listing = Listing()
    async with ReceiverBrowser(listing, interfaces=LOOPBACK):
        receiver = await make_receiver(
            name="Changing Room", pin="4821", admin_password="admin-pw", mdns=True, mdns_interfaces=LOOPBACK
        )

        def mode() -> AccessMode | None:
            infos = [info for info in listing.listed.values() if info.name == "Changing Room"]
            return infos[0].mode if infos else None

        await listing.until(lambda: mode() is AccessMode.PIN, "the room listed with a PIN")
        await receiver.apply_settings("admin-pw", pin=None, rotate=False)
        await listing.until(lambda: mode() is AccessMode.OPEN, "the open room announced")
        [info] = [i for i in listing.listed.values() if i.name == "Changing Room"]
        assert not info.pin_required and info.access.describe() == "No PIN"
        await receiver.apply_settings("admin-pw", pin="2468", rotate=False, locked=True)
        await listing.until(lambda: mode() is AccessMode.LOCKED, "the locked room announced")
        # (Not back to a TXT seen within the last second: a browser's cache keeps a flushed record for a
        # second, RFC 6762 10.2, and takes its return for a refresh, not a change.)
    assert [kind for kind, _ in listing.told].count("lost") == 0, "updated in place, never lost"
