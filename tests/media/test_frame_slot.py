"""FrameSlot hands over only the newest frame, counts the ones it drops, and wakes its waiter from threads."""

from __future__ import annotations

import asyncio
import threading

import av
import pytest

from coalesce_common.errors import MediaError
from coalesce_common.media.capture import FrameSlot


def make_frame() -> av.VideoFrame:
    return av.VideoFrame(16, 16, "yuv420p")


async def test_get_returns_the_newest_frame_and_counts_the_dropped_ones() -> None:
    slot = FrameSlot()
    frames = [make_frame() for _ in range(3)]
    for frame in frames:
        slot.put(frame)
    assert await slot.get(timeout=1) is frames[-1]
    assert (slot.frames_put, slot.frames_dropped) == (3, 2)


async def test_get_never_returns_the_same_frame_twice() -> None:
    slot = FrameSlot()
    frame = make_frame()
    slot.put(frame)
    assert await slot.get(timeout=1) is frame
    with pytest.raises(TimeoutError):
        await slot.get(timeout=0.05)
    assert slot.frames_dropped == 0


async def test_a_put_from_another_thread_wakes_a_waiting_get() -> None:
    slot = FrameSlot()
    frame = make_frame()
    waiter = asyncio.create_task(slot.get(timeout=10))
    await asyncio.sleep(0)  # a yield, not a wait: lets the task start waiting before the thread puts
    assert not waiter.done()
    putter = threading.Thread(target=slot.put, args=(frame,))
    putter.start()
    try:
        assert await waiter is frame
    finally:
        await asyncio.to_thread(putter.join)


async def test_close_wakes_the_waiter_with_the_error() -> None:
    slot = FrameSlot()
    waiter = asyncio.create_task(slot.get(timeout=10))
    await asyncio.sleep(0)
    error = MediaError("camera unplugged")
    threading.Thread(target=slot.close, args=(error,)).start()
    with pytest.raises(MediaError, match="unplugged"):
        await waiter
    # A later close does not replace the first reason.
    slot.close()
    with pytest.raises(MediaError, match="unplugged"):
        await slot.get(timeout=1)


async def test_a_frame_put_before_close_is_still_handed_over() -> None:
    slot = FrameSlot()
    frame = make_frame()
    slot.put(frame)
    slot.close()
    assert await slot.get(timeout=1) is frame
    with pytest.raises(MediaError, match="stopped"):
        await slot.get(timeout=1)
