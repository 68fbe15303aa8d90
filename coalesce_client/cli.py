"""The ``coalesce`` command: ``discover`` receivers on the LAN and ``share`` a screen and webcam."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import json
import logging
import signal
import socket
import sys
from collections.abc import Sequence

from coalesce_client.services.share import Share, ShareOptions, ShareTarget
from coalesce_common.discovery import ReceiverInfo, browse, find
from coalesce_common.errors import CoalesceError
from coalesce_common.media.capture import list_monitors

logger = logging.getLogger("coalesce_client")

DEFAULT_PORT = 443


def parse_host_port(text: str, default_port: int = DEFAULT_PORT) -> tuple[str, int]:
    """``host``, ``host:port``, ``[v6]:port`` → (host, port)."""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else default_port
    if text.count(":") == 1:
        host, port = text.split(":")
        return host, int(port)
    return text, default_port


def _camera_arg(text: str) -> str | int:
    return int(text) if text.isdigit() else text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="coalesce", description="Share your screen to a Coalesce room display."
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    sub = parser.add_subparsers(dest="command")

    d = sub.add_parser("discover", help="list receivers found on this network (mDNS)")
    d.add_argument("--json", action="store_true", help="print JSON, one object per receiver, in a list")
    d.add_argument("--timeout", type=float, default=3.0, help="seconds to listen (default 3)")

    s = sub.add_parser("share", help="share a screen and optionally a webcam to a receiver")
    where = s.add_mutually_exclusive_group(required=True)
    where.add_argument("--to", metavar="HOST[:PORT]", help="receiver address as shown on the room display")
    where.add_argument("--receiver", metavar="NAME", help="receiver name, found by mDNS")
    s.add_argument("--pin", help="the PIN shown on the room display (asked for when needed and omitted)")
    screen = s.add_mutually_exclusive_group()
    screen.add_argument(
        "--screen", type=int, default=1, metavar="N", help="monitor to share, 1 = first (default)"
    )
    screen.add_argument("--no-screen", action="store_true", help="share no screen (webcam only)")
    s.add_argument(
        "--camera", type=_camera_arg, metavar="INDEX_OR_FILE", help="also share a webcam or a video file"
    )
    s.add_argument(
        "--duration", type=float, metavar="SECONDS", help="stop after this many seconds (default: Ctrl-C)"
    )
    s.add_argument("--name", default=socket.gethostname(), help="your name as shown on the room display")
    s.add_argument("--fps", type=float, default=30.0, help="capture frame rate (default 30)")
    s.add_argument("--fingerprint", help="expected SHA-256 fingerprint of the receiver's certificate")
    s.add_argument("--timeout", type=float, default=10.0, help="seconds to find and reach the receiver")

    sub.add_parser("screens", help="list the screens that can be shared")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.command is None:
        parser.print_help()
        return 0
    try:
        if args.command == "discover":
            return asyncio.run(_discover(args))
        if args.command == "screens":
            for monitor in list_monitors():
                print(monitor)
            return 0
        return asyncio.run(_share(args))
    except CoalesceError as exc:
        print(f"coalesce: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


async def _discover(args: argparse.Namespace) -> int:
    receivers = await browse(args.timeout)
    if args.json:
        print(json.dumps([r.to_json() for r in receivers], indent=2))
        return 0
    if not receivers:
        print(
            f"No receivers answered within {args.timeout:g} s. If mDNS is blocked here, use --to HOST:PORT."
        )
        return 0
    for r in receivers:
        pin = "PIN required" if r.pin_required else "open"
        print(f"{r.name}\t{r.addresses[0]}:{r.port}\t{pin}\tsha-256 {r.fingerprint}")
    return 0


async def _target(args: argparse.Namespace) -> ShareTarget:
    if args.receiver:
        found: ReceiverInfo = await find(args.receiver, args.timeout)
        return ShareTarget(found.addresses[0], found.port, fingerprint=found.fingerprint, name=found.name)
    host, port = parse_host_port(args.to)
    return ShareTarget(host, port, fingerprint=args.fingerprint)


async def _ask_pin(receiver_name: str) -> str | None:
    if not sys.stdin.isatty():
        return None
    return await asyncio.to_thread(getpass.getpass, f"PIN for {receiver_name}: ")


async def _share(args: argparse.Namespace) -> int:
    target = await _target(args)
    options = ShareOptions(
        sender_name=args.name,
        pin=args.pin,
        screen=None if args.no_screen else args.screen,
        camera=args.camera,
        fps=args.fps,
        connect_timeout=args.timeout,
    )
    share = Share(target, options, pin_provider=_ask_pin)
    await share.start()
    print(
        f"Sharing to {share.receiver_name} ({target.host}:{target.port}). Press Ctrl-C to stop.", flush=True
    )
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # Windows: Ctrl-C arrives as KeyboardInterrupt
            loop.add_signal_handler(sig, stop.set)
    ended = asyncio.ensure_future(share.wait_ended())
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({ended, stopped}, timeout=args.duration, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
        if not ended.done():
            await share.stop("stopped")
        reason = await ended
    print(f"Share ended ({reason}).", flush=True)
    return 0 if reason == "stopped" else 1
