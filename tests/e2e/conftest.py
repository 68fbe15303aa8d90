"""Fixtures for end-to-end LAN tests: real receivers on loopback TLS, real aiortc media, real Xvfb."""

from __future__ import annotations

import asyncio
import inspect
import ssl
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from coalesce_common.media.ice import reset_host_addresses_policy, set_host_addresses_policy
from coalesce_receiver.services.incoming import SinkFactory
from coalesce_receiver.services.receiver import Receiver, ReceiverConfig
from coalesce_receiver.services.sink import TrackSink
from coalesce_receiver.services.throttle import PinThrottle

ReceiverFactory = Callable[..., Awaitable[Receiver]]


@pytest.fixture(autouse=True)
def loopback_only_ice() -> Iterator[None]:
    """ICE host candidates on 127.0.0.1 only: no test traffic ever leaves loopback."""
    set_host_addresses_policy(only=["127.0.0.1"])
    yield
    reset_host_addresses_policy()


@pytest.fixture
async def make_receiver(tmp_path: Path) -> AsyncIterator[ReceiverFactory]:
    """``await make_receiver(pin="4821", throttle=..., **ReceiverConfig fields)`` → a started receiver."""
    receivers: list[Receiver] = []

    async def factory(
        *, throttle: PinThrottle | None = None, sink_factory: SinkFactory = TrackSink, **overrides: Any
    ) -> Receiver:
        fields: dict[str, Any] = {
            "name": "Room 1",
            "host": "127.0.0.1",
            "port": 0,
            "fallback_port": None,
            "data_dir": tmp_path / f"receiver-{len(receivers)}",
            "mdns": False,
        }
        fields.update(overrides)
        receiver = Receiver(ReceiverConfig(**fields), throttle=throttle, sink_factory=sink_factory)
        await receiver.start()
        receivers.append(receiver)
        return receiver

    yield factory
    for receiver in receivers:
        await receiver.aclose()


@pytest.fixture
def video_file(tmp_path: Path) -> Callable[..., Path]:
    """Factory writing a short video of one solid colour (RGB), standing in for a webcam."""

    def make(colour: tuple[int, int, int] = (255, 0, 255), size: tuple[int, int] = (320, 240)) -> Path:
        path = tmp_path / f"camera-{colour[0]}-{colour[1]}-{colour[2]}.avi"
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 30.0, size)
        assert writer.isOpened(), "OpenCV cannot write MJPG video here"
        frame = np.zeros((size[1], size[0], 3), np.uint8)
        frame[:] = colour[::-1]  # OpenCV is BGR
        for _ in range(30):
            writer.write(frame)
        writer.release()
        return path

    return make


async def eventually(predicate: Callable[[], bool | Awaitable[bool]], timeout: float, what: str) -> None:
    """Wait until ``predicate()`` holds, checking every 20 ms, or fail after ``timeout`` seconds.

    For conditions nothing signals (a file on disk, a counter in another object); never a fixed sleep.
    A predicate that reads a file must be a coroutine doing the reading in a thread (``asyncio.to_thread``):
    the event loop never waits for the disk.
    """

    async def holds() -> bool:
        result = predicate()
        return bool(await result) if inspect.isawaitable(result) else bool(result)

    async with asyncio.timeout(timeout):
        while not await holds():  # noqa: ASYNC110 - polling what nothing signals, with a deadline
            await asyncio.sleep(0.02)
    assert await holds(), what


def close_to(
    actual: np.ndarray | tuple[int, ...], expected: tuple[int, int, int], tolerance: int = 40
) -> bool:
    return all(abs(int(a) - int(e)) <= tolerance for a, e in zip(actual, expected, strict=True))


def tls_client_context(maximum: ssl.TLSVersion | None = None) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if maximum is not None:
        with warnings.catch_warnings():  # offering TLS 1.0/1.1 is deprecated: that is the point here
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.minimum_version = ssl.TLSVersion.TLSv1
            ctx.maximum_version = maximum
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")  # let our client offer old versions; the server must refuse
    return ctx
