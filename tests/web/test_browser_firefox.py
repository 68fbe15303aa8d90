"""The sharing page in Firefox (Debian's Firefox ESR over WebDriver BiDi: tests/web/firefoxlab.py): the
room shows the screen's colours, peer to peer and relayed over TURN/TLS only; closing the tab ends the share;
Firefox's fake camera arrives beside the screen, and the page says that Firefox shares no sound; a wrong PIN
gets the app's words, then the throttle.

Firefox skips a ``turns:`` server given by IP address ("Failed to init STUN server" in its mtransport log),
so the local cloud names its TLS relay ``localhost`` (``TurnRegion.tls_host``)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from coalesce_cloud.stack import LocalCloud
from coalesce_testing.waiting import until
from tests.cloudlab import Box
from tests.conftest import PatternWindowFactory, XServer
from tests.web.firefoxlab import firefox_page, move_off_screen
from tests.web.test_browser_refusals import wrong_pins_until_throttled
from tests.web.test_browser_share import PIN, assert_shows, first_frame, no_tiles


@pytest.mark.parametrize(
    ("query", "route_type", "relay_protocol"),
    [("", "host", None), ("relay=tls", "relay", "tls")],
    ids=["peer to peer", "TURN-TLS only"],
)
async def test_firefox_shares_its_screen_and_closing_the_tab_ends_it(
    xvfb: XServer, pattern_window: PatternWindowFactory, box: Box, local_cloud: LocalCloud, tmp_path: Path,
    query: str, route_type: str, relay_protocol: str | None,
) -> None:  # fmt: skip
    pattern = await asyncio.to_thread(pattern_window)
    async with firefox_page(local_cloud, xvfb, tmp_path / "firefox", query=query) as firefox:
        pressed = time.monotonic()
        await firefox.share(box.meeting_id, PIN)
        shown = await first_frame(box)
        elapsed = time.monotonic() - pressed
        await firefox.wait_for_status("Sharing to Cloud Room.")
        await move_off_screen(xvfb)  # it opened over the pattern
        await assert_shows(shown, pattern)
        route = await firefox.route()
        print(f"\nFirefox, {query or 'peer to peer'}: Share pressed -> first frame {elapsed:.2f} s; {route}")
        assert route["type"] == route_type and route["relayProtocol"] == relay_protocol, route
        await firefox.close_tab()
        await until(box.receiver.model, lambda: no_tiles(box), "the tile to go when the tab closes", 15)


async def test_firefox_shares_its_camera_beside_the_screen_and_says_it_shares_no_sound(
    xvfb: XServer, pattern_window: PatternWindowFactory, box: Box, local_cloud: LocalCloud, tmp_path: Path
) -> None:
    await asyncio.to_thread(pattern_window)
    async with firefox_page(local_cloud, xvfb, tmp_path / "firefox") as firefox:
        # media.navigator.streams.fake: a test camera; "Share the sound" ticked, which Firefox cannot honour
        await firefox.share(box.meeting_id, PIN, camera=True, sound=True)
        shown = await first_frame(box)
        await until(box.receiver.model, lambda: "camera" in shown.tracks, "the camera's tile part", 20)
        await asyncio.wait_for(shown.tracks["camera"].wait_for_frames(3), 20)
        said = await firefox.wait_for_status("Sharing to Cloud Room.")
        assert "camera is not available" not in said, said
        assert "No sound is shared: the browser offered none for what you picked." in said, said
        assert "sound" not in shown.tracks


async def test_firefox_gets_the_apps_words_for_a_wrong_pin_then_the_throttle(
    xvfb: XServer, pattern_window: PatternWindowFactory, box: Box, local_cloud: LocalCloud, tmp_path: Path
) -> None:
    await asyncio.to_thread(pattern_window)
    async with firefox_page(local_cloud, xvfb, tmp_path / "firefox") as firefox:
        said = await wrong_pins_until_throttled(firefox, box.meeting_id)
        assert said[0] == "Wrong PIN: check the PIN shown on the room display.", said
        assert "Too many attempts: retry in" in said[-1], said
        assert not box.receiver.model.shares
