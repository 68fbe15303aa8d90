"""What the sharing page says when a share cannot start, and what the box does with a hostile page.

A module of its own (its own local cloud): every press of Share is one admission from 127.0.0.1, the
only address Chromium sends from here, and the cloud admits one address ten times before it must wait.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any, Protocol

from coalesce_cloud.stack import LocalCloud
from coalesce_testing.waiting import until
from tests.cloudlab import Admin, Box
from tests.conftest import PatternWindowFactory, XServer
from tests.web.browserlab import share_page
from tests.web.test_browser_share import PIN, first_frame

WRONG_PIN = "1111"


class SharingPage(Protocol):
    """What the wrong-PIN sequence needs of a browser driver (Chromium's SharePage, Firefox's Firefox)."""

    async def share(self, meeting_id: str, pin: str) -> None: ...
    async def wait_for_status(self, text: str, timeout: float = 30) -> str: ...
    async def wait_until_share_can_be_pressed(self) -> None: ...


async def wrong_pins_until_throttled(page: SharingPage, meeting_id: str) -> list[str]:
    """Share with a wrong PIN four times; what the page said each time (three go free, as for the app)."""
    said = []
    for expected in ["Wrong PIN"] * 3 + ["Too many attempts"]:
        await page.share(meeting_id, WRONG_PIN)
        said.append(await page.wait_for_status(expected))
        await page.wait_until_share_can_be_pressed()
    return said


async def test_a_wrong_pin_is_refused_in_words_and_then_throttled(
    xvfb: XServer, pattern_window: PatternWindowFactory, box: Box, local_cloud: LocalCloud, tmp_path: Path
) -> None:
    await asyncio.to_thread(pattern_window)
    async with share_page(local_cloud, xvfb, tmp_path / "chromium") as page:
        said = await wrong_pins_until_throttled(page, box.meeting_id)
        assert said[0] == "Wrong PIN: check the PIN shown on the room display.", said
        assert "Too many attempts: retry in" in said[-1], said
        assert not box.receiver.model.shares
        assert await page.page.is_visible("#share-form")  # the form stays, for the right PIN


async def test_a_suspended_organisation_and_one_without_web_guests_refuse_the_page(
    xvfb: XServer,
    pattern_window: PatternWindowFactory,
    admin: Admin,
    box: Box,
    local_cloud: LocalCloud,
    tmp_path: Path,
) -> None:
    await asyncio.to_thread(pattern_window)

    async def change(**fields: bool) -> None:
        response = await admin.call("PATCH", "/admin/orgs/acme", fields)
        assert response.status_code == 200, response.text

    async with share_page(local_cloud, xvfb, tmp_path / "chromium") as page:
        try:
            await change(suspended=True)
            await page.share(box.meeting_id, PIN)
            said = await page.wait_for_status("suspended")
            assert said == "This room's organisation is suspended: nobody can share to it from the web.", said
            await page.page.wait_for_selector("#share:not([disabled])")
            await change(suspended=False, web_guests=False)
            await page.share(box.meeting_id, PIN)
            said = await page.wait_for_status("does not take shares from a browser")
            assert "use the Coalesce app" in said, said
        finally:
            await change(suspended=False, web_guests=True)
        assert not box.receiver.model.shares
        await page.page.wait_for_selector("#share:not([disabled])")
        await page.share("0000000000", PIN)
        said = await page.wait_for_status("No meeting has this id now")
        assert "check the id on the room display" in said, said


HOSTILE = """async ([meeting, messages]) => {
    // A page that speaks the protocol badly: a guest identity like any other, then one conversation with
    // the box per message, each answered (or not) as the box sees fit.
    const { CloudStream, admit } = window.coalesce.lib;
    const admitted = await admit('/api/v1', meeting, 'Mallory');
    const stream = new CloudStream();
    await stream.connect(admitted.xmpp.websocket_url, admitted.xmpp.jid, admitted.xmpp.password);
    const answers = [];
    for (const text of messages) {
        const channel = stream.open(admitted.box.jid);
        channel.send(text);
        let answer = null;
        try { answer = await channel.recv(10000); } catch (e) { answer = 'timeout'; }
        answers.push(answer);
        channel.close();
    }
    stream.close();
    return answers;
}"""


def deep(levels: int) -> str:
    return '{"type": "hello", "v": 1, "sender_name": ' + "[" * levels + "]" * levels + ', "sender_id": "x"}'


async def test_malformed_messages_from_a_page_get_errors_and_another_share_goes_on(
    xvfb: XServer, pattern_window: PatternWindowFactory, box: Box, local_cloud: LocalCloud, tmp_path: Path
) -> None:
    await asyncio.to_thread(pattern_window)
    async with share_page(local_cloud, xvfb, tmp_path / "chromium") as page:
        await page.share(box.meeting_id, PIN)
        shown = await first_frame(box)
        attacker = await page.context.new_page()
        await attacker.goto(local_cloud.share_page_url)
        messages = [
            "not json at all",
            json.dumps({"type": "hello", "v": 1}),  # fields missing
            json.dumps({"type": "offer", "sdp": "v=0", "tracks": {}}),  # out of order
            json.dumps({"type": "no-such-message"}),
            deep(5000),
            json.dumps({"type": "hello", "v": 1, "sender_name": "x" * 70_000, "sender_id": "x"}),
        ]
        answers: list[Any] = await attacker.evaluate(HOSTILE, [box.meeting_id, messages])
        codes = []
        for answer in answers:
            if answer in (None, "timeout"):
                codes.append(answer)
                continue
            reply = json.loads(answer)
            assert reply["type"] == "error", reply
            codes.append(reply["code"])
        print("\nthe box answered the hostile page:", codes)
        assert codes == ["malformed", "malformed", "out-of-order", "unknown-type", "malformed", "too-large"]
        # The first share is still on screen and still receiving frames.
        before = shown.tracks["screen"].stats()["frames"]
        await asyncio.wait_for(shown.tracks["screen"].wait_for_frames(before + 5), 10)  # type: ignore[operator]
        assert [s.sender_name for s in box.receiver.model.shares] == ["Visitor"]
        assert "Sharing to Cloud Room." in await page.status()
        await page.page.click("#stop")
        await until(
            box.receiver.model, lambda: not box.receiver.model.shares, "the tile to go after Stop", 15
        )


async def test_the_cloud_admin_api_account_cannot_log_in_over_the_websocket(
    xvfb: XServer, local_cloud: LocalCloud, tmp_path: Path
) -> None:
    """Over TCP, the account ejabberd's admin API obeys is refused an XMPP login (``c2s`` access); the
    WebSocket listener must refuse it as well, even with its right password."""
    assert local_cloud.ejabberd is not None
    password = (await asyncio.to_thread((local_cloud.state_dir / "xmpp-api-password").read_text)).strip()
    jid = local_cloud.ejabberd.jid(local_cloud.ejabberd.config.api_user)
    async with share_page(local_cloud, xvfb, tmp_path / "chromium") as page:
        outcome = await page.page.evaluate(
            """async ([url, jid, password]) => {
                const stream = new window.coalesce.lib.CloudStream();
                try { await stream.connect(url, jid, password); stream.close(); return 'logged in'; }
                catch (error) { return error.message; }
            }""",
            [local_cloud.websocket_url, jid, password],
        )
    assert outcome != "logged in"
    assert "refused" in outcome or "closed the connection" in outcome, outcome
