"""Shared sound in tests: tones playing into the senders' null sinks, and what the room's sink plays.

A private PulseAudio server (``coalesce_testing.pulse``, the session fixture ``pulse``) has a null sink per
sender and one for the room. A tone played into a sender's sink is what that sender's computer "plays";
the room plays to its own sink, whose monitor these helpers record with ``parec`` and look at through an
FFT. Test modules import :func:`tones` as a fixture.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import numpy as np
import pytest

from coalesce_testing.pulse import PulseServer, tone_strength, write_tone

TONE_A, TONE_B = 997.0, 1499.0


@pytest.fixture
async def tones(pulse: PulseServer, tmp_path: Path) -> AsyncIterator[None]:
    """A 997 Hz tone playing into sink ``alpha`` and a 1499 Hz one into ``beta``, for the whole test."""
    players = []
    for sink, hertz in (("alpha", TONE_A), ("beta", TONE_B)):
        wav = await asyncio.to_thread(write_tone, tmp_path / f"{sink}.wav", hertz, 60.0)
        players.append(
            await asyncio.create_subprocess_exec(
                "paplay", f"--device={sink}", str(wav), env=pulse.env(), stderr=asyncio.subprocess.DEVNULL
            )
        )
    try:
        yield
    finally:
        for player in players:
            if player.returncode is None:
                player.send_signal(signal.SIGTERM)
            await player.wait()


async def record_room(pulse: PulseServer, seconds: float) -> np.ndarray:
    """``seconds`` of what the room's output plays (mono, 48 kHz), from its sink's monitor."""
    recorder = await asyncio.create_subprocess_exec(
        *("parec", "--device=room.monitor", "--raw", "--format=s16le", "--rate=48000", "--channels=1"),
        "--latency-msec=20",
        stdout=asyncio.subprocess.PIPE,
        env=pulse.env(),
    )
    assert recorder.stdout is not None
    try:
        data = await asyncio.wait_for(recorder.stdout.readexactly(int(48_000 * seconds) * 2), seconds + 10)
    finally:
        recorder.kill()
        await recorder.wait()
    return np.frombuffer(data, dtype=np.int16)


def rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(samples.astype(np.float64) ** 2)))


def volume_near(pulse: PulseServer, level: float) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return abs(rms(await record_room(pulse, 0.5)) - level) < 0.1 * level

    return check


async def heard(pulse: PulseServer, hertz: float) -> float:
    """How far (dB) ``hertz`` stands above the rest of what the room plays, over half a second; negative
    when another frequency is the loudest."""
    peak, snr = tone_strength(await record_room(pulse, 0.5), hertz)
    return snr if abs(peak - hertz) <= 10 else -abs(snr)


async def steadily_heard(pulse: PulseServer, hertz: float, timeout: float = 20.0) -> None:
    """Wait until the room plays ``hertz`` (peak within 10 Hz, 20 dB above the rest) in two half-second
    recordings in a row: the first second or two after a share starts or the room switches may hold a gap
    (measured: up to 60 ms, while a second share's video starts in this same process) or the sound from
    before."""
    strengths: list[float] = []
    async with asyncio.timeout(timeout):
        while len(strengths) < 2 or min(strengths[-2:]) <= 20:
            strengths.append(await heard(pulse, hertz))
    assert min(strengths[-2:]) > 20, strengths
