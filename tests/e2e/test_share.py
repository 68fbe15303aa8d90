"""LAN sharing end to end: real TLS signaling, SPAKE2 pairing, DTLS-SRTP media, Xvfb capture."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import pytest

from coalesce_client.services.share import Share, ShareOptions, ShareState, ShareTarget
from coalesce_common.errors import ShareRefused
from coalesce_common.protocol import (
    Answer,
    Bye,
    Challenge,
    Denied,
    DenyReason,
    EndReason,
    Hello,
    MediaState,
    Message,
    Offer,
    Pair,
    Welcome,
    parse,
)
from coalesce_common.signaling import SignalingChannel
from coalesce_common.signaling.memory import channel_pair
from coalesce_common.signaling.websocket import connect
from coalesce_receiver.services.receiver import Receiver
from tests.conftest import PatternWindowFactory, XServer
from tests.e2e.conftest import ReceiverFactory, close_to, eventually
from tests.protocol.pin_traces import leaks

PIN = "4821"


def frames_of(receiver: Receiver, sender: str, kind: str) -> int:
    for share in receiver.model.shares:
        if share.sender_name == sender and kind in share.tracks:
            return int(share.tracks[kind].stats()["frames"])  # type: ignore[call-overload]
    return 0


async def test_screen_share_shows_what_is_on_the_x_screen(
    xvfb: XServer, pattern_window: PatternWindowFactory, make_receiver: ReceiverFactory, tmp_path: Path
) -> None:
    pattern = await asyncio.to_thread(pattern_window)
    snapshots = tmp_path / "snapshots"
    receiver = await make_receiver(pin=PIN, snapshot_dir=snapshots)
    target = ShareTarget("127.0.0.1", receiver.port)
    async with Share(target, ShareOptions(sender_name="Ada", pin=PIN, display=xvfb.display)) as share:
        assert share.receiver_name == "Room 1"
        await receiver.wait_for_shares(1, timeout=20)
        [shown] = receiver.model.shares
        assert shown.sender_name == "Ada"
        frame = shown.tracks["screen"].latest_rgb()
        assert frame is not None
        assert frame.shape == (xvfb.height, xvfb.width, 3)
        for quadrant, (x, y) in pattern.centres().items():
            assert close_to(frame[y, x], pattern.quadrants[quadrant]), (quadrant, frame[y, x])
        png = snapshots / "Ada-screen.png"
        await eventually(lambda: asyncio.to_thread(png.exists), 5, "the snapshot PNG is written")
        bgr = await asyncio.to_thread(cv2.imread, str(png))
        assert bgr is not None
        psnr = cv2.PSNR(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), _expected_image(pattern, bgr.shape))
        assert psnr > 25, f"received picture differs from the screen (PSNR {psnr:.1f} dB)"
    await eventually(lambda: not receiver.model.shares, 5, "the receiver removes the tile after bye")


def _expected_image(pattern: Any, shape: tuple[int, ...]) -> Any:
    import numpy as np

    h, w = shape[:2]
    image = np.zeros((h, w, 3), np.uint8)
    image[: h // 2, : w // 2] = pattern.quadrants["top_left"]
    image[: h // 2, w // 2 :] = pattern.quadrants["top_right"]
    image[h // 2 :, : w // 2] = pattern.quadrants["bottom_left"]
    image[h // 2 :, w // 2 :] = pattern.quadrants["bottom_right"]
    return image


async def test_webcam_share_from_a_video_file(
    make_receiver: ReceiverFactory, video_file: Callable[..., Path]
) -> None:
    receiver = await make_receiver()
    path = video_file(colour=(255, 0, 255))
    options = ShareOptions(sender_name="Cam", screen=None, camera=str(path))
    async with Share(ShareTarget("127.0.0.1", receiver.port), options):
        await receiver.wait_for_shares(1, timeout=20)
        [shown] = receiver.model.shares
        assert list(shown.tracks) == ["camera"]
        frame = shown.tracks["camera"].latest_rgb()
        assert frame is not None and frame.shape == (240, 320, 3)
        assert close_to(frame[120, 160], (255, 0, 255))


async def test_two_senders_at_once_and_one_leaving_does_not_disturb_the_other(
    xvfb: XServer,
    pattern_window: PatternWindowFactory,
    make_receiver: ReceiverFactory,
    video_file: Callable[..., Path],
    tmp_path: Path,
) -> None:
    await asyncio.to_thread(pattern_window)
    stats_file = tmp_path / "stats.json"
    receiver = await make_receiver(pin=PIN, stats_file=stats_file)
    target = ShareTarget("127.0.0.1", receiver.port)
    screen = Share(target, ShareOptions(sender_name="Screen", pin=PIN, display=xvfb.display))
    camera = Share(target, ShareOptions(sender_name="Camera", pin=PIN, screen=None, camera=str(video_file())))
    async with screen:
        async with camera:
            await receiver.wait_for_shares(2, timeout=30)
            assert sorted(s.sender_name for s in receiver.model.shares) == ["Camera", "Screen"]

            async def stats_show_both() -> bool:
                try:
                    data = json.loads(await asyncio.to_thread(stats_file.read_text))
                except (OSError, ValueError):
                    return False
                frames = {s["sender"]: s["tracks"][0]["frames"] for s in data["shares"] if s["tracks"]}
                return len(frames) == 2 and all(n > 0 for n in frames.values())

            await eventually(stats_show_both, 5, "the stats file lists both shares with frames")
        before = frames_of(receiver, "Screen", "screen")
        await eventually(
            lambda: [s.sender_name for s in receiver.model.shares] == ["Screen"], 5, "camera left"
        )
        await eventually(lambda: frames_of(receiver, "Screen", "screen") > before + 5, 10, "screen continues")


async def test_sender_name_collisions_get_distinct_labels(
    make_receiver: ReceiverFactory, video_file: Callable[..., Path]
) -> None:
    receiver = await make_receiver()
    target, path = ShareTarget("127.0.0.1", receiver.port), str(video_file())
    options = ShareOptions(sender_name="Laptop", screen=None, camera=path)
    async with Share(target, options), Share(target, options):
        assert sorted(s.sender_name for s in receiver.model.shares) == ["Laptop", "Laptop (2)"]


class Tap:
    """Wraps a sender's signaling channel and keeps every message it sends and receives, in order."""

    def __init__(self, inner: SignalingChannel) -> None:
        self.inner = inner
        self.wire: list[str | bytes] = []

    @property
    def peer_address(self) -> str:
        return self.inner.peer_address

    @property
    def tls_fingerprint(self) -> str:
        return self.inner.tls_fingerprint

    async def send(self, text: str) -> None:
        self.wire.append(text)
        await self.inner.send(text)

    async def recv(self) -> str | bytes:
        data = await self.inner.recv()
        self.wire.append(data)
        return data

    async def aclose(self, reason: str = "") -> None:
        await self.inner.aclose(reason)

    def messages(self) -> list[Message]:
        return [parse(data) for data in self.wire]


async def test_a_real_share_never_puts_its_pin_on_the_wire(
    make_receiver: ReceiverFactory, video_file: Callable[..., Path]
) -> None:
    """Every signaling message of two real shares with the same PIN, as the sender sent and received them."""
    pin = "482193570614"  # twelve digits: no chance of meeting it in an SDP's random numbers
    receiver = await make_receiver(pin=pin)
    options = ShareOptions(sender_name="Ada", pin=pin, screen=None, camera=str(video_file()))
    runs: list[list[Message]] = []
    for _ in range(2):
        sender_end, receiver_end = channel_pair(tls_fingerprint="AA:BB:CC")
        tap = Tap(sender_end)

        async def tapped(target: ShareTarget, timeout: float, tap: Tap = tap) -> SignalingChannel:
            return tap

        serving = asyncio.ensure_future(receiver.serve(receiver_end))
        async with Share(ShareTarget("memory", 0), options, channel_factory=tapped):
            await receiver.wait_for_shares(1, timeout=20)
        await asyncio.wait_for(serving, 10)
        assert leaks(pin, tap.wire) == []
        runs.append(tap.messages())
    first, second = runs
    kinds = [Hello, Challenge, Pair, Welcome, Offer, Answer, MediaState, Bye]
    assert [type(m) for m in first] == [type(m) for m in second] == kinds
    # SPAKE2's fresh randomness: no pairing value, which a PIN-derived one would repeat, comes twice
    pairing_fields = {Challenge: ["spake"], Pair: ["spake", "confirm", "binding"], Welcome: ["confirm"]}
    pairing_fields |= {Offer: ["mac"], Answer: ["mac"]}
    for one, other in zip(first, second, strict=True):
        for name in pairing_fields.get(type(one), []):
            assert getattr(one, name) is not None and getattr(one, name) != getattr(other, name), name


async def test_a_fifth_share_is_refused_when_four_are_shown(
    make_receiver: ReceiverFactory, video_file: Callable[..., Path]
) -> None:
    receiver = await make_receiver()  # the real default: four shares at once
    target, path = ShareTarget("127.0.0.1", receiver.port), str(video_file())
    names = [f"Laptop {n}" for n in range(1, 5)]
    async with contextlib.AsyncExitStack() as shares:
        for name in names:
            options = ShareOptions(sender_name=name, screen=None, camera=path)
            await shares.enter_async_context(Share(target, options))
        await receiver.wait_for_shares(4, timeout=30)
        taps: list[Tap] = []

        async def tapped(target: ShareTarget, timeout: float) -> SignalingChannel:
            taps.append(Tap(await connect(target.host, target.port, timeout=timeout)))
            return taps[-1]

        options = ShareOptions(sender_name="Laptop 5", screen=None, camera=path)
        fifth = Share(target, options, channel_factory=tapped)
        with pytest.raises(ShareRefused):
            await fifth.start()
        [tap] = taps
        hello, denied = tap.messages()  # refused before any challenge: no PIN attempt spent
        assert isinstance(hello, Hello) and isinstance(denied, Denied)
        assert denied.reason is DenyReason.FULL
        assert sorted(s.sender_name for s in receiver.model.shares) == names
        before = {name: frames_of(receiver, name, "camera") for name in names}
        await eventually(
            lambda: all(frames_of(receiver, name, "camera") > before[name] + 5 for name in names),
            10,
            "the four shares keep streaming after the fifth was refused",
        )


async def test_a_receiver_shutdown_ends_the_share_at_the_sender(
    make_receiver: ReceiverFactory, video_file: Callable[..., Path]
) -> None:
    receiver = await make_receiver()
    share = Share(
        ShareTarget("127.0.0.1", receiver.port), ShareOptions(screen=None, camera=str(video_file()))
    )
    await share.start()
    try:
        await receiver.aclose()
        assert await asyncio.wait_for(share.wait_ended(), 10) is EndReason.RECEIVER_SHUTDOWN
    finally:
        await share.stop()


class SilenceableRelay:
    """A TCP relay between a sender and the receiver; :meth:`silence` makes the path go quiet.

    Once silent nothing passes either way and no FIN, RST or close frame reaches either end, as when a
    laptop's lid closes or a room display's network drops: only a keepalive can notice.
    """

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.silent = False
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    def silence(self) -> None:
        self.silent = True

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        self._writers += [writer, up_writer]
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    async def _pipe(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await source.read(65536):
                if not self.silent:
                    sink.write(data)
                    await sink.drain()
            if not self.silent:  # a clean close before the silence passes on; after it, nothing does
                sink.close()

    async def aclose(self) -> None:
        for writer in self._writers:
            writer.transport.abort()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


async def test_a_sender_that_vanishes_without_bye_is_removed(
    make_receiver: ReceiverFactory, video_file: Callable[..., Path]
) -> None:
    # keepalive: short, yet long enough for a busy 2-core machine; no tile kept for a return (that is
    # tests/e2e/test_reconnect.py's)
    receiver = await make_receiver(keepalive=1.0, reconnect_window=0)
    relay = SilenceableRelay(receiver.port)
    target = ShareTarget("127.0.0.1", await relay.start())
    share = Share(target, ShareOptions(screen=None, camera=str(video_file())))  # its own keepalive: 10 s
    dropped = asyncio.Event()
    sender_state_when_dropped: list[ShareState] = []

    def on_change() -> None:
        if not receiver.model.shares and not dropped.is_set():
            sender_state_when_dropped.append(share.state)
            dropped.set()

    try:
        await share.start()
        await receiver.wait_for_shares(1, timeout=20)
        unsubscribe = receiver.model.subscribe(on_change)
        relay.silence()  # the laptop lid closes: no bye, no TCP close; media still flows P2P
        # a ping within 1 s, its pong awaited 1 s, then the closing handshake 1 s: 3 s at most
        await asyncio.wait_for(dropped.wait(), 8)
        unsubscribe()
        # The receiver's own keepalive dropped it: the sender had noticed nothing, so it had not hung up.
        assert sender_state_when_dropped == [ShareState.SHARING]
    finally:
        await relay.aclose()  # first: a close through a silent path would wait out the sender's keepalive
        await share.stop()


async def test_a_receiver_that_vanishes_ends_the_share_at_the_sender(
    make_receiver: ReceiverFactory, video_file: Callable[..., Path]
) -> None:
    receiver = await make_receiver()  # its own keepalive: 10 s
    relay = SilenceableRelay(receiver.port)
    target = ShareTarget("127.0.0.1", await relay.start())

    async def channel(target: ShareTarget, timeout: float) -> SignalingChannel:
        return await connect(target.host, target.port, timeout=timeout, keepalive=1.0)

    options = ShareOptions(screen=None, camera=str(video_file()), reconnect_for=0)  # no second try
    share = Share(target, options, channel_factory=channel)
    try:
        await share.start()
        await receiver.wait_for_shares(1, timeout=20)
        relay.silence()  # the room display loses its network: nothing more arrives, not even a close
        # Only the sender's keepalive can end it this soon, and it ends as the receiver gone, not a failure.
        assert await asyncio.wait_for(share.wait_ended(), 8) is EndReason.CONNECTION_LOST
    finally:
        await share.stop()
        await relay.aclose()
