"""The page against an impostor room: whoever answers as the box on the cloud's XMPP (a compromised cloud, a
stolen box identity) but does not know the PIN, or will not prove it, gets no share.

The impostor logs in with a real box's XMPP identity and answers the page's conversation itself, from the
test. The page must stop at each of: a challenge saying no PIN is needed (nothing would tie the share to the
room), a welcome whose confirmation does not prove the PIN's key, and an answer whose MAC does not vouch for
its DTLS fingerprint. Each ends with words, and never with "Sharing to".
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from coalesce_cloud.stack import LocalCloud
from coalesce_common.cloud.rest import CloudClient
from coalesce_common.protocol.messages import Pair
from coalesce_common.protocol.pairing import ReceiverPairing
from coalesce_common.signaling import SignalingChannel
from coalesce_common.signaling.xmpp import XmppSignaling
from tests.cloudlab import Admin
from tests.conftest import PatternWindowFactory, XServer
from tests.web.browserlab import share_page

PIN = "4821"
FAKE_ANSWER = "v=0\r\na=fingerprint:sha-256 " + ":".join(["AB"] * 32) + "\r\n"

Script = Callable[[SignalingChannel], Awaitable[None]]


@dataclass
class Impostor:
    """Answers as the box: ``script`` plays each conversation a page opens."""

    meeting_id: str
    script: Script | None = None


@pytest.fixture
async def impostor(admin: Admin) -> AsyncIterator[Impostor]:
    credentials = await admin.enroll("Cloud Room", "box")
    async with CloudClient(credentials.api_url, token=credentials.token, ca_file=credentials.ca_file) as api:
        meeting = await api.create_meeting()
    room = Impostor(str(meeting["meeting_id"]))

    async def conversation(channel: SignalingChannel) -> None:
        assert room.script is not None
        await room.script(channel)

    stream = XmppSignaling(credentials.xmpp, on_channel=conversation)
    await stream.connect(15)
    try:
        yield room
    finally:
        await stream.aclose()


async def hello(channel: SignalingChannel) -> dict[str, object]:
    message: dict[str, object] = json.loads(await channel.recv())
    assert message["type"] == "hello", message
    return message


def challenge(pin_required: bool, spake: str | None) -> str:
    return json.dumps(
        {
            "type": "challenge", "v": 1, "receiver_name": "Cloud Room", "receiver_id": "impostor",
            "pin_required": pin_required, "spake": spake,
        }
    )  # fmt: skip


async def paired(channel: SignalingChannel) -> tuple[ReceiverPairing, Pair]:
    await hello(channel)
    room = ReceiverPairing(PIN)  # this impostor even knows the PIN for the answer-MAC case
    await channel.send(challenge(True, room.message))
    message = json.loads(await channel.recv())
    assert message["type"] == "pair", message
    return room, Pair(spake=message["spake"], confirm=message["confirm"], binding=message["binding"])


async def no_pin(channel: SignalingChannel) -> None:
    await hello(channel)
    await channel.send(challenge(False, None))
    await channel.recv()  # whatever the page says next (it closes)


async def bad_confirm(channel: SignalingChannel) -> None:
    await paired(channel)
    await channel.send(json.dumps({"type": "welcome", "share_id": "s1", "confirm": "AAAA"}))
    await channel.recv()


async def bad_answer_mac(channel: SignalingChannel) -> None:
    room, pair = await paired(channel)
    key = room.verify(pair, channel.tls_fingerprint)
    welcome = {"type": "welcome", "share_id": "s1", "confirm": key.receiver_confirm(channel.tls_fingerprint)}
    await channel.send(json.dumps(welcome))
    offer = json.loads(await channel.recv())
    assert offer["type"] == "offer", offer
    key.verify_offer_mac(offer["sdp"], offer["mac"])  # the page's offer is vouched for
    await channel.send(json.dumps({"type": "answer", "sdp": FAKE_ANSWER, "mac": "AAAA"}))
    await channel.recv()


@pytest.mark.parametrize(
    ("script", "words"),
    [
        (no_pin, "says it needs no PIN, but this page shares only to rooms that check one"),
        (bad_confirm, "The room display is not the one the PIN vouches for"),
        (bad_answer_mac, "media fingerprint is not the one the PIN vouches for"),
    ],
)
async def test_the_page_shares_nothing_with_a_room_that_does_not_prove_the_pin(
    xvfb: XServer,
    pattern_window: PatternWindowFactory,
    impostor: Impostor,
    local_cloud: LocalCloud,
    tmp_path: Path,
    script: Script,
    words: str,
) -> None:
    await asyncio.to_thread(pattern_window)
    impostor.script = script
    async with share_page(local_cloud, xvfb, tmp_path / "chromium") as page:
        await page.share(impostor.meeting_id, PIN)
        said = await page.wait_for_status(words)
        assert "Sharing to" not in said
        await page.page.wait_for_selector("#share:not([disabled])")  # the form is back, nothing is sent
        assert await page.page.evaluate("() => window.coalesce.tracks.length") == 0  # capture stopped
