"""The ``coalesce-receiver`` command: the room display, or a headless receiver for servers and tests.

This is the composition root: it builds the :class:`Receiver` service and, unless ``--headless``, hands
its model to the Qt room window. ``coalesce-receiver enroll`` (``coalesce-room enroll`` on a box) enrolls
a box that runs as a systemd service, which has no keyring: its credentials are sealed for systemd
(:mod:`coalesce_common.cloud.credstore`) and come back at each start as a systemd credential.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from coalesce_common.cloud import store
from coalesce_common.cloud.credstore import (
    DEFAULT_CREDSTORE,
    check_can_encrypt,
    credential_file,
    store_credentials,
)
from coalesce_common.cloud.device import enroll
from coalesce_common.cloud.updates import installed_version
from coalesce_common.errors import CoalesceError
from coalesce_common.protocol.pin import RULE as PIN_RULE
from coalesce_common.protocol.pin import is_valid_pin
from coalesce_common.signaling.admission import DEFAULT_PER_SOURCE
from coalesce_receiver.services.cloud_link import KEYRING_SERVICE, CloudLink
from coalesce_receiver.services.receiver import (
    DEFAULT_PORT,
    FALLBACK_PORT,
    Receiver,
    ReceiverConfig,
    ReceiverStartError,
    default_data_dir,
)

logger = logging.getLogger("coalesce_receiver")

ROOM_UNITS = "coalesce-room"
"""The package's units load ``coalesce-room.cloud-device`` from the encrypted credential store."""
DEFAULT_NAME = "Coalesce room"


def _program() -> str:
    """What the administrator typed: ``coalesce-room`` on a box (the package), else ``coalesce-receiver``."""
    name = Path(sys.argv[0]).name
    return name if name.startswith("coalesce-") else "coalesce-receiver"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=_program(),
        description="Coalesce room display (receiver).",
        epilog="A box that runs as a systemd service (the Coalesce Room package) is enrolled once, as root,"
        f" with: {_program()} enroll URL --code CODE (see enroll --help).",
    )
    p.add_argument("--name", default=DEFAULT_NAME, help="room name shown on screen and on the network")
    p.add_argument("--pin", help="PIN senders must enter (omit for an open room)")
    p.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"TLS signaling port (default {DEFAULT_PORT})"
    )
    p.add_argument(
        "--fallback-port",
        type=int,
        default=FALLBACK_PORT,
        help=f"port used when --port cannot be bound (default {FALLBACK_PORT}; 0 = any free port)",
    )
    p.add_argument("--host", help="address to listen on (default: all)")
    p.add_argument(
        "--headless", action="store_true", help="run without a window (servers, tests, benchmarks)"
    )
    p.add_argument("--windowed", action="store_true", help="open a normal window instead of full screen")
    p.add_argument(
        "--stats-file", type=Path, help="keep a JSON file of share statistics, rewritten every second"
    )
    p.add_argument("--snapshot-dir", type=Path, help="write each track's latest frame as PNG every second")
    p.add_argument(
        "--data-dir", type=Path, default=default_data_dir(), help="where the TLS key and id are kept"
    )
    p.add_argument("--no-mdns", action="store_true", help="do not announce this receiver on the network")
    p.add_argument(
        "--max-connections",
        type=int,
        metavar="N",
        help="signaling connections open at once, in all (default: 64, fewer if the open-file limit is low);"
        " at the limit the oldest one that has not paired is closed for a newcomer",
    )
    p.add_argument(
        "--max-connections-per-source",
        type=int,
        default=DEFAULT_PER_SOURCE,
        metavar="N",
        help=f"signaling connections one address may hold open (default {DEFAULT_PER_SOURCE})",
    )
    p.add_argument("--moderated", action="store_true", help="approve each share at the box before it shows")
    p.add_argument(
        "--no-replace",
        action="store_true",
        help="in a full room, turn newcomers away rather than let them take the oldest share's place",
    )
    p.add_argument("--rotate-pin", action="store_true", help="a new random PIN for every meeting")
    p.add_argument("--no-sound", action="store_true", help="play no share's sound")
    p.add_argument(
        "--sound-output",
        metavar="NAME",
        help="the output device shared sound plays on (its name or part of it; default: the default output)",
    )
    p.add_argument(
        "--moderator-pin",
        metavar="PIN",
        help="with --moderated: senders pairing with this PIN (coalesce share --moderator) approve joins",
    )
    p.add_argument(
        "--admin-password-env",
        metavar="VAR",
        default="COALESCE_RECEIVER_ADMIN_PASSWORD",
        help="environment variable holding the password that unlocks PIN changes at the box "
        "(default COALESCE_RECEIVER_ADMIN_PASSWORD; without it the settings stay locked)",
    )
    p.add_argument(
        "--cloud", metavar="URL", help="connect to this Coalesce cloud (meeting ID, remote senders)"
    )
    p.add_argument("--enroll", metavar="CODE", help="with --cloud: enroll this box first, with this code")
    p.add_argument(
        "--cloud-ca", metavar="FILE", help="trust this CA certificate too (a self-hosted cloud's CA)"
    )
    p.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    p.add_argument("--version", action="version", version=f"%(prog)s {installed_version()}")
    return p


def build_enroll_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=f"{_program()} enroll",
        description="Enroll this box with a Coalesce cloud for the room's systemd units (run it as root). The"
        " credentials are sealed with systemd-creds (the host key, and the TPM2 chip when there is one) into"
        f" the encrypted credential store as {ROOM_UNITS}.cloud-device; systemd decrypts them for the service"
        " at each start. Then add --cloud URL to COALESCE_ROOM_OPTIONS in /etc/default/coalesce-room.",
    )
    p.add_argument("url", help="the cloud's address, for example https://coalesce.example.com")
    p.add_argument("--code", required=True, help="the enrollment code from the cloud's administrator")
    p.add_argument(
        "--ca",
        metavar="FILE",
        type=Path,
        help="trust this CA certificate too (a self-hosted cloud's CA); the service reads it at each start,"
        " so keep it where the coalesce-room user can read it, such as /etc/coalesce-room/ (not under /root"
        " or /home)",
    )
    p.add_argument("--name", default=DEFAULT_NAME, help="the box's name in the cloud's device list")
    p.add_argument(
        "--credstore",
        type=Path,
        default=DEFAULT_CREDSTORE,
        metavar="DIR",
        help=f"the encrypted credential store (default {DEFAULT_CREDSTORE}, where the units look)",
    )
    p.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    return p


QUIET_LIBRARIES = ("aioice", "aiortc", "slixmpp", "httpx", "httpcore", "websockets")
"""Libraries whose INFO lines wait for ``-v``: about 30 ICE candidate and pair states per share, and a line
per signaling connection (a flood of strangers would be a flood of lines)."""


def _configure_logging(verbose: int) -> None:
    """The room's own INFO lines by default; ``-v`` adds the libraries' INFO and ours at DEBUG, ``-vv``
    everything at DEBUG."""
    logging.basicConfig(
        level=logging.INFO - 10 * min(verbose, 1),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel((logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)])


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["enroll"]:
        return enroll_main(arguments[1:])
    args = build_parser().parse_args(arguments)
    _configure_logging(args.verbose)
    for option, pin in (("--pin", args.pin), ("--moderator-pin", args.moderator_pin)):
        if pin is not None and not is_valid_pin(pin):
            print(f"{_program()}: {option} must be {PIN_RULE}", file=sys.stderr)
            return 2
    for option, limit in (
        ("--max-connections", args.max_connections),
        ("--max-connections-per-source", args.max_connections_per_source),
    ):
        if limit is not None and limit < 1:
            print(f"{_program()}: {option} must be at least 1", file=sys.stderr)
            return 2
    config = ReceiverConfig(
        name=args.name,
        pin=args.pin,
        host=args.host,
        port=args.port,
        fallback_port=args.fallback_port,
        data_dir=args.data_dir,
        stats_file=args.stats_file,
        snapshot_dir=args.snapshot_dir,
        mdns=not args.no_mdns,
        max_connections=args.max_connections,
        max_connections_per_source=args.max_connections_per_source,
        moderated=args.moderated,
        replace_when_full=not args.no_replace,
        sound=not args.no_sound,
        sound_output=args.sound_output,
        rotate_pin=args.rotate_pin,
        moderator_pin=args.moderator_pin,
        admin_password=os.environ.get(args.admin_password_env) or None,
    )
    if args.enroll and not args.cloud:
        print(f"{_program()}: --enroll needs --cloud URL", file=sys.stderr)
        return 2
    receiver = Receiver(config)
    if args.headless:
        return asyncio.run(_run_headless(receiver, args))
    if (
        not os.environ.get("DISPLAY")
        and not os.environ.get("WAYLAND_DISPLAY")
        and sys.platform.startswith("linux")
    ):
        print(f"{_program()}: no display found (DISPLAY is not set); use --headless", file=sys.stderr)
        return 2
    from coalesce_receiver.ui.app import run_room_app  # Qt is loaded only when a window is wanted

    return run_room_app(
        receiver.model, receiver, lambda: _serve(receiver, args), fullscreen=not args.windowed
    )


def enroll_main(argv: Sequence[str]) -> int:
    args = build_enroll_parser().parse_args(argv)
    _configure_logging(args.verbose)
    try:
        return asyncio.run(_enroll_box(args))
    except CoalesceError as exc:
        print(f"{_program()} enroll: {exc}", file=sys.stderr)
        return 2


async def _enroll_box(args: argparse.Namespace) -> int:
    target = credential_file(args.credstore, ROOM_UNITS)
    await check_can_encrypt(args.credstore)  # before the one-time code is spent
    # the service starts in another folder, so the credentials name the CA by its absolute path
    ca_file = str(await asyncio.to_thread(args.ca.resolve)) if args.ca else None
    credentials = await enroll(
        args.url, args.code, args.name, ca_file=ca_file, service=KEYRING_SERVICE, kind="box", keep=False
    )
    await store_credentials(credentials, target)
    print(f"Enrolled as box {credentials.device_id}; its credentials are sealed in {target}.", flush=True)
    print(
        f"Next: add --cloud {args.url} to COALESCE_ROOM_OPTIONS in /etc/default/coalesce-room, then run"
        " systemctl restart coalesce-room (or coalesce-room-headless).",
        flush=True,
    )
    return 0


async def _link(receiver: Receiver, args: argparse.Namespace) -> CloudLink | None:
    """Connect the box to its cloud when ``--cloud`` is given (enrolling first with ``--enroll``)."""
    if not args.cloud:
        return None
    if args.enroll:
        credentials = await enroll(
            args.cloud, args.enroll, args.name, ca_file=args.cloud_ca, service=KEYRING_SERVICE, kind="box"
        )
        print(f"enrolled as box {credentials.device_id}", flush=True)
    else:
        # systemd's credential when the unit passed one, else the OS keyring (D-Bus on Linux)
        source = await asyncio.to_thread(store.credential_source, KEYRING_SERVICE)
        stored = await asyncio.to_thread(source.load)
        if stored is None or stored.api_url.rstrip("/") != args.cloud.rstrip("/"):
            raise ReceiverStartError(
                f"this box is not enrolled with {args.cloud}: add --enroll CODE, or, for a box that runs as a"
                f" systemd service, run as root: {_program()} enroll {args.cloud} --code CODE"
            )
        credentials = stored
    link = CloudLink(receiver, credentials)
    await link.start()
    print(f"meeting ID {receiver.model.meeting_id}", flush=True)
    return link


async def _serve(receiver: Receiver, args: argparse.Namespace) -> None:
    try:
        await receiver.start()
        gc.freeze()  # see _Gate in coalesce_common.signaling.websocket: its collections then take ~1 ms
        _announce(receiver)
        link = await _link(receiver, args)
    except CoalesceError as exc:
        print(f"{_program()}: {exc}", file=sys.stderr)
        await receiver.aclose()
        raise
    try:
        await asyncio.Event().wait()  # until cancelled by the window or a signal
    finally:
        if link is not None:
            await link.aclose()
        await receiver.aclose()


async def _run_headless(receiver: Receiver, args: argparse.Namespace) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    link: CloudLink | None = None
    try:
        await receiver.start()
        gc.freeze()  # see _Gate in coalesce_common.signaling.websocket: its collections then take ~1 ms
        _announce(receiver)
        link = await _link(receiver, args)
    except CoalesceError as exc:
        print(f"{_program()}: {exc}", file=sys.stderr)
        await receiver.aclose()
        return 2
    try:
        await stop.wait()
    finally:
        if link is not None:
            await link.aclose()
        await receiver.aclose()
    return 0


def listening_line(host: str | None, port: int, addresses: list[str]) -> str:
    """What the receiver says it listens on: the one address it was given, or, bound to all of them, the
    port and this computer's addresses (senders use one of those)."""
    if host in (None, "", "0.0.0.0"):
        return f"listening on all addresses, port {port} (this computer: {', '.join(addresses)})"
    return f"listening on {host}:{port}"


def _announce(receiver: Receiver) -> None:
    model = receiver.model
    print(listening_line(receiver.config.host, model.port, model.addresses), flush=True)
    print(
        f"room {model.name!r}: PIN {'required' if model.pin_required else 'not required'}; "
        f"certificate sha-256 {model.fingerprint}",
        flush=True,
    )
