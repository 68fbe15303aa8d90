"""A real browser at the cloud's sharing page: Debian's Chromium, headful on the tests' Xvfb, driven by
Playwright for Python (``executable_path``: Playwright's own browser download cannot work here).

What this Chromium needs, found by trying (benchmarks/browser.py says more):

- ``--auto-select-desktop-capture-source="Entire screen"`` answers the screen picker; adding
  ``--use-fake-ui-for-media-stream`` breaks that on Xvfb, so the camera and microphone permissions are
  granted to the page's origin instead. Those permissions and ``--allow-loopback-in-peer-connection``
  also make Chromium offer its 127.0.0.1 candidate, so peer to peer works on loopback.
- The browser window is placed beyond the right edge of the screen, so the screen it captures is the
  pattern window alone.
- The local cloud's certificates come from its own CA: Chromium is told to trust that CA's key
  (``--ignore-certificate-errors-spki-list``), for the page and for the XMPP WebSocket alike, as a
  browser trusts a public CA.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from playwright.async_api import BrowserContext, Page, async_playwright

from coalesce_cloud.servers.certs import spki_sha256
from coalesce_cloud.stack import LocalCloud
from tests.conftest import XServer

CHROMIUM = Path("/usr/bin/chromium")
SCREEN = "--auto-select-desktop-capture-source=Entire screen"
"""The picker's answer: the whole screen (the pattern window)."""


def tab_titled(title: str) -> str:
    """The picker's answer: the tab whose title is ``title``."""
    return f"--auto-select-tab-capture-source-by-title={title}"


ARGS = (
    "--disable-gpu",
    "--allow-loopback-in-peer-connection",
    "--window-position=2400,0",  # off the 1280x720 screen: the capture shows the pattern only
    "--window-size=800,700",
)

ROUTE_JS = """async () => {
    const stats = await window.coalesce.share.pc.getStats();
    let pair = null;
    stats.forEach((s) => {
        if (s.type === 'transport' && s.selectedCandidatePairId) pair = stats.get(s.selectedCandidatePairId);
    });
    if (!pair) return {};
    const local = stats.get(pair.localCandidateId);
    let video = {};
    stats.forEach((s) => { if (s.type === 'outbound-rtp' && s.kind === 'video' && s.framesSent) video = s; });
    const codec = video.codecId ? stats.get(video.codecId) : null;
    return {
        type: local.candidateType, relayProtocol: local.relayProtocol || null, address: local.address,
        fps: video.framesPerSecond || 0, width: video.frameWidth || 0, height: video.frameHeight || 0,
        codec: codec ? codec.mimeType : null, encoder: video.encoderImplementation || null,
    };
}"""
"""The browser's view of its media path (the selected pair's local candidate) and of the video it sends."""


@dataclass
class SharePage:
    """The sharing page in one browser tab."""

    page: Page
    context: BrowserContext
    console: list[str]

    async def share(
        self, meeting_id: str, pin: str, name: str = "Visitor", *, sound: bool = False, camera: bool = False
    ) -> None:
        """Fill the form and press Share (what a person does)."""
        await self.page.fill("#meeting", meeting_id)
        await self.page.fill("#pin", pin)
        await self.page.fill("#name", name)
        await self.page.set_checked("#sound", sound)
        await self.page.set_checked("#camera", camera)
        await self.page.click("#share")

    async def status(self) -> str:
        return await self.page.inner_text("#status")

    async def wait_until_share_can_be_pressed(self) -> None:
        await self.page.wait_for_selector("#share:not([disabled])")

    async def wait_for_status(self, text: str, timeout: float = 30) -> str:
        """The status line once it contains ``text`` (fails with what it said instead)."""
        try:
            await self.page.wait_for_function(
                "text => document.getElementById('status').textContent.includes(text)",
                arg=text,
                timeout=timeout * 1000,
            )
        except Exception as exc:  # Playwright's TimeoutError: say what the page showed
            said = await self.status()
            raise AssertionError(
                f"the page never said {text!r}; it says {said!r}; console: {self.console[-8:]}"
            ) from exc
        return await self.status()

    async def route(self) -> dict[str, Any]:
        """What :data:`ROUTE_JS` finds: candidate type, relay protocol, fps, size, codec, encoder."""
        result: dict[str, Any] = await self.page.evaluate(ROUTE_JS)
        return result


@contextlib.asynccontextmanager
async def share_page(
    cloud: LocalCloud,
    xvfb: XServer,
    profile: Path,
    *,
    query: str = "",
    args: tuple[str, ...] = (),
    pick: str = SCREEN,
) -> AsyncIterator[SharePage]:
    """Chromium with the cloud's sharing page open (``query``: e.g. ``relay=tls``; ``args``: more flags;
    ``pick``: how the screen picker is answered, :data:`SCREEN` or a tab by its title)."""
    ca_hash = spki_sha256(await asyncio.to_thread(Path(cloud.ca_file).read_bytes))
    async with async_playwright() as playwright:
        context = await playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=str(CHROMIUM),
            headless=False,
            env=xvfb.env(),
            args=[*ARGS, pick, *args, f"--ignore-certificate-errors-spki-list={ca_hash}"],
            no_viewport=True,
            timeout=60_000,
        )
        try:
            await context.grant_permissions(["camera", "microphone"], origin=cloud.api_url)
            page = context.pages[0] if context.pages else await context.new_page()
            console: list[str] = []
            page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
            page.on("pageerror", lambda error: console.append(f"error: {error}"))
            await page.goto(cloud.share_page_url + (f"?{query}" if query else ""))
            yield SharePage(page, context, console)
        finally:
            await context.close()
