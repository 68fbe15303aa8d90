"""The benchmark's receiver: Coalesce's :class:`Receiver`, reading the strip of every decoded frame, and
with ``--window`` its real room window on the X display it is given.

Run by the orchestrator as ``python -m benchmarks.receiver_proc --pin PIN --data-dir DIR [--window]
[--source WxH]`` (with ``--window``, ``DISPLAY`` names the room's own Xvfb; ``--source`` is the shared
screen's size, so frames a sender scaled down for a small tile are still read). It prints
``{"port": N}`` once it listens on ``--host`` (127.0.0.1 unless the case's link puts it on a veth), then
answers commands on stdin (one JSON line each):

- ``{"cmd": "wait", "count": N, "timeout": S}``: wait until N shares each have a decoded frame; answers
  with every stream's first-frame time.
- ``{"cmd": "link", "credentials": {...}}``: link the room to a cloud as the box whose
  :class:`~coalesce_common.cloud.rest.DeviceCredentials` these are (the web side: browsers share to it by
  meeting ID); answers ``{"meeting_id": ...}`` once the cloud gave one. Credentials come over stdin, never
  in a file.
- ``{"cmd": "begin"}``: start a measurement window (clears the samples of every stream).
- ``{"cmd": "end"}``: answers with the window's samples per stream (see :meth:`StripSamples.report`).
- ``{"cmd": "placements"}`` (``--window`` only): where each share's screen picture is drawn on the room's
  screen, ``{"placements": [{"sender": name, "rect": [x, y, w, h], "covered": [[x, y, w, h], ...]}]}`` in
  screen pixels, after the tile's letterbox: the rect a :mod:`benchmarks.glass` sampler on that screen
  reads, and the captions the window draws over it (name label, share count), which quality scores leave
  out.

It exits when stdin closes. The decoder-point figure is read where the receiver gets its frames: each
decoded frame passes its sink's ``on_frame`` hook (:class:`ProbedSinks`), where the Y plane is read in
place (no copy, no conversion) by a :class:`~benchmarks.samples.StripSamples`. The window is the one the
room shows (:class:`~coalesce_receiver.ui.room_window.RoomWindow` on the same qasync bridge as
``coalesce-receiver``), full screen, with one change: each tile's stop button is hidden, because it sits
over the corner where the strip is painted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import sys
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
from aiortc.mediastreams import MediaStreamTrack

from benchmarks.cases import ROOM_NAME
from benchmarks.glass import Placement
from benchmarks.procs import commands, emit
from benchmarks.samples import StripSamples
from coalesce_common.cloud.rest import DeviceCredentials
from coalesce_receiver.services.cloud_link import CloudLink
from coalesce_receiver.services.receiver import Receiver, ReceiverConfig
from coalesce_receiver.services.sink import TrackSink

LUMA_FORMATS = frozenset({"yuv420p", "yuvj420p", "nv12", "yuv444p"})
"""Decoder outputs whose first plane is the luma the strip is read from."""


def luma(frame: av.VideoFrame) -> np.ndarray:
    """The Y plane of a planar YUV frame as a (height, width) view of the frame's own memory."""
    plane = frame.planes[0]
    rows: np.ndarray = np.frombuffer(memoryview(plane), dtype=np.uint8).reshape(plane.height, plane.line_size)
    return rows[:, : plane.width]


def source_corner(plane: np.ndarray, source: tuple[int, int]) -> np.ndarray:
    """The strip's corner of a frame the sender scaled down from ``source`` (w, h), at the source's size.

    The room asks a sender for a smaller picture when its tile is small; the strip is then smaller and
    nearer the corner than its geometry for the frame's own size says. Only the corner is scaled back, so
    the cost stays that of a few hundred pixels per frame."""
    region, size = Placement(source, (0, 0, plane.shape[1], plane.shape[0])).strip_corner()
    corner = plane[: region["height"], : region["width"]]
    return cv2.resize(corner, size, interpolation=cv2.INTER_LINEAR)


class ProbedSinks:
    """Makes the receiver's track sinks, each with a :class:`StripSamples` fed by its frame hook.

    ``source`` is the size of the screen the senders share, when known: a frame of another size was
    scaled by its sender, and its strip is read at the source's geometry (:func:`source_corner`)."""

    def __init__(self, source: tuple[int, int] | None = None) -> None:
        self.source = source
        self.probes: weakref.WeakKeyDictionary[TrackSink, StripSamples] = weakref.WeakKeyDictionary()

    def __call__(self, track: MediaStreamTrack, kind: str) -> TrackSink:
        probe = StripSamples()
        source = self.source

        def observe(frame: av.VideoFrame) -> None:
            if frame.format.name not in LUMA_FORMATS:
                probe.skip()
            elif source is None or (frame.width, frame.height) == source:
                probe.observe(luma(frame))
            else:
                probe.observe(source_corner(luma(frame), source), full_size=source)

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


Placements = Callable[[], list[dict[str, Any]]]
"""Where the window shows each share (the ``placements`` command); ``None`` when headless."""


def probed_receiver(args: argparse.Namespace) -> tuple[Receiver, ProbedSinks]:
    """The receiver on ``--host`` (any port; announced over mDNS there with ``--mdns``), sinks probed."""
    sinks = ProbedSinks(args.source)
    config = ReceiverConfig(
        name=ROOM_NAME,
        pin=args.pin,
        host=args.host,
        port=0,
        fallback_port=None,
        data_dir=Path(args.data_dir),
        mdns=args.mdns,
        mdns_interfaces=[args.host] if args.mdns else None,
    )
    return Receiver(config, sink_factory=sinks), sinks


async def serve(args: argparse.Namespace) -> None:
    """The headless receiver until stdin closes."""
    receiver, sinks = probed_receiver(args)
    async with receiver:
        await answer(receiver, sinks, None)


async def answer(receiver: Receiver, sinks: ProbedSinks, placements: Placements | None) -> None:
    """Print the port, then answer the orchestrator's commands until stdin closes."""
    emit({"port": receiver.port})
    stdin = await commands()
    async with contextlib.AsyncExitStack() as links:
        while line := await stdin.readline():
            request = json.loads(line)
            if request["cmd"] == "link":
                link = CloudLink(receiver, DeviceCredentials.from_json(request["credentials"]))
                await link.start()
                links.push_async_callback(link.aclose)
                emit({"meeting_id": receiver.model.meeting_id})
                continue
            await _answer_one(receiver, sinks, placements, request)


async def _answer_one(
    receiver: Receiver, sinks: ProbedSinks, placements: Placements | None, request: dict[str, Any]
) -> None:
    command = request["cmd"]
    if command == "wait":
        try:
            await receiver.wait_for_shares(request["count"], request["timeout"])
        except TimeoutError:
            count, timeout = request["count"], request["timeout"]
            emit({"error": f"fewer than {count} shares had a frame within {timeout} s"})
            return
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
    elif command == "placements" and placements is not None:
        emit({"placements": placements()})
    else:
        emit({"error": f"unknown command {command!r}"})


def run_window(args: argparse.Namespace) -> int:
    """The receiver under its room window, full screen on ``DISPLAY``, until stdin closes."""
    import qasync  # Qt is loaded only when a window is wanted
    from PySide6.QtCore import QPoint, QRect
    from PySide6.QtWidgets import QLabel, QToolButton, QWidget

    from coalesce_common.ui.qtloop import application, run_with_qt
    from coalesce_receiver.ui.room_window import RoomWindow

    receiver, sinks = probed_receiver(args)
    app = application("coalesce-benchmark-room")
    window = RoomWindow(receiver.model, receiver, pin=args.pin)

    def placements() -> list[dict[str, Any]]:
        window.refresh_frames()  # a share whose first frame the timer has not pulled yet gets its place
        shown = []
        for tile in window.tiles:
            tile.drop_button.hide()
            rect = tile.picture_rect()
            if rect is None or not tile.isVisible():
                continue
            corner = tile.mapToGlobal(rect.topLeft())
            picture = QRect(corner, rect.size())
            shown.append(
                {
                    "sender": tile.sender_name,
                    "rect": [corner.x(), corner.y(), rect.width(), rect.height()],
                    "covered": covered(picture),
                }
            )
        return shown

    def covered(picture: QRect) -> list[list[int]]:
        """Screen rects of the captions the window draws over ``picture`` (name label, share count)."""
        found = []
        for widget in window.findChildren(QWidget):
            if widget.isWindow() or not widget.isVisible() or not isinstance(widget, QLabel | QToolButton):
                continue
            box = QRect(widget.mapToGlobal(QPoint(0, 0)), widget.size()).intersected(picture)
            if not box.isEmpty():
                found.append([box.x(), box.y(), box.width(), box.height()])
        return found

    async def main() -> None:
        async with receiver:
            await answer(receiver, sinks, placements)

    return run_with_qt(
        app,
        qasync.QEventLoop(app),
        main,
        closed=window.closed,
        show=window.show_fullscreen,
        teardown=window.close,
        label="room",
    )


def _size(text: str) -> tuple[int, int]:
    width, _, height = text.partition("x")
    return int(width), int(height)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Benchmark receiver (started by benchmarks.run)")
    parser.add_argument("--pin", default=None)
    parser.add_argument("--host", default="127.0.0.1", help="the address to listen on (default 127.0.0.1)")
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--mdns", action="store_true", help="announce the room over mDNS on --host only")
    parser.add_argument("--window", action="store_true", help="show the room window on DISPLAY, full screen")
    parser.add_argument("--source", type=_size, help="WxH of the shared screen (to read scaled frames)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s")
    Path(args.data_dir).mkdir(parents=True, exist_ok=True)
    if args.window:
        return run_window(args)
    asyncio.run(serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
