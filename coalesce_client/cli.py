"""The ``coalesce`` command: ``discover`` receivers on the LAN and ``share`` a screen and webcam."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import getpass
import json
import logging
import signal
import socket
import sys
from collections.abc import Sequence

from coalesce_client.cli_moderator import TerminalModerator
from coalesce_client.services import updater
from coalesce_client.services.doctor import diagnose
from coalesce_client.services.lan_relay import cloud_relay
from coalesce_client.services.link_stats import MediaRoute, ShareStats
from coalesce_client.services.remote import KEYRING_SERVICE, NotEnrolled, RemoteOptions, RemoteShare
from coalesce_client.services.share import RECONNECT_FOR, Relay, Share, ShareOptions, ShareTarget
from coalesce_client.settings import load_proxy, save_proxy, with_password
from coalesce_common.cloud import store
from coalesce_common.cloud.device import enroll
from coalesce_common.cloud.updates import current_platform, installed_version
from coalesce_common.discovery import ReceiverInfo, browse, find
from coalesce_common.errors import CoalesceError, NoModerator, RoomFull
from coalesce_common.media.capture import list_monitors
from coalesce_common.net.proxy import ProxyConfig, ProxyResolver
from coalesce_common.protocol import EndReason

logger = logging.getLogger("coalesce_client")

DEFAULT_PORT = 443


def parse_host_port(text: str, default_port: int = DEFAULT_PORT) -> tuple[str, int]:
    """``host``, ``host:port``, ``[v6]:port`` → (host, port); :class:`ValueError` with what is wrong (for
    ``--to``, which argparse turns into a usage error)."""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else str(default_port)
    elif text.count(":") == 1:
        host, port = text.split(":")
    else:
        host, port = text, str(default_port)
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{text!r} is not an address: give the host (and :port) the room display shows")
    return host, int(port)


def _address(text: str) -> str:
    try:
        parse_host_port(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _camera_arg(text: str) -> str | int:
    return int(text) if text.isdigit() else text


def _proxy_parser() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    how = parent.add_mutually_exclusive_group()
    how.add_argument(
        "--proxy", metavar="URL", help="http://[user[:pass]@]host:port or socks5://[user[:pass]@]host:port"
    )
    how.add_argument("--pac", metavar="URL_OR_FILE", help="a proxy auto-config (PAC) file")
    how.add_argument(
        "--system-proxy", action="store_true", help="the system's proxy settings (environment, OS)"
    )
    how.add_argument("--no-proxy", action="store_true", help="connect directly")
    parent.add_argument("--proxy-user", metavar="USER", help="user name for the proxies a PAC file names")
    return parent


def proxy_config(args: argparse.Namespace) -> ProxyConfig:
    """The proxy to use: the flags, else the saved settings; a missing password from env or keyring."""
    if args.no_proxy:
        return ProxyConfig(mode="none")
    if args.system_proxy:
        return ProxyConfig(mode="system")
    if args.proxy:
        return with_password(ProxyConfig(mode="manual", url=args.proxy))
    if args.pac:
        return with_password(ProxyConfig(mode="pac", pac=args.pac, username=args.proxy_user))
    return load_proxy()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="coalesce", description="Share your screen to a Coalesce room display."
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    parser.add_argument("--version", action="version", version=f"%(prog)s {installed_version()}")
    sub = parser.add_subparsers(dest="command")

    d = sub.add_parser("discover", help="list receivers found on this network (mDNS)")
    d.add_argument("--json", action="store_true", help="print JSON, one object per receiver, in a list")
    d.add_argument("--timeout", type=float, default=3.0, help="seconds to listen (default 3)")

    proxy = _proxy_parser()
    s = sub.add_parser("share", help="share a screen and optionally a webcam to a receiver", parents=[proxy])
    where = s.add_mutually_exclusive_group(required=True)
    where.add_argument(
        "--to", metavar="HOST[:PORT]", type=_address, help="receiver address as shown on the room display"
    )
    where.add_argument("--receiver", metavar="NAME", help="receiver name, found by mDNS")
    where.add_argument("--meeting", metavar="ID", help="meeting ID shown on a cloud-connected room display")
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
    s.add_argument(
        "--relay-only", action="store_true", help="with --meeting: media only through TURN over TLS"
    )
    s.add_argument(
        "--audio",
        action="store_true",
        help="also share what this computer plays (its sound output, never the microphone)",
    )
    s.add_argument(
        "--audio-device",
        metavar="NAME",
        help="with --audio: the output whose sound is shared (default: the default)",
    )
    s.add_argument(
        "--replace-oldest",
        action="store_true",
        help="if the room is full, take the place of its oldest share (when the room allows it)",
    )
    s.add_argument(
        "--reconnect-for",
        type=float,
        default=RECONNECT_FOR,
        metavar="SECONDS",
        help=f"when the connection is lost, keep trying this long (default {RECONNECT_FOR:g}; 0: end)",
    )
    s.add_argument(
        "--moderator",
        action="store_true",
        help=(
            "join as the room's moderator (--pin is then the moderator PIN): answer join requests and "
            "steer the room with typed commands (spotlight N, grid, swap N M, stop N)"
        ),
    )

    e = sub.add_parser("enroll", help="enroll this computer with a Coalesce cloud (once)", parents=[proxy])
    e.add_argument("url", help="the cloud's address, e.g. https://coalesce.example.com")
    e.add_argument("code", help="the enrollment code from your IT administrator")
    e.add_argument("--name", default=socket.gethostname(), help="this device's name in the cloud")
    e.add_argument(
        "--ca", metavar="FILE", help="trust this CA certificate too (a self-hosted cloud's own CA)"
    )

    u = sub.add_parser("update", help="check the cloud for a newer Coalesce, or install it", parents=[proxy])
    what = u.add_mutually_exclusive_group(required=True)
    what.add_argument("--check", action="store_true", help="only say whether a newer release is published")
    what.add_argument(
        "--install",
        action="store_true",
        help="download a newer release, verify it and hand it to this system's installer (as the app does)",
    )
    u.add_argument("--platform", default=current_platform(), help="platform to ask for (default: this one)")

    sub.add_parser("screens", help="list the screens that can be shared")

    doc = sub.add_parser("doctor", help="report how this computer reaches the cloud", parents=[proxy])
    doc.add_argument("--meeting", metavar="ID", help="also check that this meeting ID resolves")

    sub.add_parser(
        "proxy",
        help="save the proxy flags given here as the default (passwords go to the keyring)",
        parents=[proxy],
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.command is None:  # no command: the desktop app (Qt loads only here)
        from coalesce_client.ui.app import run_sender_app

        return run_sender_app()
    try:
        if args.command == "discover":
            return asyncio.run(_discover(args))
        if args.command == "screens":
            for monitor in list_monitors():
                print(monitor)
            return 0
        if args.command == "enroll":
            return asyncio.run(_enroll(args))
        if args.command == "doctor":
            return asyncio.run(_doctor(args))
        if args.command == "proxy":
            path = save_proxy(proxy_config(args))
            print(f"Saved: {proxy_config(args).describe()} ({path}).")
            return 0
        if args.command == "update":
            return asyncio.run(_update_check(args))
        return asyncio.run(_share(args))
    except NoModerator as exc:
        print(f"coalesce: {exc} Share without --moderator.", file=sys.stderr)
        return 2
    except RoomFull as exc:
        hint = " To replace it, share again with --replace-oldest." if exc.replaceable else ""
        print(f"coalesce: {exc}{hint}", file=sys.stderr)
        return 2
    except CoalesceError as exc:
        print(f"coalesce: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a low-level error that no boundary put into words: still no errno for people
        logger.info("unexpected system error", exc_info=exc)
        what = f" ({exc.filename})" if exc.filename else ""
        print(
            f"coalesce: {exc.strerror or 'a system call failed'}{what}. Run with -v for details.",
            file=sys.stderr,
        )
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
        print(f"{r.name}\t{r.addresses[0]}:{r.port}\t{r.access.describe()}\tsha-256 {r.fingerprint}")
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


async def _enroll(args: argparse.Namespace) -> int:
    credentials = await enroll(
        args.url,
        args.code,
        args.name,
        ca_file=args.ca,
        service=KEYRING_SERVICE,
        kind="sender",
        resolver=ProxyResolver(await asyncio.to_thread(proxy_config, args)),
    )
    print(f"Enrolled as device {credentials.device_id} of {credentials.org or 'your organisation'}.")
    return 0


async def _update_check(args: argparse.Namespace) -> int:
    credentials = await asyncio.to_thread(store.load, KEYRING_SERVICE)
    if credentials is None:
        raise NotEnrolled()
    resolver = ProxyResolver(await asyncio.to_thread(proxy_config, args))
    current = await asyncio.to_thread(installed_version)
    manifest = await updater.newer_release(credentials, resolver, platform=args.platform, current=current)
    if manifest is None:
        print(f"Coalesce {current} is up to date: no newer release is published for {args.platform}.")
        return 0
    print(f"Update available: Coalesce {manifest.version} (you have {current}).")
    print(f"Download: {manifest.url}\nSHA-256: {manifest.sha256}")
    if manifest.notes:
        print(f"Release notes:\n{manifest.notes}")
    if not args.install:
        return 0
    updater.check_release(manifest, platform=args.platform, current=current)
    path = await updater.download(
        manifest, updater.downloads_dir(), resolver=resolver, ca_file=credentials.ca_file
    )
    print(f"Downloaded and verified: {path}")
    print(await asyncio.to_thread(updater.hand_to_installer, path, manifest))
    return 0


async def _doctor(args: argparse.Namespace) -> int:
    credentials, proxy = await asyncio.to_thread(lambda: (store.load(KEYRING_SERVICE), proxy_config(args)))
    checks = await diagnose(credentials, proxy, args.meeting)
    for check in checks:
        print(check.line())
    return 1 if any(c.ok is False for c in checks) else 0


async def _share(args: argparse.Namespace) -> int:
    if args.meeting:
        return await _remote_share(args)
    target = await _target(args)
    moderator = TerminalModerator()
    news = _ConnectionNews(target.label)
    share = news.share = Share(
        target,
        _options(args),
        pin_provider=_ask_pin,
        on_join_request=moderator.ask,
        on_waiting=_say_waiting,
        on_connection=news,
        relay_finder=functools.partial(_relay, args),
    )
    await share.start()
    if args.moderator:
        moderator.start(share)
    try:
        stats = await share.stats()
        path = f", {media_path(stats)}" if stats.route is MediaRoute.RELAYED else ""
        return await _run_until_done(
            share, args.duration, f"Sharing to {share.receiver_name} ({target.host}:{target.port}){path}."
        )
    finally:
        await moderator.aclose()


async def _relay(args: argparse.Namespace) -> Relay | None:
    """The cloud's relay for this LAN share, when this computer is enrolled (see services.lan_relay)."""
    return await cloud_relay(await asyncio.to_thread(proxy_config, args))


class _ConnectionNews:
    """Says when a share's connection is lost and when it is back, with the way its media goes now (a
    reconnect looks for it again: the network may have changed)."""

    def __init__(self, room: str) -> None:
        self.room = room
        self.share: Share | None = None
        self._saying: set[asyncio.Task[None]] = set()

    def __call__(self, back: bool) -> None:
        if not back:
            print(f"The connection to {self.room} was lost; reconnecting…", flush=True)
            return
        task = asyncio.ensure_future(self._say_back())
        self._saying.add(task)
        task.add_done_callback(self._saying.discard)

    async def _say_back(self) -> None:
        path = f", {media_path(await self.share.stats())}" if self.share is not None else ""
        print(f"Reconnected: sharing to {self.room} again{path}.", flush=True)


def _say_waiting() -> None:
    print("Waiting for the room to let you in… (Ctrl-C cancels)", flush=True)


def _options(args: argparse.Namespace) -> ShareOptions:
    return ShareOptions(
        sender_name=args.name,
        pin=args.pin,
        screen=None if args.no_screen else args.screen,
        camera=args.camera,
        fps=args.fps,
        connect_timeout=args.timeout,
        moderator=args.moderator,
        replace_oldest=args.replace_oldest,
        reconnect_for=args.reconnect_for,
        sound=args.audio,
        sound_device=args.audio_device,
    )


async def _remote_share(args: argparse.Namespace) -> int:
    options = RemoteOptions(relay_only=args.relay_only, proxy=await asyncio.to_thread(proxy_config, args))
    news = _ConnectionNews(f"meeting {args.meeting}")
    async with RemoteShare(
        args.meeting,
        _options(args),
        remote=options,
        pin_provider=_ask_pin,
        on_waiting=_say_waiting,
        on_connection=news,
    ) as remote:
        share = news.share = remote.share
        assert share is not None  # started
        path = media_path(await share.stats())
        return await _run_until_done(
            share, args.duration, f"Sharing to {share.receiver_name} (meeting {args.meeting}), {path}."
        )


def media_path(stats: ShareStats) -> str:
    """How the media goes, for the sharing line: ``peer to peer``, ``relayed over TLS through ...``."""
    if stats.route is MediaRoute.PEER_TO_PEER:
        return "peer to peer"
    if stats.route is MediaRoute.RELAYED:
        return f"relayed {stats.relay}" if stats.relay else "relayed through the cloud"
    return "the media path is not known yet"


async def _run_until_done(share: Share, duration: float | None, sharing: str) -> int:
    """Say ``sharing``; wait for Ctrl-C, SIGTERM, ``duration`` or the receiver's end; stop cleanly; 0 if we
    stopped it. The signal handlers come first, so a Ctrl-C right after the line is a clean stop too."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # Windows: Ctrl-C arrives as KeyboardInterrupt
            loop.add_signal_handler(sig, stop.set)
    if share.sound_problem:
        print(share.sound_problem, flush=True)
    elif share.sound:
        sharing = f"{sharing} Your computer's sound is shared too."
    print(f"{sharing} Press Ctrl-C to stop.", flush=True)
    ended = asyncio.ensure_future(share.wait_ended())
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({ended, stopped}, timeout=duration, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
        if not ended.done():
            await share.stop()
        reason = await ended
    print(reason.describe(share.receiver_name) or "Share stopped.", flush=True)
    return 0 if reason is EndReason.STOPPED else 1
