"""Debian's Firefox ESR at the cloud's sharing page, driven over WebDriver BiDi, the W3C protocol Firefox
speaks itself (``--remote-debugging-port``).

Why not Playwright: its patched Firefox cannot be downloaded here, and its ``moz-firefox`` channel (stock
Firefox over BiDi) opens every context with ``emulation.setMediaFeaturesOverride``, which Firefox ESR 153
does not know, so it cannot start at all. geckodriver is neither in Debian nor reachable. The few BiDi
commands the tests need (navigate, evaluate with a user activation, close) are written here.

What this Firefox needs, found by trying:
- prefs (``user.js``): no permission prompt (``getDisplayMedia`` then shares the entire screen), the fake
  camera, and ICE on loopback (Firefox leaves 127.0.0.1 out by default);
- the session accepts the local cloud's certificates (``acceptInsecureCerts``), for the page and the
  XMPP WebSocket;
- without a window manager its window opens at 0,0, over the pattern it shares, and a window moved off
  the screen stops painting, so the page stalls: :func:`move_off_screen` moves it once sharing has begun.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import websockets

from coalesce_cloud.stack import LocalCloud
from tests.conftest import XServer
from tests.web.browserlab import ROUTE_JS

FIREFOX = Path("/usr/bin/firefox-esr")
PREFS: dict[str, bool] = {
    "media.navigator.permission.disabled": True,
    "media.navigator.streams.fake": True,
    "media.peerconnection.ice.loopback": True,
    "browser.shell.checkDefaultBrowser": False,
    "datareporting.policy.dataSubmissionEnabled": False,
}
LISTENING = re.compile(rb"WebDriver BiDi listening on (ws://\S+)")
START_TIMEOUT = 60.0


class BidiError(AssertionError):
    """Firefox answered a command with an error."""


@dataclass
class Firefox:
    """One Firefox tab at the sharing page."""

    connection: Any
    context: str
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    async def command(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        number = next(self._ids)
        await self.connection.send(json.dumps({"id": number, "method": method, "params": params}))
        while True:  # events may come first; the tests subscribe to none, so skip them
            message = json.loads(await self.connection.recv())
            if message.get("id") != number:
                continue
            if message.get("type") == "error":
                raise BidiError(f"{method}: {message.get('error')}: {message.get('message')}")
            result: dict[str, Any] = message["result"]
            return result

    async def evaluate(self, expression: str, *, activate: bool = False) -> Any:
        """``expression``'s value (awaited); ``activate``: as after a click, which getDisplayMedia needs."""
        result = await self.command(
            "script.evaluate",
            {
                "expression": expression,
                "target": {"context": self.context},
                "awaitPromise": True,
                "userActivation": activate,
            },
        )
        if result.get("type") == "exception":
            raise BidiError(f"{expression}: {result['exceptionDetails'].get('text')}")
        return result["result"].get("value")

    async def share(
        self, meeting_id: str, pin: str, name: str = "Visitor", *, sound: bool = False, camera: bool = False
    ) -> None:
        """Fill the form and press Share."""
        fields = json.dumps({"meeting": meeting_id, "pin": pin, "name": name})
        await self.evaluate(
            f"(() => {{ for (const [id, value] of Object.entries({fields})) "
            "document.getElementById(id).value = value; "
            f"document.getElementById('sound').checked = {json.dumps(sound)}; "
            f"document.getElementById('camera').checked = {json.dumps(camera)}; "
            "document.getElementById('share').click(); })()",
            activate=True,
        )

    async def wait_until_share_can_be_pressed(self, timeout: float = 30) -> None:
        enabled = "!document.getElementById('share').disabled"
        await self._poll(enabled, "the Share button to come back", timeout)

    async def _poll(self, expression: str, what: str, timeout: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not await self.evaluate(expression):
            if loop.time() > deadline:
                raise AssertionError(f"waited {timeout:.0f} s for {what} in Firefox")
            await asyncio.sleep(0.1)  # polling the page, as Playwright's wait_for_function does

    async def status(self) -> str:
        return str(await self.evaluate("document.getElementById('status').textContent"))

    async def wait_for_status(self, text: str, timeout: float = 30) -> str:
        """The status line once it contains ``text`` (fails with what it said instead)."""
        contains = f"document.getElementById('status').textContent.includes({json.dumps(text)})"
        try:
            await self._poll(contains, f"the page to say {text!r}", timeout)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; it says {await self.status()!r}") from None
        return await self.status()

    async def route(self) -> dict[str, Any]:
        value = await self.evaluate(f"({ROUTE_JS})()")
        return {item[0]: unwrap(item[1]) for item in value or []}

    async def close_tab(self) -> None:
        await self.command("browsingContext.close", {"context": self.context})


def unwrap(remote: dict[str, Any]) -> Any:
    """A BiDi remote value as Python (the primitives ROUTE_JS returns)."""
    return remote.get("value")


@contextlib.asynccontextmanager
async def firefox_page(
    cloud: LocalCloud, xvfb: XServer, profile: Path, query: str = ""
) -> AsyncIterator[Firefox]:
    """Firefox ESR with the cloud's sharing page open."""
    await asyncio.to_thread(_write_profile, profile)
    process = await asyncio.create_subprocess_exec(
        str(FIREFOX), "--remote-debugging-port=0", "--no-remote", "--profile", str(profile),
        "--width=800", "--height=700",
        env=xvfb.env(), stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stderr is not None
    try:
        async with asyncio.timeout(START_TIMEOUT):
            while not (found := LISTENING.search(line := await process.stderr.readline())):
                assert line, "Firefox exited before it listened for WebDriver BiDi"
        draining = asyncio.ensure_future(_drain(process.stderr))
        async with websockets.connect(found[1].decode() + "/session", max_size=None) as connection:
            firefox = Firefox(connection, context="")
            accept = {"alwaysMatch": {"acceptInsecureCerts": True}}
            await firefox.command("session.new", {"capabilities": accept})
            tree = await firefox.command("browsingContext.getTree", {})
            firefox.context = tree["contexts"][0]["context"]
            url = cloud.share_page_url + (f"?{query}" if query else "")
            navigate = {"context": firefox.context, "url": url, "wait": "complete"}
            await firefox.command("browsingContext.navigate", navigate)
            yield firefox
            with contextlib.suppress(Exception):  # Firefox may already be going
                await firefox.command("browser.close", {})
    finally:
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
                await process.wait()
    await draining


async def _drain(stream: asyncio.StreamReader) -> None:
    while await stream.readline():
        pass


def _write_profile(profile: Path) -> None:
    profile.mkdir(parents=True, exist_ok=True)
    lines = [f'user_pref("{name}", {json.dumps(value)});' for name, value in PREFS.items()]
    (profile / "user.js").write_text("\n".join(lines) + "\n")


async def move_off_screen(xvfb: XServer) -> None:
    """Firefox's windows (its page and its sharing bar) beyond the right edge of the screen."""
    found = await _xdotool(xvfb, "search", "--onlyvisible", "--class", "firefox")
    for window in found.split():
        await _xdotool(xvfb, "windowmove", window, "2400", "0")


async def _xdotool(xvfb: XServer, *args: str) -> str:
    process = await asyncio.create_subprocess_exec(
        "xdotool", *args, env=xvfb.env(), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await process.communicate()
    assert process.returncode in (0, 1), f"xdotool {args}: {err.decode()}"  # 1: no window found
    return out.decode()
