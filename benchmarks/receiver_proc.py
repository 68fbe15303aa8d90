"""The benchmark's receiver: Coalesce's headless :class:`Receiver`, reading the strip of every frame.

Run by the orchestrator as ``python -m benchmarks.receiver_proc --pin PIN --data-dir DIR``. It prints
``{"port": N}`` once it listens on 127.0.0.1, then answers commands on stdin (one JSON line each):

- ``{"cmd": "wait", "count": N, "timeout": S}``: wait until N shares each have a decoded frame; answers
  with every stream's first-frame time.
- ``{"cmd": "begin"}``: start a measurement window (clears the samples of every stream).
- ``{"cmd": "end"}``: answers with the window's samples per stream (see :meth:`StripSamples.report`).

It exits when stdin closes. The strip is read where the receiver gets its frames: each decoded frame
passes its sink's ``on_frame`` hook (:class:`ProbedSinks`), where the Y plane is read in place (no copy,
no conversion) by a :class:`~benchmarks.samples.StripSamples`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import weakref
from pathlib import Path

import av
import numpy as np
from aiortc.mediastreams import MediaStreamTrack

from benchmarks.procs import commands, emit
from benchmarks.samples import StripSamples
from coalesce_receiver.services.receiver import Receiver, ReceiverConfig
from coalesce_receiver.services.sink import TrackSink

LUMA_FORMATS = frozenset({"yuv420p", "yuvj420p", "nv12", "yuv444p"})
"""Decoder outputs whose first plane is the luma the strip is read from."""


def luma(frame: av.VideoFrame) -> np.ndarray:
    """The Y plane of a planar YUV frame as a (height, width) view of the frame's own memory."""
    plane = frame.planes[0]
    rows: np.ndarray = np.frombuffer(memoryview(plane), dtype=np.uint8).reshape(plane.height, plane.line_size)
    return rows[:, : plane.width]


class ProbedSinks:
    """Makes the receiver's track sinks, each with a :class:`StripSamples` fed by its frame hook."""

    def __init__(self) -> None:
        self.probes: weakref.WeakKeyDictionary[TrackSink, StripSamples] = weakref.WeakKeyDictionary()

    def __call__(self, track: MediaStreamTrack, kind: str) -> TrackSink:
        probe = StripSamples()

        def observe(frame: av.VideoFrame) -> None:
            if frame.format.name in LUMA_FORMATS:
                probe.observe(luma(frame))
            else:
                probe.skip()

        sink = TrackSink(track, kind, on_frame=observe)
        self.probes[sink] = probe
        return sink

    def streams(self, receiver: Receiver) -> list[tuple[str, StripSamples]]:
        return [
            (share.sender_name, self.probes[sink])
            for share in receiver.model.shares
            for sink in share.tracks.values()
            if isinstance(sink, TrackSink) and sink in self.probes
        ]


async def serve(args: argparse.Namespace) -> None:
    sinks = ProbedSinks()
    config = ReceiverConfig(
        name="Benchmark room",
        pin=args.pin,
        host="127.0.0.1",
        port=0,
        fallback_port=None,
        data_dir=Path(args.data_dir),
        mdns=False,
    )
    async with Receiver(config, sink_factory=sinks) as receiver:
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
                            {"sender": s, "first_frame_at": probe.first_frame_at}
                            for s, probe in sinks.streams(receiver)
                        ]
                    }
                )
            elif command == "begin":
                for _, probe in sinks.streams(receiver):
                    probe.reset()
                emit({"ok": True})
            elif command == "end":
                emit({"streams": [{"sender": s, **probe.report()} for s, probe in sinks.streams(receiver)]})
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
