"""The benchmark's receiver: Coalesce's headless :class:`Receiver`, reading the strip of every frame.

Run by the orchestrator as ``python -m benchmarks.receiver_proc --pin PIN --data-dir DIR``. It prints
``{"port": N}`` once it listens on 127.0.0.1, then answers commands on stdin (one JSON line each):

- ``{"cmd": "wait", "count": N, "timeout": S}``: wait until N shares each have a decoded frame; answers
  with every stream's first-frame time.
- ``{"cmd": "begin"}``: start a measurement window (clears the samples of every stream).
- ``{"cmd": "end"}``: answers with the window's samples per stream (see :meth:`StripSamples.report`).

It exits when stdin closes. The strip is read where the receiver gets its frames: each decoded frame
passes :meth:`TimedTrackSink._accept`, where the Y plane is read in place (no copy, no conversion) by a
:class:`~benchmarks.samples.StripSamples`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from pathlib import Path

import av
import numpy as np
from aiortc.mediastreams import MediaStreamTrack

from benchmarks.procs import commands, emit
from benchmarks.samples import StripSamples
from coalesce_receiver.services import incoming
from coalesce_receiver.services.receiver import Receiver, ReceiverConfig
from coalesce_receiver.services.sink import TrackSink

LUMA_FORMATS = frozenset({"yuv420p", "yuvj420p", "nv12", "yuv444p"})
"""Decoder outputs whose first plane is the luma the strip is read from."""


def luma(frame: av.VideoFrame) -> np.ndarray:
    """The Y plane of a planar YUV frame as a (height, width) view of the frame's own memory."""
    plane = frame.planes[0]
    rows: np.ndarray = np.frombuffer(memoryview(plane), dtype=np.uint8).reshape(plane.height, plane.line_size)
    return rows[:, : plane.width]


class TimedTrackSink(TrackSink):
    """A :class:`TrackSink` that also hands every frame it accepts to a :class:`StripSamples`."""

    def __init__(self, track: MediaStreamTrack, kind: str) -> None:
        super().__init__(track, kind)
        self.probe = StripSamples()

    def _accept(self, frame: av.VideoFrame) -> None:
        # TrackSink has no per-frame hook; _accept is where every decoded frame passes, once.
        if frame.format.name in LUMA_FORMATS:
            self.probe.observe(luma(frame))
        else:
            self.probe.skip()
        super()._accept(frame)


def _streams(receiver: Receiver) -> list[tuple[str, TimedTrackSink]]:
    return [
        (share.sender_name, sink)
        for share in receiver.model.shares
        for sink in share.tracks.values()
        if isinstance(sink, TimedTrackSink)
    ]


async def serve(args: argparse.Namespace) -> None:
    # IncomingShare makes its sinks through this module attribute, looked up at call time.
    incoming.TrackSink = TimedTrackSink  # type: ignore[attr-defined]
    config = ReceiverConfig(
        name="Benchmark room",
        pin=args.pin,
        host="127.0.0.1",
        port=0,
        fallback_port=None,
        data_dir=Path(args.data_dir),
        mdns=False,
    )
    async with Receiver(config) as receiver:
        emit({"port": receiver.port})
        stdin = await commands()
        while line := await stdin.readline():
            request = json.loads(line)
            command = request["cmd"]
            if command == "wait":
                try:
                    await receiver.wait_for_shares(request["count"], request["timeout"])
                except TimeoutError:
                    count, timeout = request["count"], request["timeout"]
                    emit({"error": f"fewer than {count} shares had a frame within {timeout} s"})
                    continue
                emit(
                    {
                        "streams": [
                            {"sender": s, "first_frame_at": k.probe.first_frame_at}
                            for s, k in _streams(receiver)
                        ]
                    }
                )
            elif command == "begin":
                for _, sink in _streams(receiver):
                    sink.probe.reset()
                emit({"ok": True})
            elif command == "end":
                emit({"streams": [{"sender": s, **k.probe.report()} for s, k in _streams(receiver)]})
            else:
                emit({"error": f"unknown command {command!r}"})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Benchmark receiver (started by benchmarks.run)")
    parser.add_argument("--pin", default=None)
    parser.add_argument("--data-dir", required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s")
    Path(args.data_dir).mkdir(parents=True, exist_ok=True)
    asyncio.run(serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
