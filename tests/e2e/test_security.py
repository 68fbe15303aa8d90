"""Pairing and transport security: wrong PINs, throttling, tampering, bad input, old TLS."""

from __future__ import annotations

import asyncio
import json
import ssl
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

from coalesce_client.services.share import Share, ShareOptions, ShareTarget
from coalesce_common.errors import IdentityMismatch, PairingError, Throttled, WrongPin
from coalesce_common.protocol import MAX_MESSAGE_SIZE, Hello, encode
from coalesce_common.signaling import SignalingChannel
from coalesce_common.signaling.websocket import SIGNALING_PATH, connect
from coalesce_common.tls import load_or_create_identity, server_context
from coalesce_receiver.services.receiver import Receiver
from coalesce_receiver.services.throttle import PinThrottle
from tests.e2e.conftest import ReceiverFactory, eventually, tls_client_context

PIN = "4821"


def camera_options(video: Path, **kw: object) -> ShareOptions:
    return ShareOptions(screen=None, camera=str(video), **kw)  # type: ignore[arg-type]


async def test_wrong_pin_is_refused_then_throttled(
    make_receiver: ReceiverFactory, video_file: Callable[..., Path]
) -> None:
    receiver = await make_receiver(pin=PIN, throttle=PinThrottle(free_failures=3, base_delay=60))
    target, video = ShareTarget("127.0.0.1", receiver.port), video_file()
    for _ in range(3):
        with pytest.raises(WrongPin) as info:
            await Share(target, camera_options(video, pin="0000")).start()
        assert "Wrong PIN" in str(info.value)
    assert "retry in 60 s" in str(info.value)
    with pytest.raises(Throttled) as throttled:  # even the right PIN must wait now
        await Share(target, camera_options(video, pin=PIN)).start()
    assert 0 < throttled.value.retry_after <= 60
    assert "Too many attempts: retry in" in str(throttled.value)
    assert receiver.model.shares == []


async def test_missing_pin_is_a_clear_error(
    make_receiver: ReceiverFactory, video_file: Callable[..., Path]
) -> None:
    receiver = await make_receiver(pin=PIN)
    with pytest.raises(PairingError, match="needs a PIN"):
        await Share(ShareTarget("127.0.0.1", receiver.port), camera_options(video_file())).start()


class TlsRelay:
    """A party in the middle: terminates TLS with its own certificate and relays bytes to the receiver."""

    def __init__(self, upstream_port: int, data_dir: Path) -> None:
        self.upstream_port = upstream_port
        self.data_dir = data_dir
        self.server: asyncio.Server | None = None
        self.connections = 0

    async def start(self) -> int:
        identity = await asyncio.to_thread(load_or_create_identity, self.data_dir)
        self.server = await asyncio.start_server(self._relay, "127.0.0.1", 0, ssl=server_context(identity))
        return int(self.server.sockets[0].getsockname()[1])

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        up_reader, up_writer = await asyncio.open_connection(
            "127.0.0.1", self.upstream_port, ssl=tls_client_context()
        )

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, ssl.SSLError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    async def aclose(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


async def test_a_relay_with_another_certificate_is_detected_by_pin_pairing(
    make_receiver: ReceiverFactory, video_file: Callable[..., Path], tmp_path: Path
) -> None:
    receiver = await make_receiver(pin=PIN)
    relay = TlsRelay(receiver.port, tmp_path / "mitm")
    port = await relay.start()
    try:
        with pytest.raises(IdentityMismatch, match="someone may be between"):
            await Share(ShareTarget("127.0.0.1", port), camera_options(video_file(), pin=PIN)).start()
        assert relay.connections == 1
        assert receiver.model.shares == []
    finally:
        await relay.aclose()


async def test_an_open_room_pins_the_fingerprint_mdns_advertised(
    make_receiver: ReceiverFactory, video_file: Callable[..., Path], tmp_path: Path
) -> None:
    receiver = await make_receiver()  # open room: no PIN
    assert receiver.identity is not None
    relay = TlsRelay(receiver.port, tmp_path / "mitm")
    port = await relay.start()
    try:
        target = ShareTarget("127.0.0.1", port, fingerprint=receiver.identity.fingerprint)
        with pytest.raises(IdentityMismatch, match="impersonating"):
            await Share(target, camera_options(video_file())).start()
        assert receiver.model.shares == []
        # the same fingerprint, straight to the receiver, is accepted
        direct = ShareTarget("127.0.0.1", receiver.port, fingerprint=receiver.identity.fingerprint)
        async with Share(direct, camera_options(video_file())):
            assert len(receiver.model.shares) == 1
    finally:
        await relay.aclose()


class FingerprintSwapper:
    """Wraps the sender's channel and swaps the offer's DTLS fingerprint, as a relay in the middle would."""

    def __init__(self, inner: SignalingChannel) -> None:
        self.inner = inner
        self.swapped = False

    @property
    def peer_address(self) -> str:
        return self.inner.peer_address

    @property
    def tls_fingerprint(self) -> str:
        return self.inner.tls_fingerprint

    async def send(self, text: str) -> None:
        message = json.loads(text)
        if message["type"] == "offer":
            lines = message["sdp"].split("\r\n")
            lines = [
                "a=fingerprint:sha-256 " + ":".join(["AB"] * 32)
                if line.startswith("a=fingerprint:")
                else line
                for line in lines
            ]
            message["sdp"] = "\r\n".join(lines)
            self.swapped = True
            text = json.dumps(message)
        await self.inner.send(text)

    async def recv(self) -> str | bytes:
        return await self.inner.recv()

    async def aclose(self, reason: str = "") -> None:
        await self.inner.aclose(reason)


async def test_a_swapped_dtls_fingerprint_is_detected(
    make_receiver: ReceiverFactory, video_file: Callable[..., Path]
) -> None:
    receiver = await make_receiver(pin=PIN)
    swappers: list[FingerprintSwapper] = []

    async def tampering_channel(target: ShareTarget, timeout: float) -> SignalingChannel:
        swappers.append(FingerprintSwapper(await connect(target.host, target.port, timeout=timeout)))
        return swappers[-1]

    share = Share(
        ShareTarget("127.0.0.1", receiver.port),
        camera_options(video_file(), pin=PIN),
        channel_factory=tampering_channel,
    )
    with pytest.raises(IdentityMismatch):
        await share.start()
    assert swappers[0].swapped
    await eventually(lambda: not receiver.model.shares, 5, "the paired-but-tampered share is removed")


async def raw_exchange(receiver: Receiver, *messages: str | bytes) -> list[str | bytes]:
    """Send raw frames on a fresh TLS WebSocket; return every frame the receiver sends until it closes."""
    received: list[str | bytes] = []
    async with ws_connect(
        f"wss://127.0.0.1:{receiver.port}{SIGNALING_PATH}",
        ssl=tls_client_context(),
        proxy=None,
        max_size=None,
    ) as ws:
        for message in messages:
            await ws.send(message)
        try:
            async with asyncio.timeout(10):
                async for frame in ws:
                    received.append(frame)
        except ConnectionClosed:
            pass
    return received


@pytest.mark.parametrize(
    ("frames", "code"),
    [
        (["this is not json"], "malformed"),
        (['{"type": "hello", "v": 1}'], "malformed"),
        (['{"type": "launch-missiles"}'], "unknown-type"),
        (['{"type": "offer", "sdp": "v=0", "tracks": {}}'], "out-of-order"),
        (["{" + " " * (MAX_MESSAGE_SIZE + 10) + "}"], "too-large"),
        (
            [
                encode(Hello(v=1, sender_name="x", sender_id="y")),
                encode(Hello(v=1, sender_name="x", sender_id="y")),
            ],
            "out-of-order",
        ),
    ],
    ids=["not-json", "missing-fields", "unknown-type", "offer-first", "oversized", "hello-twice"],
)
async def test_bad_messages_get_an_error_while_another_share_continues(
    make_receiver: ReceiverFactory, video_file: Callable[..., Path], frames: list[str], code: str
) -> None:
    receiver = await make_receiver()
    async with Share(
        ShareTarget("127.0.0.1", receiver.port), camera_options(video_file(), sender_name="Good")
    ):
        await receiver.wait_for_shares(1, timeout=20)
        sink = receiver.model.shares[0].tracks["camera"]
        replies = await raw_exchange(receiver, *frames)
        errors = [json.loads(r) for r in replies if json.loads(r)["type"] == "error"]
        assert errors and errors[-1]["code"] == code, replies
        assert [s.sender_name for s in receiver.model.shares] == ["Good"]
        before = int(sink.stats()["frames"])  # type: ignore[call-overload]
        await eventually(
            lambda: int(sink.stats()["frames"]) > before + 3, 10, "the good share keeps streaming"
        )  # type: ignore[call-overload]


async def test_a_huge_frame_is_cut_off_without_harm(make_receiver: ReceiverFactory) -> None:
    receiver = await make_receiver()
    with pytest.raises(ConnectionClosed) as info:
        async with ws_connect(
            f"wss://127.0.0.1:{receiver.port}{SIGNALING_PATH}",
            ssl=tls_client_context(),
            proxy=None,
            max_size=None,
        ) as ws:
            await ws.send("x" * (2 * 1024 * 1024))
            await ws.recv()
    assert info.value.rcvd is not None and info.value.rcvd.code == 1009  # message too big
    # the receiver still serves
    channel = await connect("127.0.0.1", receiver.port)
    await channel.aclose()


async def test_tls_1_1_is_refused_and_tls_1_2_accepted(make_receiver: ReceiverFactory) -> None:
    receiver = await make_receiver()
    with pytest.raises((ssl.SSLError, ConnectionResetError)):
        _, writer = await asyncio.open_connection(
            "127.0.0.1", receiver.port, ssl=tls_client_context(maximum=ssl.TLSVersion.TLSv1_1)
        )
        writer.close()
    _, writer = await asyncio.open_connection(
        "127.0.0.1", receiver.port, ssl=tls_client_context(maximum=ssl.TLSVersion.TLSv1_2)
    )
    assert writer.get_extra_info("ssl_object").version() == "TLSv1.2"
    writer.close()


async def test_identity_is_created_once_with_private_permissions(
    make_receiver: ReceiverFactory, tmp_path: Path
) -> None:
    data_dir = tmp_path / "box"
    first = await make_receiver(data_dir=data_dir)
    await first.aclose()
    second = await make_receiver(data_dir=data_dir)
    assert first.identity is not None and second.identity is not None
    assert first.identity.fingerprint == second.identity.fingerprint
    for path in (second.identity.cert_path, second.identity.key_path):
        assert stat.S_IMODE((await asyncio.to_thread(path.stat)).st_mode) == 0o600
    assert "PRIVATE KEY" in await asyncio.to_thread(second.identity.key_path.read_text)


async def test_port_fallback_when_the_port_is_taken(
    make_receiver: ReceiverFactory, free_tcp_port: int
) -> None:
    first = await make_receiver()
    second = await make_receiver(port=first.port, fallback_port=free_tcp_port)
    assert second.port == free_tcp_port
