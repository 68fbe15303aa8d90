"""Sharing from a browser (issue 16): Debian's Chromium at the cloud's ``/share/`` page shares the screen,
with the meeting ID and the room's PIN, to a box linked to a local cloud (real ejabberd over WebSocket,
real coturn), and the room shows the screen's colours; peer to peer, and relayed over TURN/TLS only.

The time from pressing Share to the first frame at the room, and what Chromium sends, are printed
(``pytest tests/web/test_browser_share.py -s``).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from coalesce_cloud.stack import LocalCloud
from coalesce_receiver.models.room import ShareView
from coalesce_testing.pulse import SINKS, PulseServer
from coalesce_testing.waiting import until
from tests.cloudlab import Admin, Box, linked_box
from tests.conftest import PatternWindow, PatternWindowFactory, XServer
from tests.e2e.conftest import close_to
from tests.soundlab import TONE_A, steadily_heard
from tests.web.browserlab import SharePage, share_page, tab_titled

PIN = "4821"


def no_tiles(box: Box) -> bool:
    return not box.receiver.model.shares


async def first_frame(box: Box, name: str = "Visitor", timeout: float = 30) -> ShareView:
    """The share named ``name`` once its screen has delivered a frame."""

    def shown() -> bool:
        return any(s.sender_name == name and "screen" in s.tracks for s in box.receiver.model.shares)

    await until(box.receiver.model, shown, f"{name}'s tile", timeout)
    [share] = [s for s in box.receiver.model.shares if s.sender_name == name]
    await asyncio.wait_for(share.tracks["screen"].wait_for_frames(1), timeout)
    return share


async def assert_shows(shown: ShareView, pattern: PatternWindow) -> None:
    """The room's latest picture of the share has the pattern's four colours where the screen has them."""

    def matches() -> bool:
        frame = shown.tracks["screen"].latest_rgb()
        if frame is None:
            return False
        h, w = frame.shape[:2]
        centres = pattern.centres().items()
        seen = {q: frame[int(y * h / pattern.height), int(x * w / pattern.width)] for q, (x, y) in centres}
        return all(close_to(seen[q], pattern.quadrants[q]) for q in seen)

    async with asyncio.timeout(20):
        while not matches():  # the first frames may still be the encoder's ramp-up: wait for one that does
            await shown.tracks["screen"].wait_for_frames(shown.tracks["screen"].stats()["frames"] + 1)  # type: ignore[operator]


async def share_and_check(page: SharePage, box: Box, pattern: PatternWindow, what: str) -> dict[str, object]:
    pressed = time.monotonic()
    await page.share(box.meeting_id, PIN)
    shown = await first_frame(box)
    elapsed = time.monotonic() - pressed
    await assert_shows(shown, pattern)
    await page.wait_for_status("Sharing to Cloud Room.")
    await page.page.wait_for_selector("#share-form", state="hidden")  # only Stop while sharing
    assert await page.page.inner_text("#stop") == "Stop sharing"
    route = await page.route()
    print(f"\nbrowser share, {what}: Share pressed -> first frame at the room {elapsed:.2f} s; sent: {route}")
    return route


async def test_a_browser_shares_its_screen_peer_to_peer_through_the_cloud(
    xvfb: XServer, pattern_window: PatternWindowFactory, box: Box, local_cloud: LocalCloud, tmp_path: Path
) -> None:
    pattern = await asyncio.to_thread(pattern_window)
    assert box.receiver.model.share_url == local_cloud.share_page_url  # the room shows the page
    async with share_page(local_cloud, xvfb, tmp_path / "chromium") as page:
        route = await share_and_check(page, box, pattern, "peer to peer")
        assert route["type"] == "host", route  # no relay: straight to the box
        await page.page.close()  # the tab closes: the tile goes
        await until(box.receiver.model, lambda: no_tiles(box), "the tile to go when the tab closes", 15)


async def test_a_browser_shares_relayed_over_turn_tls_only(
    xvfb: XServer, pattern_window: PatternWindowFactory, box: Box, local_cloud: LocalCloud, tmp_path: Path
) -> None:
    pattern = await asyncio.to_thread(pattern_window)
    async with share_page(local_cloud, xvfb, tmp_path / "chromium", query="relay=tls") as page:
        route = await share_and_check(page, box, pattern, "relayed over TURN/TLS")
        assert route["type"] == "relay" and route["relayProtocol"] == "tls", route
        await page.page.click("#stop")
        await page.wait_for_status("You stopped sharing.")
        await until(box.receiver.model, lambda: no_tiles(box), "the tile to go after Stop", 15)


async def test_suspending_the_organisation_ends_a_browser_share_at_once(
    xvfb: XServer,
    pattern_window: PatternWindowFactory,
    admin: Admin,
    box: Box,
    local_cloud: LocalCloud,
    tmp_path: Path,
) -> None:
    """The box ends the share itself (told by the cloud, as for a revoked device): a page that would keep
    its media going (its peer connection's close() disabled here) is cut off all the same."""
    await asyncio.to_thread(pattern_window)
    async with share_page(local_cloud, xvfb, tmp_path / "chromium") as page:
        await page.share(box.meeting_id, PIN)
        await first_frame(box)
        await page.wait_for_status("Sharing to Cloud Room.")
        await page.page.evaluate("() => { window.coalesce.share.pc.close = () => {}; }")
        try:
            response = await admin.call("PATCH", "/admin/orgs/acme", {"suspended": True})
            assert response.status_code == 200, response.text
            await until(box.receiver.model, lambda: no_tiles(box), "the tile to go on suspension", 15)
            said = await page.wait_for_status("the share ended")
            assert "ended by the cloud" in said, said
        finally:
            await admin.call("PATCH", "/admin/orgs/acme", {"suspended": False})


async def test_a_browser_shares_its_camera_beside_the_screen(
    xvfb: XServer, pattern_window: PatternWindowFactory, box: Box, local_cloud: LocalCloud, tmp_path: Path
) -> None:
    """With "Also share my camera", Chromium's fake camera (the webcam's stand-in here) reaches the room as
    the share's camera, beside its screen."""
    await asyncio.to_thread(pattern_window)
    fake_camera = ("--use-fake-device-for-media-stream",)
    async with share_page(local_cloud, xvfb, tmp_path / "chromium", args=fake_camera) as page:
        await page.share(box.meeting_id, PIN, camera=True)
        shown = await first_frame(box)
        await until(box.receiver.model, lambda: "camera" in shown.tracks, "the camera's tile part", 20)
        await asyncio.wait_for(shown.tracks["camera"].wait_for_frames(3), 20)
        await page.wait_for_status("Sharing to Cloud Room.")
        assert "camera is not available" not in await page.status()


TONE_PAGE = (
    "<title>Coalesce tone</title><script>"
    "const c = new AudioContext(); const o = c.createOscillator(); o.frequency.value = %g;"
    "o.connect(c.destination); o.start();</script>"
)


async def test_a_browser_shares_a_tabs_sound(
    pulse: PulseServer, xvfb: XServer, admin: Admin, local_cloud: LocalCloud, tmp_path: Path
) -> None:
    """A tab that plays a tone is shared with "Share the sound": the room plays the tone (its output's
    monitor, recorded on the tests' PulseAudio, shows the frequency)."""
    args = ("--autoplay-policy=no-user-gesture-required",)
    async with (
        linked_box(admin, tmp_path, sound_output=SINKS["room"]) as room,
        share_page(
            local_cloud, xvfb, tmp_path / "chromium", args=args, pick=tab_titled("Coalesce tone")
        ) as page,
    ):
        tone = await page.context.new_page()
        await tone.set_content(TONE_PAGE % TONE_A)
        await page.page.bring_to_front()
        await page.share(room.meeting_id, PIN, sound=True)
        said = await page.wait_for_status("Sharing to Cloud Room.")
        assert "No sound is shared" not in said, said
        await until(room.receiver.model, lambda: room.receiver.model.audible is not None, "the tab's sound")
        await steadily_heard(pulse, TONE_A)
