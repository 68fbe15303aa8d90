"""Strangers cannot lock the room: guessers and flooders are shed, a sender with the right PIN gets in.

A black-box attack once exhausted the receiver-wide allowance from seven addresses and then kept it
exhausted, so that a user who never mistyped was refused 19 times in 20. Here 50 addresses in 127.0.0.0/8
guess at full speed (in a process of their own) against a receiver with the production throttles, while a
real sender pairs and shares, again and again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from coalesce_client.services.share import Share, ShareOptions, ShareTarget
from coalesce_receiver.services.receiver import Receiver
from coalesce_receiver.services.sink import TrackSink
from tests.e2e.conftest import ReceiverFactory, eventually
from tests.e2e.guessers import Outcome, guess_in_child, knock

PIN = "4821"
GUESSING_ADDRESSES = 50
SHARES_DURING_THE_ATTACK = 3


async def share_once(receiver: Receiver, video: Path) -> None:
    """Pair with the right PIN from 127.0.0.1, see frames on the room's tile, stop."""
    share = Share(
        ShareTarget("127.0.0.1", receiver.port),
        ShareOptions(sender_name="Legit", pin=PIN, screen=None, camera=str(video)),
    )
    await share.start()  # raises (WrongPin, Throttled, ...) if the room refused it
    try:
        await receiver.wait_for_shares(1, timeout=30)
        [shown] = receiver.model.shares
        sink = shown.tracks["camera"]
        assert isinstance(sink, TrackSink)
        assert await asyncio.wait_for(sink.wait_for_frames(sink.frames + 3), 20), "the share streams"
    finally:
        await share.stop()
    await eventually(lambda: not receiver.model.shares, 10, "the stopped share leaves the room")


async def test_a_sender_with_the_right_pin_gets_in_while_50_addresses_guess(
    make_receiver: ReceiverFactory, video_file: Callable[..., Path]
) -> None:
    receiver = await make_receiver(pin=PIN)  # the production throttles
    video = video_file()
    async with guess_in_child(receiver.port, 10, GUESSING_ADDRESSES) as guessers:
        for _ in range(SHARES_DURING_THE_ATTACK):
            await share_once(receiver, video)  # every time, not 1 in 20
        tally = await guessers.stop()
    answers = tally.answers
    assert answers["throttled"] > answers["wrong-pin"], f"the guessers were mostly refused: {answers}"
    # Wrong PINs the receiver heard: the allowance (10 at once, 30 of debt, a quarter per second) and each
    # address's first guess; with the guessers' own start, well below one per second.
    assert 0 < answers["wrong-pin"] <= 10 + 30 + GUESSING_ADDRESSES + 0.25 * tally.seconds, answers
    assert answers["welcome"] == 0


async def test_a_hello_flood_from_one_source_is_refused_while_another_pairs(
    make_receiver: ReceiverFactory, video_file: Callable[..., Path], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="coalesce_receiver")
    receiver = await make_receiver(pin=PIN)
    outcomes: list[Outcome] = []
    stop = asyncio.Event()

    async def flood() -> None:
        while not stop.is_set():  # hellos as fast as they are answered, never sending a PIN
            outcomes.append(await knock(receiver.port, "127.0.0.2", None))

    started = time.monotonic()
    flooding = asyncio.ensure_future(flood())
    try:
        await eventually(
            lambda: any(o.kind == "throttled" for o in outcomes), 30, "the flood is refused at its hellos"
        )
        await share_once(receiver, video_file())
    finally:
        # The flag, not the cancel alone: Python 3.11's wait_for (knock's connect) can swallow a cancel
        # that meets its inner future's end, and the flood then went on for ever (CI hung here twice).
        stop.set()
        flooding.cancel()
        await asyncio.gather(flooding, return_exceptions=True)
    elapsed = time.monotonic() - started
    kinds = [o.kind for o in outcomes]
    assert kinds[:8] == ["challenge"] * 8, kinds[:10]  # the burst a sender may use at once
    assert set(kinds) == {"challenge", "throttled"}, kinds
    assert all(o.retry_after and o.retry_after > 0 for o in outcomes if o.kind == "throttled")
    assert kinds.count("challenge") <= 8 + elapsed + 1, "then one SPAKE2 start a second, no more"
    logged = [r for r in caplog.records if "come too fast" in r.getMessage()]
    assert 1 <= len(logged) <= 1 + elapsed / 10, "one line per ten seconds, however fast the flood"
