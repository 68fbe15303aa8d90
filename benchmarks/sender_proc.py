"""The benchmark's sender: Coalesce's :class:`Share` of an X display, with its RTP and capture counters.

Run by the orchestrator as ``python -m benchmarks.sender_proc (--discover ROOM | --host H --port N) --pin
PIN --display :N --codec h264|vp8 --fps F --name NAME [--audio]``. It starts sharing at once (with
``--discover``,
after finding the room over mDNS, as the app's room list does) and prints ``{"share_started_at": t,
"connected_at": t, "codec": "H264"}`` (monotonic seconds) when media is connected. Then it answers
``{"cmd": "stats"}`` with its counters (:func:`_stats`) and exits when stdin closes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time
from typing import Any

from benchmarks.procs import commands, emit
from coalesce_client.services.share import Share, ShareOptions, ShareTarget
from coalesce_common.discovery import find
from coalesce_common.errors import DiscoveryError
from coalesce_common.media.encoding import TunedH264Encoder, TunedVp8Encoder

CODECS = {"h264": "video/H264", "vp8": "video/VP8"}


def hold_bitrate(bitrate: int) -> None:
    """Start every encoder of this process at ``bitrate`` and cap it there.

    Congestion control may still lower it (on a lossy link), never raise it: on loopback the share then
    runs at ``bitrate``, and the rivals are matched to the rate it reached, so the quality columns compare
    pictures made from the same number of bits."""
    for encoder in (TunedH264Encoder, TunedVp8Encoder):
        encoder.default_bitrate = encoder.max_bitrate = max(encoder.min_bitrate, bitrate)


DISCOVERY_TIMEOUT = 10.0


async def _stats(share: Share) -> dict[str, Any]:
    stats = await share.stats()
    return {
        "at": time.monotonic(),
        "bytes_sent": stats.bytes_sent,
        "packets_sent": stats.packets_sent,
        "frames_captured": stats.frames_captured,
        "capture_drops": stats.frames_dropped,
    }


async def _target(args: argparse.Namespace) -> ShareTarget:
    """Where to share: the room found by name over mDNS (``--discover``), as the app's room list finds
    it, or the address given."""
    if args.discover is None:
        return ShareTarget(host=args.host, port=args.port)
    found = await find(args.discover, DISCOVERY_TIMEOUT, interfaces=[args.mdns_interface])
    return ShareTarget(found.addresses[0], found.port, fingerprint=found.fingerprint, name=found.name)


async def run(args: argparse.Namespace) -> None:
    options = ShareOptions(
        sender_name=args.name,
        pin=args.pin,
        fps=args.fps,
        display=args.display,
        codec=CODECS[args.codec],
        sound=args.audio,
    )
    share_started_at = time.monotonic()  # the user's Share press: discovery, pairing and media from here
    try:
        share = Share(await _target(args), options)
    except DiscoveryError as exc:
        emit({"error": f"the room was not found: {exc}"})
        return
    try:
        await share.start()
    except Exception as exc:
        emit({"error": f"the share did not start: {exc}"})
        return
    if args.audio and share.sound_problem is not None:
        await share.stop()
        emit({"error": f"the share's sound did not start: {share.sound_problem}"})
        return
    try:
        emit(
            {
                "share_started_at": share_started_at,
                "connected_at": time.monotonic(),
                "codec": (await share.stats()).codec,
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
    parser.add_argument("--host", default="127.0.0.1", help="the receiver's address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="the receiver's port (without --discover)")
    parser.add_argument("--discover", metavar="ROOM", help="find the room by this name over mDNS instead")
    parser.add_argument(
        "--mdns-interface", default="127.0.0.1", help="the address to browse from (default 127.0.0.1)"
    )
    parser.add_argument("--pin", default=None)
    parser.add_argument("--display", required=True)
    parser.add_argument("--codec", choices=sorted(CODECS), default="h264")
    parser.add_argument("--fps", type=float, default=60.0)
    parser.add_argument("--name", default="bench")
    parser.add_argument("--audio", action="store_true", help="share this computer's sound too")
    parser.add_argument(
        "--bitrate", type=int, help="hold the encoder at this many bit/s (quality per bitrate)"
    )
    args = parser.parse_args(argv)
    if args.bitrate is not None:
        hold_bitrate(args.bitrate)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("coalesce_common.media.encoding").setLevel(
        logging.DEBUG
    )  # encoder (re)builds in the log
    asyncio.run(run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
