"""The benchmark's sender: Coalesce's :class:`Share` of an X display, with its RTP and capture counters.

Run by the orchestrator as ``python -m benchmarks.sender_proc --port N --pin PIN --display :N --codec
h264|vp8 --fps F --name NAME``. It starts sharing at once and prints ``{"share_started_at": t,
"connected_at": t, "codec": "H264"}`` (monotonic seconds) when media is connected. Then it answers
``{"cmd": "stats"}`` with its counters (:func:`_stats`) and exits when stdin closes.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import logging
import sys
import time
from typing import Any

from aiortc import RTCPeerConnection
from aiortc.stats import RTCOutboundRtpStreamStats

from benchmarks.procs import commands, emit
from coalesce_client.services import share as share_module
from coalesce_client.services.share import Share, ShareOptions, ShareTarget
from coalesce_common.media.capture import CaptureSource
from coalesce_common.media.encoding import prefer_codec

CODECS = {"h264": "video/H264", "vp8": "video/VP8"}


def _negotiated_codec(pc: RTCPeerConnection) -> str:
    """The codec the answer put first on the video line, e.g. ``H264``."""
    description = pc.remoteDescription
    if description is None:
        return ""
    payload_type = ""
    for line in description.sdp.splitlines():
        if line.startswith("m=video"):
            fields = line.split()
            payload_type = fields[3] if len(fields) > 3 else ""
        elif payload_type and line.startswith(f"a=rtpmap:{payload_type} "):
            return line.split()[1].split("/")[0]
    return ""


# Share keeps its peer connection and capture sources to itself; the benchmark reads their counters.
def _peer(share: Share) -> RTCPeerConnection:
    pc = share._pc
    assert pc is not None
    return pc


def _sources(share: Share) -> list[CaptureSource]:
    return list(share._sources)


async def _stats(share: Share) -> dict[str, Any]:
    report = await _peer(share).getStats()
    outbound = [s for s in report.values() if isinstance(s, RTCOutboundRtpStreamStats)]
    sources = _sources(share)
    return {
        "at": time.monotonic(),
        "bytes_sent": sum(s.bytesSent for s in outbound),
        "packets_sent": sum(s.packetsSent for s in outbound),
        "frames_captured": sum(s.slot.frames_put for s in sources),
        "capture_drops": sum(s.slot.frames_dropped for s in sources),
    }


async def run(args: argparse.Namespace) -> None:
    # Share puts H.264 first through this module attribute; point it at the codec under test.
    share_module.prefer_codec = functools.partial(prefer_codec, mime=CODECS[args.codec])  # type: ignore[attr-defined]
    target = ShareTarget(host="127.0.0.1", port=args.port)
    options = ShareOptions(sender_name=args.name, pin=args.pin, fps=args.fps, display=args.display)
    share = Share(target, options)
    share_started_at = time.monotonic()
    try:
        await share.start()
    except Exception as exc:
        emit({"error": f"the share did not start: {exc}"})
        return
    try:
        emit(
            {
                "share_started_at": share_started_at,
                "connected_at": time.monotonic(),
                "codec": _negotiated_codec(_peer(share)),
            }
        )
        stdin = await commands()
        while line := await stdin.readline():
            command = json.loads(line)["cmd"]
            if command == "stats":
                emit(await _stats(share))
            else:
                emit({"error": f"unknown command {command!r}"})
    finally:
        await share.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Benchmark sender (started by benchmarks.run)")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--pin", default=None)
    parser.add_argument("--display", required=True)
    parser.add_argument("--codec", choices=sorted(CODECS), default="h264")
    parser.add_argument("--fps", type=float, default=60.0)
    parser.add_argument("--name", default="bench")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("coalesce_common.media.encoding").setLevel(
        logging.DEBUG
    )  # encoder (re)builds in the log
    asyncio.run(run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
